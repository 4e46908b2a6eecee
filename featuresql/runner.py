"""Execute compiled models through an adapter, in DAG order, in parallel where the DAG allows."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.errors import FeaturesqlError
from featuresql.models import CompiledModel, CompiledProject
from featuresql.plan import build_statements

Status = Literal["success", "error", "skipped"]


@dataclass(frozen=True)
class ModelResult:
    model: str
    status: Status
    rows: int | None = None
    seconds: float = 0.0
    message: str = ""


@dataclass
class RunResult:
    results: list[ModelResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.status == "success" for r in self.results)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)


Reporter = Callable[[str, ModelResult | None, int, int], None]


def run_models(
    project: CompiledProject,
    adapter: WarehouseAdapter,
    selected: list[str],
    *,
    now: datetime,
    threads: int = 1,
    report: Reporter | None = None,
) -> RunResult:
    """Build ``selected`` models (in dependency order); a failure skips its descendants."""
    started = time.perf_counter()
    result = RunResult()
    pending = list(selected)
    failed: set[str] = set()
    running: dict[Future[ModelResult], str] = {}
    done: set[str] = set()
    total = len(selected)

    def ready(name: str) -> bool:
        return all(dep in done or dep not in selected for dep in project.models[name].refs)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        while pending or running:
            for name in [n for n in pending if ready(n)]:
                if len(running) >= max(1, threads):
                    break
                pending.remove(name)
                model = project.models[name]
                if any(dep in failed for dep in model.refs):
                    skipped = ModelResult(name, "skipped", message="an upstream model failed")
                    failed.add(name)
                    done.add(name)
                    result.results.append(skipped)
                    if report:
                        report(name, skipped, len(result.results), total)
                    continue
                if report:
                    report(name, None, len(result.results) + len(running) + 1, total)
                running[pool.submit(_build, model, adapter, project.dialect, now, threads > 1)] = name
            if not running:
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                outcome = future.result()
                done.add(name)
                if outcome.status != "success":
                    failed.add(name)
                result.results.append(outcome)
                if report:
                    report(name, outcome, len(result.results), total)
    result.seconds = time.perf_counter() - started
    return result


def _build(model: CompiledModel, adapter: WarehouseAdapter, dialect: str, now: datetime, threaded: bool) -> ModelResult:
    started = time.perf_counter()
    connection = adapter.for_thread() if threaded else adapter
    try:
        for statement in build_statements(model, dialect, now):
            connection.execute(statement)
        count = connection.fetch_arrow(exp.select(exp.Count(this=exp.Star())).from_(model.relation.copy()))
        rows = int(count.column(0)[0].as_py())
    except FeaturesqlError as exc:
        return ModelResult(model.name, "error", seconds=time.perf_counter() - started, message=exc.message)
    finally:
        if threaded:
            connection.close()
    return ModelResult(model.name, "success", rows=rows, seconds=time.perf_counter() - started)

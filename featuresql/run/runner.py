"""Execute compiled models through an adapter, in DAG order, in parallel where the DAG allows."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import CompiledModel, CompiledProject
from featuresql.run.execution import build_model
from featuresql.run.planning import RunState
from featuresql.run.results import ModelResult, RunResult

Reporter = Callable[[str, ModelResult | None, int, int], None]


def run_models(
    project: CompiledProject,
    adapter: WarehouseAdapter,
    selected: list[str],
    *,
    run: RunState,
    threads: int = 1,
    report: Reporter | None = None,
) -> RunResult:
    """Build ``selected`` models (in dependency order); a failure skips its descendants."""
    started = time.perf_counter()
    run.models = project.models
    result = RunResult(run_id=run.run_id)
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
                running[pool.submit(_build, model, adapter, run, threads > 1)] = name
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


def _build(model: CompiledModel, adapter: WarehouseAdapter, run: RunState, threaded: bool) -> ModelResult:
    connection = adapter.for_thread() if threaded else adapter
    try:
        return build_model(model, connection, run)
    finally:
        if threaded:
            connection.close()

"""``target/run_results.json`` and ``target/manifest.json``: what ran, and what the project is.

Written after every run (also a failed one), like dbt's artifacts, so schedulers
and tools read results without parsing logs. Intervals are ISO 8601 UTC times
(``null`` for a model computed from its first event).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featuresql.durations import format_duration
from featuresql.files import atomic_path
from featuresql.run.intervals import BEGINNING, Interval

if TYPE_CHECKING:
    from featuresql.compile.models import CompiledProject
    from featuresql.run.results import ModelResult, RunResult, TestResult, TestRun


def interval_record(interval: Interval) -> list[str | None]:
    return [None if t == BEGINNING else datetime.fromtimestamp(t, UTC).isoformat() for t in interval]


def result_record(result: ModelResult) -> dict[str, Any]:
    return {
        "model": result.model,
        "status": result.status,
        "rows": result.rows,
        "seconds": round(result.seconds, 3),
        "batches": result.batches,
        "intervals": [interval_record(i) for i in result.intervals],
        "message": result.message,
    }


def write_run_results(folder: Path, result: RunResult, target: str, arguments: dict[str, Any]) -> Path:
    document = {
        "command": "run",
        "run_id": result.run_id,
        "generated_at": datetime.now(UTC).isoformat(),
        "target": target,
        "status": "success" if result.ok else "error",
        "seconds": round(result.seconds, 3),
        "arguments": arguments,
        "results": [result_record(r) for r in result.results],
    }
    return _write_json(folder / "run_results.json", document)


def test_record(result: TestResult) -> dict[str, Any]:
    return {
        "test": result.name,
        "kind": result.kind,
        "test_type": result.test_type,
        "status": result.status,
        "failures": result.failures,
        "seconds": round(result.seconds, 3),
        "message": result.message,
        "details": result.details,
        "models": list(result.models),
        "sources": list(result.sources),
        "sql": result.sql,
    }


def write_test_results(
    folder: Path, run: TestRun, target: str, arguments: dict[str, Any], command: str = "test"
) -> Path:
    """``run_results.json`` of ``featuresql test`` (or ``freshness``): every test's status, failures and time.

    ``test_results.json`` also keeps, per test, its latest result on this target (each with
    the time it ran, ``at``), merged over runs that selected only some tests: what the docs
    site shows.
    """
    now = datetime.now(UTC).isoformat()
    records = [{**test_record(r), "at": now} for r in run.results if r.status != "skipped"]
    document = {
        "command": command,
        "run_id": run.run_id,
        "generated_at": now,
        "target": target,
        "status": "success" if run.ok else "error",
        "seconds": round(run.seconds, 3),
        "arguments": arguments,
        "counts": {status: run.count(status) for status in ("pass", "warn", "fail", "error", "skipped")},
        "results": [{**test_record(r), "at": now} for r in run.results],
    }
    _write_json(folder / "test_results.json", _merged_results(folder / "test_results.json", target, records, now))
    return _write_json(folder / "run_results.json", document)


def _merged_results(path: Path, target: str, records: list[dict[str, Any]], now: str) -> dict[str, Any]:
    """The latest result of every test run on ``target``: the file's, updated with ``records``."""
    latest: dict[str, dict[str, Any]] = {}
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if isinstance(previous, dict) and previous.get("target") == target and isinstance(previous.get("results"), list):
        latest = {str(r.get("test")): r for r in previous["results"] if isinstance(r, dict)}
    latest.update({r["test"]: r for r in records})
    statuses = [r.get("status") for r in latest.values()]
    counts = {status: statuses.count(status) for status in ("pass", "warn", "fail", "error")}
    status = "error" if counts["fail"] or counts["error"] else "success"
    return {"target": target, "generated_at": now, "status": status, "counts": counts, "results": list(latest.values())}


def write_manifest(folder: Path, compiled: CompiledProject, definitions: dict[str, str]) -> Path:
    models = {}
    for name, model in compiled.models.items():
        settings = model.settings
        models[name] = {
            "kind": model.kind,
            "relation": model.relation.sql(compiled.dialect),
            "path": str(model.path),
            "refs": list(model.refs),
            "sources": list(model.sources),
            "columns": list(model.columns),
            "entity": settings.entity,
            "keys": list(settings.keys),
            "timestamp": settings.timestamp,
            "grain": format_duration(settings.grain),
            "start": settings.start.isoformat() if settings.start else None,
            "data_delay": format_duration(settings.data_delay) if settings.data_delay else "0s",
            "lookback": settings.lookback,
            "batch_size": settings.batch_size,
            "online": settings.online,
            "ttl": format_duration(settings.ttl) if settings.ttl else None,
            "tags": list(settings.tags),
            "description": settings.description,
            "owner": settings.owner,
            "definition": definitions.get(name),
        }
    document = {
        "project": compiled.name,
        "target": compiled.target,
        "dialect": compiled.dialect,
        "generated_at": datetime.now(UTC).isoformat(),
        "models": models,
    }
    return _write_json(folder / "manifest.json", document)


def _write_json(path: Path, document: dict[str, Any]) -> Path:
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path

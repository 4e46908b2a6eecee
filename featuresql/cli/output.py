"""What the CLI prints: run progress, summaries and listings."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import click

from featuresql.durations import format_duration
from featuresql.run.artifacts import interval_record, result_record
from featuresql.run.intervals import Interval

if TYPE_CHECKING:
    from featuresql.context import PlannedModel
from featuresql.compile.models import CompiledProject
from featuresql.project.loader import Project
from featuresql.run.results import ModelResult, RunResult

_STATUS = {"success": ("OK", "green"), "error": ("ERROR", "red"), "skipped": ("SKIP", "yellow")}


class RunPrinter:
    """Prints one line when a model starts and one when it ends (thread safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, model: str, result: ModelResult | None, index: int, total: int) -> None:
        with self._lock:
            prefix = f"{index:>3} of {total}"
            if result is None:
                click.echo(f"{prefix} START {model}")
                return
            label, colour = _STATUS[result.status]
            detail = f"[{result.rows:,} rows in {result.seconds:.2f}s]" if result.rows is not None else ""
            line = f"{prefix} {click.style(label, fg=colour)} {model} {detail}".rstrip()
            click.echo(line)
            if result.message:
                click.secho(f"      {result.message}", fg=colour)

    def batch(self, model: str, done: int, total: int, interval: Interval, rows: int | None, seconds: float) -> None:
        """A committed batch of a window model (printed only when a model has several)."""
        if total < 2:
            return
        with self._lock:
            count = f"{rows:,} rows" if rows is not None else "done"
            click.echo(f"      {model}: batch {done}/{total} [{format_interval(interval)}) {count} in {seconds:.2f}s")

    def summary(self, result: RunResult) -> None:
        counts = f"{result.count('success')} ok, {result.count('error')} error, {result.count('skipped')} skipped"
        colour = "green" if result.ok else "red"
        noun = "model" if len(result.results) == 1 else "models"
        click.secho(f"Finished {len(result.results)} {noun} in {result.seconds:.2f}s: {counts}.", fg=colour)


class JsonRunLog:
    """One JSON object per line for every event of a run (``--log-format json``), for schedulers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            click.echo(json.dumps(event, default=str))

    def __call__(self, model: str, result: ModelResult | None, index: int, total: int) -> None:
        if result is None:
            self._emit({"event": "model_start", "model": model, "index": index, "total": total})
            return
        self._emit({"event": "model_done", **result_record(result)})

    def batch(self, model: str, done: int, total: int, interval: Interval, rows: int | None, seconds: float) -> None:
        self._emit(
            {
                "event": "batch_done",
                "model": model,
                "batch": done,
                "batches": total,
                "interval": interval_record(interval),
                "rows": rows,
                "seconds": round(seconds, 3),
                "status": "success",
            }
        )

    def summary(self, result: RunResult) -> None:
        self._emit(
            {
                "event": "run_done",
                "run_id": result.run_id,
                "status": "success" if result.ok else "error",
                "seconds": round(result.seconds, 3),
                "success": result.count("success"),
                "error": result.count("error"),
                "skipped": result.count("skipped"),
            }
        )


def print_plan(planned: list[PlannedModel], dialect: str) -> None:
    """``run --dry-run``: per model, what it would compute and the statements, in order."""
    for model in planned:
        if model.action == "rebuild":
            click.secho(f"-- {model.name}: rebuild (a snapshot model is rebuilt whole at each run)", fg="cyan")
        else:
            spans = ", ".join(f"[{format_interval(i)})" for i in model.batches) or "nothing new"
            click.secho(f"-- {model.name}: {model.action}, {len(model.batches)} batches: {spans}", fg="cyan")
        for statement in model.statements:
            click.echo(statement.sql(dialect, pretty=True) + ";\n")


def format_interval(interval: Interval) -> str:
    lo, hi = interval_record(interval)
    return f"{lo or 'beginning'}, {hi}"


def _snapshot_column(name: str, as_of_join: bool) -> dict[str, Any]:
    """A snapshot model's column; an as_of_join model's is a spine column or ``model__feature`` as of its time."""
    model, joined, feature = name.partition("__")
    if as_of_join:
        function, input_ = ("as_of", f"{model}.{feature}") if joined else ("spine", name)
    else:
        function, input_ = "snapshot", name
    return {"name": name, "function": function, "input": input_, "window": None}


def describe_project(
    project: Project, compiled: CompiledProject, selected: list[str], *, with_on_demand: bool = True
) -> dict[str, Any]:
    """Models (kind, entity, features with function and window; on-demand models last, unless
    ``with_on_demand`` is off: selectors pick models with tables), sources and services, as plain data."""
    from featuresql.compile.lineage import MODEL, Lineage, column_lineage

    models: list[dict[str, Any]] = []
    lineage: Lineage | None = None
    for name in selected:
        model = compiled.models[name]
        features: list[dict[str, Any]]
        if model.window is not None:
            features = [
                {
                    "name": f.name,
                    "function": f.function,
                    "input": f.input.sql(project.config.dialect) if f.input else "*",
                    "window": f.window_label,
                }
                for f in model.features
            ]
        else:
            columns = model.feature_columns
            if "*" in columns:  # select * from as_of_join(...): the lineage expands the star
                lineage = lineage or column_lineage(compiled, project)
                prefix = f"{MODEL}{name}."
                columns = tuple(n.removeprefix(prefix) for n in lineage.edges if n.startswith(prefix))
            features = [_snapshot_column(c, bool(model.as_of_joins)) for c in columns]
        models.append(
            {
                "name": name,
                "kind": "as_of_join" if model.as_of_joins else model.kind,
                "entity": model.settings.entity,
                "keys": list(model.settings.keys),
                "timestamp": model.settings.timestamp,
                "grain": format_duration(model.settings.grain),
                "stream_grain": format_duration(stream.grain) if (stream := model.settings.stream) else None,
                "online": model.settings.online,
                "tags": list(model.settings.tags),
                "depends_on": list(model.refs),
                "sources": list(model.sources),
                "features": features,
            }
        )
    dialect = project.config.dialect
    for name, computed in compiled.on_demand.items() if with_on_demand else ():
        models.append(
            {
                "name": name,
                "kind": "on_demand",
                "entity": None,
                "keys": list(computed.keys),
                "request": dict(computed.request),
                "online": all(compiled.models[ref].settings.online for ref in computed.refs),
                "tags": list(computed.tags),
                "depends_on": list(computed.refs),
                "sources": [],
                "features": [
                    {"name": f.name, "function": "expression", "input": f.expression.sql(dialect), "window": None}
                    for f in computed.features
                ],
            }
        )
    sources = [
        {
            "name": s.key,
            "relation": ".".join(p for p in (s.database, s.schema, s.identifier) if p),
            "event_time": s.event_time,
            "columns": list(s.columns),
        }
        for s in project.sources.values()
    ]
    services = [
        {
            "name": service.name,
            "version": service.version,
            "description": service.description,
            "features": [{"model": f.model, "feature": f.feature, "output": f.output} for f in service.features],
        }
        for service in compiled.services.values()
    ]
    return {"models": models, "sources": sources, "services": services}


def print_listing(listing: dict[str, Any]) -> None:
    for model in listing["models"]:
        flags = [model["kind"]]
        if model["entity"]:
            flags.append(f"entity={model['entity']}({', '.join(model['keys'])})")
        if model["kind"] == "window":
            flags.append(f"grain={model['grain']}")
        if model.get("stream_grain"):
            flags.append(f"stream_grain={model['stream_grain']}")
        if model["kind"] == "on_demand":
            request = ", ".join(f"{column} {kind}" for column, kind in model["request"].items())
            flags.append(f"keys=({', '.join(model['keys'])}) request=({request})")
        if model["online"]:
            flags.append("online")
        click.secho(f"{model['name']}  ", bold=True, nl=False)
        click.echo(" ".join(flags))
        for feature in model["features"]:
            window = f" over {feature['window']}" if feature["window"] else ""
            if feature["function"] == "expression":
                click.echo(f"    {feature['name']:<36} {feature['input']}")
                continue
            click.echo(f"    {feature['name']:<36} {feature['function']}({feature['input']}){window}")
    click.secho("sources", bold=True)
    for source in listing["sources"]:
        event_time = f" (event time: {source['event_time']})" if source["event_time"] else ""
        click.echo(f"    {source['name']:<36} {source['relation']}{event_time}")
    if listing["services"]:
        click.secho("services", bold=True)
    for service in listing["services"]:
        version = f" (version {service['version']})" if service["version"] is not None else ""
        click.echo(f"    {service['name']}{version}")
        for feature in service["features"]:
            click.echo(f"        {feature['output']:<40} {feature['model']}.{feature['feature']}")

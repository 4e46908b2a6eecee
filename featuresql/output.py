"""What the CLI prints: run progress, summaries and listings."""

from __future__ import annotations

import threading
from typing import Any

import click

from featuresql.durations import format_duration
from featuresql.models import CompiledProject
from featuresql.project import Project
from featuresql.runner import ModelResult, RunResult

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

    def summary(self, result: RunResult) -> None:
        counts = f"{result.count('success')} ok, {result.count('error')} error, {result.count('skipped')} skipped"
        colour = "green" if result.ok else "red"
        noun = "model" if len(result.results) == 1 else "models"
        click.secho(f"Finished {len(result.results)} {noun} in {result.seconds:.2f}s: {counts}.", fg=colour)


def describe_project(project: Project, compiled: CompiledProject, selected: list[str]) -> dict[str, Any]:
    """Models (kind, entity, features with function and window) and sources, as plain data."""
    models = []
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
            ]  # fmt: skip
        else:
            features = [{"name": c, "function": "snapshot", "input": c, "window": None} for c in model.feature_columns]
        models.append({
            "name": name, "kind": model.kind, "entity": model.settings.entity, "keys": list(model.settings.keys),
            "timestamp": model.settings.timestamp, "grain": format_duration(model.settings.grain),
            "online": model.settings.online, "tags": list(model.settings.tags), "depends_on": list(model.refs),
            "sources": list(model.sources), "features": features,
        })  # fmt: skip
    sources = [
        {"name": s.key, "relation": ".".join(p for p in (s.database, s.schema, s.identifier) if p),
         "event_time": s.event_time, "columns": list(s.columns)}
        for s in project.sources.values()
    ]  # fmt: skip
    return {"models": models, "sources": sources}


def print_listing(listing: dict[str, Any]) -> None:
    for model in listing["models"]:
        flags = [model["kind"]]
        if model["entity"]:
            flags.append(f"entity={model['entity']}({', '.join(model['keys'])})")
        if model["kind"] == "window":
            flags.append(f"grain={model['grain']}")
        if model["online"]:
            flags.append("online")
        click.secho(f"{model['name']}  ", bold=True, nl=False)
        click.echo(" ".join(flags))
        for feature in model["features"]:
            window = f" over {feature['window']}" if feature["window"] else ""
            click.echo(f"    {feature['name']:<36} {feature['function']}({feature['input']}){window}")
    click.secho("sources", bold=True)
    for source in listing["sources"]:
        event_time = f" (event time: {source['event_time']})" if source["event_time"] else ""
        click.echo(f"    {source['name']:<36} {source['relation']}{event_time}")

"""One model's entry in the catalog: settings, columns, SQL, tests, runs, freshness and online reading."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from featuresql.compile.lineage import Lineage
from featuresql.compile.models import CompiledModel, CompiledProject
from featuresql.docs.attached_tests import TestIndex
from featuresql.docs.columns import model_columns
from featuresql.docs.docs_blocks import DocResolver
from featuresql.docs.reading import online_reading
from featuresql.docs.warehouse import WarehouseInfo
from featuresql.durations import format_duration
from featuresql.project.config import Freshness
from featuresql.project.loader import Project
from featuresql.run.statements import build_statements


@dataclass(frozen=True)
class EntryInputs:
    """Everything a model entry is built from, shared by all models."""

    project: Project
    compiled: CompiledProject
    dialect: str  # the target's
    lineage: Lineage
    resolver: DocResolver
    warehouse: WarehouseInfo
    tests: TestIndex
    store: str  # the online store type
    target: str | None  # the target named on the command line, passed on to example commands
    now: datetime  # compiled SQL is the full build at this time


def model_entry(model: CompiledModel, inputs: EntryInputs) -> dict[str, Any]:
    """The catalog entry of ``model`` (plain JSON data)."""
    project, settings = inputs.project, model.settings
    file = project.models[model.name]
    where = file.spec_path if file.spec and file.spec.description else file.path
    built = inputs.warehouse.columns.get(model.name)
    runs = [asdict(run) for run in inputs.warehouse.runs.get(model.name, [])]
    return {
        "name": model.name,
        "kind": model.kind,
        "path": relative_path(model.path, project.root),
        "yaml_path": relative_path(file.spec_path, project.root) if file.spec_path else None,
        "relation": model.relation.sql(inputs.dialect),
        "description": inputs.resolver.resolve(settings.description, f"model {model.name}", where),
        "owner": settings.owner,
        "tags": list(settings.tags),
        "entity": settings.entity,
        "keys": [{"name": key, "type": key_type(project, key)} for key in settings.keys],
        "timestamp": settings.timestamp,
        "grain": format_duration(settings.grain) if model.window is not None else None,
        "windows": [format_duration(w) for w in sorted({f.window for f in model.features})],
        "data_delay": format_duration(settings.data_delay),
        "start": settings.start.isoformat() if settings.start else None,
        "ttl": format_duration(settings.ttl) if settings.ttl else None,
        "lookback": settings.lookback if model.window is not None else None,
        "batch_size": settings.batch_size,
        "tie_break": settings.tie_break,
        "online": settings.online,
        "depends_on": list(model.refs),
        "sources": list(model.sources),
        "used_by": _used_by(model, inputs.compiled),
        "built": built is not None,
        "columns": model_columns(model, file, inputs.lineage, inputs.resolver, built, project.config.dialect),
        "sql": {
            "source": file.sql,
            "compiled": _compiled_sql(model, inputs.dialect, inputs.now),
            "compiled_path": f"{project.config.target_path}/compiled/{inputs.compiled.target}/{model.name}.sql",
        },
        "tests": inputs.tests.for_model(model.name),
        "runs": runs,
        "last_run": runs[0] if runs else None,
        "freshness": _freshness(model, inputs.warehouse),
        "online_read": online_reading(model, project, inputs.store, inputs.target),
    }


def _compiled_sql(model: CompiledModel, dialect: str, now: datetime) -> str:
    """What ``featuresql compile`` writes for the model: the statements of a full build."""
    statements = build_statements(model, dialect, now)
    return ";\n\n".join(statement.sql(dialect, pretty=True) for statement in statements) + ";\n"


def _freshness(model: CompiledModel, warehouse: WarehouseInfo) -> dict[str, Any]:
    """The newest data of the model, how it is measured, and its freshness limits if any.

    For a window model ``newest`` is the newest event its values include and
    ``computed_through`` the newest boundary computed (what its freshness test
    measures); see ``featuresql.docs.warehouse``.
    """
    limits = model.settings.freshness
    measured_by = None
    if model.window is not None:
        measured_by = f"max({model.settings.timestamp}) of its input before the computed boundary"
    elif model.settings.timestamp:
        measured_by = f"max({model.settings.timestamp})"
    return {
        "newest": warehouse.newest.get(model.name),
        "measured_by": measured_by,
        "computed_through": warehouse.computed_through.get(model.name),
        "table_rows": warehouse.table_rows.get(model.name),
        "limits": freshness_limits(limits),
    }


def freshness_limits(limits: Freshness | None) -> dict[str, Any] | None:
    """A freshness block as shown: durations spelled as users write them."""
    if limits is None:
        return None
    return {
        "warn_after": format_duration(limits.warn_after) if limits.warn_after is not None else None,
        "error_after": format_duration(limits.error_after) if limits.error_after is not None else None,
        "loaded_at_field": limits.loaded_at_field,
        "filter": limits.filter,
    }


def _used_by(model: CompiledModel, compiled: CompiledProject) -> list[str]:
    """The models that ref ``model``: those with a table, then the on-demand ones."""
    on_demand = [name for name, other in compiled.on_demand.items() if model.name in other.refs]
    return [*compiled.children.get(model.name, ()), *on_demand]


def key_type(project: Project, key: str) -> str | None:
    """The type project.yml declares for the entity key column ``key`` (None if no entity has it)."""
    for entity in project.config.entities.values():
        for column, kind in entity.keys.items():
            if column.lower() == key:
                return kind
    return None


def relative_path(path: Path, root: Path) -> str:
    """``path`` relative to the project ``root`` when inside it, with forward slashes."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()

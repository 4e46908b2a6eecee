"""Point-in-time training extracts: ``featuresql extract`` and ``featuresql.extract()``.

The spine is staged in the warehouse (``featuresql.extracts.spine``), the join is built
by ``featuresql.sql.point_in_time`` and runs there; only its result comes back, as
Arrow, or stays in the warehouse (``--out table:NAME``). Nothing is joined in
pandas.

(Neither the package nor a module is called ``extract``: that name is the function
``featuresql.extract``, which a submodule import would replace.)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from featuresql import checkpoints
from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.features import feature_names, on_demand_features, resolve_features
from featuresql.compile.models import CompiledProject
from featuresql.compile.spine_columns import KeyColumn
from featuresql.errors import ConfigError, closest
from featuresql.extracts.on_demand import derived_columns
from featuresql.extracts.spine import SpineInput, StagedSpine, stage_spine
from featuresql.extracts.stream_models import fresh_join
from featuresql.files import atomic_path
from featuresql.names import parse_table_name
from featuresql.run.coverage import describe, spine_spans
from featuresql.sql.engines import DEFAULT_ENGINE
from featuresql.sql.point_in_time import DerivedColumn, JoinedModel, point_in_time_query, uncomputed_counts
from featuresql.sql.types import sql_family

if TYPE_CHECKING:
    import pyarrow as pa

    from featuresql.run.workspace import Workspace

TABLE_PREFIX = "table:"


@dataclass(frozen=True)
class Destination:
    """Where an extract goes: a local file or a warehouse table."""

    kind: str  # "parquet", "csv", "table" or "arrow" (returned to the caller)
    path: Path | None = None
    table: str | None = None

    @classmethod
    def parse(cls, out: str | Path | None, dialect: str = DEFAULT_ENGINE) -> Destination:
        """``out`` read as a destination; a ``table:NAME`` is checked as a table name of ``dialect``."""
        if out is None:
            return cls("arrow")
        text = str(out)
        if text.startswith(TABLE_PREFIX) and text[len(TABLE_PREFIX) :]:
            parse_table_name(text[len(TABLE_PREFIX) :], dialect, f"--out {text!r}")  # the Python API's too
            return cls("table", table=text[len(TABLE_PREFIX) :])
        suffix = Path(text).suffix.lower()
        if suffix in (".parquet", ".csv"):
            return cls(suffix[1:], path=Path(text))
        raise ConfigError(f"--out {text!r} must end in .parquet or .csv, or be table:NAME for a warehouse table")

    def describe(self) -> str:
        return str(self.table if self.kind == "table" else self.path)


@dataclass(frozen=True)
class ExtractResult:
    rows: int
    features: int
    models: int
    seconds: float
    destination: Destination
    table: pa.Table | None = None
    uncomputed: dict[str, int] = field(default_factory=dict)  # model -> spine rows past its computed state
    warnings: tuple[str, ...] = ()  # one line per model of ``uncomputed``


def run_extract(
    context: Workspace,
    spine: SpineInput,
    features: str | Sequence[str],
    *,
    out: str | Path | None = None,
    timestamp_column: str | None = None,
    strict: bool = False,
    service: str | None = None,
) -> ExtractResult:
    """Join ``features`` (or feature service ``service``'s) onto ``spine`` as of each row's time, in the warehouse.

    Spine rows past what a model has computed (after its last run, in a gap) get NULL
    for its features and are counted in ``uncomputed``, with a warning line each;
    ``strict`` refuses them instead, before anything is written.
    """
    started = time.perf_counter()
    destination = Destination.parse(out, context.dialect)
    outputs = None
    if service is not None:
        resolved = context.service(service)
        features, outputs = resolved.requested, resolved.outputs
    names = [name.partition(".")[0] for name in feature_names(features)]
    for name in names:
        if name.lower() not in context.project.models:
            known = list(context.project.models)
            raise ConfigError(f"unknown model {name!r} in --features{closest(name, known)}")
    compiled = context.compiled_for(names)
    models = resolve_features(
        compiled.models, features, context.project.name, outputs=outputs, on_demand=compiled.on_demand
    )
    on_demand = on_demand_features(compiled.on_demand, features, outputs)
    adapter = context.adapter
    streams = [m for m in models if compiled.models[m.name].settings.stream is not None]
    for model in models:
        if model not in streams:
            _check_built(context, model)
    if streams:  # a stream model reads its source, so nothing may have made the schema the spine is staged in
        adapter.ensure_schema(adapter.schema)
    keys = _key_columns(context, models, compiled)
    candidates = [m.timestamp for m in models]
    staged = stage_spine(spine, adapter, keys, candidates, timestamp_column=timestamp_column)
    checkpoints.reach("extract_staged")
    try:
        derived = derived_columns(context, compiled, staged, on_demand)
        _check_collisions(staged, models, derived)
        joined = [m.with_spine_keys(staged.keys) for m in models]
        joined = [_fresh(adapter, compiled, m, staged) for m in joined]
        uncomputed = _count_uncomputed(adapter, staged, joined)
        warnings = tuple(
            _uncomputed_message(adapter, model, uncomputed[model.name], strict=strict)
            for model in joined
            if model.name in uncomputed
        )
        if strict and warnings:
            raise ConfigError(warnings[0])
        query = point_in_time_query(staged.relation, joined, adapter.dialect, derived)
        table, rows = _deliver(context, query, destination)
    finally:
        if staged.temporary is not None:
            adapter.execute(exp.Drop(tables=[staged.temporary], kind="TABLE", exists=True))
    features_count = sum(len(m.columns) - len(m.hidden) for m in models) + len(on_demand)
    seconds = time.perf_counter() - started
    return ExtractResult(rows, features_count, len(models), seconds, destination, table, uncomputed, warnings)


def _fresh(
    adapter: WarehouseAdapter, compiled: CompiledProject, model: JoinedModel, staged: StagedSpine
) -> JoinedModel:
    """A stream model's windows at its stream grain; any other model as it is."""
    compiled_model = compiled.models[model.name]
    return model if compiled_model.settings.stream is None else fresh_join(adapter, compiled_model, model, staged)


def _count_uncomputed(adapter: WarehouseAdapter, staged: StagedSpine, models: Sequence[JoinedModel]) -> dict[str, int]:
    """Per model, the spine rows past its computed state (only models with some)."""
    if not any(m.coverage for m in models):
        return {}
    counts = adapter.fetch_arrow(uncomputed_counts(staged.relation, models, adapter.dialect)).to_pylist()[0]
    return {m.name: int(counts[m.name]) for m in models if m.coverage and counts[m.name]}


def _uncomputed_message(adapter: WarehouseAdapter, model: JoinedModel, rows: int, *, strict: bool) -> str:
    """One line: how many rows, what the state covers, and the command that computes the rest."""
    assert model.coverage is not None
    state = describe(spine_spans(adapter, model.coverage, model.data_delay))
    count = f"{rows:,} spine {'row is' if rows == 1 else 'rows are'} past what was computed ({state})"
    run = f"`featuresql run --select {model.name}`"
    if strict:
        return f"model {model.name!r}: {count}: run {run} to compute them, or extract without --strict to get NULLs"
    return f"model {model.name!r}: {count}; their features are NULL: run {run} to compute them"


def _check_built(context: Workspace, model: JoinedModel) -> None:
    columns = context.adapter.table_columns(model.relation)
    rebuild = f"featuresql run --select {model.name}"
    if columns is None:
        raise ConfigError(
            f"model {model.name!r} has not been built on target {context.target_name!r}: run `{rebuild}` first"
        )
    missing = [c for c in (model.timestamp, *model.keys, *model.columns) if c not in columns]
    if missing:
        raise ConfigError(
            f"table {model.relation.sql(context.dialect)} lacks column {missing[0]!r} of model {model.name!r}: "
            f"it was built from an older definition; rebuild it with `{rebuild}`"
        )


def _key_columns(context: Workspace, models: Sequence[JoinedModel], compiled: CompiledProject) -> list[KeyColumn]:
    entities = context.project.config.entities
    dialect = context.project.config.dialect
    keys: dict[str, KeyColumn] = {}
    for model in models:
        entity_name = compiled.models[model.name].settings.entity or ""
        declared = {k.lower(): v for k, v in entities[entity_name].keys.items()}
        for key in model.keys:
            family = sql_family(declared[key], dialect) if declared.get(key) else None
            keys.setdefault(key, KeyColumn(key, family, entity_name))
    return list(keys.values())


def _check_collisions(staged: StagedSpine, models: Sequence[JoinedModel], derived: Sequence[DerivedColumn]) -> None:
    spine_columns = {c.lower() for c in staged.relation.columns}
    outputs = [model.output_name(c) for model in models for c in model.columns if c not in model.hidden]
    for name in [*outputs, *(column.name for column in derived)]:
        if name in spine_columns:
            raise ConfigError(f"{staged.description} already has a column {name!r}: rename or drop it")


def _deliver(context: Workspace, query: exp.Select, destination: Destination) -> tuple[pa.Table | None, int]:
    adapter = context.adapter
    if destination.kind == "table":
        assert destination.table is not None
        table = parse_table_name(destination.table, adapter.dialect, f"--out table:{destination.table}")
        if not table.db:
            table.set("db", exp.to_identifier(adapter.schema))
        adapter.execute(exp.Create(this=table, kind="TABLE", replace=True, expression=query))
        count = adapter.fetch_arrow(exp.select(exp.func("COUNT", exp.Star())).from_(table)).column(0)[0].as_py()
        return None, int(count)
    if destination.kind == "parquet" and destination.path is not None:
        exported = _export_parquet(adapter, query, destination.path)
        if exported is not None:
            return None, exported
    result = adapter.fetch_arrow(query)
    if destination.path is not None:
        write_atomically(result, destination.path, destination.kind)
    return result, result.num_rows


def _export_parquet(adapter: WarehouseAdapter, query: exp.Select, path: Path) -> int | None:
    """The engine writes the file itself where it can (DuckDB: in parallel), whole or not at all."""
    with atomic_path(path) as partial:
        rows: int | None = adapter.export_parquet(query, partial.resolve())
        if rows is not None:
            checkpoints.reach("extract_before_rename")
    return rows


def write_atomically(table: pa.Table, path: Path, kind: str) -> None:
    """Write a parquet or csv file whole or not at all."""
    with atomic_path(path) as partial:
        if kind == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, partial)
        else:
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, partial)
        checkpoints.reach("extract_before_rename")

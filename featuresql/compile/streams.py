"""Stream models: window models served fresh (DESIGN.md section 11).

A window model opts in with ``config(stream_grain='1m')``, optionally with
``stream_delay`` (default 0) and ``stream_horizon`` (default twice the model grain).
Its windows then end at ``floor(t - stream_delay, stream_grain)`` for a spine row
or a read at ``t``, rather than at the model grain.

Events pushed online are rows of the model's one source table, so its row-level
SQL (the WHERE, the keys, the timestamp, the inputs and tie-breaks of the window
macros) is compiled here into programs of the reader's evaluator
(``featuresql.sql.expressions``), typed with the source's declared column types.
What the evaluator cannot compute, or what needs more than one row (a join, a
subquery, a window function, an aggregate), is refused at compile time.

``window_count_distinct`` is refused in a stream model: an exact distinct count
over a window merged from slots needs every distinct value of the window in the
store (a set per slot), whose size no item limit bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlglot import exp

from featuresql.compile.checks import node_line
from featuresql.compile.models import RowPrograms, StreamSettings
from featuresql.compile.on_demand import duckdb_type
from featuresql.durations import format_duration
from featuresql.errors import CompileError
from featuresql.project.config import ModelConfig
from featuresql.project.loader import ModelFile, Source
from featuresql.sql.expressions import Program, UnsupportedExpression, compile_expression, kind_of, result_type
from featuresql.sql.windows import WindowModel

SUBJECT = "a stream model's row-level SQL"
_STREAM_SETTINGS = ("stream_grain", "stream_delay", "stream_horizon")
# What a row-level SELECT may have; any other clause needs more than one row at a time (or
# drops some), named in the error as below.
_ROW_CLAUSES = frozenset({"expressions", "from", "from_", "where"})
_CLAUSE_NAMES = {
    "with_": "a WITH clause",
    "with": "a WITH clause",
    "joins": "a JOIN",
    "laterals": "a LATERAL",
    "group": "a GROUP BY",
    "having": "a HAVING",
    "qualify": "a QUALIFY",
    "distinct": "a DISTINCT",
    "order": "an ORDER BY",
    "limit": "a LIMIT",
    "offset": "an OFFSET",
    "sample": "a SAMPLE",
    "windows": "a WINDOW clause",
}


def stream_settings(
    model: ModelFile, config: ModelConfig, grain: int, *, is_window: bool, online: bool, line: int | None
) -> StreamSettings | None:
    """The model's stream settings, or None when it sets no ``stream_grain``; misuse is a one-line error."""

    def refuse(message: str) -> CompileError:
        return CompileError(f"model {model.name!r}: {message}", path=model.path, line=line)

    if config.stream_grain is None:
        stray = [name for name in _STREAM_SETTINGS[1:] if name in config.model_fields_set]
        if stray:
            raise refuse(f"{stray[0]} is set without stream_grain: add stream_grain='1m' (say), or remove it")
        return None
    stream_grain = config.stream_grain
    if not is_window:
        raise refuse("stream_grain is set, but only a window model can be served fresh: remove it")
    if grain % stream_grain:
        raise refuse(
            f"stream_grain {format_duration(stream_grain)} does not divide the grain {format_duration(grain)}: "
            "use a divisor of it, such as 1m, 5m or 1h"
        )
    if not online:
        raise refuse("a stream model is served fresh from the online store: add online=true to its config")
    delay = config.stream_delay or 0
    horizon = config.stream_horizon if config.stream_horizon is not None else 2 * grain
    if horizon <= 0 or horizon % stream_grain:
        raise refuse(
            f"stream_horizon {format_duration(horizon)} must be a positive multiple of the stream_grain "
            f"{format_duration(stream_grain)}"
        )
    return StreamSettings(stream_grain, delay, horizon)


def row_programs(model: ModelFile, window: WindowModel, sources: Mapping[str, Source], dialect: str) -> RowPrograms:
    """The row-level SQL of stream model ``model`` as programs, or a one-line error naming what is refused.

    ``sources`` are the declared sources the model reads (``source_name.table`` -> Source).
    """
    events = window.events

    def refuse(message: str, node: exp.Expr | None = None) -> CompileError:
        line = node_line(node) if node is not None else None
        return CompileError(f"stream model {model.name!r}: {message}", path=model.path, line=line)

    for feature in window.features:
        if feature.function == "count_distinct":
            raise refuse(
                f"{feature.name} is a window_count_distinct, which a stream model cannot serve: an exact "
                "distinct count merged from pushed slots needs every distinct value of the window online; "
                "compute it in a model without stream_grain"
            )
    for clause, found in events.args.items():
        if found and clause not in _ROW_CLAUSES:
            node = found[0] if isinstance(found, list) else found
            what = _CLAUSE_NAMES.get(clause, f"a {clause.upper()} clause")
            raise refuse(f"its SELECT has {what}; a pushed event is one row of one source table", node)
    table = events.args.get("from_") or events.args.get("from")
    relation = table.this if table is not None else None
    if not isinstance(relation, exp.Table) or relation.args.get("sample") or len(sources) != 1:
        raise refuse(
            "it must read exactly one declared source table, FROM {{ source('...', '...') }}: "
            "pushed events are rows of that table",
            events,
        )
    ((source_key, source),) = sources.items()
    untyped = sorted(name for name, kind in source.columns.items() if not kind)
    if not source.columns or untyped:
        what = f"column {untyped[0]!r}" if untyped else "its columns"
        raise refuse(
            f"source {source_key} declares no type for {what}: pushed records are checked against the "
            f"declared types; give every column a type in {source.path.name}"
        )
    types = {name.lower(): duckdb_type(kind or "", dialect) for name, kind in source.columns.items()}
    where = events.args.get("where")
    programs = {item.alias_or_name.lower(): _program(item.unalias(), types, refuse) for item in events.expressions}
    if result_type(programs[window.timestamp]) != "timestamp":
        raise refuse(f"its timestamp {window.timestamp!r} must be a TIMESTAMP column of {source_key}")
    return RowPrograms(
        source=source_key,
        source_types={name: kind_of(kind) for name, kind in types.items()},
        where=_program(where.this, types, refuse) if where is not None else None,
        columns=programs,
        event_id=source.event_id,
    )


def _program(node: exp.Expr, types: Mapping[str, str], refuse: Callable[[str, exp.Expr], CompileError]) -> Program:
    bare = node.copy().transform(lambda n: exp.column(n.name) if isinstance(n, exp.Column) and n.table else n)
    try:
        return compile_expression(bare, types, SUBJECT)
    except UnsupportedExpression as exc:
        raise refuse(f"{exc.message} (the supported SQL: README, On-demand features)", node) from None

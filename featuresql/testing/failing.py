"""Run a query of failing rows on the target: count them, show the first ``limit``.

A passing test costs one round trip (the count); the rows are fetched only
when there are failures to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlglot import exp

from featuresql.errors import ConfigError, ExecutionError
from featuresql.testing.cases import Check, Outcome, TestEnv

MAX_CELL = 40


def failing_rows_check(query: exp.Query, limit: int, noun: str = "failing row") -> Check:
    """A check failing with each row ``query`` returns (each one a ``noun``: a row, a duplicated key...)."""

    def check(env: TestEnv) -> Outcome:
        adapter = env.context.adapter
        sql = query.sql(adapter.dialect, pretty=True)
        failing = query.subquery("failing")
        try:
            count = adapter.fetch_arrow(exp.select(exp.Count(this=exp.Star())).from_(failing)).column(0)[0].as_py()
        except ExecutionError as exc:
            _check_tables_exist(env, query)
            exc.sql = sql
            raise
        if not count:
            return Outcome(0, sql=sql)
        shown = ""
        if limit:
            rows = adapter.fetch_arrow(exp.select("*").from_(failing.copy()).limit(limit))
            shown = format_table(rows.column_names, rows.to_pylist())
        more = f" (first {limit} shown)" if limit and count > limit else ""
        return Outcome(int(count), f"{count:,} {noun}{'' if count == 1 else 's'}{more}", shown, sql)

    return check


def _check_tables_exist(env: TestEnv, query: exp.Query) -> None:
    """Turn 'no such table' into an error saying what to build or load."""
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if table.name.lower() in ctes and not table.db:
            continue
        bare = exp.table_(table.name, db=table.db or None, catalog=table.catalog or None)
        if env.context.adapter.table_columns(bare) is None:
            name = bare.sql(env.context.dialect)
            source = _source_of(env, table)
            fix = (
                f"load source {source.key} (or fix its schema and identifier in {source.path.name})"
                if source
                else "build it first with `featuresql run`"
            )
            raise ConfigError(f"table {name} does not exist on target {env.context.target_name!r}: {fix}") from None


def _source_of(env: TestEnv, table: exp.Table) -> Any:
    sources = env.context.project.sources.values()
    return next(
        (s for s in sources if s.identifier.lower() == table.name.lower() and (s.schema or "") == table.db), None
    )


def format_table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a plain text table, columns aligned, long values cut."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[n]) for r in cells)]) for n, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines.extend(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells)
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"

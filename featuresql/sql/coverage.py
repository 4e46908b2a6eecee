"""What a point-in-time join may read of a model: the spine times its computed state vouches for.

Interval state (``featuresql.intervals``, written by ``featuresql.run.state``) lists
the boundary intervals ``[lo, hi)`` each window model has computed. A spine row at
``t`` reads the model's latest row at or before ``T = t - data_delay``; that row is
the right one only if every boundary it could be was computed. The latest change
point before ``T`` lies within the widest window before the last boundary ``B <=
T`` (see ``point_in_time._bounds``), so over a merged interval ``[lo, hi)`` the
join is exact for ``T`` in ``[lo + widest window, hi)``, and for every ``T < hi``
when the interval begins at the model's start or at its first event
(``BEGINNING``). Anywhere else (past the last run, in a gap, in a range an
interrupted run left) the join would pass off an older row as current, so its
features are NULL there and the rows are counted.

A snapshot model reading window models (feature chaining) is vouched for where all
of them are: its build records those spans (``reach`` 0). A snapshot model reading
no window model has no state and is read as it is.

The spans are computed in the warehouse from the state table itself (merged with a
running maximum: gaps and islands), so an extract and an ``as_of_join`` model read
the state as it is when they run, never a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from featuresql.sql import dialects

STATE_SCHEMA = "featuresql"
# State records a model without ``start`` from this sentinel: its first run computes
# everything before its end, from the first event on.
BEGINNING = -(2**62)
# The columns of the state table a join reads (``featuresql.run.state`` keeps the others).
STATE_COLUMNS = {"project": "VARCHAR", "model": "VARCHAR", "lo": "BIGINT", "hi": "BIGINT"}
LO = "__featuresql_lo"
HI = "__featuresql_hi"


@dataclass(frozen=True)
class Coverage:
    """Where to find a model's computed intervals and how far back a spine time reads."""

    project: str
    model: str
    reach: int  # seconds of computed boundaries a spine time needs behind it: the widest window (0: spans)
    start: int | None = None  # epoch seconds: intervals beginning here or earlier reach back without limit


def state_table(name: str) -> exp.Table:
    return exp.table_(name, db=STATE_SCHEMA)


def computed_spans(coverage: Coverage, dialect: str) -> exp.Select:
    """Rows ``(LO, HI)`` of timestamps: a ``T`` in ``[LO, HI)`` is vouched for (``LO`` NULL: no lower bound)."""
    lo, hi = exp.column("lo"), exp.column("hi")
    order = exp.Order(expressions=[exp.Ordered(this=lo.copy()), exp.Ordered(this=hi.copy())])
    rows = (
        exp.select(lo.copy(), hi.copy())
        .from_(state_table("intervals"))
        .where(
            exp.and_(
                exp.column("project").eq(exp.Literal.string(coverage.project)),
                exp.column("model").eq(exp.Literal.string(coverage.model)),
            )
        )
    )
    before = exp.Window(
        this=exp.Max(this=hi.copy()),
        order=order.copy(),
        spec=exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end=exp.Literal.number(1), end_side="PRECEDING"
        ),
    )
    # An interval starts a new island unless an earlier one reaches it (touching counts).
    fresh = exp.case().when(before >= lo.copy(), exp.Literal.number(0)).else_(exp.Literal.number(1))
    flagged = exp.select(lo.copy(), hi.copy(), exp.alias_(fresh, "fresh")).from_(rows.subquery("__rows"))
    running = exp.Window(
        this=exp.Sum(this=exp.column("fresh")),
        order=order.copy(),
        spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"),
    )
    numbered = exp.select(lo.copy(), hi.copy(), exp.alias_(running, "island")).from_(flagged.subquery("__flagged"))
    islands = (
        exp.select(exp.alias_(exp.Min(this=lo.copy()), "lo"), exp.alias_(exp.Max(this=hi.copy()), "hi"))
        .from_(numbered.subquery("__numbered"))
        .group_by(exp.column("island"))
    )
    unbounded = lo.copy() <= exp.Literal.number(BEGINNING if coverage.start is None else coverage.start)
    first = exp.Add(this=lo.copy(), expression=exp.Literal.number(coverage.reach))
    # Never converted from BEGINNING, which no engine's timestamps reach, even in a branch not taken.
    safe = exp.case().when(unbounded.copy(), hi.copy()).else_(first.copy())
    lower = exp.case().when(unbounded.copy(), exp.null()).else_(dialects.seconds_to_timestamp(safe, dialect))
    return (
        exp.select(exp.alias_(lower, LO), exp.alias_(dialects.seconds_to_timestamp(hi.copy(), dialect), HI))
        .from_(islands.subquery("__islands"))
        .where(exp.or_(unbounded.copy(), first.copy() < hi.copy()))
    )


def covers(spans: str, time: exp.Expr) -> exp.Expr:
    """Whether the span aliased ``spans`` holds ``time`` (the join condition)."""
    lower = exp.or_(exp.column(LO, spans).is_(exp.null()), time.copy() >= exp.column(LO, spans))
    return exp.and_(exp.paren(lower), time.copy() < exp.column(HI, spans))

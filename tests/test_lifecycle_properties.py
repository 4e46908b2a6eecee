"""The batch lifecycle against a brute-force oracle: random runs, backfills, upstream changes, extracts.

A project of three models: ``s`` stages the raw events (a snapshot model, with a
filter that random steps switch on and off), ``w`` is a window model over ``s``, and
``c`` a snapshot model chained on ``w``. Events arrive on time, some with a NULL
key; the source may start empty. Random steps run every model, backfill a range
of ``w`` alone (leaving gaps and a stale ``c``), change ``s``, or change the type of
the source's ``amount`` (DOUBLE to DECIMAL and back): the next run is refused and the
test follows the printed hint exactly, after which every value has the new type.

After every step, an extract at random times (before the data, inside gaps, past
the last run) must equal the oracle: the window values over the raw events where
the boundaries a row needs were computed (tracked by the test from the steps, as
sets of boundaries), NULL and counted elsewhere. After the last step, every table
equals a fresh build of the same data.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import MICROS, Macro, WindowModelSpec, aggregate, epoch_micros, expected_rows, same_value
from projects import duckdb_profile, load_rows, window_features, write_project

from featuresql.context import Context
from featuresql.errors import ConfigError
from featuresql.run.planning import RunOptions

pytestmark = pytest.mark.duckdb

DAY, HOUR = 86400, 3600
T0 = datetime(2024, 1, 10)
SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("ts", pa.timestamp("us")), ("amount", pa.float64()), ("category", pa.string())]
)
DECIMAL_SCHEMA = SCHEMA.set(2, pa.field("amount", pa.decimal128(12, 2)))
MACROS = (Macro("count", None, (DAY, 3 * DAY)), Macro("sum", "amount", (2 * DAY,)))
MAX_TILES = 3
FILTER = " where amount >= 2"
LOWEST = -60  # boundary indices (days from T0) below every event: "from the beginning"


@dataclass(frozen=True)
class Setup:
    start: int | None  # days from T0
    data_delay: int
    lookback: int

    def window_sql(self) -> str:
        config = f"entity='user', timestamp='ts', grain='1d', lookback={self.lookback}"
        if self.start is not None:
            config += f", start='{(T0 + timedelta(days=self.start)).isoformat(sep=' ')}'"
        if self.data_delay:
            config += f", data_delay='{self.data_delay // HOUR}h'"
        return (
            f"{{{{ config({config}) }}}}\nselect user_id, ts,\n    {window_features(MACROS)}\nfrom {{{{ ref('s') }}}}\n"
        )

    def spec(self, delay: int | None = None) -> WindowModelSpec:
        features = tuple(f for m in MACROS for f in m.features())
        start = None if self.start is None else T0 + timedelta(days=self.start)
        return WindowModelSpec(features, DAY, data_delay=self.data_delay if delay is None else delay, start=start)


def staging_sql(filtered: bool) -> str:
    return (
        "select user_id, ts, amount, category from {{ source('raw', 'events') }}" + (FILTER if filtered else "") + "\n"
    )


CHAINED_SQL = (
    "{{ config(entity='user', timestamp='ts') }}\nselect user_id, ts, count_3d * 2 as double_3d from {{ ref('w') }}\n"
)


@dataclass
class Model:
    """What the test knows the warehouse holds: computed boundaries of ``w``, and ``c``'s copy of them."""

    setup: Setup
    filtered: bool = False
    decimal: bool = False  # the source's amount is DECIMAL(12, 2), else DOUBLE
    computed: set[int] = field(default_factory=set)  # boundary indices (days from T0) of w
    chained: set[int] = field(default_factory=set)  # w's computed boundaries when c was last built
    chain_built: bool = False

    def used(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events w reads: non-NULL keys, through s's filter, with the source's amount type."""
        kept = [e for e in events if e["user_id"] is not None and (not self.filtered or e["amount"] >= 2)]
        return [typed(e, self.decimal) for e in kept]

    def last_index(self, now: datetime) -> int:
        return (epoch_micros(now) - self.setup.data_delay * MICROS - epoch_micros(T0)) // (DAY * MICROS)

    def compute(self, events: Sequence[dict[str, Any]], now: datetime, low: int | None, high: int | None) -> None:
        """A run at ``now`` (a backfill of days ``[low, high)`` when given): DESIGN's incremental semantics."""
        last = self.last_index(now)
        first = LOWEST if self.setup.start is None else self.setup.start
        end = last + 1
        create = not self.computed
        if low is None:
            work = set(range(first, end))
        else:
            work = set(range(max(low, first), min(high or end, end)))
            if create and work:
                work |= set(range(first, max(work) + 1))  # a new table starts from the model start
        if create and work:
            # No history without data: nothing is computed unless an event precedes the work's end.
            work_end = T0 + timedelta(days=max(work) + 1)
            if not any(e["ts"] < work_end for e in self.used(events)):
                work = set()
        self.computed |= work

    def vouched(self, computed: set[int], index: int) -> bool:
        lowest = index - MAX_TILES
        if self.setup.start is not None:
            lowest = max(lowest, self.setup.start)
        return all(i in computed for i in range(lowest, max(index, lowest) + 1))


def typed(event: dict[str, Any], decimal: bool) -> dict[str, Any]:
    """``event`` as the source holds it: amounts are quarters, exact in both types."""
    return {**event, "amount": Decimal(str(event["amount"])) if decimal else event["amount"]}


def index_of(moment: datetime, delay: int) -> int:
    return (epoch_micros(moment) - delay * MICROS - epoch_micros(T0)) // (DAY * MICROS)


@dataclass(frozen=True)
class Step:
    kind: str  # "run", "backfill", "toggle" (s's filter) or "retype" (the source's amount)
    now: datetime
    low: int = 0
    high: int = 0


@dataclass(frozen=True)
class Case:
    setup: Setup
    events: list[dict[str, Any]]
    steps: list[Step]
    spines: list[list[tuple[int, datetime]]]  # one spine per step


@st.composite
def cases(draw: st.DrawFn) -> Case:
    setup = Setup(
        start=draw(st.none() | st.integers(-2, 4)),
        data_delay=draw(st.sampled_from([0, 0, 2 * HOUR])),
        lookback=draw(st.integers(0, 2)),
    )
    events = []
    for _ in range(draw(st.integers(0, 12))):
        at = T0 + timedelta(microseconds=draw(st.integers(-3 * DAY * MICROS, 12 * DAY * MICROS)))
        user = draw(st.sampled_from([1, 2, 3, None]))
        events.append({"user_id": user, "ts": at, "amount": draw(st.integers(0, 12)) / 4, "category": "a"})
    steps = []  # time moves forward: each step later than the one before
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["run", "run", "backfill", "toggle", "retype"]))
        now = T0 + timedelta(hours=draw(st.integers(-2 * 24, 14 * 24)))
        low = draw(st.integers(-2, 12))
        steps.append(Step(kind, now, low, low + draw(st.integers(1, 4))))
    steps.sort(key=lambda step: step.now)
    spine_rows = st.tuples(
        st.sampled_from([1, 2, 3]),
        st.integers(-3 * 24, 16 * 24).map(lambda h: T0 + timedelta(hours=h, microseconds=draw(st.integers(0, 1)))),
    )
    spines = [draw(st.lists(spine_rows, min_size=1, max_size=6)) for _ in steps]
    return Case(setup, events, steps, spines)


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.database = root / "l.duckdb"

    def reset(self, setup: Setup, filtered: bool = False) -> None:
        self.database.unlink(missing_ok=True)
        self.write(setup, filtered)

    def write(self, setup: Setup, filtered: bool) -> None:
        write_project(
            self.root,
            "lifecycle",
            entities={"user": {"user_id": "bigint"}},
            tables={"events": {"event_time": "ts"}},
            models={"s": staging_sql(filtered), "w": setup.window_sql(), "c": CHAINED_SQL},
            profile=duckdb_profile(self.database),
        )

    def load(self, events: Sequence[dict[str, Any]], decimal: bool) -> None:
        rows = [typed(event, decimal) for event in events]
        load_rows(self.database, "raw.events", rows, DECIMAL_SCHEMA if decimal else SCHEMA)

    def run(self, now: datetime, select: Sequence[str] = (), **options: Any) -> None:
        """Run; a refusal for a changed definition is answered by running the hint it prints, exactly."""
        with Context(self.root) as context:
            try:
                result = context.run(tuple(select), now=now.replace(tzinfo=UTC), options=RunOptions(**options))
            except ConfigError as exc:
                hint = re.search(r"`(featuresql run [^`]*)`", exc.message)
                assert hint, exc.message
                return self.follow(hint.group(1), now)
        assert result.ok, [(r.model, r.message) for r in result.results if r.status != "success"]
        return None

    def follow(self, command: str, now: datetime) -> None:
        words = shlex.split(command)[2:]
        select: list[str] = []
        full = False
        for number, word in enumerate(words):
            if word == "--full-refresh":
                full = True
            elif word in ("--select", "-s"):
                select.extend(w for w in words[number + 1 :] if not w.startswith("-"))
        with Context(self.root) as context:
            result = context.run(tuple(select), now=now.replace(tzinfo=UTC), options=RunOptions(full_refresh=full))
        assert result.ok, [(r.model, r.message) for r in result.results if r.status != "success"]

    def extract(self, spine: list[tuple[int, datetime]], models: list[str]) -> Any:
        table = pa.table({"user_id": [u for u, _ in spine], "ts": pa.array([t for _, t in spine], pa.timestamp("us"))})
        with Context(self.root) as context:
            return context.extract(table, models)

    def table(self, model: str) -> pa.Table:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return connection.sql(f"select * from main.{model} order by all").to_arrow_table()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(tmp_path_factory.mktemp("lifecycle"))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(tmp_path_factory.mktemp("fresh"))


def expected_extract(
    state: Model, events: Sequence[dict[str, Any]], spine: Sequence[tuple[int, datetime]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per spine row, w's and c's features by the oracle, and the rows past what was computed."""
    used = state.used(events)
    spec = state.setup.spec()
    table = expected_rows(state.setup.spec(delay=0), used, datetime(2030, 1, 1, tzinfo=UTC))
    rows, past = [], {"w": 0, "c": 0}
    for user, at in spine:
        row: dict[str, Any] = {}
        index = index_of(at, state.setup.data_delay)
        before_start = state.setup.start is not None and index < state.setup.start
        for feature in spec.features:
            row[f"w__{feature.name}"] = None
        if not before_start:
            if state.vouched(state.computed, index):
                boundary = epoch_micros(T0) // MICROS + index * DAY
                mine = [e for e in used if e["user_id"] == user]
                for feature in spec.features:
                    lo = (boundary - feature.window) * MICROS
                    inside = [e for e in mine if lo <= epoch_micros(e["ts"]) < boundary * MICROS]
                    row[f"w__{feature.name}"] = aggregate(feature, inside, "ts")
            else:
                past["w"] += 1
        # c: w's latest row at or before t - data_delay (c inherits w's delay), as c copied it.
        if state.vouched(state.chained, index):
            boundary = epoch_micros(T0) // MICROS + index * DAY
            mine = [r for r in table if r["user_id"] == user and epoch_micros(r["ts"]) <= boundary * MICROS]
            row["c__double_3d"] = 2 * mine[-1]["count_3d"] if mine else None
        else:
            row["c__double_3d"] = None
            past["c"] += 1
        rows.append(row)
    return rows, {k: v for k, v in past.items() if v}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(case=cases())
def test_lifecycle_extracts_and_tables_equal_the_oracle(project: Project, fresh: Project, case: Case) -> None:
    state = Model(case.setup)
    project.reset(case.setup)
    for step, spine in zip(case.steps, case.spines, strict=True):
        arrived = [e for e in case.events if e["ts"] <= step.now]
        if step.kind == "retype":
            state.decimal = not state.decimal
        project.load(arrived, state.decimal)
        if step.kind in ("toggle", "retype"):
            if step.kind == "toggle":
                state.filtered = not state.filtered
                project.write(case.setup, state.filtered)
            project.run(step.now)  # refused: the hint is followed, rebuilding s, w and c from scratch
            state.computed = set()
            state.compute(arrived, step.now, None, None)
            state.chained = set(state.computed)
        elif step.kind == "backfill":
            # w alone (c goes stale), after its upstream s: a backfill reads what s holds now.
            project.run(step.now, ["+w"], start=T0 + timedelta(days=step.low), end=T0 + timedelta(days=step.high))
            state.compute(arrived, step.now, step.low, step.high)
        else:
            project.run(step.now)
            state.compute(arrived, step.now, None, None)
            state.chained = set(state.computed)
        models = ["w", "c"] if step.kind != "backfill" or state.chain_built else ["w"]
        state.chain_built = "c" in models
        result = project.extract(spine, models)
        expected, past = expected_extract(state, case.events, spine)
        if "c" not in models:
            expected = [{k: v for k, v in row.items() if not k.startswith("c__")} for row in expected]
            past.pop("c", None)
        problems = []
        for number, (have, want) in enumerate(zip(result.table.to_pylist(), expected, strict=True)):
            problems += [
                f"after {step}: spine row {number} {spine[number]} {column}: got {have[column]!r}, expected {value!r}"
                for column, value in want.items()
                if not same_value(have[column], value)
            ]
        assert not problems, "\n".join(problems[:20])
        assert result.uncomputed == past, step
    # Every table equals a fresh build of the same data at the last step's time, once the gaps are filled.
    last = case.steps[-1].now
    project.run(last)
    fresh.reset(case.setup, state.filtered)
    fresh.load([e for e in case.events if e["ts"] <= last], state.decimal)
    fresh.run(last)
    for model in ("s", "w", "c"):  # the same rows of the same types (1.5 == Decimal("1.50") in Python)
        assert project.table(model).equals(fresh.table(model), check_metadata=False), model

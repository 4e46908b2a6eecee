"""Incremental runs equal a full refresh: random schedules of runs against the oracle.

Events arrive over time (some late, within ``lookback``); a schedule of runs at
random times (gaps included) loads what has arrived before each run and runs
incrementally. After the last run the table must equal the brute-force oracle
over every event, exactly as a single full refresh would. Other tests pin the
state tables, batches, backfills, full refreshes and definition changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import MICROS, Macro, WindowModelSpec, duration_label, expected_rows, row_differences
from projects import duckdb_profile, load_rows, run_models, window_features, write_project

from featuresql.context import Context
from featuresql.errors import ConfigError
from featuresql.run.intervals import BEGINNING, merge

pytestmark = pytest.mark.duckdb

DAY, HOUR = 86400, 3600
T0 = datetime(2024, 1, 1)
SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("ts", pa.timestamp("us")), ("amount", pa.float64()), ("category", pa.string())]
)


@dataclass(frozen=True)
class Setup:
    macros: tuple[Macro, ...]
    grain: int = DAY
    lookback: int = 0
    batch_size: int | None = None
    start: datetime | None = None
    data_delay: int = 0
    on_change: str | None = None

    def sql(self) -> str:
        config: dict[str, Any] = {
            "entity": "user",
            "timestamp": "ts",
            "grain": duration_label(self.grain),
            "lookback": self.lookback,
        }
        if self.batch_size:
            config["batch_size"] = self.batch_size
        if self.start:
            config["start"] = self.start.isoformat(sep=" ")
        if self.data_delay:
            config["data_delay"] = duration_label(self.data_delay)
        if self.on_change:
            config["on_change"] = self.on_change
        arguments = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return (
            f"{{{{ config({arguments}) }}}}\nselect user_id, ts,\n    {window_features(self.macros)}\n"
            "from {{ source('raw', 'events') }}\n"
        )

    def spec(self) -> WindowModelSpec:
        features = tuple(f for m in self.macros for f in m.features())
        return WindowModelSpec(features, self.grain, data_delay=self.data_delay, start=self.start)


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.database = root / "i.duckdb"

    def reset(self, setup: Setup) -> None:
        self.database.unlink(missing_ok=True)
        self.write(setup)

    def write(self, setup: Setup) -> None:
        write_project(
            self.root,
            "incremental",
            entities={"user": {"user_id": "bigint"}},
            tables={"events": {"event_time": "ts"}},
            models={"m": setup.sql()},
            profile=duckdb_profile(self.database),
        )

    def load(self, events: Sequence[dict[str, Any]]) -> None:
        load_rows(self.database, "raw.events", events, SCHEMA)

    def run(self, now: datetime, select: tuple[str, ...] = (), **options: Any) -> None:
        with Context(self.root) as context:
            run_models(context, now=now.replace(tzinfo=UTC), select=select, **options)

    def rows(self) -> list[dict[str, Any]]:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            rows: list[dict[str, Any]] = (
                connection.sql("select * from main.m order by user_id, ts").to_arrow_table().to_pylist()
            )
            return rows

    def intervals(self) -> list[tuple[int, int, int | None]]:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return connection.execute(
                "select lo, hi, row_count from featuresql.intervals where model = 'm' order by lo, computed_at"
            ).fetchall()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(tmp_path_factory.mktemp("incremental"))


def assert_oracle(project: Project, setup: Setup, events: Sequence[dict[str, Any]], now: datetime) -> None:
    expected = expected_rows(setup.spec(), events, now.replace(tzinfo=UTC))
    problems = row_differences(project.rows(), expected, "user_id", "ts")
    assert not problems, "\n".join(problems[:20])


def ev(user: int, ts: datetime, amount: float = 1.0, category: str = "a") -> dict[str, Any]:
    return {"user_id": user, "ts": ts, "amount": amount, "category": category}


def day(d: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, d, hour)


COUNT_SUM = (Macro("count", None, (DAY, 2 * DAY)), Macro("sum", "amount", (2 * DAY,)))


# -- hand-written ----------------------------------------------------------------------


def test_each_run_computes_only_the_new_boundaries_and_fills_gaps(project: Project) -> None:
    setup = Setup(COUNT_SUM, start=day(1))
    project.reset(setup)
    events = [ev(1, day(1, 5)), ev(1, day(3, 5)), ev(2, day(6, 1))]
    project.load(events)
    project.run(day(3, 12))
    assert [(lo, hi) for lo, hi, _ in project.intervals()] == [(_s(day(1)), _s(day(4)))]
    project.run(day(8, 1))  # days 4 to 8 were never run: a gap, filled
    assert [(lo, hi) for lo, hi, _ in project.intervals()] == [(_s(day(1)), _s(day(4))), (_s(day(4)), _s(day(9)))]
    assert_oracle(project, setup, events, day(8, 1))
    project.run(day(8, 2))  # nothing new: nothing computed
    assert len(project.intervals()) == 2
    with duckdb.connect(str(project.database), read_only=True) as connection:
        last = connection.execute(
            "select lo, hi, row_count, status, message from featuresql.run_log where model = 'm' "
            "order by logged_at desc limit 1"
        ).fetchone()
    assert last == (None, None, 0, "success", "up to date")  # the run log still shows the model was checked


def test_late_events_within_lookback_are_absorbed_beyond_it_only_by_a_backfill(project: Project) -> None:
    setup = Setup(COUNT_SUM, start=day(1), lookback=2)
    project.reset(setup)
    events = [ev(1, day(2, 5))]
    project.load(events)
    project.run(day(5))
    late = [*events, ev(1, day(3, 5)), ev(2, day(1, 5))]  # tile Jan 3 is within 2 tiles of the end; Jan 1 is not
    project.load(late)
    project.run(day(5, 1))
    # Boundaries up to Jan 5 were computed; the lookback recomputes Jan 4 and 5 from every
    # event (absorbing Jan 3's), and the boundaries before keep what they had.
    recomputed = [r for r in expected_rows(setup.spec(), late, _utc(day(5, 1))) if r["ts"] >= day(4)]
    kept = [r for r in expected_rows(setup.spec(), events, _utc(day(5, 1))) if r["ts"] < day(4)]
    expected = sorted(recomputed + kept, key=lambda r: (r["user_id"], r["ts"]))
    assert not row_differences(project.rows(), expected, "user_id", "ts")
    project.run(day(5, 2), start=day(1), end=day(4))
    assert_oracle(project, setup, late, day(5, 2))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def test_batches_full_refresh_and_reruns_give_identical_tables(project: Project) -> None:
    setup = Setup(COUNT_SUM, start=day(1), batch_size=2)
    project.reset(setup)
    events = [ev(u, day(d, u)) for u in (1, 2) for d in range(1, 12, 3)]
    project.load(events)
    project.run(day(14))
    assert [hi - lo for lo, hi, _ in project.intervals()] == [2 * DAY] * 7  # boundaries Jan 1 to 14
    first = project.rows()
    assert_oracle(project, setup, events, day(14))
    project.run(day(14), full_refresh=True)
    assert project.rows() == first
    project.run(day(14), start=day(3), end=day(9))
    assert project.rows() == first


def test_a_changed_model_is_refused_unless_it_opts_in_to_rebuilds(project: Project) -> None:
    setup = Setup(COUNT_SUM, start=day(1))
    project.reset(setup)
    events = [ev(1, day(2, 5), 3.0)]
    project.load(events)
    project.run(day(5))
    changed = Setup((Macro("count", None, (DAY,)), Macro("max", "amount", (2 * DAY,))), start=day(1))
    project.write(changed)
    refusal = r"model 'm' changed since its table was computed: .*`featuresql run --full-refresh --select m\+`"
    with pytest.raises(ConfigError, match=refusal):
        project.run(day(6))
    project.run(day(6), full_refresh=True)
    assert_oracle(project, changed, events, day(6))
    rebuilding = Setup(COUNT_SUM, start=day(1), on_change="rebuild")
    project.write(rebuilding)
    project.run(day(7))
    assert_oracle(project, rebuilding, events, day(7))


def test_editing_lookback_or_batch_size_needs_no_rebuild(project: Project) -> None:
    setup = Setup(COUNT_SUM, start=day(1))
    project.reset(setup)
    project.load([ev(1, day(2, 5))])
    project.run(day(5))
    project.write(Setup(COUNT_SUM, start=day(1), lookback=3, batch_size=1))
    project.run(day(6))


def _s(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


# -- random schedules ------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    setup: Setup
    events: list[tuple[dict[str, Any], datetime]]  # each event with the time it arrives
    runs: list[datetime]


CATALOGUE = (
    Macro("count", None, (DAY, 3 * DAY)),
    Macro("sum", "amount", (2 * DAY,)),
    Macro("max", "amount", (DAY,)),
    Macro("count_distinct", "category", (3 * DAY,)),
    Macro("last", "amount", (2 * DAY,)),
)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    lookback = draw(st.integers(0, 3))
    delay = draw(st.sampled_from([0, 0, 2 * HOUR]))
    macros = tuple(m for m in CATALOGUE if draw(st.booleans())) or CATALOGUE[:1]
    start = draw(
        st.none() | st.integers(0, 4).map(lambda d: T0 + timedelta(days=d, hours=draw(st.sampled_from([0, 6]))))
    )
    setup = Setup(
        macros, lookback=lookback, data_delay=delay, start=start, batch_size=draw(st.none() | st.integers(1, 3))
    )
    events = []
    for _ in range(draw(st.integers(0, 14))):
        at = T0 + timedelta(microseconds=draw(st.integers(0, 14 * DAY * MICROS)))
        tile = (at - T0) // timedelta(days=1)
        # Late, but never beyond lookback: floor((arrival - delay) / grain) <= tile + lookback.
        latest = T0 + timedelta(days=tile + lookback + 1, seconds=delay) - timedelta(microseconds=1)
        arrival = at + (latest - at) * draw(st.sampled_from([0.0, 0.3, 1.0]))
        event = ev(draw(st.integers(1, 3)), at, draw(st.integers(0, 40)) / 4, draw(st.sampled_from("abc")))
        events.append((event, arrival))
    runs = sorted(T0 + timedelta(hours=h) for h in draw(st.lists(st.integers(0, 20 * 24), min_size=1, max_size=5)))
    return Schedule(setup, events, runs)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules())
def test_incremental_runs_equal_the_oracle(project: Project, schedule: Schedule) -> None:
    project.reset(schedule.setup)
    computed = False  # whether a run has found an event before its end: no state is recorded until one does
    for now in schedule.runs:
        project.load([event for event, arrival in schedule.events if arrival <= now])
        project.run(now)
        work_end = (_s(now) - schedule.setup.data_delay) // DAY * DAY + DAY
        computed = computed or any(arrival <= now and _s(event["ts"]) < work_end for event, arrival in schedule.events)
    last = schedule.runs[-1]
    arrived = [event for event, arrival in schedule.events if arrival <= last]
    assert_oracle(project, schedule.setup, arrived, last)
    # State covers exactly [start, end): no gap, nothing beyond the last complete boundary.
    end = (_s(last) - schedule.setup.data_delay) // DAY * DAY + DAY
    start = BEGINNING if schedule.setup.start is None else -(-_s(schedule.setup.start) // DAY) * DAY
    expected = [(start, end)] if end > start and computed else []
    assert merge((lo, hi) for lo, hi, _ in project.intervals()) == expected


def test_a_first_run_without_start_is_batched_from_the_first_event(project: Project) -> None:
    setup = Setup(COUNT_SUM, batch_size=3)
    project.reset(setup)
    events = [ev(1, day(4, 5)), ev(2, day(9, 1)), ev(1, day(12, 23))]
    project.load(events)
    project.run(day(14))
    spans = [(lo, hi) for lo, hi, _ in project.intervals()]
    # The first boundary with data is Jan 5: the first batch ends 3 tiles later.
    assert spans == [
        (BEGINNING, _s(day(8))),
        (_s(day(8)), _s(day(11))),
        (_s(day(11)), _s(day(14))),
        (_s(day(14)), _s(day(15))),
    ]
    assert_oracle(project, setup, events, day(14))


def test_a_backfill_recomputes_downstream_window_models_over_the_boundaries_it_reaches(project: Project) -> None:
    setup = Setup(COUNT_SUM, start=day(1))
    project.reset(setup)
    downstream = (
        "{{ config(entity='user', timestamp='ts', grain='1d', start='2024-01-01') }}\n"
        "select user_id, ts, {{ window_sum('count_1d', windows=['2d']) }} from {{ ref('m') }}\n"
    )
    (project.root / "features" / "d.sql").write_text(downstream)
    try:
        project.load([ev(1, day(2, 5)), ev(2, day(6, 1))])
        project.run(day(9))
        late = [ev(1, day(2, 5)), ev(2, day(6, 1)), ev(1, day(3, 7)), ev(2, day(3, 8))]
        project.load(late)
        project.run(day(9, 1), start=day(3), end=day(5))  # recomputes m on Jan 3-4, d on Jan 3-7
        backfilled = _table(project, "d")
        project.run(day(9, 2), ("d",), full_refresh=True)  # d rebuilt whole from m as it is now
        assert backfilled == _table(project, "d")
    finally:
        (project.root / "features" / "d.sql").unlink()


def _table(project: Project, name: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(project.database), read_only=True) as connection:
        return connection.execute(f"select * from main.{name} order by all").fetchall()

"""Training extracts are exact and leak-free: ``Context.extract`` against a brute-force oracle.

A throwaway project has three models over two raw tables: ``w``, a window model
per user (random functions, windows, grain, start and data_delay); ``c``, a window
model per category (a string entity, with its own data_delay); and ``s``, a
snapshot model per user (random ttl, tie_break, start and data_delay). Random
spines mix both entities, duplicate rows, NULL keys and times exactly on
boundaries, before any data and before ``start``. ``tests/oracle.py`` computes
every expected value from the raw rows alone (it never reads a model table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import (
    MICROS,
    Macro,
    Row,
    SnapshotSpec,
    WindowModelSpec,
    duration_label,
    has_history,
    same_value,
    snapshot_values_at,
    window_values_at,
)
from projects import EVENTS_SCHEMA, duckdb_profile, load_rows, run_models, window_features, write_project

from featuresql.context import Context

pytestmark = pytest.mark.duckdb

DAY, HOUR = 86400, 3600
T0 = datetime(2024, 1, 1)


@dataclass(frozen=True)
class WindowSetup:
    macros: tuple[Macro, ...]
    grain: int
    start: datetime | None = None
    data_delay: int = 0

    def spec(self, key: str = "user_id") -> WindowModelSpec:
        features = tuple(f for m in self.macros for f in m.features())
        return WindowModelSpec(features, self.grain, key=key, data_delay=self.data_delay, start=self.start)

    def sql(self, key: str, entity: str) -> str:
        config = {"entity": entity, "timestamp": "ts", "grain": duration_label(self.grain)}
        if self.start is not None:
            config["start"] = self.start.isoformat(sep=" ")
        if self.data_delay:
            config["data_delay"] = duration_label(self.data_delay)
        arguments = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return (
            f"{{{{ config({arguments}) }}}}\nselect {key}, ts,\n    {window_features(self.macros)}\n"
            "from {{ source('raw', 'events') }}\n"
        )


@dataclass(frozen=True)
class SnapshotSetup:
    ttl: int | None = None
    tie_break: bool = False
    start: datetime | None = None
    data_delay: int = 0

    def spec(self) -> SnapshotSpec:
        return SnapshotSpec(
            ("value", "note", "seq"),
            data_delay=self.data_delay,
            ttl=self.ttl,
            start=self.start,
            tie_break="seq" if self.tie_break else None,
        )

    def sql(self) -> str:
        config: dict[str, str] = {"entity": "user", "timestamp": "ts"}
        if self.ttl is not None:
            config["ttl"] = f"{self.ttl}s"
        if self.tie_break:
            config["tie_break"] = "seq"
        if self.start is not None:
            config["start"] = self.start.isoformat(sep=" ")
        if self.data_delay:
            config["data_delay"] = duration_label(self.data_delay)
        arguments = ", ".join(f"{k}={v!r}" for k, v in config.items())
        select = "select user_id, ts, value, note, seq from {{ source('raw', 'snap') }}"
        return f"{{{{ config({arguments}) }}}}\n{select}\n"


CATEGORY_MODEL = WindowSetup((Macro("count", None, (DAY,)), Macro("sum", "amount", (2 * DAY,))), DAY, data_delay=HOUR)


@dataclass(frozen=True)
class Case:
    window: WindowSetup
    snapshot: SnapshotSetup
    events: list[dict[str, Any]]
    snap: list[dict[str, Any]]
    spine: list[dict[str, Any]]
    now: datetime
    category: WindowSetup = field(default=CATEGORY_MODEL)


class ExtractProject:
    """A project folder reused across examples: each case rewrites its models and data."""

    def __init__(self, root: Path):
        self.root = root
        self.database = root / "x.duckdb"

    def build(self, case: Case) -> None:
        write_project(
            self.root,
            "extract_oracle",
            entities={"user": {"user_id": "bigint"}, "category": {"category": "varchar"}},
            tables={"events": {"event_time": "ts"}, "snap": {"event_time": "ts"}},
            models={
                "w": case.window.sql("user_id", "user"),
                "c": case.category.sql("category", "category"),
                "s": case.snapshot.sql(),
            },
            profile=duckdb_profile(self.database),
        )
        load_rows(self.database, "raw.events", case.events, EVENTS_SCHEMA)
        load_rows(self.database, "raw.snap", case.snap, SNAP_SCHEMA)
        with Context(self.root) as context:
            run_models(context, now=case.now, full_refresh=True)

    def extract(self, spine: pa.Table | str, features: Sequence[str] = ("w", "c", "s"), **options: Any) -> pa.Table:
        with Context(self.root) as context:
            result = context.extract(spine, list(features), **options)
        assert result.table is not None
        return result.table


SNAP_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("ts", pa.timestamp("us")),
        ("value", pa.float64()),
        ("note", pa.string()),
        ("seq", pa.int64()),
    ]
)
SPINE_SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("category", pa.string()), ("ts", pa.timestamp("us")), ("label", pa.int64())]
)


def expected_extract(case: Case) -> list[dict[str, Any]]:
    """The oracle's extract: every spine row, then w__*, c__*, s__* as the extract names them."""
    rows = []
    window, category, snapshot = case.window.spec(), case.category.spec("category"), case.snapshot.spec()
    for spine_row in case.spine:
        row = dict(spine_row)
        at = spine_row["ts"]
        for prefix, values in (
            ("w", window_values_at(window, case.events, spine_row["user_id"], at, case.now)),
            ("c", window_values_at(category, case.events, spine_row["category"], at, case.now)),
            ("s", snapshot_values_at(snapshot, case.snap, spine_row["user_id"], at)),
        ):
            row.update({f"{prefix}__{name}": value for name, value in values.items()})
        rows.append(row)
    return rows


def assert_same_extract(actual: pa.Table, expected: list[dict[str, Any]]) -> None:
    got = actual.to_pylist()
    assert len(got) == len(expected), f"{len(got)} rows, expected {len(expected)}"
    problems = []
    for number, (have, want) in enumerate(zip(got, expected, strict=True)):
        if list(have) != list(want):
            problems.append(f"columns: got {list(have)}, expected {list(want)}")
            break
        problems += [
            f"spine row {number} ({want['user_id']}, {want['category']}, {want['ts']}) {column}: "
            f"got {have[column]!r}, expected {want[column]!r}"
            for column in want
            if not same_value(have[column], want[column])
        ]
    assert not problems, "\n".join(problems[:25])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> ExtractProject:
    return ExtractProject(tmp_path_factory.mktemp("extract_oracle"))


# -- hand-written cases -------------------------------------------------------------


def day(d: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2024, 1, d, hour, minute, second, micro)


def ev(user: int, ts: datetime, amount: float | None = 1.0, category: str | None = "a", seq: int = 0) -> dict[str, Any]:
    return {"user_id": user, "ts": ts, "amount": amount, "category": category, "seq": seq}


def snap(user: int, ts: datetime, value: float | None, note: str | None = None, seq: int = 0) -> dict[str, Any]:
    return {"user_id": user, "ts": ts, "value": value, "note": note, "seq": seq}


def sp(user: int | None, ts: datetime | None, category: str | None = "a", label: int = 0) -> dict[str, Any]:
    return {"user_id": user, "category": category, "ts": ts, "label": label}


def spine_table(rows: Sequence[Row]) -> pa.Table:
    return pa.Table.from_pylist([dict(r) for r in rows], schema=SPINE_SCHEMA)


def extract_case(project: ExtractProject, case: Case) -> list[dict[str, Any]]:
    project.build(case)
    actual = project.extract(spine_table(case.spine))
    expected = expected_extract(case)
    assert_same_extract(actual, expected)
    return expected


def test_window_rows_become_available_at_boundary_plus_delay(project: ExtractProject) -> None:
    window = WindowSetup((Macro("count", None, (DAY,)), Macro("sum", "amount", (DAY,))), DAY, data_delay=2 * HOUR)
    events = [ev(1, day(1, 10), 5.0), ev(1, day(2, 3), 7.0)]
    spine = [
        sp(1, day(1, 12)),  # before any row is available: an empty window
        sp(1, day(2, 1, 59, 59, 999999)),  # one microsecond before the Jan 2 row is available
        sp(1, day(2, 2)),  # exactly when it is: it matches (ts <= t - delay)
        sp(1, day(3, 2)),  # Jan 2's event, and Jan 1's expired
        sp(1, day(9)),  # long after: the expiry row, zeros
        sp(2, day(3)),  # an entity with no rows at all
    ]
    case = Case(window, SnapshotSetup(), events, [], spine, now=day(20))
    expected = extract_case(project, case)
    assert [(r["w__count_1d"], r["w__amount_sum_1d"]) for r in expected] == [
        (0, None),
        (0, None),
        (1, 5.0),
        (1, 7.0),
        (0, None),
        (0, None),
    ]


def test_before_start_every_feature_is_null_counts_included(project: ExtractProject) -> None:
    window = WindowSetup((Macro("count", None, (2 * DAY,)),), DAY, start=day(3, 6))  # rounded up to Jan 4
    events = [ev(1, day(2, 10)), ev(1, day(5, 10))]
    spine = [sp(1, day(3, 23)), sp(1, day(4)), sp(1, day(5)), sp(2, day(3)), sp(2, day(4))]
    case = Case(window, SnapshotSetup(), events, [], spine, now=day(20))
    expected = extract_case(project, case)
    # Jan 4 sees Jan 2's event (windows after start still see events before it).
    assert [r["w__count_2d"] for r in expected] == [None, 0 + 1, 0, None, 0]


def test_snapshot_ttl_ties_and_whole_rows(project: ExtractProject) -> None:
    snapshot = SnapshotSetup(ttl=DAY, tie_break=True)
    rows = [
        snap(1, day(1), 1.0, "first", seq=1),
        snap(1, day(2), 2.0, "low seq", seq=1),
        snap(1, day(2), 3.0, None, seq=2),  # tied on ts: the greater seq wins, its NULL note included
        snap(1, day(5), None, "later", seq=0),
    ]
    spine = [
        sp(1, day(1)),
        sp(1, day(2, 12)),
        sp(1, day(3)),
        sp(1, day(3, 0, 0, 1)),
        sp(1, day(5)),
        sp(1, day(1) - timedelta(seconds=1)),
    ]
    case = Case(WindowSetup((Macro("count", None, (DAY,)),), DAY), snapshot, [], rows, spine, now=day(20))
    expected = extract_case(project, case)
    assert [(r["s__value"], r["s__note"]) for r in expected] == [
        (1.0, "first"),  # a row at exactly t matches
        (3.0, None),  # the matched row is taken whole: its NULL is not filled from "low seq"
        (3.0, None),  # exactly ttl old: still matches
        (None, None),  # one microsecond older than ttl: no match
        (None, "later"),
        (None, None),  # before any row
    ]


def test_snapshot_ties_without_tie_break_are_deterministic(project: ExtractProject) -> None:
    rows = [snap(1, day(2), 2.0, "b"), snap(1, day(2), 2.0, "a"), snap(1, day(2), 1.0, "z"), snap(1, day(2), None, "y")]
    spine = [sp(1, day(3))]
    case = Case(WindowSetup((Macro("count", None, (DAY,)),), DAY), SnapshotSetup(), [], rows, spine, now=day(20))
    expected = extract_case(project, case)
    assert (expected[0]["s__value"], expected[0]["s__note"]) == (2.0, "b")


def test_spine_order_duplicates_and_other_columns_are_kept(project: ExtractProject) -> None:
    events = [ev(1, day(1, 10), 5.0, "a"), ev(2, day(1, 11), 6.0, "b")]
    spine = [
        sp(2, day(3), "b", 10),
        sp(1, day(2), "a", 11),
        sp(2, day(3), "b", 12),
        sp(2, day(3), "b", 10),
        sp(None, day(2), None, 13),
        sp(1, None, "a", 14),
    ]
    case = Case(WindowSetup((Macro("count", None, (2 * DAY,)),), DAY), SnapshotSetup(), events, [], spine, now=day(20))
    expected = extract_case(project, case)
    assert [r["label"] for r in expected] == [10, 11, 12, 10, 13, 14]
    assert [r["w__count_2d"] for r in expected] == [1, 1, 1, 1, 0, None]  # no time: unknown


# -- random cases -------------------------------------------------------------------

GRAINS = (HOUR, DAY)
CATALOGUE = (
    ("count", None, None),
    ("count", "amount", None),
    ("sum", "amount", None),
    ("avg", "amount", None),
    ("max", "amount", None),
    ("count_distinct", "category", None),
    ("last", "amount", "seq"),
)


def instants(grain: int, horizon: int) -> st.SearchStrategy[datetime]:
    """Times from a little before T0 to ``horizon`` tiles after, often exactly on a boundary."""
    grain_micros = grain * MICROS
    within = st.one_of(st.just(0), st.just(grain_micros - 1), st.integers(0, grain_micros - 1))
    return st.builds(
        lambda tile, micros: T0 + timedelta(microseconds=tile * grain_micros + micros), st.integers(-2, horizon), within
    )


@st.composite
def window_setups(draw: st.DrawFn, horizon: int) -> WindowSetup:
    grain = draw(st.sampled_from(GRAINS))
    macros = []
    for function, column, tie_break in CATALOGUE:
        if draw(st.booleans()):
            tiles = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True).map(sorted))
            macros.append(Macro(function, column, tuple(t * grain for t in tiles), tie_break))
    start = draw(st.none() | instants(grain, horizon).map(lambda t: t.replace(microsecond=0)))
    delay = draw(st.sampled_from([0, 0, grain, 90 * 60, 2 * grain]))
    return WindowSetup(tuple(macros) or (Macro("count", None, (grain,)),), grain, start, delay)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    horizon = 10
    window = draw(window_setups(horizon))
    grain = window.grain
    times = draw(st.lists(instants(grain, horizon), min_size=1, max_size=8))  # a small pool: many ties
    one_event = st.builds(
        ev,
        user=st.integers(1, 3),
        ts=st.sampled_from(times),
        amount=st.none() | st.integers(-8, 80).map(lambda q: q / 4),
        category=st.none() | st.sampled_from(["a", "b", "c"]),
        seq=st.integers(0, 3),
    )
    events = draw(st.lists(one_event, max_size=20))
    one_snap = st.builds(
        snap,
        user=st.integers(1, 3),
        ts=st.sampled_from(times),
        value=st.none() | st.integers(0, 3).map(float),
        note=st.none() | st.sampled_from(["x", "y"]),
        seq=st.integers(0, 2),
    )
    snapshot = SnapshotSetup(
        ttl=draw(st.none() | st.sampled_from([grain, 3 * grain, 5400])),
        tie_break=draw(st.booleans()),
        start=draw(st.none() | st.sampled_from(times)),
        data_delay=draw(st.sampled_from([0, 3600])),
    )
    spine_times = st.sampled_from(times) | instants(grain, horizon + 4)
    one_row = st.builds(
        sp,
        user=st.none() | st.integers(1, 4),
        ts=spine_times,
        category=st.none() | st.sampled_from(["a", "b", "d"]),
        label=st.integers(0, 1),
    )
    rows = draw(st.lists(one_row, min_size=1, max_size=12))
    spine = rows + draw(st.lists(st.sampled_from(rows), max_size=3))  # duplicates, anywhere after
    now = T0 + timedelta(seconds=grain * draw(st.integers(0, horizon + 6)))
    return Case(window, snapshot, events, draw(st.lists(one_snap, max_size=10)), spine, now.replace(tzinfo=UTC))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_extracts_match_the_oracle(project: ExtractProject, case: Case) -> None:
    extract_case(project, case)


# -- leakage ------------------------------------------------------------------------


def cutoff(setup: WindowSetup, at: datetime) -> datetime:
    """The boundary of ``at - data_delay``: events at or after it cannot reach a row at ``at``."""
    grain_micros = setup.grain * MICROS
    micros = (at - T0) // timedelta(microseconds=1) - setup.data_delay * MICROS
    return T0 + timedelta(microseconds=micros // grain_micros * grain_micros)


@st.composite
def perturbed(
    draw: st.DrawFn, rows: list[dict[str, Any]], after: datetime, inclusive: bool, make: Any
) -> list[dict[str, Any]]:
    """``rows`` with those at or after ``after`` changed, dropped or joined by new ones."""
    late = (lambda ts: ts >= after) if inclusive else (lambda ts: ts > after)
    kept = [r for r in rows if not late(r["ts"])]
    for row in (r for r in rows if late(r["ts"])):
        action = draw(st.sampled_from(["keep", "drop", "change"]))
        if action == "change":
            row = {**draw(make), "ts": row["ts"]}
        if action != "drop":
            kept.append(row)
    offsets = st.integers(0 if inclusive else 1, 3 * DAY * MICROS).map(lambda m: after + timedelta(microseconds=m))
    for _ in range(draw(st.integers(0, 4))):
        kept.append({**draw(make), "ts": draw(st.just(after) if inclusive and draw(st.booleans()) else offsets)})
    return kept


@st.composite
def leakage_cases(draw: st.DrawFn) -> tuple[Case, Case]:
    case = draw(cases())
    at = draw(instants(case.window.grain, 12))
    spine = [sp(user, at, category) for user in (1, 2, 3) for category in ("a", "b")]
    events_after = max(cutoff(case.window, at), cutoff(case.category, at))
    event = st.builds(
        ev,
        user=st.integers(1, 3),
        ts=st.just(T0),
        amount=st.none() | st.integers(-8, 80).map(lambda q: q / 4),
        category=st.none() | st.sampled_from(["a", "b", "c"]),
        seq=st.integers(0, 3),
    )
    row = st.builds(
        snap,
        user=st.integers(1, 3),
        ts=st.just(T0),
        value=st.none() | st.integers(0, 3).map(float),
        note=st.none() | st.sampled_from(["x", "y"]),
        seq=st.integers(0, 2),
    )
    snap_after = at - timedelta(seconds=case.snapshot.data_delay)
    changed = Case(
        case.window,
        case.snapshot,
        draw(perturbed(case.events, events_after, True, event)),
        draw(perturbed(case.snap, snap_after, False, row)),
        spine,
        case.now,
    )
    return Case(case.window, case.snapshot, case.events, case.snap, spine, case.now), changed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=leakage_cases())
def test_events_at_or_after_the_cutoff_never_reach_a_spine_row(
    project: ExtractProject, pair: tuple[Case, Case]
) -> None:
    """Changing, dropping or adding events at or after the boundary of ``t - data_delay``
    (snapshot rows after ``t - data_delay``) leaves every feature at ``t`` unchanged.

    Except where either build had no history at all: a window model with no data before
    the end of the work computes nothing (every feature NULL), so later events added or
    dropped can give or take away a history whose earlier boundaries are computed (zeros).
    Those columns are only checked to be NULL in the build without history."""
    original, changed = pair
    project.build(original)
    before = project.extract(spine_table(original.spine)).to_pylist()
    project.build(changed)
    after = project.extract(spine_table(changed.spine)).to_pylist()
    no_history = [
        (f"{prefix}__", rows)
        for prefix, model in (("w", original.window.spec()), ("c", original.category.spec("category")))
        for case, rows in ((original, before), (changed, after))
        if not has_history(model, case.events, case.now)
    ]
    for prefix, rows in no_history:
        assert all(value is None for row in rows for name, value in row.items() if name.startswith(prefix))
    exempt = tuple(prefix for prefix, _ in no_history)
    assert [without(row, exempt) for row in after] == [without(row, exempt) for row in before]


def without(row: dict[str, Any], prefixes: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if not name.startswith(prefixes)}

"""The reader's mergeable partials (``featuresql.serving.partials``) against the brute-force oracle.

Random events, every function a stream model serves, and random ways of building a
window: events added to their slots in any order, slots of any width, merged in
any bracketing. Whatever the split, the finished value equals the oracle's
aggregate over the window's events: exactly for counts, integers, decimals, min,
max, first and last; to 1e-9 relative for doubles (sums in another order) and for
spreads of doubles (Chan's formula against the exact rational one).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import Feature, aggregate, epoch_micros, same_value

from featuresql.serving.partials import StreamFeature, add_event, empty, finish, merge, needs

T0 = datetime(2024, 3, 1)
FUNCTIONS = ("count", "sum", "avg", "min", "max", "first", "last", "variance", "variance_pop", "stddev", "stddev_pop")
VALUES = {
    "double": st.integers(-40, 400).map(lambda q: q / 4),
    "decimal": st.integers(-100_000, 10_000_000).map(lambda c: Decimal(c).scaleb(-2)),
    "bigint": st.integers(-(2**40), 2**40),
    "large": st.integers(0, 8).map(lambda q: 1e8 + q / 4),  # a small spread on large values
}


def features() -> list[StreamFeature]:
    made = [StreamFeature("rows", "count", None, 0)]
    for function in FUNCTIONS:
        made.append(StreamFeature(f"v_{function}", function, "v", 0, "seq" if function in ("first", "last") else None))
    made.append(StreamFeature("v_last_plain", "last", "v", 0))  # ties broken by the value
    return made


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], int, int]:
    kind = draw(st.sampled_from(sorted(VALUES)))
    pool = draw(st.lists(st.integers(0, 3600 * 10**6), min_size=1, max_size=6))  # shared times: ties
    event = st.fixed_dictionaries(
        {
            "ts": st.sampled_from(pool).map(lambda us: T0 + timedelta(microseconds=us)),
            "v": st.one_of(st.none(), VALUES[kind]),
            "seq": st.integers(0, 3),
        }
    )
    events = draw(st.lists(event, max_size=40))
    return kind, events, draw(st.sampled_from([1, 60, 600, 3600])), draw(st.integers(0, 2**32))


def build(events: list[dict[str, Any]], slot_seconds: int, seed: int, wanted: Any) -> dict[str, Any]:
    """The events' partial, built slot by slot in a shuffled order and merged in a random bracketing."""
    rng = random.Random(seed)
    slots: dict[int, dict[str, Any]] = {}
    shuffled = list(events)
    rng.shuffle(shuffled)
    for event in shuffled:
        time = epoch_micros(event["ts"])
        add_event(slots.setdefault(time // (slot_seconds * 10**6), empty()), event, time, wanted)
    partials = list(slots.values()) or [empty()]
    while len(partials) > 1:
        i = rng.randrange(len(partials) - 1)
        partials[i : i + 2] = [merge(partials[i], partials[i + 1])]
    return partials[0]


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_merged_partials_equal_the_oracle(case: tuple[str, list[dict[str, Any]], int, int]) -> None:
    kind, events, slot_seconds, seed = case
    served = features()
    merged = build(events, slot_seconds, seed, needs(served))
    for feature in served:
        oracle_feature = Feature(feature.name, feature.function, feature.column, 0, feature.tie_break)
        expected = aggregate(oracle_feature, events, "ts")
        actual = finish(feature, merged)
        assert same_value(actual, expected), f"{kind} {feature.name}: got {actual!r}, expected {expected!r}"
        if kind in ("decimal", "bigint") and feature.function in ("sum", "min", "max", "first", "last"):
            assert type(actual) is type(expected) or actual is None  # exact types stay exact


def test_a_null_tie_break_loses_a_tie_both_ways() -> None:
    wanted = needs([StreamFeature("f", "first", "v", 0, "seq"), StreamFeature("l", "last", "v", 0, "seq")])
    partial = empty()
    for seq, value in ((None, 1), (5, 2), (None, 3)):
        add_event(partial, {"v": value, "seq": seq}, 10, wanted)
    assert finish(StreamFeature("f", "first", "v", 0, "seq"), partial) == 2
    assert finish(StreamFeature("l", "last", "v", 0, "seq"), partial) == 2


def test_nan_and_infinity_give_what_duckdb_gives() -> None:
    """count, sum, avg, min and max (NaN orders after every double); a spread with a NaN or an
    infinity is NaN, as the warehouse's shifted one is (DuckDB's own var_pop of [inf] is 0)."""
    served = features()
    for values in ([1.0, math.inf], [math.nan, 2.0, 3.0], [-math.inf, math.inf], [math.inf]):
        partial = empty()
        for number, value in enumerate(values):
            add_event(partial, {"v": value, "seq": number}, number, needs(served))
        with duckdb.connect() as connection:
            connection.execute("create table e as select unnest(?::double[]) as v", [values])
            for feature in served:
                actual = finish(feature, partial)
                if feature.function in ("variance", "variance_pop", "stddev", "stddev_pop"):
                    assert actual is None or math.isnan(actual)
                if feature.function not in ("count", "sum", "avg", "min", "max"):
                    continue
                (expected,) = connection.execute(f"select {feature.function}(v) from e").fetchone()
                same = actual == expected or (math.isnan(actual) and math.isnan(expected))
                assert same, f"{feature.function} of {values}: got {actual}, DuckDB {expected}"

"""A stream model's online state (``featuresql.serving.stream_state``) against the brute-force oracle.

Random events are split at the sync boundary ``B``: below it the warehouse has some
(loaded) and not others, and some were pushed too before the sync moved ``B`` past
them; at or after it every event was pushed, some twice. A read at a random time
answers, as of ``min(E, B + horizon)``, what the oracle computes at that boundary
over the events the warehouse had below ``B`` and those pushed at or after it (the
contract of DESIGN.md section 11); before ``B - grain`` it refuses rather than answer
from slots it no longer has.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import MICROS, Feature, WindowModelSpec, epoch_micros, same_value, stream_values_at

from featuresql.serving.partials import StreamFeature
from featuresql.serving.stream_state import StoreAhead, StreamShape, read, warehouse_slots

HOUR, MINUTE = 3600, 60
T0 = datetime(2024, 3, 1)
FUNCTIONS = ("count", "sum", "avg", "min", "max", "first", "last", "variance", "stddev_pop")


def shape_features(windows: list[int]) -> tuple[StreamFeature, ...]:
    made = []
    for window in windows:
        made.append(StreamFeature(f"rows_{window}", "count", None, window))
        for function in FUNCTIONS:
            tie = "seq" if function in ("first", "last") else None
            made.append(StreamFeature(f"{function}_{window}", function, "v", window, tie))
    return tuple(made)


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    grain = HOUR
    stream_grain = draw(st.sampled_from([MINUTE, 5 * MINUTE, 20 * MINUTE, HOUR]))
    windows = sorted(draw(st.lists(st.sampled_from([HOUR, 2 * HOUR, 5 * HOUR]), min_size=1, max_size=2, unique=True)))
    horizon = draw(st.sampled_from([1, 2, 3])) * grain
    delay = draw(st.sampled_from([0, 90, 10 * MINUTE]))
    boundary = epoch_micros(T0) // MICROS + 8 * grain
    # Events in the 8 hours before B and the 4 after, some exactly on stream boundaries.
    lo, slots = boundary - 8 * grain, 12 * grain // stream_grain
    pool = draw(st.lists(st.integers(0, 12 * grain * MICROS - 1), min_size=1, max_size=15))
    pool += [k * stream_grain * MICROS for k in draw(st.lists(st.integers(0, slots - 1), max_size=5))]
    start = draw(st.one_of(st.none(), st.integers(0, slots).map(lambda k: lo + k * stream_grain)))
    values = draw(
        st.sampled_from(
            [
                st.integers(-40, 400).map(lambda q: q / 4),
                st.integers(-100_000, 10_000_000).map(lambda c: Decimal(c).scaleb(-2)),
            ]
        )
    )
    event = st.fixed_dictionaries(
        {
            "user_id": st.just(1),
            "ts": st.sampled_from(pool).map(lambda us: datetime(1970, 1, 1) + timedelta(microseconds=lo * MICROS + us)),
            "v": st.one_of(st.none(), values),
            "seq": st.integers(0, 3),
            "loaded": st.booleans() | st.just(True),  # below B: in the warehouse at the sync, or not
            "pushed": st.integers(0, 2),  # below B: pushed before the sync too; at or after it: 1 or 2 times
        }
    )
    read_end = (
        boundary + draw(st.integers(-2 * grain // stream_grain, (horizon + 2 * grain) // stream_grain)) * stream_grain
    )
    jitter = draw(st.integers(0, stream_grain * MICROS - 1))
    shape = StreamShape(grain, stream_grain, delay, horizon, shape_features(windows), start)
    return {
        "shape": shape,
        "events": draw(st.lists(event, max_size=60)),
        "boundary": boundary,
        "time": (read_end + delay) * MICROS + jitter,
    }


def state_of(events: list[dict[str, Any]], boundary: int, shape: StreamShape) -> dict[str, Any]:
    warehouse, pushed = [], {}
    for number, event in enumerate(events):
        time = epoch_micros(event["ts"])
        inputs = {"v": event["v"], "seq": event["seq"]}
        below = time < boundary * MICROS
        if below and event["loaded"]:
            warehouse.append((time, inputs))
        for _ in range(event["pushed"] if below else max(1, event["pushed"])):
            pushed[f"r{number}"] = [time, inputs]  # a record delivered again lands on its own id
    return {"b": boundary, "slots": warehouse_slots(warehouse, boundary, shape), "pushed": pushed}


def counted(events: list[dict[str, Any]], boundary: int) -> list[dict[str, Any]]:
    """What the store answers for: the warehouse's events below B, every event at or after it."""
    return [e for e in events if e["loaded"] or epoch_micros(e["ts"]) >= boundary * MICROS]


@settings(max_examples=600, deadline=None)
@given(case=cases())
def test_a_read_merges_the_warehouse_and_the_pushed_events_exactly(case: dict[str, Any]) -> None:
    shape, events, boundary, time = case["shape"], case["events"], case["boundary"], case["time"]
    state = state_of(events, boundary, shape)
    end = shape.end_of(time)
    if min(end, boundary + shape.horizon) < boundary - shape.grain:
        with pytest.raises(StoreAhead):
            read(state, time, shape, boundary)
        return
    values, as_of = read(state, time, shape, boundary)
    assert as_of == min(end, boundary + shape.horizon)
    spec = WindowModelSpec(
        tuple(Feature(f.name, f.function, f.column, f.window, f.tie_break) for f in shape.features),
        shape.grain,
        start=None if shape.start is None else datetime(1970, 1, 1) + timedelta(seconds=shape.start),
    )
    at = datetime(1970, 1, 1) + timedelta(seconds=as_of)  # a read exactly at as_of, without the delay
    expected = stream_values_at(spec, shape.stream_grain, 0, counted(events, boundary), 1, at)
    for name, value in expected.items():
        assert same_value(values[name], value), f"{name}: got {values[name]!r}, expected {value!r}"


def test_an_entity_the_store_does_not_hold_reads_empty_windows_as_of_the_horizon() -> None:
    shape = StreamShape(HOUR, MINUTE, 0, 2 * HOUR, shape_features([HOUR]))
    synced = epoch_micros(T0) // MICROS
    values, as_of = read(None, (synced + 90) * MICROS, shape, synced)
    assert as_of == synced + 60
    assert values["rows_3600"] == 0 and values["count_3600"] == 0 and values["sum_3600"] is None
    assert read(None, (synced + 10 * HOUR) * MICROS, shape, synced)[1] == synced + 2 * HOUR  # a late sync shows


def test_a_state_an_older_sync_wrote_keeps_only_its_pushed_events() -> None:
    """The last sync rewrote every entity with warehouse events; this one had none, so its old slots are stale."""
    shape = StreamShape(HOUR, MINUTE, 0, 2 * HOUR, shape_features([2 * HOUR]))
    synced = epoch_micros(T0) // MICROS
    old = {"v": 5.0, "seq": 0}
    state = {
        "b": synced - HOUR,
        "slots": warehouse_slots([((synced - HOUR - 60) * MICROS, old)], synced - HOUR, shape),
        "pushed": {"a": [(synced - 30) * MICROS, old], "b": [(synced + 30) * MICROS, {"v": 2.0, "seq": 1}]},
    }
    values, _ = read(state, (synced + 60) * MICROS, shape, synced)
    assert (values["rows_7200"], values["sum_7200"]) == (1, 2.0)


@pytest.mark.parametrize("stream_grain", [5 * MINUTE, 20 * MINUTE])
@pytest.mark.parametrize("windows", [[HOUR], [5 * HOUR], [HOUR, 2 * HOUR]])
@pytest.mark.parametrize("horizon", [HOUR, 3 * HOUR])
def test_every_read_end_between_the_syncs_sees_every_slot(stream_grain: int, windows: list[int], horizon: int) -> None:
    """One event in every stream slot around B, read at every stream boundary a read may end at."""
    shape = StreamShape(HOUR, stream_grain, 0, horizon, shape_features(windows))
    boundary = epoch_micros(T0) // MICROS + 8 * HOUR
    first = boundary - max(windows) - 2 * HOUR
    events = [
        {
            "user_id": 1,
            "ts": datetime(1970, 1, 1) + timedelta(seconds=slot + 7),
            "v": float(slot % 97),
            "seq": 0,
            "loaded": True,
            "pushed": 1,
        }
        for slot in range(first, boundary + horizon + HOUR, stream_grain)
    ]
    state = state_of(events, boundary, shape)
    spec = WindowModelSpec(
        tuple(Feature(f.name, f.function, f.column, f.window, f.tie_break) for f in shape.features), HOUR
    )
    for end in range(boundary - HOUR, boundary + horizon + stream_grain, stream_grain):
        values, as_of = read(state, end * MICROS, shape, boundary)
        expected = stream_values_at(spec, stream_grain, 0, events, 1, datetime(1970, 1, 1) + timedelta(seconds=as_of))
        wrong = [name for name, value in expected.items() if not same_value(values[name], value)]
        assert not wrong, f"read ending at B{(end - boundary) / 3600:+}h: {wrong}"

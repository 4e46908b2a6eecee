"""The contract of fresh windows (DESIGN.md section 11) as a property, on every online store.

Hypothesis draws events (ties, times on stream boundaries, NULL inputs, rows the
model's WHERE drops, out of order) and, per event, whether it reaches the warehouse,
is pushed, or both, and when: a warehouse load lags its event by up to hours, a push
by minutes, or is lost and retried an hour later; every push is delivered 1-3 times.
A simulated clock then moves on in steps; at each step the events that have arrived
are loaded and pushed, ``featuresql run`` and ``featuresql sync`` may run, and every
entity is read. A read whose window end ``as_of`` (the reader's answer) has every
earlier event either below ``B`` in the warehouse at the last sync or pushed must
equal ``featuresql extract`` at ``as_of``, computed at the end from all events in the
warehouse. Reads that do not meet the condition are not checked (the contract says
nothing of them), but each history must check some.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from online_stores import OnlineStoreTarget, same_value, table_name
from oracle import Macro
from projects import EVENTS_SCHEMA, load_rows, run_models, write_project
from test_stream_models import COLUMNS, SPINE, Stream

from featuresql.context import Context
from featuresql.online.stores import read_manifest
from featuresql.online.sync import run_sync
from featuresql.serving.push import push
from featuresql.serving.reader import Reader
from featuresql.serving.tables import open_table

pytestmark = pytest.mark.duckdb

MINUTE, HOUR = 60, 3600
USERS = (1, 2, 3)
# The clock starts 3 hours into the events' day, far from the real clock (DynamoDB Local expires by it:
# nothing here expires, but a real date would make a read of a wrong day look plausible).
T0 = datetime(2030, 1, 7)
START = T0 + timedelta(hours=3)
MODEL = Stream(
    (
        Macro("count", None, (HOUR, 3 * HOUR)),
        Macro("count", "amount", (HOUR,)),
        Macro("sum", "amount", (HOUR, 3 * HOUR)),
        Macro("avg", "amount", (3 * HOUR,)),
        Macro("min", "amount", (HOUR,)),
        Macro("max", "amount", (3 * HOUR,)),
        Macro("variance", "amount", (3 * HOUR,)),
        Macro("stddev_pop", "amount", (HOUR,)),
        Macro("first", "amount", (3 * HOUR,), "seq"),
        Macro("last", "category", (HOUR,), "seq"),
    ),
    5 * MINUTE,
    where=True,
    amount_type="decimal(12,2)",
)
SCHEMA = EVENTS_SCHEMA.set(2, pa.field("amount", pa.decimal128(12, 2))).append(pa.field("id", pa.int64()))
_labels = itertools.count()


@dataclass
class Event:
    row: dict[str, Any]
    loaded_at: datetime | None  # when the warehouse has it (None: never)
    pushed_at: datetime | None  # when a push of it is accepted (None: never pushed)
    deliveries: int = 1


@dataclass
class History:
    events: list[Event]
    steps: list[tuple[int, bool]]  # (minutes the clock moves on, whether run + sync follow)
    reads: list[tuple[int, datetime, dict[str, Any]]] = field(default_factory=list)  # (user, as_of, features)


@st.composite
def histories(draw: st.DrawFn) -> History:
    events = []
    for number in range(draw(st.integers(4, 30))):
        on_boundary = draw(st.booleans())
        seconds = (
            draw(st.integers(0, 8 * HOUR // (5 * MINUTE)).map(lambda k: k * 5 * MINUTE))
            if on_boundary
            else draw(st.integers(0, 8 * HOUR - 1))
        )
        ts = T0 + timedelta(seconds=seconds)
        amount = draw(st.one_of(st.none(), st.integers(-5_000, 50_000).map(lambda c: Decimal(c).scaleb(-2))))
        row = {
            "user_id": draw(st.sampled_from(USERS)),
            "ts": ts,
            "amount": amount,
            "category": draw(st.sampled_from(["a", "b", "zz", None])),
            "seq": draw(st.integers(0, 3)),  # ties in time and seq: first and last break them by value
            "id": number,
        }
        way = draw(st.sampled_from(["warehouse", "pushed", "pushed", "both", "both", "both"]))
        if ts < START:  # the history the warehouse has when the store goes into service
            way = "warehouse"
        lag = timedelta(minutes=draw(st.integers(0, 90)))
        loaded = (min(ts + lag, START) if ts < START else ts + lag) if way != "pushed" else None
        pushed = None
        if way != "warehouse":
            retried = draw(st.integers(0, 5)) == 0  # lost, retried an hour later
            pushed = (
                ts + timedelta(seconds=draw(st.integers(0, 300))) + (timedelta(hours=1) if retried else timedelta())
            )
        events.append(Event(row, loaded, pushed, draw(st.integers(1, 3))))
    syncs = st.sampled_from([True, True, False])
    steps = draw(st.lists(st.tuples(st.integers(10, 100), syncs), min_size=3, max_size=7))
    return History(events, steps)


class StreamStore:
    """A generated project with one stream model, its warehouse loaded as the history goes."""

    def __init__(self, root: Path, online_store: OnlineStoreTarget):
        self.root = root
        self.database = root / "w.duckdb"
        online: dict[str, Any] = {"store": "local", "path": str(root / "online.sqlite")}
        if online_store.endpoint is not None:
            online = {
                "store": "dynamodb",
                "table": table_name(f"stream_{next(_labels)}"),
                "endpoint_url": online_store.endpoint.endpoint_url,
                "region": online_store.endpoint.region,
            }
        columns = [*(dict(c, type=MODEL.amount_type) if c["name"] == "amount" else c for c in COLUMNS)]
        write_project(
            root,
            "streams",
            entities={"user": {"user_id": "bigint"}},
            tables={"events": {"event_time": "ts", "columns": [*columns, {"name": "id", "type": "bigint"}]}},
            models={"f": MODEL.sql()},
            profile={"type": "duckdb", "path": str(self.database), "online": online},
        )
        self.loaded: list[dict[str, Any]] = []
        load_rows(self.database, "raw.events", [], SCHEMA)

    def load(self, rows: list[dict[str, Any]]) -> None:
        self.loaded += rows
        load_rows(self.database, "raw.events", self.loaded, SCHEMA)

    def run_and_sync(self, now: datetime) -> None:
        with Context(self.root) as context:
            run_models(context, now=now)
            run_sync(context, now=now)

    def push(self, rows: list[dict[str, Any]]) -> None:
        with Context(self.root, offline=True) as context:
            manifest = read_manifest(context)
        records = [json.loads(json.dumps({**r, "ts": r["ts"].isoformat() + "Z"}, default=str)) for r in rows]
        push(manifest, open_table(manifest.store), "raw.events", records)

    def read(self, now: datetime) -> list[tuple[int, datetime, dict[str, Any]]]:
        with Context(self.root, offline=True) as context:
            manifest = read_manifest(context)
        reader = Reader(manifest, open_table(manifest.store), clock=now.replace(tzinfo=UTC).timestamp)
        status, body = reader.answer({"features": ["f"], "entities": [{"user_id": u} for u in USERS]})
        assert status == 200, body
        answers = []
        for result in json.loads(body, parse_float=Decimal)["results"]:
            as_of = datetime.fromisoformat(result["feature_timestamps"]["f"].rstrip("Z"))
            answers.append((result["entity"]["user_id"], as_of, result["features"]))
        return answers

    def extract(self, spine: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with Context(self.root) as context:
            result = context.extract(pa.Table.from_pylist(spine, schema=SPINE), ["f"])
        assert result.table is not None
        return result.table.to_pylist()


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_fresh_reads_equal_the_extract_at_their_window_end(online_store: OnlineStoreTarget, history: History) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = StreamStore(Path(folder), online_store)
        checked = replay(store, history)
        if checked:
            spine = [{"user_id": user, "ts": as_of} for user, as_of, _ in checked]
            offline = store.extract(spine)
            for (user, as_of, online), row in zip(checked, offline, strict=True):
                for name, value in online.items():
                    assert same_value(value, row[name]), (user, as_of, name, value, row[name])
        shutil.rmtree(folder, ignore_errors=True)


def replay(store: StreamStore, history: History) -> list[tuple[int, datetime, dict[str, Any]]]:
    """Play the history; the reads the contract covers."""
    now = START
    loaded: set[int] = set()
    pushed: set[int] = set()
    history_rows = [e for e in history.events if e.loaded_at is not None and e.loaded_at <= now]
    store.load([e.row for e in history_rows])
    loaded = {id(e) for e in history_rows}
    store.run_and_sync(now)
    in_warehouse_at_sync, boundary = set(loaded), now.replace(minute=0, second=0, microsecond=0)
    covered = []
    for minutes, sync in history.steps:
        now += timedelta(minutes=minutes)
        arriving = [e for e in history.events if e.loaded_at is not None and e.loaded_at <= now and id(e) not in loaded]
        store.load([e.row for e in arriving])
        loaded |= {id(e) for e in arriving}
        sending = [e for e in history.events if e.pushed_at is not None and e.pushed_at <= now and id(e) not in pushed]
        for delivery in range(3):
            batch = [e.row for e in sending if e.deliveries > delivery]
            if batch:
                store.push(batch[::-1] if delivery % 2 else batch)  # replays come in another order
        pushed |= {id(e) for e in sending if e.row["ts"] >= boundary}  # older ones are left to the warehouse
        if sync:
            store.run_and_sync(now)
            in_warehouse_at_sync = set(loaded)
            boundary = now.replace(minute=0, second=0, microsecond=0)
        for user, as_of, features in [*store.read(now), *store.read(now - timedelta(minutes=7))]:
            known = all(
                (e.row["ts"] < boundary and id(e) in in_warehouse_at_sync)
                or (e.row["ts"] >= boundary and id(e) in pushed)
                for e in history.events
                if e.row["ts"] < as_of and e.row["user_id"] == user
            )
            if known:
                covered.append((user, as_of, features))
    # the warehouse ends with every event: the extract is of all of them
    store.load([e.row for e in history.events if id(e) not in loaded])
    return covered

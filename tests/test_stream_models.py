"""Stream models offline: an extract at ``t`` sees the windows ending at ``floor(t - stream_delay, stream_grain)``.

A throwaway project has one stream model ``f`` over ``raw.events`` (random
functions, windows, stream grain, stream delay, start and filter). Random event
streams have ties, NULL inputs and times exactly on stream boundaries; random
spines have times on and around boundaries, NULL keys and times, and entities
without events. ``tests/oracle.py`` (``stream_values_at``) computes every expected
value from the raw rows alone. Nothing is run first: a stream model's extract
reads its source.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner
from engines import Engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import MICROS, Macro, WindowModelSpec, duration_label, same_value, stream_values_at
from projects import EVENTS_SCHEMA, duckdb_profile, load_rows, window_features, write_project
from sqlglot import exp

from featuresql.cli.main import cli as command
from featuresql.context import Context
from featuresql.serving.manifest import Manifest
from featuresql.serving.reader import Reader
from featuresql.serving.tables import open_table

MINUTE, HOUR = 60, 3600
T0 = datetime(2024, 3, 1)
COLUMNS = [
    {"name": "user_id", "type": "bigint"},
    {"name": "ts", "type": "timestamp"},
    {"name": "amount", "type": "double"},
    {"name": "category", "type": "varchar"},
    {"name": "seq", "type": "bigint"},
]
SCHEMA = EVENTS_SCHEMA  # user_id, ts, amount (double), category, seq
SPINE = pa.schema([("user_id", pa.int64()), ("ts", pa.timestamp("us"))])
FILTER = "category <> 'zz'"


def kept(event: dict[str, Any]) -> bool:  # FILTER in Python: a NULL category is not kept
    return event["category"] is not None and event["category"] != "zz"


@dataclass(frozen=True)
class Stream:
    macros: tuple[Macro, ...]
    stream_grain: int
    stream_delay: int = 0
    start: datetime | None = None
    where: bool = False
    amount_type: str = "double"
    grain: int = HOUR

    def spec(self) -> WindowModelSpec:
        features = tuple(f for m in self.macros for f in m.features())
        return WindowModelSpec(features, self.grain, start=self.start, where=kept if self.where else None)

    def sql(self) -> str:
        config = {
            "entity": "user",
            "timestamp": "ts",
            "grain": duration_label(self.grain),
            "online": True,
            "stream_grain": duration_label(self.stream_grain),
        }
        if self.stream_delay:
            config["stream_delay"] = f"{self.stream_delay}s"
        if self.start is not None:
            config["start"] = self.start.isoformat(sep=" ")
        arguments = ", ".join(f"{k}={v!r}" for k, v in config.items()).replace("True", "true")
        where = f"\nwhere {FILTER}" if self.where else ""
        return (
            f"{{{{ config({arguments}) }}}}\nselect user_id, ts,\n    {window_features(self.macros)}\n"
            f"from {{{{ source('raw', 'events') }}}}{where}\n"
        )


class StreamProject:
    def __init__(self, root: Path):
        self.root = root
        self.database = root / "s.duckdb"

    def extract(self, model: Stream, events: list[dict[str, Any]], spine: list[dict[str, Any]]) -> list[dict[str, Any]]:
        columns = [dict(c, type=model.amount_type) if c["name"] == "amount" else c for c in COLUMNS]
        write_project(
            self.root,
            "streams",
            entities={"user": {"user_id": "bigint"}},
            tables={"events": {"event_time": "ts", "columns": columns}},
            models={"f": model.sql()},
            profile=duckdb_profile(self.database),
        )
        schema = SCHEMA.set(2, pa.field("amount", pa.decimal128(12, 2))) if model.amount_type != "double" else SCHEMA
        load_rows(self.database, "raw.events", events, schema)
        with Context(self.root) as context:
            result = context.extract(pa.Table.from_pylist(spine, schema=SPINE), ["f"])
        assert result.table is not None
        return result.table.to_pylist()


def expected(model: Stream, events: list[dict[str, Any]], spine: list[dict[str, Any]]) -> list[dict[str, Any]]:
    spec = model.spec()
    rows = []
    for row in spine:
        values = stream_values_at(spec, model.stream_grain, model.stream_delay, events, row["user_id"], row["ts"])
        spine_columns = {"user_id": row["user_id"], "ts": row["ts"]}  # in the spine's order
        rows.append({**spine_columns, **{f"f__{name}": value for name, value in values.items()}})
    return rows


def assert_same(actual: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> None:
    assert len(actual) == len(wanted)
    problems = [
        f"spine row {n} ({want['user_id']}, {want['ts']}) {column}: got {have.get(column)!r}, expected {want[column]!r}"
        for n, (have, want) in enumerate(zip(actual, wanted, strict=True))
        for column in want
        if column not in have or not same_value(have[column], want[column])
    ]
    assert list(actual[0]) == list(wanted[0]) if actual else True
    assert not problems, "\n".join(problems[:25])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> StreamProject:
    return StreamProject(tmp_path_factory.mktemp("streams"))


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return T0 + timedelta(hours=hour, minutes=minute, seconds=second, microseconds=micro)


def ev(user: int, ts: datetime, amount: Any = 1.0, category: str | None = "a", seq: int = 0) -> dict[str, Any]:
    return {"user_id": user, "ts": ts, "amount": amount, "category": category, "seq": seq}


# -- by hand -------------------------------------------------------------------------


def test_windows_end_at_the_stream_boundary_before_t_minus_the_delay(project: StreamProject) -> None:
    model = Stream((Macro("count", None, (HOUR,)), Macro("sum", "amount", (HOUR, 2 * HOUR))), 5 * MINUTE, 90)
    events = [ev(1, at(10, 0, 30), 2.0), ev(1, at(10, 5), 3.0), ev(1, at(10, 7, 59), 5.0), ev(1, at(11, 4), 7.0)]
    spine = [
        {"user_id": 1, "ts": at(10, 6, 29, 999_999)},  # E = 10:00 (10:04:59.999 floored): nothing yet
        {"user_id": 1, "ts": at(10, 6, 30)},  # E = 10:05: the 10:00:30 event
        {"user_id": 1, "ts": at(10, 11, 30)},  # E = 10:10: three events
        {"user_id": 1, "ts": at(11, 6, 30)},  # E = 11:05: 10:00:30 has left the 1h window, 11:04 is in
        {"user_id": 1, "ts": at(12, 11, 30)},  # E = 12:10: 11:04 has left the 1h window, not the 2h one
        {"user_id": 2, "ts": at(10, 30)},  # no events: an empty window
        {"user_id": None, "ts": at(10, 30)},
        {"user_id": 1, "ts": None},  # no time: unknown
    ]
    actual = project.extract(model, events, spine)
    assert_same(actual, expected(model, events, spine))
    got = [(r["f__count_1h"], r["f__amount_sum_1h"], r["f__amount_sum_2h"]) for r in actual]
    assert got == [
        (0, None, None),
        (1, 2.0, 2.0),
        (3, 10.0, 10.0),
        (3, 15.0, 17.0),
        (0, None, 7.0),
        (0, None, None),
        (0, None, None),
        (None, None, None),
    ]


def test_before_start_rounded_up_to_the_stream_grain_every_feature_is_null(project: StreamProject) -> None:
    model = Stream((Macro("count", None, (HOUR,)),), 10 * MINUTE, start=at(10, 3))  # rounded up to 10:10
    events = [ev(1, at(9, 59)), ev(1, at(10, 12))]
    spine = [{"user_id": 1, "ts": t} for t in (at(10, 9, 59), at(10, 10), at(10, 25), at(11, 5))]
    actual = project.extract(model, events, spine)
    assert [r["f__count_1h"] for r in actual] == [None, 1, 2, 1]  # windows after start see events before it


# -- random --------------------------------------------------------------------------

CATALOGUE = (
    ("count", None, None),
    ("count", "amount", None),
    ("sum", "amount", None),
    ("avg", "amount", None),
    ("min", "amount", None),
    ("max", "amount", None),
    ("variance", "amount", None),
    ("stddev_pop", "amount", None),
    ("first", "amount", "seq"),
    ("last", "amount", "seq"),
    ("last", "category", None),
)
STREAM_GRAINS = (MINUTE, 5 * MINUTE, 20 * MINUTE, HOUR)
DOUBLES = st.integers(-40, 400).map(lambda q: q / 4)  # quarter units: sums are exact in binary
DECIMALS = st.integers(-100_000, 10_000_000).map(lambda c: Decimal(c).scaleb(-2))


def moments(stream_grain: int) -> st.SearchStrategy[datetime]:
    """Times in the 8 hours after T0, often exactly on a stream boundary or just before one."""
    step = stream_grain * MICROS
    within = st.one_of(st.just(0), st.just(step - 1), st.integers(0, step - 1))
    slots = 8 * HOUR // stream_grain
    return st.builds(lambda k, u: T0 + timedelta(microseconds=k * step + u), st.integers(0, slots), within)


@st.composite
def cases(draw: st.DrawFn, decimal: bool = False) -> tuple[Stream, list[dict[str, Any]], list[dict[str, Any]]]:
    stream_grain = draw(st.sampled_from(STREAM_GRAINS))
    windows = sorted(draw(st.lists(st.sampled_from([HOUR, 2 * HOUR, 3 * HOUR]), min_size=1, max_size=2, unique=True)))
    subsets = st.lists(st.sampled_from(windows), min_size=1, unique=True).map(lambda chosen: tuple(sorted(chosen)))
    macros = [
        Macro(function, column, draw(subsets), tie) for function, column, tie in CATALOGUE if draw(st.integers(0, 2))
    ] or [Macro("count", None, (windows[0],))]
    start = draw(st.one_of(st.none(), moments(stream_grain)))  # a fraction of a second rounds up too
    model = Stream(
        tuple(macros),
        stream_grain,
        draw(st.sampled_from([0, 0, 90, 10 * MINUTE])),
        start,
        draw(st.booleans()),
        "decimal(12,2)" if decimal else "double",
    )
    pool = draw(st.lists(moments(stream_grain), min_size=1, max_size=10))  # shared times: ties
    event = st.builds(
        ev,
        user=st.integers(1, 3),
        ts=st.sampled_from(pool),
        amount=st.one_of(st.none(), DECIMALS if decimal else DOUBLES),
        category=st.one_of(st.none(), st.sampled_from(["a", "b", "zz"])),
        seq=st.integers(0, 3),
    )
    events = draw(st.lists(event, max_size=30))
    delay = timedelta(seconds=model.stream_delay)
    times = st.one_of(st.none(), moments(stream_grain).map(lambda t: t + delay), st.sampled_from(pool))
    spine_row = st.fixed_dictionaries({"user_id": st.one_of(st.none(), st.integers(1, 4)), "ts": times})
    return model, events, draw(st.lists(spine_row, min_size=1, max_size=15))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_stream_extracts_match_the_oracle(project: StreamProject, case: Any) -> None:
    model, events, spine = case
    assert_same(project.extract(model, events, spine), expected(model, events, spine))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(decimal=True))
def test_decimal_stream_extracts_match_the_oracle(project: StreamProject, case: Any) -> None:
    model, events, spine = case
    assert_same(project.extract(model, events, spine), expected(model, events, spine))


# -- the example project with a stream model ------------------------------------------

CARD_SPEND = """{{ config(entity='user', timestamp='ts', grain='1h', online=true, stream_grain='1m') }}
select user_id, ts,
    {{ window_count(windows=['1h', '24h', '7d']) }},
    {{ window_sum('amount', windows=['1h', '24h', '7d']) }},
    {{ window_last('amount', windows=['7d'], tie_break='transaction_id') }}
from {{ source('bank', 'transactions') }}
where status = 'settled'
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, copy_example_to: Any, small_vars: str) -> Path:
    project: Path = copy_example_to(tmp_path_factory.mktemp("stream_example") / "cash_advance")
    (project / "features" / "card_spend.sql").write_text(CARD_SPEND)
    for args in (["run", "--now", "2026-06-30"], ["sync", "--now", "2026-06-30"]):
        result = CliRunner().invoke(command, ["--project-dir", str(project), "--vars", small_vars, *args])
        assert result.exit_code == 0, result.output
    return project


def test_the_example_stream_model_extracts_what_a_query_over_its_source_gives(example: Path, tmp_path: Path) -> None:
    spine = tmp_path / "spine.csv"
    times = ["2026-06-20 10:17:30", "2026-06-20 10:18:00", "2026-06-29 23:59:59.999999", "2026-06-30 00:00:00"]
    spine.write_text("user_id,ts\n" + "".join(f"{user},{t}\n" for user in (7, 42, 4999) for t in times))
    out = tmp_path / "out.parquet"
    extract = ["extract", "--spine", str(spine), "--features", "card_spend", "--out", str(out)]
    result = CliRunner().invoke(command, ["--project-dir", str(example), *extract])
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    rows = pq.read_table(out).to_pylist()
    with duckdb.connect(str(example / "target" / "cash_advance.duckdb"), read_only=True) as connection:
        for row in rows:
            end = row["ts"].replace(second=0, microsecond=0)  # floor(t, 1 minute)
            for hours, label in ((1, "1h"), (24, "1d"), (168, "7d")):
                count, total = connection.execute(
                    "select count(*), sum(amount) from raw.transactions where user_id = ? and status = 'settled' "
                    "and ts >= ?::timestamp - to_hours(?) and ts < ?",
                    [row["user_id"], end, hours, end],
                ).fetchone()
                assert (row[f"card_spend__count_{label}"], row[f"card_spend__amount_sum_{label}"]) == (count, total)
    assert any(row["card_spend__count_1d"] for row in rows), "the spine reaches some spend"


# Pushed after the sync at 2026-06-30 00:00 (B): boundary-exact times, a declined one, a user with no
# history, one late (below B: left to the warehouse), each pushed twice, in two orders.
PUSHED = [
    (90001, 42, "10.50", "settled", "2026-06-30T00:00:00"),
    (90002, 42, "5.00", "declined", "2026-06-30T00:11:00"),
    (90003, 42, "2.25", "settled", "2026-06-30T00:59:59.999999"),
    (90004, 7, "100.00", "settled", "2026-06-30T01:00:00"),
    (90005, 4999, "0.01", "settled", "2026-06-30T01:30:30"),
    (90006, 42, "7.77", "settled", "2026-06-30T01:59:00"),
]
LATE = (90007, 7, "33.00", "settled", "2026-06-29T23:30:00")
READS = ["00:00:00", "00:00:30", "00:10:00", "00:59:59", "01:00:00", "01:00:01", "01:31:00", "01:59:30", "02:00:00"]


def test_the_example_stream_model_reads_online_what_its_extract_returns(example: Path, tmp_path: Path) -> None:
    project = Path(shutil.copytree(example, tmp_path / "p"))
    _cli(project, "sync", "--now", "2026-06-30")  # the copy's own store (the manifest names the example's)
    records = [_record(*event) for event in [*PUSHED, LATE]]
    lines = tmp_path / "events.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in [*records, *reversed(records)]))
    pushed = _cli(project, "push", "bank.transactions", str(lines))
    assert "10 events counted, 2 older than the last sync" in pushed, pushed
    _load(project, PUSHED)  # the warehouse catches up, the late event not yet
    times = [f"2026-06-30 {t}" for t in READS]
    assert_reads_as_extract(project, tmp_path, times)
    assert_reads_as_extract(project, tmp_path, ["2026-06-30 02:30:00"], as_of="2026-06-30 02:00:00")  # B + horizon
    _load(project, [LATE])
    for args in (["run", "--now", "2026-06-30T02:00:00"], ["sync", "--now", "2026-06-30T02:00:00"]):
        _cli(project, *args)  # B moves to 02:00: the warehouse's slots replace the pushed events below it
    assert_reads_as_extract(project, tmp_path, [f"2026-06-30 {t}" for t in ("02:00:00", "02:59:00", "03:00:00")])


def assert_reads_as_extract(project: Path, folder: Path, times: list[str], as_of: str | None = None) -> None:
    users = (7, 42, 4999, 123456)
    spine = folder / "spine.csv"
    spine.write_text("user_id,ts\n" + "".join(f"{u},{as_of or t}\n" for u in users for t in times))
    out = folder / "out.parquet"
    _cli(project, "extract", "--spine", str(spine), "--features", "card_spend", "--out", str(out))
    import pyarrow.parquet as pq

    offline = {(row["user_id"], row["ts"]): row for row in pq.read_table(out).to_pylist()}
    manifest = Manifest.load(project / "target" / "online" / "dev" / "manifest.json")
    for t in times:
        moment = datetime.fromisoformat(t).replace(tzinfo=UTC)
        reader = Reader(manifest, open_table(manifest.store), clock=moment.timestamp)
        status, body = reader.answer({"features": ["card_spend"], "entities": [{"user_id": u} for u in users]})
        assert status == 200, body
        for result in json.loads(body, parse_float=Decimal)["results"]:
            user = result["entity"]["user_id"]
            row = offline[(user, datetime.fromisoformat(as_of or t))]
            expected_end = datetime.fromisoformat(as_of or t).replace(second=0, microsecond=0)
            assert result["feature_timestamps"]["card_spend"] == f"{expected_end:%Y-%m-%dT%H:%M:%S}Z", (t, user)
            for name, value in result["features"].items():
                assert same_value(value, row[name]), (t, user, name, value, row[name])


def _record(transaction: int, user: int, amount: str, status: str, ts: str) -> dict[str, Any]:
    return {
        "transaction_id": transaction,
        "user_id": user,
        "merchant_id": 1,
        "amount": amount,
        "status": status,
        "ts": ts + "Z",
    }


def _load(project: Path, events: list[tuple[Any, ...]]) -> None:
    with duckdb.connect(str(project / "target" / "cash_advance.duckdb")) as connection:
        for transaction, user, amount, status, ts in events:
            connection.execute(
                "insert into raw.transactions (transaction_id, user_id, merchant_id, amount, status, ts) "
                "values (?, ?, 1, ?::decimal(12,2), ?, ?::timestamp)",
                [transaction, user, amount, status, ts],
            )


def _cli(project: Path, *args: str) -> str:
    result = CliRunner().invoke(command, ["--project-dir", str(project), *args])
    assert result.exit_code == 0, result.output
    return result.output


# -- every engine ---------------------------------------------------------------------

ENGINE_MODEL = Stream(
    (
        Macro("count", None, (HOUR, 3 * HOUR)),
        Macro("sum", "amount", (HOUR, 3 * HOUR)),
        Macro("avg", "amount", (3 * HOUR,)),
        Macro("min", "amount", (HOUR,)),
        Macro("max", "amount", (HOUR,)),
        Macro("variance", "amount", (3 * HOUR,)),
        Macro("stddev_pop", "amount", (3 * HOUR,)),
        Macro("first", "amount", (3 * HOUR,), "seq"),
        Macro("last", "category", (HOUR,)),
    ),
    5 * MINUTE,
    stream_delay=30,
    start=at(1, 2),
    where=True,
)


def random_events(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = []
    for _ in range(count):
        ts = T0 + timedelta(seconds=rng.randrange(0, 8 * HOUR), microseconds=rng.choice([0, 0, rng.randrange(10**6)]))
        amount = None if rng.random() < 0.1 else rng.randrange(-40, 400) / 4
        events.append(ev(rng.randint(1, 3), ts, amount, rng.choice(["a", "b", "zz", None]), rng.randrange(4)))
    return events


def test_stream_extracts_equal_the_oracle_on_every_engine(engine: Engine, tmp_path: Path) -> None:
    events = random_events(250, seed=7)
    project = write_project(
        tmp_path / "streams",
        "streams",
        entities={"user": {"user_id": "bigint"}},
        tables={"events": {"event_time": "ts", "columns": COLUMNS}},
        models={"f": ENGINE_MODEL.sql()},
        profile=engine.target(tmp_path),
    )
    rng = random.Random(8)
    times = [T0 + timedelta(seconds=rng.randrange(0, 9 * HOUR)) for _ in range(30)]
    times += [at(2, 5, 30), at(2, 5, 29, 999_999), at(1, 0)]  # on a boundary plus the delay, just before, before start
    spine = [{"user_id": rng.randint(1, 4), "ts": t} for t in times]
    with Context(project) as context:
        context.adapter.ensure_schema("raw")
        context.adapter.load_table(exp.table_("events", db="raw"), pa.Table.from_pylist(events, schema=SCHEMA))
        result = context.extract(pa.Table.from_pylist(spine, schema=SPINE), ["f"])
    assert result.table is not None
    actual = [dict(row, ts=row["ts"].replace(tzinfo=None)) for row in result.table.to_pylist()]  # BigQuery's are UTC
    assert_same(actual, expected(ENGINE_MODEL, events, spine))

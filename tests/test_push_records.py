"""Pushed records (``featuresql.serving.push_records``): read exactly, known by one id, and run through
a stream model's row-level programs to the values DuckDB's own run of that SQL gives."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from featuresql.context import Context
from featuresql.serving.expression_times import epoch_micros
from featuresql.serving.push_records import RecordError, StreamRows, event_of, read_record, record_id

TYPES = {"id": "int64", "user_id": "int64", "amount": "decimal(12,2)", "status": "string", "ts": "timestamp"}
STREAM_MODEL = """{{ config(entity='user', timestamp='ts', grain='1h', online=true, stream_grain='1m') }}
select user_id, ts,
    {{ window_count(windows=['1h']) }},
    {{ window_sum('amount * 2', windows=['1h'], name='doubled') }},
    {{ window_last('case when amount > 100 then upper(status) else status end', windows=['1h'], name='tag') }},
    {{ window_max('merchant_category', windows=['1h']) }}
from {{ source('bank', 'transactions') }}
where status = 'settled' and coalesce(merchant_category, '') <> 'gambling'
"""


def test_a_record_is_read_as_its_declared_types() -> None:
    values = read_record({"user_id": 42, "amount": "12.50", "ts": "2026-06-30T10:00:00Z", "STATUS": "settled"}, TYPES)
    assert values == {
        "id": None,  # a column left out is NULL
        "user_id": 42,
        "amount": Decimal("12.50"),
        "status": "settled",
        "ts": datetime(2026, 6, 30, 10),
    }


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ([1, 2], 'a record is a JSON object of the source\'s columns, e.g. {"user_id": 42, ...}'),
        ({"usr_id": 1}, "unknown column 'usr_id': the source declares id, user_id, amount, status, ts"),
        ({"amount": "1.234"}, "column 'amount' is decimal(12,2): 1.234 has more than 2 decimal places"),
        ({"user_id": 1.5}, "column 'user_id' is an integer column (int64): give a whole number"),
        (
            {"ts": "2026-06-30T10:00:00+02:00"},
            "column 'ts' is a TIMESTAMP column: '2026-06-30T10:00:00+02:00' is not UTC ISO text such as "
            "2026-06-30T10:00:00Z",
        ),
        (  # json.loads gives it from "\ud800": no store can hold it, so it must never reach one
            {"status": "settled\ud800"},
            "column 'status' holds a lone UTF-16 surrogate, which is no text: send UTF-8",
        ),
    ],
)
def test_a_bad_record_is_refused_with_its_reason(record: Any, message: str) -> None:
    with pytest.raises(RecordError) as raised:
        read_record(record, TYPES)
    assert str(raised.value) == message


def test_one_record_has_one_id_however_it_is_spelled() -> None:
    one = read_record({"user_id": 7, "amount": 1.5, "ts": "2026-06-30T10:00:00Z", "status": "settled"}, TYPES)
    same = read_record({"status": "settled", "ts": "2026-06-30T10:00:00", "amount": "1.50", "user_id": 7}, TYPES)
    other = read_record({"user_id": 7, "amount": "1.51", "ts": "2026-06-30T10:00:00Z", "status": "settled"}, TYPES)
    assert record_id(one, None) == record_id(same, None) != record_id(other, None)
    assert record_id({**one, "id": 99}, "id") == "99" == record_id({**other, "id": 99}, "id")
    with pytest.raises(RecordError, match="column 'id' is the source's event_id, so it cannot be NULL"):
        record_id(one, "id")


@pytest.fixture(scope="module")
def stream_rows(tmp_path_factory: pytest.TempPathFactory, copy_example_to: Any) -> tuple[StreamRows, str, dict]:
    project: Path = copy_example_to(tmp_path_factory.mktemp("push_records") / "cash_advance")
    (project / "features" / "card_tags.sql").write_text(STREAM_MODEL)
    with Context(project, offline=True) as context:
        model = context.compiled.models["card_tags"]
        source = context.project.sources["bank.transactions"]
    rows = model.stream_rows
    assert rows is not None and model.window is not None
    stream = StreamRows(
        "card_tags", rows.source, rows.source_types, model.settings.keys, "ts", rows.where, rows.columns, rows.event_id
    )
    declared = {name: kind for name, kind in source.columns.items() if kind}
    return stream, model.window.events.sql("duckdb"), declared


RECORDS = st.fixed_dictionaries(
    {
        "transaction_id": st.integers(1, 10**6),
        "user_id": st.one_of(st.none(), st.integers(1, 50)),
        "merchant_id": st.integers(1, 9),
        "merchant_category": st.one_of(st.none(), st.sampled_from(["grocery", "gambling", "travel", "ẞ"])),
        "amount": st.one_of(st.none(), st.decimals(-500, 500, places=2).map(str)),
        "status": st.one_of(st.none(), st.sampled_from(["settled", "declined", "Settled"])),
        "ts": st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)).map(lambda t: t.isoformat() + "Z"),
    }
)


KEPT = {
    "transaction_id": 1,
    "user_id": 42,
    "merchant_id": 3,
    "merchant_category": "travel",
    "amount": "150.00",
    "status": "settled",
    "ts": "2026-06-30T10:00:00.123456Z",
}


@settings(max_examples=150, deadline=None)
@example(record=KEPT)  # kept: the comparison below runs on at least this one
@given(record=RECORDS)
def test_a_pushed_event_is_what_the_warehouse_computes_from_the_same_row(
    stream_rows: tuple[StreamRows, str, dict], record: dict[str, Any]
) -> None:
    stream, events_sql, declared = stream_rows
    values = read_record(record, stream.source_types)
    event = event_of(stream, values, record_id(values, stream.event_id))
    with duckdb.connect() as connection:
        connection.execute("create schema raw")
        columns = ", ".join(f"{name} {kind}" for name, kind in declared.items())
        connection.execute(f"create table raw.transactions ({columns})")
        connection.execute(
            f"insert into raw.transactions values ({', '.join('?' for _ in declared)})",
            [values[name] for name in declared],
        )
        found = connection.execute(events_sql.replace('"cash_advance".', "")).fetchall()
        names = [column[0] for column in connection.description]
    if event is None:  # dropped by the WHERE, or no entity: the warehouse keeps no event of it either
        assert not found or found[0][names.index("user_id")] is None
        return
    (row,) = found
    warehouse = dict(zip(names, row, strict=True))
    assert event.keys == (warehouse["user_id"],)
    assert event.time == epoch_micros(warehouse["ts"])
    assert event.inputs == {name: warehouse[name] for name in event.inputs}
    if record == KEPT:
        assert event.inputs == {"in_0": Decimal("300.00"), "in_1": "SETTLED", "in_merchant_category": "travel"}

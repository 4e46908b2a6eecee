"""A data scientist's notebook: extracts as pandas DataFrames, and a scratch project from data frames.

Values are checked against a brute-force sum over the rows given, DECIMAL features as
float64 by default and as exact ``Decimal`` on request.
"""

from __future__ import annotations

import gc
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import featuresql
from featuresql import Context

MODEL = """{{ config(entity='user', timestamp='ts') }}
select user_id, ts,
    {{ window_count(windows=['7d']) }},
    {{ window_sum('amount', windows=['7d']) }}
from {{ source('scratch', 'events') }}
"""
EVENTS = pa.table(
    {
        "user_id": pa.array([1, 1, 2, 1, 2], pa.int64()),
        "ts": pa.array(
            [datetime(2026, 1, 1, 9), datetime(2026, 1, 3), datetime(2026, 1, 2), datetime(2026, 1, 6), None],
            pa.timestamp("us"),
        ),
        "amount": pa.array(
            [Decimal("10.10"), Decimal("30.20"), None, Decimal("0.30"), Decimal("5.00")], pa.decimal128(12, 2)
        ),
    }
)
SPINE = pd.DataFrame({"user_id": [1, 2, 1], "ts": pd.to_datetime(["2026-01-04", "2026-01-04", "2026-01-09"])})


def brute_force(user: int, at: datetime) -> tuple[int, Decimal | None]:
    boundary = datetime(at.year, at.month, at.day)
    rows = [
        r
        for r in EVENTS.to_pylist()
        if r["user_id"] == user and r["ts"] is not None and boundary - timedelta(days=7) <= r["ts"] < boundary
    ]
    amounts = [r["amount"] for r in rows if r["amount"] is not None]
    return len(rows), (sum(amounts, Decimal(0)) if amounts else None)


@pytest.fixture
def scratch() -> Context:
    context = Context.scratch(models={"spend": MODEL}, sources={"events": EVENTS}, entities={"user": "user_id"})
    context.run(now=datetime(2026, 1, 10))
    return context


@pytest.mark.duckdb
def test_a_scratch_project_runs_and_extracts(scratch: Context) -> None:
    result = scratch.extract(SPINE, ["spend"])
    assert result.table is not None
    for row in result.table.to_pylist():
        count, total = brute_force(row["user_id"], row["ts"])
        assert (row["spend__count_7d"], row["spend__amount_sum_7d"]) == (count, total), row
    assert [row["spend__count_7d"] for row in result.table.to_pylist()] == [2, 1, 2]  # by hand: the rows above


@pytest.mark.duckdb
def test_extract_as_pandas_turns_decimals_into_floats(scratch: Context) -> None:
    frame = featuresql.extract(SPINE, ["spend"], project_dir=scratch.project.root, output="pandas")
    assert isinstance(frame, pd.DataFrame) and list(frame["user_id"]) == [1, 2, 1]
    assert frame["spend__amount_sum_7d"].dtype == "float64"
    for _, row in frame.iterrows():
        count, total = brute_force(int(row["user_id"]), row["ts"].to_pydatetime())
        assert row["spend__count_7d"] == count
        # The nearest double of the exact decimal sum, as float(Decimal) gives it: 40.3, not 40.300000000000004.
        assert (pd.isna(row["spend__amount_sum_7d"]) and total is None) or row["spend__amount_sum_7d"] == float(total)
    assert frame.attrs["featuresql.uncomputed"] == {}
    exact = featuresql.extract(SPINE, ["spend"], project_dir=scratch.project.root, output="pandas", decimals="decimal")
    assert exact["spend__amount_sum_7d"].dtype == object
    assert exact["spend__amount_sum_7d"].iloc[0] == Decimal("40.30")


@pytest.mark.duckdb
def test_pandas_output_without_pandas_says_which_extra(scratch: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    table = scratch.extract(SPINE, ["spend"]).table
    monkeypatch.setitem(sys.modules, "pandas", None)  # as on a plain install
    with pytest.raises(ImportError, match=r"^output='pandas' needs pandas: pip install 'featuresql\[pandas\]'$"):
        featuresql.to_pandas(table)


@pytest.mark.duckdb
def test_a_scratch_source_may_be_a_file_and_the_folder_goes_with_the_context(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    EVENTS.to_pandas().to_csv(path, index=False)
    context = Context.scratch(
        models={"spend": MODEL}, sources={"events": str(path)}, entities={"user": {"user_id": "bigint"}}
    )
    folder = context.project.root
    with context:
        context.run(now=datetime(2026, 1, 10))
        rows = context.extract(SPINE, ["spend.count_7d"]).table
    assert rows is not None
    assert [r["spend__count_7d"] for r in rows.to_pylist()] == [
        brute_force(r["user_id"], r["ts"])[0] for r in rows.to_pylist()
    ]
    del context, rows
    gc.collect()
    assert not folder.exists()

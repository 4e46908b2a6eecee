"""`featuresql init NAME --from FILE`: a project over one's own events file that runs as is.

Generated parquet and CSV files (NULLs, decimals, times with and without a zone) go
through init, run, test, extract, sync, read and docs generate, all from another
working directory with ``--project-dir``; the extracted counts and sums are checked
against a brute-force count over the file's rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from cli_process import run as run_process

NOW = "2026-05-14T00:00:00"
DAY = timedelta(days=1)


def write_events(path: Path, zoned: bool) -> list[dict[str, Any]]:
    """Events of 30 users over 12 days; the file's format is the path's extension."""
    time_type = "timestamptz" if zoned else "timestamp"
    start = "2026-05-01 00:00:00+02" if zoned else "2026-05-01 00:00:00"
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"""
        create table events as
        select 100 + i % 30 as user_id,
               {time_type} '{start}' + to_seconds(i * 997) as ts,
               case when i % 6 = 0 then null else (i % 500)::decimal(12, 2) * 0.25 end as amount,
               case when i % 10 = 0 then null else (i % 3)::integer end as items,
               'm' || (i % 9) as merchant_id
        from range(1000) t(i)""")
    suffix = path.suffix
    options = "(format parquet)" if suffix == ".parquet" else "(header)"
    connection.execute(f"copy events to '{path}' {options}")
    rows = connection.execute("select user_id, ts, amount from events").fetchall()
    connection.close()
    return [
        {"user_id": u, "ts": (t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t), "amount": a}
        for u, t, a in rows
    ]


def expected(rows: list[dict[str, Any]], user: int, at: datetime) -> tuple[int, Decimal | None]:
    """count_7d and amount_sum_7d of ``user`` as of ``at``: events in [boundary - 7d, boundary)."""
    boundary = datetime(at.year, at.month, at.day)
    inside = [r for r in rows if r["user_id"] == user and boundary - 7 * DAY <= r["ts"] < boundary]
    amounts = [Decimal(str(r["amount"])) for r in inside if r["amount"] is not None]
    return len(inside), (sum(amounts, Decimal(0)) if amounts else None)


@pytest.mark.duckdb
@pytest.mark.parametrize(("file_name", "zoned"), [("events.parquet", False), ("events.csv", True)])
def test_init_from_a_file_runs_end_to_end(file_name: str, zoned: bool, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = write_events(data / file_name, zoned)
    work = tmp_path / "work"  # where the user types the commands: neither the data's folder nor the project's
    work.mkdir()

    def featuresql(*args: str) -> str:
        done = run_process(work, *args, variables=None)
        assert done.exit_code == 0, f"featuresql {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    said = featuresql("init", "../myfeatures", "--from", f"../data/{file_name}", "--entity", "user_id",
                      "--timestamp", "ts")  # fmt: skip
    assert "model user_events" in said, said
    project = ["--project-dir", "../myfeatures"]
    sources = (tmp_path / "myfeatures" / "features" / "sources.yml").read_text()
    assert f"location: ../data/{file_name}" in sources and "merchant_id" in sources, sources
    assert ("type: timestamptz" if zoned else "type: timestamp") in sources, sources
    featuresql(*project, "run", "--now", NOW)
    tested = featuresql(*project, "test", "--now", NOW)
    assert "0 failed, 0 errored" in tested, tested

    spine_times = [datetime(2026, 5, d, 13) for d in (2, 5, 8, 10, 12, 13)]
    spine = [{"user_id": u, "ts": t} for u in (100, 107, 129) for t in spine_times]
    connection = duckdb.connect()
    connection.execute("create table spine (user_id bigint, ts timestamp)")
    connection.executemany("insert into spine values (?, ?)", [(r["user_id"], r["ts"]) for r in spine])
    connection.execute(f"copy spine to '{work / 'spine.parquet'}' (format parquet)")
    connection.close()
    featuresql(*project, "extract", "--spine", "spine.parquet", "--features", "user_events", "--out", "train.parquet")
    extracted = pq.read_table(work / "train.parquet").to_pylist()
    assert len(extracted) == len(spine)
    for row in extracted:
        count, total = expected(rows, row["user_id"], row["ts"])
        assert row["user_events__count_7d"] == count, row
        got = row["user_events__amount_sum_7d"]
        assert (got is None and total is None) or Decimal(str(got)) == total, (row, total)
    assert any(r["user_events__count_7d"] for r in extracted)

    featuresql(*project, "sync", "--now", NOW)
    read = json.loads(featuresql(*project, "read", "user_id=107", "-f", "user_events", "--now", NOW))
    count, _ = expected(rows, 107, datetime.fromisoformat(NOW))
    assert count > 0 and read["results"][0]["features"]["user_events__count_7d"] == count, read
    featuresql(*project, "docs", "generate")
    assert (tmp_path / "myfeatures" / "target" / "docs" / "index.html").is_file()
    catalog = json.loads((tmp_path / "myfeatures" / "target" / "docs" / "catalog.json").read_text())
    source = catalog["sources"][f"files.{Path(file_name).stem}"]
    assert source["files"] == {"location": f"../data/{file_name}", "format": file_name.split(".")[-1]}, source
    assert source["used_by"] == ["user_events"] and "ts" in {c["name"] for c in source["columns"]}
    freshness = catalog["models"]["user_events"]["freshness"]
    assert freshness["newest"] is not None and freshness["newest"] < freshness["computed_through"], freshness
    assert not (work / "target").exists()  # nothing written where the commands were typed


@pytest.mark.duckdb
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--entity", "nope", "--timestamp", "ts"], "Error: --entity nope: events.parquet has no such column; its "),
        (
            ["--entity", "user_id", "--timestamp", "amount"],
            "Error: --timestamp amount: its type is DECIMAL(15,4), not a timestamp",
        ),
        (
            ["--entity", "amount", "--timestamp", "ts"],
            "Error: --entity amount: its type is DECIMAL(15,4); an entity key is an integer or a string",
        ),
        (["--timestamp", "ts"], "Error: --from needs --entity COLUMN and --timestamp COLUMN"),
        (["--entity", "user_id", "--timestamp", "ts", "--windows", "7x"], "Error: invalid duration '7x'"),
        (["--entity", "user_id", "--timestamp", "ts", "--windows", ""], "Error: --windows is empty: give at least one"),
        (
            ["--entity", "user_id", "--timestamp", "ts", "--windows", "90m"],
            "Error: window '90m' is not a whole number of grains (1d): use e.g. 7d with 1d",
        ),
    ],
)
def test_init_from_refuses_what_it_cannot_build(args: list[str], message: str, tmp_path: Path) -> None:
    write_events(tmp_path / "events.parquet", zoned=False)
    done = run_process(tmp_path, "init", "proj", "--from", "events.parquet", *args, variables=None)
    assert done.exit_code == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "proj").exists()

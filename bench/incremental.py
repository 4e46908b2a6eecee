"""Benchmark an incremental run (one new day) against a full refresh of the same window model.

Run from anywhere (the package must be installed)::

    python bench/incremental.py                  # 10M events, 200k users, 180 days
    python bench/incremental.py --smoke          # 50k events, 2k users, 40 days: seconds, for CI
    python bench/incremental.py --workdir /tmp/fi --repeat 2

What it does:

1. builds a project in a folder from the repository's example (project.yml,
   features/sources.yml, macros/ and the window model features/user_transactions.sql:
   count, sum, avg, max, stddev, count_distinct and last over 1/7/30 days) and
   generates the demo data there (the project's own generator; not counted);
2. holds back the last day of events, then each round:
   - times ``featuresql run --full-refresh`` at the start of that day (179 days of
     boundaries, all events before it), in a subprocess, end to end;
   - appends the held-back day and times the plain ``featuresql run`` one day later:
     the incremental run computes the one new boundary;
   - removes the day again for the next round;
3. checks that the table after the incremental run equals a full refresh over all
   the data (integers, decimals and times exactly, doubles to 1e-9), and exits
   non-zero if it does not;
4. prints the best times and the ratio incremental / full refresh (target: at most 5%).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parent.parent
MODEL = "user_transactions"
DEMO_END = "2026-06-30"  # fixed, so the data never depends on the clock
TARGET = 0.05


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument(
        "--repeat", type=int, default=2, help="rounds (best time of each kind is reported)"
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny size, for CI")
    parser.add_argument(
        "--workdir", type=Path, help="build here and reuse it (default: a temporary folder)"
    )
    parser.add_argument(
        "--max-ratio", type=float, help="exit 2 when incremental / full refresh is above this"
    )
    parser.add_argument("--json", type=Path, help="write a summary here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.events, args.users, args.days = 50_000, 2_000, 40
    return args


class Bench:
    def __init__(self, args: argparse.Namespace, folder: Path):
        self.args = args
        self.folder = folder
        self.database = folder / "bench.duckdb"
        self.variables = {
            "demo_users": args.users,
            "demo_transactions": args.events,
            "demo_days": args.days,
            "demo_end": DEMO_END,
            "demo_balance_events": 1000,
        }
        self.last_day = datetime.fromisoformat(DEMO_END) - timedelta(days=1)

    def write_project(self) -> None:
        (self.folder / "features").mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / "project.yml", self.folder / "project.yml")
        shutil.copy2(REPO / "features" / "sources.yml", self.folder / "features" / "sources.yml")
        shutil.copy2(REPO / "features" / f"{MODEL}.sql", self.folder / "features" / f"{MODEL}.sql")
        shutil.copytree(REPO / "macros", self.folder / "macros", dirs_exist_ok=True)
        (self.folder / "profiles.yml").write_text(
            f"target: dev\ntargets:\n  dev: {{type: duckdb, path: '{self.database}'}}\n"
        )

    def generate(self) -> float:
        """The demo data, by the project's on_run_start hook; the last day is held back."""
        from featuresql.context import Context

        started = time.perf_counter()
        with Context(self.folder, variables=self.variables) as context:
            for statements in context.compiled.hooks.get("on_run_start", []):
                for statement in statements:
                    context.adapter.execute(statement)
        with duckdb.connect(str(self.database)) as connection:
            connection.execute(
                "create table if not exists raw.held_back as "
                "select * from raw.transactions where ts >= ?",
                [self.last_day],
            )
            connection.execute("delete from raw.transactions where ts >= ?", [self.last_day])
        return time.perf_counter() - started

    def cli(self, *args: str) -> float:
        command = [
            sys.executable,
            "-c",
            "from featuresql.cli.main import main; main()",
            "--vars",
            json.dumps(self.variables),
            "run",
            "--select",
            MODEL,
            *args,
        ]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=self.folder, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"featuresql failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return seconds

    def move_day(self, *, append: bool) -> None:
        with duckdb.connect(str(self.database)) as connection:
            if append:
                connection.execute("insert into raw.transactions select * from raw.held_back")
            else:
                connection.execute("delete from raw.transactions where ts >= ?", [self.last_day])

    def snapshot(self, name: str) -> None:
        with duckdb.connect(str(self.database)) as connection:
            connection.execute(f"create or replace table main.{name} as select * from main.{MODEL}")

    def differences(self, left: str, right: str) -> int:
        """Rows of one table missing from the other, doubles rounded to 9 significant digits."""
        with duckdb.connect(str(self.database)) as connection:
            columns = connection.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_name = ? "
                "order by ordinal_position",
                [left],
            ).fetchall()
            select = ", ".join(
                f"round({c}, 9 - cast(ceil(log10(abs({c}) + 1e-300)) as integer))"
                if kind == "DOUBLE"
                else c
                for c, kind in columns
            )
            count = 0
            for a, b in ((left, right), (right, left)):
                rows = f"select {select} from main.{a} except all select {select} from main.{b}"
                query = f"select count(*) from ({rows})"
                count += connection.execute(query).fetchone()[0]  # type: ignore[index]
            return int(count)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="featuresql-bench-incremental-"))
    bench = Bench(args, folder)
    if not bench.database.exists():
        bench.write_project()
        print(
            f"demo data: {args.events:,} events, {args.users:,} users, {args.days} days, "
            "generated in "
            f"{bench.generate():.1f}s (not counted)",
            flush=True,
        )
    day = bench.last_day
    bench.move_day(append=False)  # a reused folder may hold the day from its last run
    full_times, incremental_times = [], []
    for round_number in range(1, args.repeat + 1):
        full = bench.cli("--full-refresh", "--now", day.isoformat())
        bench.move_day(append=True)
        incremental = bench.cli("--now", (day + timedelta(days=1)).isoformat())
        print(
            f"  round {round_number}: full refresh {full:.2f}s, "
            f"incremental (+1 day) {incremental:.2f}s",
            flush=True,
        )
        full_times.append(full)
        incremental_times.append(incremental)
        if round_number < args.repeat:
            bench.move_day(append=False)
    bench.snapshot("after_incremental")
    check = bench.cli("--full-refresh", "--now", (day + timedelta(days=1)).isoformat())
    bench.snapshot("after_full_refresh")
    differing = bench.differences("after_incremental", "after_full_refresh")
    ratio = min(incremental_times) / min(full_times)
    summary: dict[str, Any] = {
        "events": args.events,
        "users": args.users,
        "days": args.days,
        "full_refresh_seconds": min(full_times),
        "incremental_seconds": min(incremental_times),
        "full_refresh_all_data_seconds": check,
        "ratio": ratio,
        "differing_rows": differing,
    }
    print(
        f"\nfull refresh ({args.days - 1} days of events): {min(full_times):.2f}s; "
        "incremental run (+1 day): "
        f"{min(incremental_times):.2f}s; ratio {ratio:.1%} (target <= {TARGET:.0%}: "
        f"{'met' if ratio <= TARGET else 'NOT met'})"
    )
    print(f"incremental table vs a full refresh over all the data: {differing} differing rows")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if not args.workdir:
        shutil.rmtree(folder, ignore_errors=True)
    if differing:
        return 1
    if args.max_ratio is not None and ratio > args.max_ratio:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

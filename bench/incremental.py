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
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    DEMO_END,
    DEMO_FULL,
    connect,
    copy_example,
    count_differing,
    demo_variables,
    generate_demo_data,
    run_featuresql,
    stopwatch,
    verdict,
    work_folder,
    write_profile,
)

MODEL = "user_transactions"
KEYS = ("user_id", "ts")
TARGET = 0.05


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=DEMO_FULL["events"])
    parser.add_argument("--users", type=int, default=DEMO_FULL["users"])
    parser.add_argument("--days", type=int, default=DEMO_FULL["days"])
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
        self.variables = demo_variables(
            args.events, args.users, args.days, end=DEMO_END, balance_events=1000
        )
        self.last_day = datetime.fromisoformat(DEMO_END) - timedelta(days=1)

    def write_project(self) -> None:
        model = f"features/{MODEL}.sql"
        copy_example(self.folder, ("project.yml", "features/sources.yml", model, "macros"))
        write_profile(self.folder, {"type": "duckdb", "path": str(self.database)}, target="dev")

    def generate(self) -> float:
        """The demo data, by the project's on_run_start hook; the last day is held back."""
        with stopwatch() as times:
            generate_demo_data(self.folder, self.variables)
            with connect(self.database) as connection:
                connection.execute(
                    "create table if not exists raw.held_back as "
                    "select * from raw.transactions where ts >= ?",
                    [self.last_day],
                )
                connection.execute("delete from raw.transactions where ts >= ?", [self.last_day])
        return times.wall

    def cli(self, *options: str) -> float:
        """``featuresql run --select MODEL OPTIONS`` in a subprocess; its wall seconds."""
        with stopwatch() as times:
            run_featuresql(
                self.folder, "run", "--select", MODEL, *options, variables=self.variables
            )
        return times.wall

    def move_day(self, *, append: bool) -> None:
        with connect(self.database) as connection:
            if append:
                connection.execute("insert into raw.transactions select * from raw.held_back")
            else:
                connection.execute("delete from raw.transactions where ts >= ?", [self.last_day])

    def snapshot(self, name: str) -> None:
        with connect(self.database) as connection:
            connection.execute(f"create or replace table main.{name} as select * from main.{MODEL}")

    def differences(self, expected: str, actual: str) -> int:
        """Rows, by entity and time, missing from either table or with a differing value."""
        with connect(self.database) as connection:
            return count_differing(connection, f"main.{expected}", f"main.{actual}", KEYS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with work_folder("featuresql-bench-incremental-", given=args.workdir) as folder:
        return benchmark(args, folder)


def benchmark(args: argparse.Namespace, folder: Path) -> int:
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
    differing = bench.differences("after_full_refresh", "after_incremental")
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
        f"{verdict(ratio <= TARGET)})"
    )
    print(f"incremental table vs a full refresh over all the data: {differing} differing rows")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if differing:
        return 1
    if args.max_ratio is not None and ratio > args.max_ratio:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

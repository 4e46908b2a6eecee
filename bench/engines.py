"""The example project on DuckDB, Snowflake (fakesnow) and BigQuery (emulator): time, statements.

Run from the repository (the package installed with its [snowflake,bigquery] extras, and the
servers installed with ``bash ci/fakesnow_server.sh install`` and
``bash ci/bigquery_emulator.sh install``)::

    python bench/engines.py                 # 50k transactions, 1k users, 60 days
    python bench/engines.py --smoke         # 5k transactions: seconds, for CI
    python bench/engines.py --engines duckdb,bigquery --transactions 200000

What it does:

1. builds the example project on DuckDB (its own hook generates the demo data) and keeps
   the raw tables;
2. for each engine: a fresh namespace (a DuckDB file, a fakesnow database, an emulator
   project), the raw tables loaded through the adapter (timed apart), then
   ``Context.run`` of every model, a second run one day later (incremental), and an
   extract of 1,000 spine rows;
3. counts every statement featuresql sends (``execute``, ``fetch_arrow`` and
   ``table_columns`` calls) and the bytes of SQL, and prints them per engine and per
   model batch; checks that every engine's tables equal DuckDB's (row count and a
   checksum of each model) and exits 1 if one differs.

The emulators are not the real services: they run the SQL on DuckDB behind an HTTP API.
Their times are functional evidence only (what the protocol and the emulator cost), not a
forecast of Snowflake or BigQuery. The statement counts are what a real warehouse would
receive: the number of round trips per model and batch does not grow with the features.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from featuresql.context import Context
from sqlglot import exp

from harness import (
    TOLERANCE,
    copy_example,
    demo_variables,
    split_list,
    use_test_helpers,
    work_folder,
    write_profile,
)

NOW = datetime(2026, 7, 1, 6, tzinfo=UTC)
RAW_TABLES = ("users", "transactions", "balance_events")
EXAMPLE_FILES = ("project.yml", "features", "macros")
NO_HOOK = ('on_run_start:\n  - "{{ create_demo_data() }}"', "on_run_start: []")
CHECKED_COLUMNS = {"user_transactions": "amount_sum_30d", "merchant_transactions": "count_7d"}


@dataclass
class Traffic:
    """What one engine was sent (the adapter counts where it hands SQL to its driver)."""

    total: int = 0
    sql_bytes: int = 0


# -- engines -------------------------------------------------------------------------


@contextlib.contextmanager
def servers(names: list[str], folder: Path) -> Iterator[dict[str, Any]]:
    endpoints: dict[str, Any] = {}
    use_test_helpers()
    with contextlib.ExitStack() as stack:
        if "snowflake" in names:
            from snowflake_server import running_fakesnow

            (folder / "fakesnow").mkdir(parents=True)
            endpoints["snowflake"] = stack.enter_context(running_fakesnow(folder / "fakesnow"))
        if "bigquery" in names:
            from bigquery_server import running_bigquery_emulator

            (folder / "bigquery").mkdir(parents=True)
            endpoints["bigquery"] = stack.enter_context(
                running_bigquery_emulator(folder / "bigquery")
            )
        yield endpoints


def target(name: str, endpoint: Any, folder: Path) -> dict[str, Any]:
    if name == "duckdb":
        return {"type": "duckdb", "path": str(folder / "bench.duckdb"), "schema": "features"}
    if name == "snowflake":
        return {
            "type": "snowflake",
            "account": "bench",
            "user": "bench",
            "password": "bench",
            "host": endpoint.host,
            "port": endpoint.port,
            "protocol": "http",
            "database": "BENCH",
            "schema": "features",
            "connect_args": {"session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}},
        }
    return {
        "type": "bigquery",
        "project": "bench",
        "dataset": "features",
        "method": "anonymous",
        "api_endpoint": endpoint.api_endpoint,
    }


def project(folder: Path, settings: dict[str, Any], *, hook: bool) -> Path:
    folder.mkdir(parents=True)
    copy_example(folder, EXAMPLE_FILES)
    if not hook:
        path = folder / "project.yml"
        path.write_text(path.read_text().replace(*NO_HOOK))
    write_profile(folder, settings, target="bench")
    return folder


# -- one engine -------------------------------------------------------------------------


@dataclass
class Outcome:
    engine: str
    load: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    traffic: dict[str, Traffic] = field(default_factory=dict)
    batches: int = 0
    checksums: dict[str, tuple[int, float]] = field(default_factory=dict)


def run_engine(
    name: str,
    root: Path,
    settings: dict[str, Any],
    raw: dict[str, pa.Table],
    variables: dict[str, Any],
    spine: pa.Table,
) -> Outcome:
    outcome = Outcome(name)
    folder = project(root / name, settings, hook=False)
    with Context(folder, variables=variables) as context:
        started = time.perf_counter()
        context.adapter.ensure_schema("raw")
        for table, data in raw.items():
            context.adapter.load_table(exp.table_(table, db="raw"), data)
        outcome.load = time.perf_counter() - started
    phases: list[tuple[str, Callable[[Context], Any]]] = [
        ("full run", lambda c: c.run(now=NOW - timedelta(days=1))),
        ("incremental run", lambda c: c.run(now=NOW)),
        ("extract", lambda c: c.extract(spine, ["user_transactions", "merchant_transactions"])),
    ]
    for phase, action in phases:
        with Context(folder, variables=variables) as context:
            started = time.perf_counter()
            result = action(context)
            outcome.phases[phase] = time.perf_counter() - started
            if phase.endswith("run"):
                failed = [r for r in result.results if r.status != "success"]
                if failed:
                    sys.exit(f"{name}: {phase} failed: {failed[0].model}: {failed[0].message}")
                if phase == "full run":
                    outcome.batches = sum(max(r.batches, 1) for r in result.results)
            adapter = context.adapter
            outcome.traffic[phase] = Traffic(adapter.sent_statements, adapter.sent_bytes)
    with Context(folder, variables=variables) as context:
        for model, column in CHECKED_COLUMNS.items():
            query = (
                f"select count(*) as n, sum(cast({column} as double)) as s from features.{model}"
            )
            row = context.query(query).to_pylist()[0]
            outcome.checksums[model] = (int(row["n"]), float(row["s"] or 0.0))
    return outcome


def reference_data(
    root: Path, variables: dict[str, Any], spine_rows: int
) -> tuple[dict[str, pa.Table], pa.Table]:
    folder = project(
        root / "generate", {"type": "duckdb", "path": str(root / "generate.duckdb")}, hook=True
    )
    with Context(folder, variables=variables) as context:
        context.run(("user_profile",), now=NOW)  # runs the hook; one cheap model
        raw = {table: context.query(f"select * from raw.{table}") for table in RAW_TABLES}
        spine = context.query(
            f"select user_id, merchant_id, ts + interval 1 hour as ts from raw.transactions "
            f"using sample {spine_rows} rows (reservoir, 7) order by ts, user_id"
        )
    return raw, spine


# -- report ------------------------------------------------------------------------------


def report(outcomes: list[Outcome], events: int) -> bool:
    print(f"\n{events:,} transactions; times in seconds (emulators: functional evidence only)")
    print(f"{'engine':10s} {'load raw':>9s} {'full run':>9s} {'incr. run':>9s} {'extract':>8s}")
    for o in outcomes:
        times = [o.phases[p] for p in ("full run", "incremental run", "extract")]
        print(f"{o.engine:10s} {o.load:9.2f} " + " ".join(f"{t:9.2f}" for t in times))
    print("\nstatements sent to the engine and KB of SQL, per phase")
    for o in outcomes:
        parts = [
            f"{phase}: {t.total} stmts / {t.sql_bytes / 1024:.1f} KB"
            for phase, t in o.traffic.items()
        ]
        per_batch = o.traffic["full run"].total / max(o.batches, 1)
        print(
            f"  {o.engine:10s} " + "; ".join(parts) + f"; full run: {per_batch:.1f} per model batch"
        )
    reference = outcomes[0].checksums
    same = True
    for o in outcomes[1:]:
        for model, (rows, total) in reference.items():
            other_rows, other_total = o.checksums[model]
            if other_rows != rows or abs(other_total - total) > TOLERANCE * max(1.0, abs(total)):
                print(
                    f"MISMATCH {o.engine} {model}: {other_rows} rows, sum {other_total!r}; "
                    f"DuckDB: {rows} rows, sum {total!r}"
                )
                same = False
    print("tables equal across engines" if same else "tables DIFFER across engines")
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="duckdb,snowflake,bigquery")
    parser.add_argument("--transactions", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--spine", type=int, default=1_000, help="spine rows of the extract")
    parser.add_argument("--smoke", action="store_true", help="5k transactions, 200 users, 30 days")
    args = parser.parse_args(argv)
    if args.smoke:
        args.transactions, args.users, args.days, args.spine = 5_000, 200, 30, 200
    names = split_list(args.engines)
    if names[0] != "duckdb":
        names.insert(0, "duckdb")  # the reference
    variables = demo_variables(
        args.transactions, args.users, args.days, balance_events=args.transactions // 5
    )
    with work_folder("featuresql-engines-") as root:
        raw, spine = reference_data(root, variables, args.spine)
        outcomes = []
        with servers(names, root / "servers") as endpoints:
            for name in names:
                print(f"running the example project on {name} ...", flush=True)
                settings = target(name, endpoints.get(name), root)
                outcomes.append(run_engine(name, root, settings, raw, variables, spine))
    return 0 if report(outcomes, args.transactions) else 1


if __name__ == "__main__":
    sys.exit(main())

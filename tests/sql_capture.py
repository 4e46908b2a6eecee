"""Every statement featuresql sends to a warehouse in a representative workload, for the SQL analyzers.

The emulators run SQL on DuckDB and accept SQL the real services refuse, so
``tests/test_sql_analyzers.py`` checks the SQL itself. It is recorded where every
adapter hands it to the driver, ``WarehouseAdapter._sent`` (patched on the class),
together with the tables loaded from Arrow: a BigQuery load job carries rows, not
SQL, and the analyzer must know the tables it creates.

The workload is the example project (plus a model with the window functions it does
not use) driven through the ``featuresql`` console script, as a scheduled job or a
user runs it: a first run, two incremental runs, a backfill, extracts from a local
spine and from a warehouse table, a sync to the local online store, ``featuresql test``.
It imports from the package only ``Context`` and ``WarehouseAdapter``.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
from engines import write_profile
from featuresql.adapters.base import WarehouseAdapter
from projects import copy_example
from sqlglot import exp

from featuresql import Context

# Small raw tables: the SQL a run sends does not depend on the number of rows, and fakesnow
# inserts rows slowly. The spine is a sample of the transactions.
DEMO_VARS = {"demo_transactions": 3000, "demo_users": 150, "demo_balance_events": 600}
RAW_TABLES = ("users", "transactions", "balance_events")
SPINE_ROWS = 60
NOW = "2026-07-01T06:00:00"
FEATURES = "user_transactions,merchant_transactions.count_7d,user_profile,all_windows"
NO_HOOK = ("project.yml", 'on_run_start:\n  - "{{ create_demo_data() }}"', "on_run_start: []")
# The window functions and options the example project does not use.
ALL_WINDOWS = (
    "features/all_windows.sql",
    None,
    """{{ config(entity='user', timestamp='ts', grain='1 day', start='2026-04-01') }}
select
    user_id,
    ts,
    {{ window_count('merchant_category', windows=['2d']) }},
    {{ window_min('amount', windows=['1d', '3d']) }},
    {{ window_variance('amount', windows=['2d']) }},
    {{ window_variance_pop('amount', windows=['2d']) }},
    {{ window_stddev_pop('amount', windows=['2d']) }},
    {{ window_first('amount', windows=['1d'], tie_break='transaction_id') }},
    {{ window_last('merchant_category', windows=['1d']) }}
from {{ source('bank', 'transactions') }}
""",
)


@dataclass(frozen=True)
class Sent:
    """One statement an adapter handed to its driver ("" for a load job: rows, no SQL)."""

    dialect: str
    sql: str


@dataclass(frozen=True)
class Loaded:
    """A table an adapter created from Arrow rows (a BigQuery load job, Snowflake's bulk insert)."""

    dialect: str
    dataset: str
    table: str
    schema: pa.Schema


@dataclass
class Capture:
    events: list[Sent | Loaded] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # each command with its exit code, for messages

    def statements(self, dialect: str) -> list[str]:
        """The SQL sent to ``dialect``'s warehouse, in order (load jobs and other engines left out)."""
        return [e.sql for e in self.events if isinstance(e, Sent) and e.dialect == dialect and e.sql]


@contextlib.contextmanager
def capturing(adapter_class: type[WarehouseAdapter], capture: Capture) -> Iterator[None]:
    """Record what every adapter sends, and what ``adapter_class`` loads, into ``capture``."""
    sent = WarehouseAdapter._sent
    load = adapter_class.load_table

    def recording_sent(self: WarehouseAdapter, sql: str) -> None:
        capture.events.append(Sent(self.dialect, sql))
        sent(self, sql)

    def recording_load(self: WarehouseAdapter, table: exp.Table, data: pa.Table, **options: Any) -> exp.Table:
        created: exp.Table = load(self, table, data, **options)
        capture.events.append(Loaded(self.dialect, created.db or self.schema, created.name, data.schema))
        return created

    with (
        mock.patch.object(WarehouseAdapter, "_sent", recording_sent),
        mock.patch.object(adapter_class, "load_table", recording_load),
    ):
        yield


def featuresql(*args: str) -> tuple[int, str]:
    """Run the ``featuresql`` console script in this process: its exit code and its output."""
    (script,) = entry_points(group="console_scripts", name="featuresql")
    main: Callable[[], None] = script.load()
    output = io.StringIO()
    code: int | str | None = 0
    # main() installs a threading.excepthook of its own: the patch puts the test's back
    with (
        mock.patch.object(sys, "argv", ["featuresql", *args]),
        mock.patch.object(threading, "excepthook", threading.excepthook),
        contextlib.redirect_stdout(output),
        contextlib.redirect_stderr(output),
    ):
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code
    return (code if isinstance(code, int) else 1), output.getvalue()


def demo_raw_tables(folder: Path) -> dict[str, pa.Table]:
    """The example project's raw tables, generated by its own hook on DuckDB."""
    project = copy_example(folder / "demo")
    write_profile(project, {"type": "duckdb", "path": str(folder / "demo.duckdb"), "schema": "features"})
    with Context(project, variables=DEMO_VARS) as context:
        result = context.run(("user_profile",))  # the hook creates the raw tables before the model
        assert result.ok, result
        return {name: context.query(f"select * from raw.{name}") for name in RAW_TABLES}


def _spine(transactions: pa.Table) -> pa.Table:
    rows = transactions.select(["user_id", "merchant_id", "ts"]).to_pylist()
    chosen = random.Random(7).sample(rows, SPINE_ROWS)
    return pa.Table.from_pylist([{**row, "label": number % 2} for number, row in enumerate(chosen)])


def run_workload(settings: Mapping[str, Any], folder: Path, raw: Mapping[str, pa.Table]) -> Capture:
    """Run the workload against the target ``settings`` (a fresh namespace) and return what was sent."""
    project = copy_example(folder / "project", [NO_HOOK, ALL_WINDOWS])
    write_profile(project, settings)
    spine = _spine(raw["transactions"])
    pq.write_table(spine, folder / "spine.parquet")
    capture = Capture()
    with Context(project, variables=DEMO_VARS) as context:
        adapter_class = type(context.adapter)
        with capturing(adapter_class, capture):
            context.adapter.ensure_schema("raw")
            for name, data in raw.items():
                context.adapter.load_table(exp.table_(name, db="raw"), data)
            context.adapter.ensure_schema(context.adapter.schema)
            context.adapter.load_table(exp.table_("spine", db=context.adapter.schema), spine)
    common = ("--project-dir", str(project), "--vars", json.dumps(DEMO_VARS))
    commands = [
        ("run", "--now", "2026-05-20T00:00:00"),  # a first run: every table created
        ("run", "--now", "2026-06-20T08:00:00"),  # incremental: range replacements in transactions
        ("run", "--select", "user_transactions", "--start", "2026-05-01", "--end", "2026-05-20", "--now", NOW),
        # last, so the extract model is built from the backfilled table (the leakage test compares exactly)
        ("run", "--now", NOW),
        ("extract", "--spine", str(folder / "spine.parquet"), "-f", FEATURES, "--out", str(folder / "out.parquet")),
        ("extract", "--spine", "features.spine", "-f", FEATURES, "--out", "table:features.training"),
        ("sync", "--now", NOW),
        ("test", "--now", "2026-06-30T00:00:00"),
    ]
    with capturing(adapter_class, capture):
        for command in commands:
            began = time.monotonic()
            code, output = featuresql(*common, *command)
            seconds = time.monotonic() - began
            capture.commands.append(f"featuresql {' '.join(command)}: exit {code} in {seconds:.1f} s")
            assert code == 0, f"featuresql {' '.join(command)} failed (exit {code}):\n{output[-3000:]}"
    return capture

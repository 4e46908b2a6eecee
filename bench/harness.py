"""What the benchmarks share: the example project in a folder, timers, and result comparison.

- **Set-up**: ``work_folder`` (a temporary folder for one run), ``copy_example`` (files of the
  repository's example project), ``write_profile``, ``demo_variables`` and
  ``generate_demo_data`` (the project's own generator, ``macros/demo_data.sql``);
  ``featuresql_command`` and ``run_featuresql`` (the CLI in a subprocess); the options
  ``add_data_options``, ``fill_defaults``, ``split_list`` and ``parse_count``.
- **Timing**: ``stopwatch`` (wall and CPU seconds of a block), ``Entry`` (one timed thing and
  its runs) and ``run_rounds`` (every entry once per round, in turn, keeping the best),
  ``timing_header`` and ``timing_row`` (the table of best times), ``percentile``,
  ``machine_load`` and ``process_status``.
- **Comparison**: ``connect`` (DuckDB with the adapter's session settings), ``differs``,
  ``compare`` and ``count_differing`` (a result against featuresql's, row by row).

The top level imports the standard library only: ``online.py`` imports this module in Feast's
interpreter too, which has neither featuresql nor DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
DEMO_END = "2026-06-30"  # a fixed end, so the demo data never depends on the clock
DEMO_FULL = {"events": 10_000_000, "users": 200_000, "days": 180}
SLOW_FACTOR = 3.0  # from the second round on, a baseline this much slower than the best rests
TOLERANCE = 1e-9  # relative, for DOUBLE and FLOAT values


# -- set-up ---------------------------------------------------------------------------------


@contextmanager
def work_folder(prefix: str, *, keep: bool = False, given: Path | None = None) -> Iterator[Path]:
    """``given`` (made if missing, never removed), else a new temporary folder.

    The temporary folder is removed at the end unless ``keep``; a kept folder is printed.
    """
    if given is None:
        folder = Path(tempfile.mkdtemp(prefix=prefix))
    else:
        folder = given.resolve()
        folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder}")
        elif given is None:
            shutil.rmtree(folder, ignore_errors=True)


def copy_example(folder: Path, paths: Sequence[str]) -> None:
    """These files and folders of the repository's example project, into ``folder``.

    A folder replaces the one there whole, so that no stale model stays behind.
    """
    for path in paths:
        source, target = REPO / path, folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)


def write_profile(folder: Path, settings: Mapping[str, Any], target: str) -> None:
    """``profiles.yml`` in ``folder`` with one target, the default, of these settings."""
    profile = {"target": target, "targets": {target: dict(settings)}}
    (folder / "profiles.yml").write_text(json.dumps(profile, indent=2) + "\n")


def demo_variables(events: int, users: int, days: int, **more: Any) -> dict[str, Any]:
    """The project vars that size the demo data; ``more`` are further ``demo_<name>`` vars."""
    sizes = {"demo_users": users, "demo_transactions": events, "demo_days": days}
    return {**sizes, **{f"demo_{name}": value for name, value in more.items()}}


def generate_demo_data(project: Path, variables: Mapping[str, Any]) -> None:
    """Run the project's on_run_start hook (the demo data generator) and checkpoint."""
    from featuresql.context import Context

    with Context(project, variables=dict(variables)) as context:
        for statements in context.compiled.hooks.get("on_run_start", []):
            for statement in statements:
                context.adapter.execute(statement)
        context.adapter.execute("CHECKPOINT")


def featuresql_command() -> list[str]:
    """The ``featuresql`` console script of this interpreter, else its CLI through ``-c``."""
    executable = Path(sys.executable).with_name("featuresql")
    if executable.exists():
        return [str(executable)]
    return [sys.executable, "-c", "from featuresql.cli.main import main; main()"]


def run_featuresql(
    project: Path, command: str, *arguments: str, variables: Mapping[str, Any] | None = None
) -> float:
    """``featuresql [--vars ...] COMMAND ARGUMENTS`` on ``project`` in a subprocess.

    Returns the CPU seconds of the child; exits the script with the CLI's output if it fails.
    """
    line = [*featuresql_command(), "--project-dir", str(project)]
    if variables is not None:
        line += ["--vars", json.dumps(dict(variables))]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [*line, command, *arguments], cwd=project, capture_output=True, text=True, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"featuresql {command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def use_test_helpers() -> None:
    """Put ``tests/`` on the import path: the test suite's helpers that start the servers."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


# -- command line ---------------------------------------------------------------------------


def add_data_options(parser: argparse.ArgumentParser, full: Mapping[str, int]) -> None:
    """``--events``, ``--users`` and ``--days`` of the demo data; see ``fill_defaults``."""
    parser.add_argument("--events", type=int, help=f"transactions (default {full['events']:,})")
    parser.add_argument("--users", type=int, help=f"users (default {full['users']:,})")
    parser.add_argument("--days", type=int, help=f"days of data (default {full['days']})")


def fill_defaults(args: argparse.Namespace, defaults: Mapping[str, Any]) -> None:
    """Set every option in ``defaults`` that the command line left out (None)."""
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def split_list(text: str) -> list[str]:
    """The items of a comma-separated option, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_count(text: str) -> int:
    """A count written as ``5000``, ``10k``, ``2.5k`` or ``1M``."""
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * factor)


# -- timing ---------------------------------------------------------------------------------


@dataclass
class Stopwatch:
    started: float  # time.perf_counter() at the start of the block
    wall: float = 0.0
    cpu: float = 0.0  # this process, every thread


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """Wall and CPU seconds of the block (set when it ends), and when it started."""
    times = Stopwatch(time.perf_counter())
    cpu = time.process_time()
    yield times
    times.wall, times.cpu = time.perf_counter() - times.started, time.process_time() - cpu


@dataclass
class Entry:
    """One timed thing: its runs' wall seconds, and the CPU seconds of each."""

    name: str
    label: str
    # "featuresql" (end to end), "query" (featuresql's SQL alone), "baseline", or "inexact"
    # (a baseline known to differ from the semantics: never the best)
    kind: str
    run: Callable[[], float]  # one run; returns its CPU seconds (the wall time is taken around)
    walls: list[float] = field(default_factory=list, kw_only=True)
    cpus: list[float] = field(default_factory=list, kw_only=True)

    def measure(self) -> None:
        started = time.perf_counter()
        cpu = self.run()
        self.walls.append(time.perf_counter() - started)
        self.cpus.append(cpu)

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def best_cpu(self) -> float:
        return self.cpus[self.walls.index(self.best)]


E = TypeVar("E", bound=Entry)


def run_rounds(
    entries: Sequence[E], rounds: int, check: Callable[[E], None], resting: Collection[str]
) -> None:
    """Every entry once per round, in turn, so that background load hits them alike.

    ``check`` sees each entry after its first run. From the second round on, an entry of a
    kind in ``resting`` over ``SLOW_FACTOR`` times the fastest baseline is not run again.
    """
    for round_number in range(rounds):
        for entry in entries:
            fastest = min((e.best for e in entries if e.walls and e.kind == "baseline"), default=0)
            if round_number and entry.kind in resting and entry.best > SLOW_FACTOR * fastest:
                continue  # clearly not the fastest formulation: one run is enough
            entry.measure()
            print(f"  round {round_number + 1}: {entry.name:24s} {entry.walls[-1]:8.2f}s")
            if round_number == 0:
                check(entry)


def timing_header(width: int) -> str:
    return f"{'':{width}s} {'best s':>8s} {'cpu s':>8s} {'vs best':>8s}   all runs (s)"


def timing_row(entry: Entry, best: Entry, width: int) -> str:
    """The entry's best wall and CPU seconds, its ratio to ``best``, and every run."""
    runs = " ".join(f"{wall:.2f}" for wall in entry.walls)
    ratio = f"{entry.best / best.best:.2f}x"
    return f"{entry.name:{width}s} {entry.best:8.2f} {entry.best_cpu:8.2f} {ratio:>8s}   {runs}"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def percentile(values: Sequence[float], share: float) -> float:
    """The value ``share`` of the way through ``values`` (sorted: that percentile); NaN if none."""
    return values[min(len(values) - 1, int(share * len(values)))] if values else float("nan")


def load_average() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def machine_load() -> str:
    cores = os.cpu_count()
    return f"load average {load_average()} on {cores} cores (other work skews every figure)"


def process_status(pid: int | str = "self") -> dict[str, str]:
    """``/proc/<pid>/status`` by field (``VmRSS``, ``VmHWM``, ``Threads``...)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}


# -- comparison -----------------------------------------------------------------------------


def connect(
    database: Path | None = None, *, threads: int | None = None, read_only: bool = False
) -> Any:
    """A DuckDB connection (in memory without ``database``) with the DuckDB adapter's settings:
    ``threads`` (default: all cores) and the UTC session time zone; no progress bar."""
    import duckdb

    connection = duckdb.connect(
        str(database) if database else ":memory:",
        read_only=read_only,
        config={"threads": threads or os.cpu_count() or 1},
    )
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET enable_progress_bar = false")
    return connection


def differs(name: str, kind: str, left: str, right: str) -> str:
    """SQL: column ``name`` of type ``kind`` differs between the aliases ``left`` and ``right``.

    DOUBLE and FLOAT to ``TOLERANCE`` relative, everything else exactly; NULL equals NULL.
    """
    one, other = f'{left}."{name}"', f'{right}."{name}"'
    if kind in ("DOUBLE", "FLOAT"):
        far = f"abs({one} - {other}) > {TOLERANCE} * greatest(abs({one}), abs({other}))"
        return f"(({one} IS NULL) <> ({other} IS NULL) OR {far})"
    return f"{one} IS DISTINCT FROM {other}"


def describe(connection: Any, relation: str) -> list[tuple[str, str]]:
    """(name, type) of each column of ``relation`` (a table, or a subquery in parentheses)."""
    rows = connection.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return [(str(row[0]), str(row[1])) for row in rows]


def _differences(expected: str, actual: str, keys: Sequence[str], values: list[Any]) -> str:
    """Rows of a full join on ``keys`` missing on either side or with a value that differs."""
    on = " AND ".join(f'e."{key}" = a."{key}"' for key in keys)
    missing = [f'e."{keys[0]}" IS NULL', f'a."{keys[0]}" IS NULL']
    where = " OR ".join(missing + [differs(name, kind, "e", "a") for name, kind in values])
    found = ", ".join(f'coalesce(e."{key}", a."{key}") AS "{key}"' for key in keys)
    return (
        f"SELECT {found}, e.*, a.* FROM {expected} AS e FULL JOIN {actual} AS a ON {on} "
        f"WHERE {where}"
    )


def count_differing(connection: Any, expected: str, actual: str, keys: Sequence[str]) -> int:
    """How many rows, by ``keys``, are missing from either relation or differ in a value."""
    values = [column for column in describe(connection, expected) if column[0] not in keys]
    query = _differences(expected, actual, keys, values)
    return int(connection.execute(f"SELECT count(*) FROM ({query})").fetchone()[0])


def compare(
    connection: Any,
    expected: str,
    actual: str,
    keys: Sequence[str],
    *,
    columns: Collection[str] | None = None,
    sample: int = 3,
) -> str | None:
    """None when ``actual`` holds exactly the rows of ``expected``, else what differs.

    Both are relations with the columns ``keys``, unique in ``expected``. They must have the
    same column names and types (of ``columns`` only, when given), the same number of rows, and
    a full join on ``keys`` must find no row missing on either side and no differing value
    (see ``differs``); the first ``sample`` differing rows are shown.
    """

    def compared(relation: str) -> list[tuple[str, str]]:
        found = describe(connection, relation)
        return [c for c in found if columns is None or c[0] in columns or c[0] in keys]

    wanted, got = compared(expected), compared(actual)
    if wanted != got:
        return f"columns differ: expected {wanted}, got {got}"
    key = ", ".join(f'"{name}"' for name in keys)
    counts = connection.execute(
        f"SELECT (SELECT count(*) FROM {expected}), (SELECT count(*) FROM {actual}), "
        f"(SELECT count(*) - count(DISTINCT ({key})) FROM {expected})"
    ).fetchone()
    if counts[0] != counts[1] or counts[2]:
        return f"{counts[1]:,} rows, expected {counts[0]:,} ({counts[2]:,} duplicate keys there)"
    values = [column for column in wanted if column[0] not in keys]
    query = _differences(expected, actual, keys, values)
    bad = int(connection.execute(f"SELECT count(*) FROM ({query})").fetchone()[0])
    if not bad:
        return None
    order = ", ".join(str(n) for n in range(1, len(keys) + 1))
    rows = connection.execute(f"{query} ORDER BY {order} LIMIT {sample}").fetchall()
    lines = "\n  ".join(map(str, rows))
    return f"{bad:,} rows differ; the first:\n  {lines}"

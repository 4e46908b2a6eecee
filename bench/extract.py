"""Benchmark ``featuresql extract`` (point-in-time training sets) against hand-written DuckDB SQL
and Feast.

Run from anywhere (the package must be installed)::

    python bench/extract.py                      # 10M events, 200k users, 180 days; spines 10k-1M
    python bench/extract.py --smoke              # 20k events, 1k users, 40 days: seconds, for CI
    python bench/extract.py --workdir /tmp/fx    # keep the built project and reuse it next time
    python bench/extract.py --events 1000000 --users 20000 --days 90 --sizes 10k,100k

What it does:

1. copies the repository's example project (project.yml, features/, macros/) into a folder,
   with a profiles.yml pointing at ``bench.duckdb`` there, and builds the window model
   ``user_transactions`` with ``featuresql --vars ... run --select user_transactions`` (the
   project's on_run_start hook generates the demo data); this is timed but not counted, and
   skipped when the folder given with ``--workdir`` already holds the table;
2. writes one spine per size to ``spine_<N>.parquet`` (user_id, ts, label), sampled
   deterministically from raw.transactions, with rows of unknown users, rows before any
   data, rows exactly on a feature row's time and exact duplicates (see ``write_spine``);
3. times ``featuresql extract --spine spine_N.parquet --features user_transactions --out
   X.parquet`` end to end in a subprocess (process start, compile, loading the spine, the
   join, writing the parquet); ``--runner api`` times ``featuresql.extract()`` in process;
4. times, in the same rounds, the query featuresql builds run alone (``featuresql_query``)
   and every hand-written DuckDB formulation in BASELINES, each on a fresh read-only
   connection, end to end from the spine parquet to a result parquet with ``COPY``;
5. checks that every result has exactly the spine's rows in the spine's order and the
   same values as featuresql's (DOUBLE to 1e-9 relative) and exits 1 if one differs;
6. times Feast 0.67 ``get_historical_features`` on the same feature table (exported to
   parquet) with its DuckDB and its file (dask) offline store through
   ``bench/feast_baseline.py``, in Feast's own virtual environment, and compares the rows it
   returns with featuresql's;
7. prints the best wall time per size, the ratio to the best hand-written query, the ratio
   to Feast, how featuresql's time grows with the spine, and whether the targets are met.

Each round runs every entry once, in turn, so that background load hits all of them alike.
A formulation slower than SLOW_FACTOR times the best one in the first round is not repeated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from harness import (
    DEMO_FULL,
    Entry,
    add_data_options,
    compare,
    connect,
    copy_example,
    demo_variables,
    differs,
    fill_defaults,
    parse_count,
    run_featuresql,
    run_rounds,
    split_list,
    stopwatch,
    timing_header,
    timing_row,
    verdict,
    work_folder,
    write_profile,
)

FEAST_SCRIPT = Path(__file__).resolve().with_name("feast_baseline.py")
FEAST_PYTHON = Path("/work/feast-venv/bin/python")  # where bench/feast_baseline.py sets it up
MODEL = "user_transactions"
DATABASE = "bench.duckdb"
FEATURES = f"main.{MODEL}"
SPINE_COLUMNS = ("user_id", "ts", "label")
TARGET_RATIO = 1.25  # featuresql / best hand-written query
TARGET_FEAST = 5.0  # Feast's DuckDB store / featuresql

SMOKE = {"events": 20_000, "users": 1_000, "days": 40}
FULL_SIZES = (10_000, 100_000, 1_000_000)
SMOKE_SIZES = (1_000, 5_000)
BIG = 1_000_000  # from this spine size on, --repeat defaults to 2 instead of 3

# Spine composition, in percent of the rows: users without features, times before any data,
# times exactly on a feature row (the day boundary after a settled transaction), duplicates.
UNKNOWN_PCT, EARLY_PCT, ON_ROW_PCT, DUPLICATE_PCT = 2, 1, 5, 1
UNKNOWN_USER = 1_000_000_000  # spine user ids from here on have no features


def mix(value: str, salt: int) -> str:
    """A portable pseudo-random BIGINT in [0, 2^31 - 1) from an integer expression."""
    seed = f"(({value}) * 48271 + {salt * 1000003 + 12345}) % 2147483647"
    return f"(({seed}) * ({seed}) + {salt + 7}) % 2147483647"


# -- hand-written DuckDB formulations ---------------------------------------------------------
#
# Each is a SELECT over {spine} (the spine parquet, read with its row numbers) and FEATURES
# returning the spine's columns in the spine's order, then every feature named
# <model>__<feature>; count-like features are 0 where no row matches (an empty window).
# {cols} is replaced by the list of feature columns, {out} by the output expressions.


@dataclass(frozen=True)
class Formulation:
    label: str
    exact: bool  # False: known to differ from the point-in-time semantics; never "best"
    build: Callable[[str, Sequence[str], frozenset[str]], str]  # (spine, features, counts)


def _outputs(alias: str, features: Sequence[str], counts: frozenset[str], struct: bool) -> str:
    items = []
    for name in features:
        value = f"{alias}.r.{name}" if struct else f"{alias}.{name}"
        if name in counts:
            value = f"coalesce({value}, 0)"
        items.append(f"{value} AS {MODEL}__{name}")
    return ",\n       ".join(items)


def _struct(alias: str, features: Sequence[str]) -> str:
    return "struct_pack(" + ", ".join(f"{c} := {alias}.{c}" for c in features) + ")"


def _spine_cte(spine: str) -> str:
    return (
        f"spine AS (SELECT {', '.join(SPINE_COLUMNS)}, file_row_number AS rn\n"
        f"          FROM read_parquet('{spine}', file_row_number = true))"
    )


def _final(features: Sequence[str], counts: frozenset[str], struct: bool, on: str) -> str:
    spine = ", ".join(f"s.{c}" for c in SPINE_COLUMNS)
    return f"""SELECT {spine},
       {_outputs("m", features, counts, struct)}
FROM spine AS s
LEFT JOIN matched AS m ON {on}
ORDER BY s.rn"""


def asof(spine: str, features: Sequence[str], counts: frozenset[str]) -> str:
    return f"""\
SELECT {", ".join(f"s.{c}" for c in SPINE_COLUMNS)},
       {_outputs("f", features, counts, False)}
FROM read_parquet('{spine}', file_row_number = true) AS s
ASOF LEFT JOIN {FEATURES} AS f ON f.user_id = s.user_id AND s.ts >= f.ts
ORDER BY s.file_row_number"""


def join_row_number(spine: str, features: Sequence[str], counts: frozenset[str]) -> str:
    return f"""\
WITH {_spine_cte(spine)},
matched AS (
    SELECT s.rn, {", ".join(f"f.{c}" for c in features)}
    FROM spine AS s
    JOIN {FEATURES} AS f ON f.user_id = s.user_id AND f.ts <= s.ts
    QUALIFY row_number() OVER (PARTITION BY s.rn ORDER BY f.ts DESC) = 1
)
{_final(features, counts, False, "m.rn = s.rn")}"""


def join_row_number_30d(spine: str, features: Sequence[str], counts: frozenset[str]) -> str:
    # Exact for this window table only (featuresql bounds its join the same way): its longest
    # window is 30 days and it is computed past every spine time, so a row more than 30 days
    # before the spine time can only be one whose windows are all empty, which gives the
    # same values as no match (0 for counts, NULL for the rest).
    bounded = join_row_number(spine, features, counts)
    return bounded.replace(
        "AND f.ts <= s.ts", "AND f.ts <= s.ts AND f.ts >= s.ts - INTERVAL 30 DAY"
    )


def join_row_number_points(spine: str, features: Sequence[str], counts: frozenset[str]) -> str:
    return f"""\
WITH {_spine_cte(spine)},
points AS (SELECT DISTINCT user_id, ts FROM spine),
matched AS (
    SELECT p.user_id, p.ts, {", ".join(f"f.{c}" for c in features)}
    FROM points AS p
    JOIN {FEATURES} AS f ON f.user_id = p.user_id AND f.ts <= p.ts
    QUALIFY row_number() OVER (PARTITION BY p.user_id, p.ts ORDER BY f.ts DESC) = 1
)
{_final(features, counts, False, "m.user_id = s.user_id AND m.ts = s.ts")}"""


def join_arg_max(spine: str, features: Sequence[str], counts: frozenset[str]) -> str:
    return f"""\
WITH {_spine_cte(spine)},
matched AS (
    SELECT s.rn, arg_max({_struct("f", features)}, f.ts) AS r
    FROM spine AS s
    JOIN {FEATURES} AS f ON f.user_id = s.user_id AND f.ts <= s.ts
    GROUP BY s.rn
)
{_final(features, counts, True, "m.rn = s.rn")}"""


def union_struct(spine: str, features: Sequence[str], counts: frozenset[str]) -> str:
    # Feature rows sort before spine rows at equal times (side 0 < 1), so a row at exactly the
    # spine's time matches; the whole row travels as one struct, so its NULLs stay NULL.
    return f"""\
WITH {_spine_cte(spine)},
events AS (
    SELECT user_id, ts, 0 AS side, NULL::BIGINT AS rn, {_struct("f", features)} AS r
    FROM {FEATURES} AS f
    WHERE user_id IN (SELECT user_id FROM spine)
    UNION ALL
    SELECT user_id, ts, 1, rn, NULL FROM spine
),
matched AS (
    SELECT rn, r FROM (
        SELECT side, rn, last_value(r IGNORE NULLS) OVER (
            PARTITION BY user_id ORDER BY ts, side ROWS UNBOUNDED PRECEDING) AS r
        FROM events)
    WHERE side = 1
)
{_final(features, counts, True, "m.rn = s.rn")}"""


def union_last_value(spine: str, features: Sequence[str], counts: frozenset[str]) -> str:
    # One LAST_VALUE(... IGNORE NULLS) per column: a NULL in the matched row is filled from an
    # earlier row, which the point-in-time semantics forbid (DESIGN.md section 3).
    windows = ",\n               ".join(
        f"last_value({c} IGNORE NULLS) OVER w AS {c}" for c in features
    )
    return f"""\
WITH {_spine_cte(spine)},
events AS (
    SELECT user_id, ts, 0 AS side, NULL::BIGINT AS rn, {", ".join(features)}
    FROM {FEATURES}
    WHERE user_id IN (SELECT user_id FROM spine)
    UNION ALL
    SELECT user_id, ts, 1, rn, {", ".join("NULL" for _ in features)} FROM spine
),
matched AS (
    SELECT * EXCLUDE (side) FROM (
        SELECT side, rn,
               {windows}
        FROM events
        WINDOW w AS (PARTITION BY user_id ORDER BY ts, side ROWS UNBOUNDED PRECEDING))
    WHERE side = 1
)
{_final(features, counts, False, "m.rn = s.rn")}"""


BASELINES: dict[str, Formulation] = {
    "asof": Formulation("ASOF LEFT JOIN", True, asof),
    "join_row_number": Formulation(
        "join on key and ts <=, QUALIFY row_number() = 1 per spine row, left join back",
        True,
        join_row_number,
    ),
    "join_row_number_30d": Formulation(
        "join_row_number with f.ts >= s.ts - 30 days: uses the window table's longest window",
        True,
        join_row_number_30d,
    ),
    "join_row_number_points": Formulation(
        "the same per distinct (user_id, ts) of the spine", True, join_row_number_points
    ),
    "join_arg_max": Formulation(
        "join on key and ts <=, arg_max(struct, ts) per spine row, left join back",
        True,
        join_arg_max,
    ),
    "union_struct": Formulation(
        "UNION ALL of feature and spine rows, last_value(struct IGNORE NULLS)",
        True,
        union_struct,
    ),
    "union_last_value": Formulation(
        "UNION ALL, last_value(column IGNORE NULLS) per column: NOT the semantics "
        "(fills a NULL feature from an earlier row)",
        False,
        union_last_value,
    ),
}
DEFAULT_BASELINES = (
    "asof",
    "join_row_number",
    "join_row_number_30d",
    "join_row_number_points",
    "join_arg_max",
)


# -- timed entries --------------------------------------------------------------------------


@dataclass
class ExtractEntry(Entry):
    """A timed entry at one spine size; each run writes its result to ``out``."""

    out: Path
    note: str = ""  # how an inexact baseline differs


@dataclass
class Spine:
    rows: int
    path: Path
    composition: dict[str, int]


@dataclass
class SizeResult:
    spine: Spine
    entries: list[ExtractEntry]
    feast: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def featuresql(self) -> ExtractEntry:
        return self.entries[0]

    @property
    def best_baseline(self) -> ExtractEntry:
        return min((e for e in self.entries if e.kind == "baseline"), key=lambda e: e.best)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.database = workdir / DATABASE
        self.outputs = workdir / "out"
        self.threads: int = args.threads
        self.variables = demo_variables(args.events, args.users, args.days)
        self.features: list[str] = []
        self.counts: frozenset[str] = frozenset()

    # -- set-up ---------------------------------------------------------------------------

    def write_project(self) -> None:
        """The example project, with a profile on bench.duckdb in the same folder."""
        copy_example(self.workdir, ("project.yml", "features", "macros"))
        write_profile(self.workdir, {"type": "duckdb", "path": str(self.database)}, target="dev")

    def connect(self) -> Any:
        return connect(self.database, threads=self.threads, read_only=True)

    def built(self) -> bool:
        if not self.database.exists():
            return False
        with self.connect() as connection:
            found = connection.execute(
                "SELECT count(*) FROM information_schema.tables "
                f"WHERE table_schema = 'main' AND table_name = '{MODEL}'"
            ).fetchone()
        return bool(found and found[0])

    def build(self) -> float:
        """Generate the demo data and build the window model with the CLI; not counted."""
        with stopwatch() as times:
            run_featuresql(self.workdir, "run", "--select", MODEL, variables=self.variables)
        return times.wall

    def stats(self) -> dict[str, Any]:
        with self.connect() as connection:
            row = connection.execute(
                f"""
                SELECT (SELECT count(*) FROM raw.transactions),
                       (SELECT count(DISTINCT user_id) FROM raw.transactions),
                       (SELECT date_diff('day', min(ts), max(ts)) + 1 FROM raw.transactions),
                       (SELECT count(*) FROM {FEATURES}),
                       (SELECT count(DISTINCT user_id) FROM {FEATURES})
                """
            ).fetchone()
            columns = connection.execute(f"DESCRIBE {FEATURES}").fetchall()
        assert row is not None
        self.features = [c[0] for c in columns if c[0] not in ("user_id", "ts")]
        # Count-like features (count, count_distinct) are 0 for an empty window.
        self.counts = frozenset(
            c for c in self.features if c.startswith("count_") or "_count_distinct_" in c
        )
        keys = ("events", "users", "days", "feature_rows", "feature_users")
        return dict(zip(keys, map(int, row), strict=True))

    # -- spines -----------------------------------------------------------------------------

    def write_spine(self, rows: int) -> Spine:
        """``rows`` spine rows from raw.transactions, deterministic, in a shuffled order.

        Transactions are picked by a pseudo-random key (``mix``, integer arithmetic, so the
        spine does not depend on DuckDB's sampling or threads). By position ``i`` among them:
        ``UNKNOWN_PCT`` % get a user id without features, ``EARLY_PCT`` % a time a year
        before any data, ``ON_ROW_PCT`` % (of settled, positive transactions) the next day
        boundary, which is exactly the time of a row of the window table, and the rest the
        transaction time plus 1 to 47 hours. ``DUPLICATE_PCT`` % of the rows are then
        repeated exactly, and all are shuffled.
        """
        duplicates = rows * DUPLICATE_PCT // 100
        picked = rows - duplicates
        path = self.workdir / f"spine_{rows}.parquet"
        query = f"""
            WITH picked AS (
                SELECT *, row_number() OVER (ORDER BY key, transaction_id) - 1 AS i
                FROM (SELECT transaction_id, user_id, ts,
                             status = 'settled' AND amount > 0 AS makes_row,
                             {mix("transaction_id", 1)} AS key
                      FROM raw.transactions
                      ORDER BY key, transaction_id
                      LIMIT {picked})
            ),
            shaped AS (
                SELECT i,
                       CASE WHEN i % 100 < {UNKNOWN_PCT} THEN {UNKNOWN_USER} + i
                            ELSE user_id END AS user_id,
                       CASE WHEN i % 100 < {UNKNOWN_PCT} THEN 'unknown_user'
                            WHEN i % 100 < {UNKNOWN_PCT + EARLY_PCT} THEN 'before_data'
                            WHEN i % 100 < {UNKNOWN_PCT + EARLY_PCT + ON_ROW_PCT}
                                 AND makes_row THEN 'on_feature_row'
                            ELSE 'offset' END AS kind,
                       CASE kind WHEN 'before_data' THEN ts - INTERVAL 365 DAY
                                 WHEN 'on_feature_row' THEN date_trunc('day', ts) + INTERVAL 1 DAY
                                 ELSE ts + to_hours(1 + i % 47) END AS ts,
                       transaction_id % 2 AS label
                FROM picked
            ),
            spine AS (
                SELECT i AS position, user_id, ts, label, kind FROM shaped
                UNION ALL
                SELECT {picked} + i, user_id, ts, label, 'duplicate' FROM shaped
                WHERE i < {duplicates}
            )
            SELECT user_id, ts, label, kind
            FROM spine
            ORDER BY {mix("position", 2)}, position
        """
        with self.connect() as connection:
            available = connection.execute("SELECT count(*) FROM raw.transactions").fetchone()
            assert available is not None
            if available[0] < picked:
                sys.exit(f"a spine of {rows:,} rows needs {picked:,} transactions: use --events")
            connection.execute(
                f"CREATE TEMP TABLE spine AS {query}",
            )
            connection.execute(
                f"COPY (SELECT {', '.join(SPINE_COLUMNS)} FROM spine) TO '{path}' (FORMAT parquet)"
            )
            kinds = dict(
                connection.execute("SELECT kind, count(*) FROM spine GROUP BY 1").fetchall()
            )
        composition = {str(kind): int(count) for kind, count in sorted(kinds.items())}
        return Spine(rows, path, composition)

    # -- the timed entries ------------------------------------------------------------------

    def featuresql_cli(self, spine: Spine, out: Path) -> Callable[[], float]:
        def run() -> float:
            arguments = ("--spine", str(spine.path), "--features", MODEL, "--out", str(out))
            return run_featuresql(self.workdir, "extract", *arguments)

        return run

    def featuresql_api(self, spine: Spine, out: Path) -> Callable[[], float]:
        def run() -> float:
            import pyarrow.parquet as pq
            from featuresql import extract

            with stopwatch() as times:
                table = extract(str(spine.path), MODEL, project_dir=self.workdir)
                pq.write_table(table, out)
            return times.cpu

        return run

    def compiled_query(self, spine: Spine) -> str | None:
        """The SELECT featuresql builds for this extract, reading the spine parquet directly.

        Uses featuresql's internals (as bench/windows.py does); None if they have changed.
        """
        try:
            from featuresql.compile.features import resolve_features
            from featuresql.context import Context
            from featuresql.sql.point_in_time import SpineRelation, point_in_time_query
            from sqlglot import exp

            with Context(self.workdir) as context:
                models = resolve_features(context.compiled.models, MODEL)
                relation = SpineRelation(
                    relation=exp.to_table("__bench_spine"),
                    columns=SPINE_COLUMNS,
                    time=exp.column("ts"),
                    row=exp.column("file_row_number"),
                )
                sql = point_in_time_query(relation, models, "duckdb").sql("duckdb")
        except Exception as exc:  # internals moved: the headline numbers do not need this
            print(f"note: featuresql_query skipped: {type(exc).__name__}: {exc}")
            return None
        source = f"read_parquet('{spine.path}', file_row_number = true)"
        return str(sql).replace("__bench_spine", source)

    def copy_query(self, query: str, out: Path) -> Callable[[], float]:
        """Run ``query`` into a parquet file on a fresh read-only connection."""

        def run() -> float:
            with self.connect() as connection, stopwatch() as times:
                connection.execute(f"COPY (\n{query}\n) TO '{out}' (FORMAT parquet)")
            return times.cpu

        return run

    def output(self, name: str, spine: Spine) -> Path:
        return self.outputs / f"{name}_{spine.rows}.parquet"

    def entries(self, spine: Spine) -> list[ExtractEntry]:
        out = self.output("featuresql", spine)
        if self.args.runner == "cli":
            how, runner = "CLI in a subprocess", self.featuresql_cli(spine, out)
        else:
            how, runner = "Python API in process", self.featuresql_api(spine, out)
        label = f"`featuresql extract` end to end ({how})"
        entries = [ExtractEntry("featuresql", label, "featuresql", runner, out)]
        compiled = self.compiled_query(spine)
        if compiled is not None:
            out = self.output("featuresql_query", spine)
            label = "the query featuresql builds, alone, over the spine parquet (COPY)"
            run = self.copy_query(compiled, out)
            entries.append(ExtractEntry("featuresql_query", label, "query", run, out))
        for name in self.args.baselines:
            formulation = BASELINES[name]
            query = formulation.build(str(spine.path), self.features, self.counts)
            kind = "baseline" if formulation.exact else "inexact"
            out = self.output(name, spine)
            run = self.copy_query(query, out)
            entries.append(ExtractEntry(name, formulation.label, kind, run, out))
        return entries

    # -- Feast ------------------------------------------------------------------------------

    def export_features(self) -> Path:
        """The feature table as parquet for Feast, DECIMAL columns as DOUBLE; not counted."""
        path = self.workdir / "features.parquet"
        if path.exists() and path.stat().st_mtime >= self.database.stat().st_mtime:
            return path
        with self.connect() as connection:
            columns = connection.execute(f"DESCRIBE {FEATURES}").fetchall()
            select = ", ".join(
                f"{name}::DOUBLE AS {name}" if kind.startswith("DECIMAL") else name
                for name, kind, *_ in columns
            )
            partial = path.with_name("features.parquet.partial")
            connection.execute(
                f"COPY (SELECT {select} FROM {FEATURES}) TO '{partial}' (FORMAT parquet)"
            )
        os.replace(partial, path)
        return path

    def feast(self, python: Path, store: str, spine: Spine, features: Path) -> dict[str, Any]:
        out = self.outputs / f"feast_{store}_{spine.rows}.parquet"
        out.unlink(missing_ok=True)
        timeout = self.args.feast_timeout if store == "duckdb" else self.args.feast_file_timeout
        command = [
            str(python),
            str(FEAST_SCRIPT),
            "--features",
            str(features),
            "--spine",
            str(spine.path),
            "--store",
            store,
            "--out",
            str(out),
            "--timeout",
            str(timeout),
            "--memory-gb",
            str(self.args.feast_memory_gb),
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            tail = " ".join(done.stderr.split()[-40:])
            return {"store": store, "status": "error", "error": f"no result line: {tail}"}
        record: dict[str, Any] = json.loads(lines[-1])
        record["seconds_wall"] = round(wall, 3)
        if record.get("status") == "ok":
            featuresql = self.output("featuresql", spine)
            record.update(compare_feast(featuresql, out, self))
        return record


# -- checking -------------------------------------------------------------------------------


def compare_rows(expected: Path, actual: Path, columns: Sequence[str] | None = None) -> str | None:
    """None when ``actual`` has exactly the rows of ``expected`` in the same order, else why not.

    With ``columns``, only those are compared (and the rest of ``actual`` is ignored).
    """

    def numbered(path: Path) -> str:
        return (
            "(SELECT * EXCLUDE (file_row_number), file_row_number AS __row "
            f"FROM read_parquet('{path}', file_row_number = true))"
        )

    with connect() as connection:
        return compare(
            connection, numbered(expected), numbered(actual), ("__row",), columns=columns
        )


def compare_feast(expected: Path, actual: Path, bench: Bench) -> dict[str, Any]:
    """Feast's rows matched to featuresql's on (user_id, ts, label) and their multiplicity.

    Feast does not keep the spine's order and returns integer features as float64 with NaN
    where nothing matched (featuresql: 0 for count-like features, the empty window), so
    values are compared as DOUBLE, and Feast's missing counts read as 0 but counted apart.
    """
    keys = ", ".join(SPINE_COLUMNS)

    def side(path: Path, feast: bool) -> str:
        values, empty = [], "false"
        for name in bench.features:
            column = f'"{name}"' if feast else f'"{MODEL}__{name}"'
            value = f"CASE WHEN isnan({column}::DOUBLE) THEN NULL ELSE {column}::DOUBLE END"
            if feast and name in bench.counts:
                empty = f"{value} IS NULL"
                value = f"coalesce({value}, 0)"
            values.append(f"{value} AS {name}")
        return (
            f"(SELECT {keys}, {', '.join(values)}, {empty} AS empty, true AS present, "
            f"row_number() OVER (PARTITION BY {keys}) AS k FROM read_parquet('{path}'))"
        )

    values_differ = " OR ".join(differs(name, "DOUBLE", "e", "g") for name in bench.features)
    both = "e.present AND g.present"
    query = f"""
        SELECT count(*) FILTER (WHERE e.present AND g.present IS NULL),
               count(*) FILTER (WHERE g.present AND e.present IS NULL),
               count(*) FILTER (WHERE {both} AND ({values_differ})),
               count(*) FILTER (WHERE {both} AND g.empty)
        FROM {side(expected, False)} AS e
        FULL JOIN {side(actual, True)} AS g
          ON {" AND ".join(f"g.{c} = e.{c}" for c in SPINE_COLUMNS)} AND g.k = e.k
    """
    with connect() as connection:
        row = connection.execute(query).fetchone()
    assert row is not None
    missing, extra, differing, null_counts = map(int, row)
    return {
        "missing_rows": missing,
        "extra_rows": extra,
        "differing_rows": differing,
        "null_count_rows": null_counts,
    }


# -- running and reporting ------------------------------------------------------------------


def run_size(bench: Bench, spine: Spine, repeat: int) -> SizeResult:
    entries = bench.entries(spine)
    reference = entries[0].out

    def check(entry: ExtractEntry) -> None:
        check_result(entry, spine, reference)

    run_rounds(entries, repeat, check, resting=("query", "baseline", "inexact"))
    return SizeResult(spine, entries)


def check_result(entry: ExtractEntry, spine: Spine, reference: Path) -> None:
    if entry.kind == "featuresql":
        # Never drops a spine row: exactly the spine, in order, then the features.
        problem = compare_rows(spine.path, entry.out, SPINE_COLUMNS)
        if problem:
            sys.exit(f"MISMATCH: featuresql's spine columns differ from the spine: {problem}")
        return
    problem = compare_rows(reference, entry.out)
    if problem is None:
        return
    if entry.kind == "inexact":
        entry.note = problem.splitlines()[0].split(";")[0]
        print(f"    (expected: {entry.name} is not the semantics: {entry.note})")
        return
    sys.exit(f"MISMATCH: {entry.name} differs from featuresql at {spine.rows:,} rows: {problem}")


def report(result: SizeResult) -> None:
    best = result.best_baseline
    spine = result.spine
    parts = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in spine.composition.items())
    print(f"\nspine of {spine.rows:,} rows ({parts})")
    print("wall-clock seconds, best run; cpu = process CPU of that run")
    print(timing_header(24))
    for entry in result.entries:
        note = "  (best hand-written)" if entry is best else ""
        if entry.kind == "inexact":
            note = f"  (not the semantics: {entry.note or 'no difference on this spine'})"
        print(f"{timing_row(entry, best, 24)}{note}")
    for store, record in result.feast.items():
        description = describe_feast(record, result.featuresql.best)
        if record.get("status") == "ok":
            seconds = float(record["seconds_total"])
            ratio = f"{seconds / best.best:.2f}x"
            print(f"{'feast_' + store:24s} {seconds:8.2f} {'-':>8s} {ratio:>8s}   {description}")
        else:
            print(f"{'feast_' + store:24s} {description}")


def feast_status(record: dict[str, Any]) -> str:
    """How a Feast run ended, in a few words."""
    status = record.get("status")
    if status == "ok":
        missing = int(record.get("missing_rows", 0))
        return f"dropped {missing:,} spine rows" if missing else "every spine row"
    if status == "timeout":
        return f"timeout after {record.get('timeout_seconds'):g} s"
    if status == "out_of_memory":
        return f"out of memory (over {record.get('memory_gb'):g} GiB resident)"
    return f"{status}: {record.get('error') or record.get('signal', '')}"


def describe_feast(record: dict[str, Any], featuresql: float) -> str:
    """Feast's time (spine load + join + write, as feast_baseline.py times it) and rows."""
    if record.get("status") != "ok":
        return feast_status(record)
    seconds = float(record["seconds_total"])
    faster = seconds / featuresql
    versus = (
        f"featuresql {faster:.1f}x faster"
        if faster >= 1
        else f"featuresql {1 / faster:.1f}x slower"
    )
    text = (
        f"{seconds:.2f}s = load {record['seconds_load']:.2f} + join {record['seconds_join']:.2f}"
        f" + write {record['seconds_write']:.2f} (whole process {record['seconds_wall']:.1f}s): "
        f"{versus}; {record['result_rows']:,} rows, {feast_status(record)}"
    )
    differing = int(record.get("differing_rows", 0))
    text += f"; {differing:,} with other values" if differing else "; values equal"
    if record.get("null_count_rows"):
        text += f"; {record['null_count_rows']:,} NULL counts where featuresql has 0"
    return text + f"; peak {record.get('peak_rss_gb', 0):.1f} GB"


def growth(results: list[SizeResult]) -> list[dict[str, Any]]:
    print("\nhow time grows with the spine (best wall seconds):")
    rows = []
    previous: SizeResult | None = None
    for result in results:
        mine, best = result.featuresql.best, result.best_baseline.best
        step = ""
        if previous is not None:
            factor = result.spine.rows / previous.spine.rows
            step = f"  ({mine / previous.featuresql.best:.1f}x the time for {factor:g}x the rows)"
        print(
            f"  {result.spine.rows:>10,} rows: featuresql {mine:7.2f}s, best hand-written "
            f"{best:7.2f}s ({result.best_baseline.name}){step}"
        )
        rows.append({"rows": result.spine.rows, "featuresql": mine, "best_baseline": best})
        previous = result
    return rows


def targets(results: list[SizeResult], stores: Sequence[str]) -> dict[str, Any]:
    last = results[-1]
    ratio = last.featuresql.best / last.best_baseline.best
    print(f"\ntargets (at the largest spine, {last.spine.rows:,} rows):")
    verdicts: dict[str, Any] = {}

    def say(name: str, met: bool | None, text: str, unmeasured: str = "not measured") -> None:
        print(f"  {text}: {unmeasured if met is None else verdict(met)}")
        verdicts[name] = {"met": met, "detail": text}

    say(
        "ratio",
        ratio <= TARGET_RATIO if last.spine.rows >= BIG else None,
        f"featuresql / best hand-written ({last.best_baseline.name}) {ratio:.2f}x "
        f"<= {TARGET_RATIO}x",
        f"not judged below {BIG:,} rows (the CLI's fixed second dominates)",
    )
    duckdb_runs = [r for r in results if r.feast.get("duckdb", {}).get("status") == "ok"]
    if duckdb_runs:
        run = duckdb_runs[-1]
        factor = float(run.feast["duckdb"]["seconds_total"]) / run.featuresql.best
        say(
            "feast_duckdb",
            factor >= TARGET_FEAST,
            f"{factor:.1f}x faster than Feast's DuckDB store at {run.spine.rows:,} rows "
            f">= {TARGET_FEAST:g}x",
        )
    else:
        failed = [r for r in results if "duckdb" in r.feast]
        detail = "; ".join(f"{r.spine.rows:,}: {r.feast['duckdb'].get('status')}" for r in failed)
        met = False if failed else None
        say("feast_duckdb", met, f"faster than Feast's DuckDB store ({detail or 'not run'})")
    file_runs = [(r.spine.rows, r.feast["file"]) for r in results if "file" in r.feast]
    if file_runs:
        broken = [
            record.get("status") != "ok" or bool(record.get("missing_rows"))
            for _, record in file_runs
        ]
        detail = "; ".join(
            f"at {rows:,} rows: {feast_status(record)}" for rows, record in file_runs
        )
        say(
            "feast_file",
            any(broken),
            f"featuresql finishes {last.spine.rows:,} rows in {last.featuresql.best:.2f}s with "
            f"every row; Feast's file store fails or drops rows ({detail})",
        )
    elif "file" in stores:
        say("feast_file", None, "Feast's file store was not run")
    say(
        "no_dropped_rows",
        True,  # checked at every size, or the script stopped with exit 1
        "featuresql returned every spine row, in order, at every size",
    )
    return verdicts


def parse_sizes(text: str) -> list[int]:
    return sorted({parse_count(part) for part in split_list(text)})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_options(parser, DEMO_FULL)
    parser.add_argument(
        "--sizes", help="spine rows, comma-separated, 10k/1M allowed (default 10k,100k,1M)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI (seconds)")
    parser.add_argument(
        "--repeat", type=int, help=f"runs per entry (default 3, 2 from {BIG:,} spine rows)"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="DuckDB threads")
    parser.add_argument(
        "--runner",
        choices=("cli", "api"),
        default="cli",
        help="time `featuresql extract` as a CLI subprocess (default) or the Python API",
    )
    parser.add_argument(
        "--baselines",
        default=",".join(DEFAULT_BASELINES),
        help=f"comma-separated formulations (default {','.join(DEFAULT_BASELINES)}; "
        f"known: {', '.join(BASELINES)})",
    )
    parser.add_argument("--workdir", type=Path, help="build here, keep it, reuse it if built")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", type=Path, help="write a JSON summary here")
    parser.add_argument("--max-ratio", type=float, help="exit 2 if featuresql / best is above")
    feast = parser.add_argument_group("Feast (bench/feast_baseline.py, in its own venv)")
    feast.add_argument(
        "--feast-python",
        type=Path,
        help=f"Feast's Python (default {FEAST_PYTHON} if it exists; off with --smoke)",
    )
    feast.add_argument("--no-feast", action="store_true", help="skip Feast")
    feast.add_argument("--feast-stores", default="duckdb,file", help="offline stores to time")
    feast.add_argument("--feast-duckdb-sizes", help="spine sizes for the DuckDB store (all)")
    feast.add_argument("--feast-file-sizes", help="spine sizes for the file store (the smallest)")
    feast.add_argument(
        "--feast-timeout", type=float, default=1200, help="seconds, DuckDB store (1200)"
    )
    feast.add_argument(
        "--feast-file-timeout", type=float, default=300, help="seconds, file store (300)"
    )
    feast.add_argument(
        "--feast-memory-gb", type=float, default=16, help="resident memory cap, GiB (16)"
    )
    args = parser.parse_args(argv)
    fill_defaults(args, SMOKE if args.smoke else DEMO_FULL)
    default_sizes = SMOKE_SIZES if args.smoke else FULL_SIZES
    args.sizes = parse_sizes(args.sizes) if args.sizes else list(default_sizes)
    if not args.sizes or min(args.sizes) < 100:
        parser.error("--sizes: give spine sizes of at least 100 rows")
    args.baselines = split_list(args.baselines)
    unknown = sorted(set(args.baselines) - set(BASELINES))
    if unknown or not any(BASELINES[name].exact for name in args.baselines):
        parser.error(f"unknown or no exact baselines {unknown}; known: {', '.join(BASELINES)}")
    args.feast_stores = split_list(args.feast_stores)
    if set(args.feast_stores) - {"duckdb", "file"}:
        parser.error("--feast-stores: duckdb and/or file")
    args.feast_duckdb_sizes = (
        parse_sizes(args.feast_duckdb_sizes) if args.feast_duckdb_sizes else args.sizes
    )
    args.feast_file_sizes = (
        parse_sizes(args.feast_file_sizes) if args.feast_file_sizes else args.sizes[:1]
    )
    explicit = args.feast_python is not None
    if args.no_feast or (args.smoke and not explicit):
        args.feast_python = None
    elif not explicit and FEAST_PYTHON.exists():
        args.feast_python = FEAST_PYTHON
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keep = args.keep or args.workdir is not None
    with work_folder("fx-", keep=keep, given=args.workdir) as workdir:
        return benchmark(args, workdir)


def benchmark(args: argparse.Namespace, workdir: Path) -> int:
    bench = Bench(args, workdir)
    bench.write_project()
    bench.outputs.mkdir(exist_ok=True)
    print(
        f"featuresql extract benchmark: DuckDB {duckdb.__version__}, threads={args.threads} "
        f"(featuresql: its default); {workdir}"
    )
    if bench.built():
        print(f"reusing {bench.database} (built before; delete it to rebuild)")
    else:
        print(f"building {MODEL} (not counted): {bench.build():.1f}s")
    stats = bench.stats()
    print(
        f"{stats['events']:,} events, {stats['users']:,} users, {stats['days']} days; "
        f"{MODEL}: {stats['feature_rows']:,} rows, {len(bench.features)} features "
        f"({', '.join(sorted(bench.counts))} count-like)"
    )
    wanted = (args.events, args.users, args.days)
    if (stats["events"], stats["users"], stats["days"]) != wanted:
        print(f"note: the folder was built at another size than {wanted}: using it as it is")
    feast_python: Path | None = args.feast_python
    features_parquet: Path | None = None
    if feast_python is None:
        print(
            "Feast: skipped"
            + ("" if args.no_feast or args.smoke else f" ({FEAST_PYTHON} not found)")
        )
    else:
        started = time.perf_counter()
        features_parquet = bench.export_features()
        seconds = time.perf_counter() - started
        print(f"feature table as parquet for Feast (not counted): {seconds:.1f}s")

    results: list[SizeResult] = []
    for rows in args.sizes:
        spine = bench.write_spine(rows)
        repeat = args.repeat or (2 if rows >= BIG else 3)
        print(f"\n== spine {rows:,} rows, {repeat} rounds")
        result = run_size(bench, spine, repeat)
        print(f"  all {len(result.entries) - 1} results checked against featuresql's")
        if feast_python is not None and features_parquet is not None:
            for store in args.feast_stores:
                sizes = args.feast_duckdb_sizes if store == "duckdb" else args.feast_file_sizes
                if rows in sizes:
                    print(f"  feast {store} store ...", flush=True)
                    record = bench.feast(feast_python, store, spine, features_parquet)
                    result.feast[store] = record
                    print(f"  feast {store}: {describe_feast(record, result.featuresql.best)}")
        results.append(result)

    for result in results:
        report(result)
    curve = growth(results)
    verdicts = targets(results, args.feast_stores if feast_python else [])
    if args.json:
        summary = {
            "duckdb": duckdb.__version__,
            "threads": args.threads,
            "runner": args.runner,
            "data": stats,
            "sizes": [summarise(result) for result in results],
            "growth": curve,
            "targets": verdicts,
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    ratio = results[-1].featuresql.best / results[-1].best_baseline.best
    if args.max_ratio is not None and ratio > args.max_ratio:
        return 2
    return 0


def summarise(result: SizeResult) -> dict[str, Any]:
    best = result.best_baseline
    return {
        "rows": result.spine.rows,
        "composition": result.spine.composition,
        "best_baseline": best.name,
        "entries": {
            e.name: {
                "kind": e.kind,
                "label": e.label,
                "best": round(e.best, 4),
                "cpu": round(e.best_cpu, 4),
                "runs": [round(w, 4) for w in e.walls],
                "vs_best": round(e.best / best.best, 4),
                **({"note": e.note} if e.note else {}),
            }
            for e in result.entries
        },
        "feast": result.feast,
    }


if __name__ == "__main__":
    sys.exit(main())

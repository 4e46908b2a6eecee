"""Benchmark a featuresql window model against hand-written DuckDB SQL for the same table.

Run from anywhere (the package must be installed)::

    python bench/windows.py                      # 10M events, 200k users, 180 days
    python bench/windows.py --smoke              # 50k events, 2k users, 40 days: seconds, for CI
    python bench/windows.py --events 1000000 --users 20000 --days 90 --repeat 2

What it does:

1. builds a fresh project in a temporary folder from the repository's example project
   (project.yml, features/sources.yml, macros/) with a single window model, MODEL_SQL;
2. generates the demo data into a DuckDB file there with the project's own generator
   (macros/demo_data.sql, sized by project vars); this is timed but not counted;
3. times ``featuresql run --select user_windows`` end to end in a subprocess (process
   start, compile, the on_run_start hook, the query, the row count), and the compiled
   query alone on a fresh in-process connection;
4. times every hand-written formulation in BASELINES on a fresh connection to the same
   file with the same threads, as ``CREATE OR REPLACE TABLE ... AS``, like the framework;
5. checks that every result equals the featuresql table (same columns and types, same
   rows; DOUBLE columns to 1e-9 relative) and exits non-zero if one differs;
6. prints the best wall time of the repeated runs and the ratio to the best baseline.

Each round runs every entry once, in turn, so that background load hits all of them alike.
A formulation slower than SLOW_FACTOR times the best one in the first round is not repeated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from harness import (
    DEMO_END,
    DEMO_FULL,
    SLOW_FACTOR,
    Entry,
    add_data_options,
    compare,
    connect,
    copy_example,
    demo_variables,
    fill_defaults,
    generate_demo_data,
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

MODEL = "user_windows"
GRAIN = 86_400
MAX_WINDOW_DAYS = 30
TARGET = 1.3

MODEL_SQL = """\
{{ config(entity='user', timestamp='ts', grain='1 day') }}
-- The benchmarked window model (bench/windows.py).
select
    user_id,
    ts,
    {{ window_count(windows=['1d', '7d', '30d']) }},
    {{ window_sum('amount', ['1d', '7d', '30d']) }},
    {{ window_avg('amount', ['1d', '7d', '30d']) }},
    {{ window_max('amount', ['1d', '7d', '30d']) }},
    {{ window_count_distinct('merchant_category', ['30d']) }}
from {{ source('bank', 'transactions') }}
where status = 'settled'
  and amount > 0
"""

# Hand-written DuckDB SQL for the same table. {hi} is the first boundary (day index) not
# computed; day indexes are epoch_us // one day, exact for the demo data (after 1970).
# Every formulation takes the events of the model's WHERE clause and events before
# boundary {hi} - 1, as featuresql does.
EVENTS = """\
    SELECT user_id, epoch_us(ts) // 86400000000 AS day, amount, merchant_category
    FROM raw.transactions
    WHERE status = 'settled' AND amount > 0
      AND ts < make_timestamp(({hi} - 1) * 86400000000)"""

# Exact distinct counts: a category seen on day d is in the 30-day window at boundaries
# d+1 .. d+30, so it enters at d+1 unless seen in the 30 days before, and leaves at d+31
# unless seen again in the 30 days after; the count is the running sum of these deltas.
CATEGORY_DELTAS = """\
category_gaps AS (
    SELECT user_id, day,
           day - lag(day) OVER w AS since_prev,
           lead(day) OVER w - day AS until_next
    FROM (SELECT DISTINCT user_id, merchant_category, day FROM events
          WHERE merchant_category IS NOT NULL)
    WINDOW w AS (PARTITION BY user_id, merchant_category ORDER BY day)
),
category_deltas AS (
    SELECT user_id, b, sum(d) AS d
    FROM (SELECT user_id, day + 1 AS b, 1 AS d FROM category_gaps
          WHERE since_prev IS NULL OR since_prev > 30
          UNION ALL
          SELECT user_id, day + 31, -1 FROM category_gaps
          WHERE until_next IS NULL OR until_next > 30)
    GROUP BY ALL
)"""

TILES = """\
tiles AS (
    SELECT user_id, day, count(*) AS n, sum(amount) AS amount_sum, max(amount) AS amount_max
    FROM events
    GROUP BY ALL
)"""

# A boundary b is a change point when a tile (user-day) sits at b-1 (it just entered every
# window) or at b-2, b-8, b-31 (it just left the 1, 7 or 30-day window).
POINTS = """\
points AS (
    SELECT DISTINCT user_id, day + o AS b
    FROM tiles, unnest([1, 2, 8, 31]) AS offsets(o)
    WHERE day + o < {hi}
)"""

# The table from a `series` of change points b with their 1-day tile (n, amount_sum,
# amount_max, NULL where none) and distinct-count delta d: RANGE frames over the day index.
# `amount > 0` makes amount non-NULL, so count(*) is also avg's denominator.
SERIES_FRAMES = """\
SELECT user_id,
       make_timestamp(b * 86400000000) AS ts,
       coalesce(n, 0)::BIGINT AS count_1d,
       coalesce(sum(n) OVER w7, 0)::BIGINT AS count_7d,
       coalesce(sum(n) OVER w30, 0)::BIGINT AS count_30d,
       amount_sum AS amount_sum_1d,
       sum(amount_sum) OVER w7 AS amount_sum_7d,
       sum(amount_sum) OVER w30 AS amount_sum_30d,
       amount_sum::DOUBLE / n AS amount_avg_1d,
       (sum(amount_sum) OVER w7)::DOUBLE / sum(n) OVER w7 AS amount_avg_7d,
       (sum(amount_sum) OVER w30)::DOUBLE / sum(n) OVER w30 AS amount_avg_30d,
       amount_max AS amount_max_1d,
       max(amount_max) OVER w7 AS amount_max_7d,
       max(amount_max) OVER w30 AS amount_max_30d,
       coalesce(sum(d) OVER (PARTITION BY user_id ORDER BY b ROWS UNBOUNDED PRECEDING), 0)
           ::BIGINT AS merchant_category_count_distinct_30d
FROM series
WINDOW w7 AS (PARTITION BY user_id ORDER BY b RANGE 6 PRECEDING),
       w30 AS (PARTITION BY user_id ORDER BY b RANGE 29 PRECEDING)
"""

SPARSE_FRAMES = f"""\
WITH events AS (
{EVENTS}
),
{TILES},
{CATEGORY_DELTAS},
{POINTS},
series AS (
    SELECT p.user_id, p.b, t.n, t.amount_sum, t.amount_max, c.d
    FROM points AS p
    LEFT JOIN tiles AS t ON t.user_id = p.user_id AND t.day = p.b - 1
    LEFT JOIN category_deltas AS c ON c.user_id = p.user_id AND c.b = p.b
)
{SERIES_FRAMES}"""

# The same frames, but the change points, their tile and the distinct deltas come from one
# UNION ALL and one GROUP BY instead of DISTINCT points and two joins.
SPARSE_FRAMES_GROUPED = f"""\
WITH events AS (
{EVENTS}
),
{TILES},
{CATEGORY_DELTAS},
series AS (
    SELECT user_id, b, sum(n) AS n, sum(amount_sum) AS amount_sum,
           max(amount_max) AS amount_max, sum(d) AS d
    FROM (SELECT user_id, day + o AS b,
                 CASE WHEN o = 1 THEN n END AS n,
                 CASE WHEN o = 1 THEN amount_sum END AS amount_sum,
                 CASE WHEN o = 1 THEN amount_max END AS amount_max,
                 NULL::INTEGER AS d
          FROM tiles, unnest([1, 2, 8, 31]) AS offsets(o)
          UNION ALL
          SELECT user_id, b, NULL, NULL, NULL, d FROM category_deltas)
    WHERE b < {{hi}}
    GROUP BY user_id, b
)
{SERIES_FRAMES}"""

# Every day from a user's first tile to 30 days after the last, ROWS frames (no range
# search), then keep the change points.
DENSE_ROWS = f"""\
WITH events AS (
{EVENTS}
),
{TILES},
{CATEGORY_DELTAS},
days AS (
    SELECT user_id, unnest(range(min(day) + 1, least(max(day) + 32, {{hi}}))) AS b
    FROM tiles
    GROUP BY user_id
),
dense AS (
    SELECT d.user_id, d.b, t.n, t.amount_sum, t.amount_max, c.d
    FROM days AS d
    LEFT JOIN tiles AS t ON t.user_id = d.user_id AND t.day = d.b - 1
    LEFT JOIN category_deltas AS c ON c.user_id = d.user_id AND c.b = d.b
),
windowed AS (
    SELECT user_id, b, n, amount_sum, amount_max,
           n IS NOT NULL OR lag(n, 1) OVER w IS NOT NULL OR lag(n, 7) OVER w IS NOT NULL
               OR lag(n, 30) OVER w IS NOT NULL AS is_change,
           sum(n) OVER w7 AS n_7d,
           sum(n) OVER w30 AS n_30d,
           sum(amount_sum) OVER w7 AS sum_7d,
           sum(amount_sum) OVER w30 AS sum_30d,
           max(amount_max) OVER w7 AS max_7d,
           max(amount_max) OVER w30 AS max_30d,
           sum(d) OVER (w ROWS UNBOUNDED PRECEDING) AS distinct_30d
    FROM dense
    WINDOW w AS (PARTITION BY user_id ORDER BY b),
           w7 AS (w ROWS 6 PRECEDING),
           w30 AS (w ROWS 29 PRECEDING)
)
SELECT user_id,
       make_timestamp(b * 86400000000) AS ts,
       coalesce(n, 0)::BIGINT AS count_1d,
       coalesce(n_7d, 0)::BIGINT AS count_7d,
       coalesce(n_30d, 0)::BIGINT AS count_30d,
       amount_sum AS amount_sum_1d,
       sum_7d AS amount_sum_7d,
       sum_30d AS amount_sum_30d,
       amount_sum::DOUBLE / n AS amount_avg_1d,
       sum_7d::DOUBLE / n_7d AS amount_avg_7d,
       sum_30d::DOUBLE / n_30d AS amount_avg_30d,
       amount_max AS amount_max_1d,
       max_7d AS amount_max_7d,
       max_30d AS amount_max_30d,
       coalesce(distinct_30d, 0)::BIGINT AS merchant_category_count_distinct_30d
FROM windowed
WHERE is_change
"""

# No tiles: RANGE frames over the raw events plus one probe row per change point, ordered on
# the last day its windows cover; COUNT(DISTINCT ...) OVER a frame for the distinct count.
EVENT_RANGE = f"""\
WITH events AS (
{EVENTS}
),
points AS (
    SELECT DISTINCT user_id, day + o AS b
    FROM (SELECT DISTINCT user_id, day FROM events), unnest([1, 2, 8, 31]) AS offsets(o)
    WHERE day + o < {{hi}}
),
probed AS (
    SELECT user_id, day, amount, merchant_category, false AS probe FROM events
    UNION ALL
    SELECT user_id, b - 1, NULL, NULL, true FROM points
),
windowed AS (
    SELECT user_id, day + 1 AS b, probe,
           count(*) FILTER (WHERE NOT probe) OVER w1 AS n_1d,
           count(*) FILTER (WHERE NOT probe) OVER w7 AS n_7d,
           count(*) FILTER (WHERE NOT probe) OVER w30 AS n_30d,
           sum(amount) OVER w1 AS sum_1d,
           sum(amount) OVER w7 AS sum_7d,
           sum(amount) OVER w30 AS sum_30d,
           max(amount) OVER w1 AS max_1d,
           max(amount) OVER w7 AS max_7d,
           max(amount) OVER w30 AS max_30d,
           count(DISTINCT merchant_category) OVER w30 AS distinct_30d
    FROM probed
    WINDOW w1 AS (PARTITION BY user_id ORDER BY day RANGE CURRENT ROW),
           w7 AS (PARTITION BY user_id ORDER BY day RANGE 6 PRECEDING),
           w30 AS (PARTITION BY user_id ORDER BY day RANGE 29 PRECEDING)
)
SELECT user_id,
       make_timestamp(b * 86400000000) AS ts,
       n_1d AS count_1d,
       n_7d AS count_7d,
       n_30d AS count_30d,
       sum_1d AS amount_sum_1d,
       sum_7d AS amount_sum_7d,
       sum_30d AS amount_sum_30d,
       sum_1d::DOUBLE / nullif(n_1d, 0) AS amount_avg_1d,
       sum_7d::DOUBLE / nullif(n_7d, 0) AS amount_avg_7d,
       sum_30d::DOUBLE / nullif(n_30d, 0) AS amount_avg_30d,
       max_1d AS amount_max_1d,
       max_7d AS amount_max_7d,
       max_30d AS amount_max_30d,
       distinct_30d AS merchant_category_count_distinct_30d
FROM windowed
WHERE probe
"""

# No window functions for the frames: join every change point to the tiles of its 30 days.
SELF_JOIN = f"""\
WITH events AS (
{EVENTS}
),
{TILES},
{POINTS},
category_days AS (
    SELECT DISTINCT user_id, merchant_category, day FROM events
    WHERE merchant_category IS NOT NULL
),
frames AS (
    SELECT p.user_id, p.b,
           coalesce(sum(t.n) FILTER (WHERE t.day = p.b - 1), 0)::BIGINT AS count_1d,
           coalesce(sum(t.n) FILTER (WHERE t.day >= p.b - 7), 0)::BIGINT AS count_7d,
           coalesce(sum(t.n), 0)::BIGINT AS count_30d,
           sum(t.amount_sum) FILTER (WHERE t.day = p.b - 1) AS amount_sum_1d,
           sum(t.amount_sum) FILTER (WHERE t.day >= p.b - 7) AS amount_sum_7d,
           sum(t.amount_sum) AS amount_sum_30d,
           max(t.amount_max) FILTER (WHERE t.day = p.b - 1) AS amount_max_1d,
           max(t.amount_max) FILTER (WHERE t.day >= p.b - 7) AS amount_max_7d,
           max(t.amount_max) AS amount_max_30d
    FROM points AS p
    LEFT JOIN tiles AS t ON t.user_id = p.user_id AND t.day BETWEEN p.b - 30 AND p.b - 1
    GROUP BY p.user_id, p.b
),
distinct_counts AS (
    SELECT p.user_id, p.b, count(DISTINCT c.merchant_category) AS n
    FROM points AS p
    JOIN category_days AS c ON c.user_id = p.user_id AND c.day BETWEEN p.b - 30 AND p.b - 1
    GROUP BY p.user_id, p.b
)
SELECT f.user_id,
       make_timestamp(f.b * 86400000000) AS ts,
       count_1d,
       count_7d,
       count_30d,
       amount_sum_1d,
       amount_sum_7d,
       amount_sum_30d,
       amount_sum_1d::DOUBLE / nullif(count_1d, 0) AS amount_avg_1d,
       amount_sum_7d::DOUBLE / nullif(count_7d, 0) AS amount_avg_7d,
       amount_sum_30d::DOUBLE / nullif(count_30d, 0) AS amount_avg_30d,
       amount_max_1d,
       amount_max_7d,
       amount_max_30d,
       coalesce(d.n, 0) AS merchant_category_count_distinct_30d
FROM frames AS f
LEFT JOIN distinct_counts AS d ON d.user_id = f.user_id AND d.b = f.b
"""

BASELINES: dict[str, tuple[str, str]] = {
    "sparse_frames": ("tiles, change points, RANGE frames (2 joins)", SPARSE_FRAMES),
    "sparse_frames_grouped": (
        "tiles, change points, RANGE frames (1 GROUP BY)",
        SPARSE_FRAMES_GROUPED,
    ),
    "dense_rows": ("tiles, every day, ROWS frames", DENSE_ROWS),
    "event_range": ("RANGE frames over raw events + probe rows", EVENT_RANGE),
    "self_join": ("change points joined to 30 days of tiles", SELF_JOIN),
}

SMOKE = {"events": 50_000, "users": 2_000, "days": 40}


@dataclass
class TableEntry(Entry):
    """A timed entry that builds a table of the DuckDB file."""

    table: str
    sql: str | None = None  # the statement, for SQL entries


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.project = workdir / "project"
        self.database = workdir / "bench.duckdb"
        self.threads: int = args.threads
        self.variables = demo_variables(
            args.events, args.users, args.days, end=DEMO_END, merchants=800, balance_events=0
        )
        end = datetime.fromisoformat(DEMO_END).replace(tzinfo=UTC)
        # The last change point is demo_end + 30 days, where the last day of events leaves
        # the 30-day window: from then on the table no longer depends on `now`, so the CLI
        # (which runs at the wall clock) and this fixed `now` build the same table.
        self.now = end + timedelta(days=MAX_WINDOW_DAYS)
        self.hi = int(self.now.timestamp()) // GRAIN + 1

    # -- set-up ---------------------------------------------------------------

    def write_project(self) -> None:
        copy_example(self.project, ("project.yml", "features/sources.yml", "macros"))
        (self.project / "features" / f"{MODEL}.sql").write_text(MODEL_SQL)
        settings = {
            "type": "duckdb",
            "path": str(self.database),
            "schema": "main",
            "threads": self.threads,
        }
        write_profile(self.project, settings, target="bench")

    def context(self) -> Any:
        from featuresql.context import Context

        return Context(self.project, variables=self.variables)

    def generate(self) -> float:
        """Run the project's on_run_start hook (the demo data generator); not counted."""
        with stopwatch() as times:
            generate_demo_data(self.project, self.variables)
        return times.wall

    def connect(self) -> Any:
        return connect(self.database, threads=self.threads)

    def stats(self) -> dict[str, int]:
        query = f"""
            WITH events AS ({EVENTS.replace("{hi}", str(self.hi))})
            SELECT (SELECT count(*) FROM raw.transactions),
                   (SELECT count(*) FROM events),
                   (SELECT count(DISTINCT user_id) FROM events),
                   (SELECT count(*) FROM (SELECT DISTINCT user_id, day FROM events))
        """
        with self.connect() as connection:
            row = connection.execute(query).fetchone()
        assert row is not None
        return dict(zip(("events", "settled", "users", "tiles"), map(int, row), strict=True))

    # -- the timed entries ------------------------------------------------------

    def featuresql_cli(self) -> float:
        return run_featuresql(self.project, "run", "--select", MODEL, variables=self.variables)

    def featuresql_api(self) -> float:
        with stopwatch() as times, self.context() as context:
            result = context.run(select=(MODEL,), now=self.now)
        if not result.ok:
            sys.exit(f"featuresql run failed: {result.results}")
        return times.cpu

    def compiled_query(self) -> str:
        from featuresql.run.statements import model_query

        with self.context() as context:
            query = model_query(context.compiled.models[MODEL], context.dialect, self.now)
            return str(query.sql(context.dialect, pretty=True))

    def sql_entry(self, name: str, label: str, kind: str, query: str) -> TableEntry:
        """Time ``query`` as CREATE OR REPLACE TABLE on a fresh connection, as a run would."""
        table = f"main.bench_{name}"
        statement = f"CREATE OR REPLACE TABLE {table} AS\n{query}"

        def run() -> float:
            with self.connect() as connection, stopwatch() as times:
                connection.execute(statement)
            return times.cpu

        return TableEntry(name, label, kind, run, table, statement)

    def entries(self) -> list[TableEntry]:
        runner = self.featuresql_cli if self.args.runner == "cli" else self.featuresql_api
        how = "CLI in a subprocess" if self.args.runner == "cli" else "Python API, in process"
        label = f"`featuresql run` end to end ({how})"
        entries = [
            TableEntry("featuresql", label, "featuresql", runner, MODEL),
            self.sql_entry(
                "featuresql_sql",
                "the query featuresql compiles, alone",
                "query",
                self.compiled_query(),
            ),
        ]
        for name in self.args.baselines:
            label, template = BASELINES[name]
            query = template.replace("{hi}", str(self.hi))
            entries.append(self.sql_entry(name, label, "baseline", query))
        return entries

    # -- checking -----------------------------------------------------------------

    def check_equal(self, entry: TableEntry) -> None:
        """Fail loudly unless the entry's table holds exactly the rows of the featuresql table."""
        if entry.kind == "featuresql":
            return
        with self.connect() as connection:
            problem = compare(connection, MODEL, entry.table, ("user_id", "ts"), sample=5)
        if problem:
            sys.exit(f"MISMATCH: {entry.table} differs from featuresql: {problem}")

    # -- profiling ----------------------------------------------------------------

    def profile(self, entries: list[TableEntry], folder: Path) -> None:
        """EXPLAIN ANALYZE-style JSON profiles of every query, and their costliest operators."""
        folder.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            if entry.sql is None:
                continue
            path = folder / f"{entry.name}.json"
            with self.connect() as connection:
                connection.execute("PRAGMA enable_profiling = 'json'")
                connection.execute(f"PRAGMA profiling_output = '{path}'")
                connection.execute(entry.sql)
            tree = json.loads(path.read_text())
            print(f"\n{entry.name}: cpu {tree['query']['cpu_time']:.1f}s; profile {path}")
            for seconds, rows, name, info in _top_operators(tree)[:6]:
                print(f"  {seconds:7.2f}s  {rows:>12,} rows  {name:16s} {info}")


def _top_operators(tree: dict[str, Any]) -> list[tuple[float, int, str, str]]:
    found: list[tuple[float, int, str, str]] = []

    def visit(node: dict[str, Any]) -> None:
        info = node.get("extra_info", {})
        detail = info.get("CTE Name") or info.get("Join Type") or ""
        if node.get("name") == "WINDOW":
            detail = f"{len(info.get('Projections', []))} window expressions"
        if node.get("name") == "HASH_GROUP_BY":
            detail = f"groups {info.get('Groups')}"
        found.append(
            (node.get("timing", 0.0), node.get("intermediate_rows", 0), node["name"], detail)
        )
        for child in node.get("children", []):
            visit(child)

    for node in tree.get("operator", tree.get("children", [])):
        visit(node)
    return sorted(found, reverse=True)


def report(entries: list[TableEntry], repeat: int) -> Entry:
    """Print the table; return the best baseline."""
    best = min((e for e in entries if e.kind == "baseline"), key=lambda e: e.best)
    print(f"\nwall-clock seconds, best of up to {repeat} runs; cpu = process CPU of that run")
    print(f"(a baseline over {SLOW_FACTOR:g}x the best after the first round ran only once)")
    print(timing_header(22))
    for entry in entries:
        print(timing_row(entry, best, 22))
    print()
    for entry in entries:
        print(f"{entry.name:22s} {entry.label}{'  (best baseline)' if entry is best else ''}")
    return best


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_options(parser, DEMO_FULL)
    parser.add_argument("--smoke", action="store_true", help="tiny size for CI (seconds)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per entry; the best counts")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="DuckDB threads")
    parser.add_argument(
        "--runner",
        choices=("cli", "api"),
        default="cli",
        help="time `featuresql run` as a CLI subprocess (default) or through the Python API",
    )
    parser.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help=f"comma-separated formulations to time (default all: {', '.join(BASELINES)})",
    )
    parser.add_argument("--profile", type=Path, help="also write DuckDB JSON profiles here")
    parser.add_argument("--max-ratio", type=float, help="exit 2 if featuresql / best is above")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    fill_defaults(args, SMOKE if args.smoke else DEMO_FULL)
    args.baselines = split_list(args.baselines)
    unknown = sorted(set(args.baselines) - set(BASELINES))
    if unknown or not args.baselines:
        parser.error(f"unknown baselines {unknown}; known: {', '.join(BASELINES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with work_folder("featuresql-bench-", keep=args.keep) as workdir:
        return benchmark(args, workdir)


def benchmark(args: argparse.Namespace, workdir: Path) -> int:
    bench = Bench(args, workdir)
    if args.runner == "cli" and datetime.now(UTC) < bench.now:
        sys.exit(f"the CLI runs at the wall clock, which is before {bench.now}: use --runner api")
    bench.write_project()
    print(
        f"featuresql window benchmark: {args.events:,} events, {args.users:,} users, "
        f"{args.days} days; DuckDB {duckdb.__version__}, threads={args.threads}; {workdir}"
    )
    print(f"data generation (not counted): {bench.generate():.1f}s")
    stats = bench.stats()
    print(
        f"{stats['settled']:,} settled events of {stats['events']:,}; "
        f"{stats['users']:,} users; {stats['tiles']:,} user-days; now = {bench.now:%Y-%m-%d}"
    )
    entries = bench.entries()
    run_rounds(entries, args.repeat, bench.check_equal, resting=("baseline",))
    print(f"all {len(entries) - 1} results equal the featuresql table")
    best = report(entries, args.repeat)
    ratio = entries[0].best / best.best
    print(
        f"\nfeaturesql / best baseline ({best.name}): {ratio:.2f}x end to end, "
        f"{entries[1].best / best.best:.2f}x query only "
        f"(target <= {TARGET}x: {verdict(ratio <= TARGET)})"
    )
    if args.profile:
        bench.profile(entries, args.profile)
    if args.max_ratio is not None and ratio > args.max_ratio:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

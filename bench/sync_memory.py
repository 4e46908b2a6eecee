"""Peak memory of a long ``featuresql sync``: it must not grow with the number of entities.

    bash ci/in_private_network.sh python bench/sync_memory.py          # 100k, 1M: DynamoDB Local
    python bench/sync_memory.py --store dynalite       # the same on dynalite (no namespace needed)
    python bench/sync_memory.py --store local          # the local SQLite store: quicker
    bash ci/in_private_network.sh python bench/sync_memory.py --smoke  # 5k and 20k: for CI

For each size N, a fresh project (``online_project``): ``raw.users`` with N users in its
DuckDB file and ``featuresql run`` (in this process, not measured), then ``run_sync`` of the
model ``narrow`` (5 features: BIGINT, DOUBLE and a string; here over every user) in a child
process, which is what is measured: its resident memory once the project is open (imports,
DuckDB, the store's client), sampled every 0.1 s during the sync, its peak (``ru_maxrss`` of
the child, from ``wait4``), and DuckDB's own buffers at their peak, by ``duckdb_memory()`` tag.
Sync streams the changed rows from DuckDB in batches of 10,000 and keeps at most
``2 x workers`` batches of items in flight, so featuresql's own memory should not grow with
N; DuckDB, in the same process, holds the staged changed rows up to its ``memory_limit``
(``--duckdb-memory-limit 64MB`` sets it in the project's profiles.yml). The script prints
each size, then the growth of the peak.

Stores: ``dynamodb`` (default) is AWS's DynamoDB Local and featuresql's real write path
(TransactWriteItems of 100 conditional puts on ``--workers`` threads); it listens on every
interface, so it runs only inside ``ci/in_private_network.sh``. ``dynalite`` lacks
TransactWriteItems, so there sync writes through ``dynalite_store.BatchWriteStore``
(BatchWriteItem, the same items). ``local`` is the embedded SQLite store. Exit status 1 when a
sync writes a different number of items than N; memory figures never fail the run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import (
    load_average,
    parse_count,
    percentile,
    process_status,
    split_list,
    work_folder,
    write_profile,
)
from online_project import (
    PROJECT,
    SECOND_MODEL,
    build_project,
    dynamodb_settings,
    isolated_aws_environment,
    local_settings,
    running_server,
)

SAMPLE_SECONDS = 0.1
STORES = ("dynamodb", "dynalite", "local")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100k,1M", help="entities per sync, e.g. 100k,1M")
    parser.add_argument("--store", choices=STORES, default="dynamodb")
    parser.add_argument("--workers", type=int, default=4, help="DynamoDB writer threads")
    parser.add_argument(
        "--duckdb-memory-limit", help="the DuckDB target's memory_limit, e.g. 64MB (profiles.yml)"
    )
    parser.add_argument("--smoke", action="store_true", help="5k and 20k entities, for CI")
    parser.add_argument("--json", type=Path, help="write a summary here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes = "5k,20k"
    args.sizes = [parse_count(text) for text in split_list(args.sizes)]
    return args


def megabytes(kilobytes: float) -> str:
    return f"{kilobytes / 1024:,.0f} MB"


# -- the child: one sync, measured -------------------------------------------------------------


def resident_kb(pid: int | str = "self") -> int | None:
    """VmRSS of a process in kB, or None once it has gone."""
    try:
        return int(process_status(pid)["VmRSS"].split()[0])
    except (OSError, KeyError):  # gone, or a zombie: no memory left
        return None


@contextmanager
def sampling(sample: Callable[[], None]) -> Iterator[None]:
    """``sample()`` every ``SAMPLE_SECONDS`` in a thread while the block runs."""
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            sample()
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=loop, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        done.set()
        sampler.join()


def child(folder: Path, store_kind: str) -> None:
    """Sync ``narrow`` in ``folder``; print JSON: RSS once open, items, seconds, DuckDB's peak."""
    from featuresql.context import Context
    from featuresql.online.sync import run_sync

    context = Context(folder)
    store = None
    if store_kind == "dynalite":
        from dynalite_store import open_batch_write_store

        store = open_batch_write_store(context)
    context.connect_waiting(time.monotonic())
    _ = context.compiled
    opened = resident_kb()
    with duckdb_peak(context.adapter.connection) as duckdb_kb:
        started = time.perf_counter()
        result = run_sync(context, select=(SECOND_MODEL,), store=store).models[0]
        seconds = time.perf_counter() - started
    context.close()
    print(
        json.dumps(
            {
                "opened_kb": opened,
                "written": result.written,
                "changed": result.changed,
                "seconds": seconds,
                "started": time.time() - seconds,
                "duckdb_kb": duckdb_kb[0],
                "duckdb_tags_kb": duckdb_kb[1],
            }
        )
    )


@contextmanager
def duckdb_peak(connection: Any) -> Iterator[list[Any]]:
    """The most memory DuckDB's buffer manager held during the block (kB), and by what.

    ``[0]`` after the block is the peak, ``[1]`` its parts by ``duckdb_memory()`` tag.

    Sampled from a second connection to the same database (tables, in-memory temporary
    tables, hash tables...): the part of the process's memory that is the warehouse's,
    not featuresql's.
    """
    cursor = connection.cursor()
    peak: list[Any] = [0, {}]

    def sample() -> None:
        query = "select tag, memory_usage_bytes // 1024 from duckdb_memory()"
        tags = {tag: kb for tag, kb in cursor.execute(query).fetchall() if kb}
        if sum(tags.values()) > peak[0]:
            peak[:] = [sum(tags.values()), tags]

    try:
        with sampling(sample):
            yield peak
    finally:
        cursor.close()


# -- the parent ---------------------------------------------------------------------------------


@contextmanager
def running_store(kind: str, folder: Path) -> Iterator[str | None]:
    """The store's server for the whole run; yields its endpoint (None for the local store)."""
    if kind == "local":
        yield None
    else:
        with running_server(kind, folder) as endpoint_url:
            yield endpoint_url


def prepare(folder: Path, entities: int, online: str, memory_limit: str | None) -> None:
    """The project with ``entities`` users, built by ``featuresql run`` (not measured)."""
    if memory_limit:
        folder.mkdir(parents=True)
        settings = {"type": "duckdb", "path": f"target/{PROJECT}.duckdb"}
        write_profile(folder, {**settings, "memory_limit": memory_limit}, target="dev")
    build_project(folder, online, entities, narrow_entities=None).close()


def measure(folder: Path, store_kind: str) -> dict[str, float]:
    """Run the child on ``folder``; its figures, RSS samples and peak (ru_maxrss)."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(folder),
        "--store",
        store_kind,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []

    def sample() -> None:
        rss = resident_kb(process.pid)
        if rss is not None:
            samples.append((time.time(), rss))

    with sampling(sample):
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"the sync child failed (exit {process.returncode}): see above")
    figures = json.loads(output.strip().splitlines()[-1])
    during = [rss for moment, rss in samples if moment >= figures["started"]]
    if samples:  # when the highest sample came, as a share of the sync's duration
        moment = max(samples, key=lambda sample: sample[1])[0]
        figures["peak_at"] = (moment - figures["started"]) / figures["seconds"]
    figures["peak_kb"] = usage.ru_maxrss  # kB on Linux
    figures["quartiles_kb"] = quartile_samples(during)
    return figures


def quartile_samples(values: list[int]) -> list[int]:
    """The samples at 25, 50, 75 and 100% of the sync's duration."""
    if not values:
        return []
    return [int(percentile(values, q / 4)) for q in (1, 2, 3, 4)]


def run(args: argparse.Namespace, folder: Path, endpoint: str | None) -> list[dict[str, float]]:
    rows = []
    for entities in args.sizes:
        project = folder / f"project_{entities}"
        online = (
            local_settings()
            if endpoint is None
            else dynamodb_settings(endpoint, args.workers, table=f"bench_sync_memory_{entities}")
        )
        started = time.perf_counter()
        prepare(project, entities, online, args.duckdb_memory_limit)
        print(f"\n{entities:,} entities: project built in {time.perf_counter() - started:.1f}s")
        figures = {"entities": entities, **measure(project, args.store)}
        rows.append(figures)
        quartiles = ", ".join(megabytes(kb) for kb in figures["quartiles_kb"])
        print(
            f"  synced {figures['written']:,} items in {figures['seconds']:.1f}s "
            f"({figures['written'] / figures['seconds']:,.0f} items/s); RSS once open "
            f"{megabytes(figures['opened_kb'])}, during the sync (25/50/75/100%) {quartiles}, "
            f"peak {megabytes(figures['peak_kb'])} (sampled highest at "
            f"{figures.get('peak_at', float('nan')):.0%} of the sync)"
        )
        tags = sorted(figures["duckdb_tags_kb"].items(), key=lambda tag: -tag[1])
        parts = ", ".join(f"{tag} {megabytes(kb)}" for tag, kb in tags)
        print(f"  DuckDB's buffers at their peak: {megabytes(figures['duckdb_kb'])} ({parts})")
        if endpoint is None:
            shutil.rmtree(project / "target" / "online", ignore_errors=True)
    return rows


def report(rows: list[dict[str, float]]) -> list[str]:
    columns = ("entities", 10), ("items", 10), ("seconds", 8), ("items/s", 8), ("RSS open", 9)
    columns += ("peak RSS", 9), ("peak - open", 12), ("DuckDB peak", 12)
    print("\n" + " ".join(f"{name:>{width}s}" for name, width in columns))
    problems = []
    for row in rows:
        growth = row["peak_kb"] - row["opened_kb"]
        print(
            f"{row['entities']:>10,} {row['written']:>10,} {row['seconds']:>8.1f} "
            f"{row['written'] / row['seconds']:>8,.0f} {megabytes(row['opened_kb']):>9s} "
            f"{megabytes(row['peak_kb']):>9s} {megabytes(growth):>12s} "
            f"{megabytes(row['duckdb_kb']):>12s}"
        )
        if row["written"] != row["entities"] or row["changed"] != row["entities"]:
            problems.append(f"{row['entities']:,} entities: {row['written']:,} written")
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        times = large["entities"] / small["entities"]
        ratio = large["peak_kb"] / small["peak_kb"]
        print(
            f"peak RSS at {times:.0f}x the entities: {ratio:.2f}x ({megabytes(small['peak_kb'])} "
            f"-> {megabytes(large['peak_kb'])})"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    isolated_aws_environment()
    if args.child:
        child(args.child, args.store)
        return 0
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    with work_folder("featuresql-bench-sync-memory-", keep=args.keep) as folder:
        limit = args.duckdb_memory_limit or "DuckDB's default"
        sizes = ", ".join(f"{n:,}" for n in args.sizes)
        print(
            f"sync memory: store {args.store}, {args.workers} writer threads, sizes {sizes}, "
            f"memory_limit {limit}; load average {load_average()}"
        )
        started = time.perf_counter()
        with running_store(args.store, folder) as endpoint:
            rows = run(args, folder, endpoint)
        problems = report(rows)
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"this process's own peak (set-up, not the sync): {megabytes(own)}")
        if args.json:
            summary = {"store": args.store, "rows": rows, "problems": problems}
            args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"total {time.perf_counter() - started:.0f}s; {len(problems)} problem(s)")
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

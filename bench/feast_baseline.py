"""Feast baseline for the point-in-time join benchmark.

Times Feast's ``get_historical_features`` on a feature parquet and a spine parquet, with
either Feast's DuckDB (ibis) offline store or its file (dask) offline store, and prints one
JSON line.

Feast has heavy dependencies, so this script runs in a virtual environment of its own, never
in the project's ``.venv``.  Set it up (Python 3.11; about 40 s with a warm network)::

    /root/.pyenv/versions/3.11.7/bin/python -m venv /work/feast-venv
    /work/feast-venv/bin/pip install "feast[duckdb]==0.67.*" duckdb "dask[dataframe]"

and run it with that interpreter::

    /work/feast-venv/bin/python bench/feast_baseline.py \\
        --features FEATURES.parquet --spine SPINE.parquet --store duckdb --out OUT.parquet \\
        [--timeout SECONDS] [--memory-gb GB] [--keep-repo]

Inputs:

* ``FEATURES.parquet``: ``user_id`` (int64), ``ts`` (naive timestamp meaning UTC) and numeric
  feature columns, one row per user and change time.  Decimal columns are cast to float64
  (Feast has no decimal type) into a copy in the temporary repository, outside the timings.
* ``SPINE.parquet``: ``user_id`` (int64), ``ts`` (naive UTC timestamp), ``label`` (int64);
  duplicate rows are allowed.

The script builds a throw-away Feast repository in code (local provider, SQLite online store
and file registry in a temporary folder, an entity ``user`` keyed by ``user_id``, a
``FileSource`` on the feature parquet and one ``FeatureView`` over every feature column with
``ttl=timedelta(0)``, which both offline stores treat as "no TTL": the dask store checks
``ttl and ttl.total_seconds() != 0`` and the ibis/DuckDB store checks ``if ttl:``), applies it,
then times:

1. ``seconds_load``: reading the spine parquet into pandas and making the entity frame
   (``ts`` renamed to ``event_timestamp``, tz-aware UTC);
2. ``seconds_join``: ``store.get_historical_features(entity_df, features).to_df()``;
3. ``seconds_write``: writing the result (``event_timestamp`` renamed back to a naive UTC
   ``ts``) to ``OUT.parquet``.

``seconds_total`` is the sum of the three; ``seconds_setup`` (decimal cast and repository
apply) is reported apart, and so is ``peak_rss_gb``, the child's peak resident memory.

The work runs in a child process (its own process group; whatever it prints goes to stderr)
watched by this one, which kills the group when ``--timeout`` seconds have passed (DuckDB and
dask do not return to Python while they compute, so an alarm signal would not do) or when
the group's resident memory goes over ``--memory-gb`` GiB (polled every 0.1 s).  An address
space cap (``RLIMIT_AS``) was tried and dropped: it counts virtual memory, which is far above
the resident size here (a run peaking at 1.6 GB resident failed under a 4 GiB cap with
"can't start new thread").  Outcomes, always one JSON line on stdout:

* ``{"store", "status": "ok", "spine_rows", "result_rows", "seconds_total", "seconds_join",
  ...}`` and exit 0;
* ``{"store", "status": "timeout", "timeout_seconds"}`` and exit 124;
* ``{"store", "status": "out_of_memory", "memory_gb"}`` and exit 1;
* ``{"store", "status": "error", "error"}`` (e.g. ``MemoryError``), with the same one-line
  message on stderr, and exit 1; a child killed by a signal (the kernel's OOM killer) gives
  ``"status": "killed"``.

Known behaviour of Feast 0.67 (checked against a brute-force as-of join): both stores pick
the latest feature row with ``ts <= spine ts`` (equal times included) and their values match;
neither keeps the spine's row order; integer features come back as float64 (pandas fills
unmatched rows with NaN).  The DuckDB store keeps every spine row, duplicates included, with
nulls where nothing matches.  The file (dask) store drops spine rows whose user has feature
rows but none at or before the spine time, collapses spine rows with equal ``(user_id, ts)``
to one (losing a label where they differ), and on a large feature table it is slow and memory
hungry (34M feature rows: 64 s for a 1k spine, out of memory at 20 GB for a 10k spine), so
give it ``--timeout`` and ``--memory-gb`` at big sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore

PROJECT = "pit_bench"
VIEW = "user_features"
ENTITY_KEY = "user_id"
TIMESTAMP = "ts"
EXIT_ERROR = 1
EXIT_TIMEOUT = 124
POLL_SECONDS = 0.1
RESULT_FILE = "result.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--features", required=True, type=Path, help="feature table parquet")
    parser.add_argument("--spine", required=True, type=Path, help="spine parquet")
    parser.add_argument("--store", required=True, choices=["duckdb", "file"], help="offline store")
    parser.add_argument("--out", required=True, type=Path, help="result parquet to write")
    parser.add_argument(
        "--timeout", type=float, help="stop after this many seconds (the whole child run)"
    )
    parser.add_argument(
        "--memory-gb",
        type=float,
        help="stop when the child's resident memory goes over this many GiB",
    )
    parser.add_argument(
        "--keep-repo", action="store_true", help="keep the temporary Feast repository"
    )
    parser.add_argument("--repo-dir", type=Path, help=argparse.SUPPRESS)  # child only
    return parser.parse_args(argv)


def emit(record: dict[str, Any]) -> None:
    """Print the one JSON result line."""
    print(json.dumps(record), flush=True)


# --------------------------------------------------------------------------- parent


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in a process group, from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:  # the process has gone
            continue
        if int(fields[2]) == pgid:  # fields after "comm": state, ppid, pgrp, ...
            total += int(fields[21]) * page  # rss, in pages
    return total


def kill_group(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def watch(child: subprocess.Popen[bytes], timeout: float | None, cap: int | None) -> str | None:
    """Wait for the child; kill its group and say why on a timeout or over the memory cap."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while child.poll() is None:
        if deadline is not None and time.monotonic() >= deadline:
            kill_group(child)
            return "timeout"
        if cap is not None and group_rss_bytes(child.pid) > cap:
            kill_group(child)
            return "out_of_memory"
        time.sleep(POLL_SECONDS)
    return None


def run_parent(args: argparse.Namespace) -> int:
    """Run the benchmark in a child process, watch its time and memory, report the outcome."""
    repo_dir = Path(tempfile.mkdtemp(prefix="feast_baseline_"))
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--features",
        str(args.features.resolve()),
        "--spine",
        str(args.spine.resolve()),
        "--store",
        args.store,
        "--out",
        str(args.out.resolve()),
        "--repo-dir",
        str(repo_dir),
    ]
    cap = None if args.memory_gb is None else int(args.memory_gb * 1024**3)
    # Whatever Feast, dask or DuckDB print goes to stderr; the child's record comes in a file.
    child = subprocess.Popen(cmd, stdout=sys.stderr, start_new_session=True)
    try:
        stopped = watch(child, args.timeout, cap)
        result_file = repo_dir / RESULT_FILE
        record = json.loads(result_file.read_text()) if result_file.exists() else None
    except KeyboardInterrupt:
        kill_group(child)
        raise
    finally:
        if args.keep_repo:
            print(f"feast_baseline: repository kept in {repo_dir}", file=sys.stderr)
        else:
            shutil.rmtree(repo_dir, ignore_errors=True)
    # Peak resident memory of the largest waited-for descendant, i.e. the child.
    peak_gb = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2, 3)
    if stopped == "timeout":
        emit({"store": args.store, "status": "timeout", "timeout_seconds": args.timeout})
        return EXIT_TIMEOUT
    if stopped == "out_of_memory":
        print(f"feast_baseline: resident memory went over {args.memory_gb} GB", file=sys.stderr)
        emit({"store": args.store, "status": "out_of_memory", "memory_gb": args.memory_gb})
        return EXIT_ERROR
    code = child.returncode
    if code < 0:  # killed by a signal, most likely the kernel's OOM killer
        name = signal.Signals(-code).name
        print(f"feast_baseline: child killed by {name}", file=sys.stderr)
        emit({"store": args.store, "status": "killed", "signal": name})
        return EXIT_ERROR
    if record is None:
        message = f"child exited with {code} without a result"
        print(f"feast_baseline: {message}", file=sys.stderr)
        emit({"store": args.store, "status": "error", "error": message})
        return EXIT_ERROR
    record["peak_rss_gb"] = peak_gb
    emit(record)
    return code


# --------------------------------------------------------------------------- child


def feast_type(arrow_type: Any) -> Any:
    """The Feast type for a numeric arrow type (decimals are cast to float64 beforehand)."""
    import pyarrow as pa
    from feast import types

    if pa.types.is_boolean(arrow_type):
        return types.Bool
    if pa.types.is_integer(arrow_type):
        return types.Int32 if arrow_type.bit_width <= 32 else types.Int64
    if pa.types.is_floating(arrow_type):
        return types.Float32 if arrow_type.bit_width <= 32 else types.Float64
    raise TypeError(f"unsupported feature column type {arrow_type}")


def prepare_features(path: Path, repo_dir: Path) -> tuple[Path, dict[str, Any], int]:
    """Return the parquet Feast should read, its feature columns' Feast types and row count.

    Decimal columns are cast to float64 into a copy inside the repository folder.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    rows = pq.ParquetFile(path).metadata.num_rows
    for required in (ENTITY_KEY, TIMESTAMP):
        if required not in schema.names:
            raise ValueError(f"{path} has no column {required!r}")
    decimals = [f.name for f in schema if pa.types.is_decimal(f.type)]
    if decimals:
        table = pq.read_table(path)
        for name in decimals:
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, table.column(name).cast(pa.float64()))
        path = repo_dir / "features.parquet"
        pq.write_table(table, path)
        schema = table.schema
        del table
    features = {f.name: feast_type(f.type) for f in schema if f.name not in (ENTITY_KEY, TIMESTAMP)}
    if not features:
        raise ValueError(f"{path} has no feature columns")
    return path, features, rows


def build_store(
    store_type: str, features_path: Path, features: dict[str, Any], repo_dir: Path
) -> FeatureStore:
    """A Feast repository in code: entity, file source and one feature view, applied."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.types import Int64

    config = RepoConfig(
        project=PROJECT,
        provider="local",
        registry=str(repo_dir / "registry.db"),
        online_store={"type": "sqlite", "path": str(repo_dir / "online_store.db")},
        offline_store={"type": store_type},
        entity_key_serialization_version=3,
        repo_path=repo_dir,
    )
    store = FeatureStore(config=config)
    user = Entity(name="user", join_keys=[ENTITY_KEY], value_type=ValueType.INT64)
    source = FileSource(
        name="user_features_source", path=str(features_path), timestamp_field=TIMESTAMP
    )
    view = FeatureView(
        name=VIEW,
        entities=[user],
        ttl=timedelta(0),  # 0 = no TTL: every earlier row is a candidate
        schema=[Field(name=ENTITY_KEY, dtype=Int64)]
        + [Field(name=name, dtype=dtype) for name, dtype in features.items()],
        source=source,
        online=False,
    )
    store.apply([user, view])
    return store


def run_child(args: argparse.Namespace) -> int:
    """Build the repository, time load + join + write, leave the record for the parent."""
    code = 0
    try:
        record = benchmark(args)
    except Exception as exc:  # any failure, MemoryError included, is one line for the harness
        message = " ".join(str(exc).split())[:500]
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        print(f"feast_baseline: {message}", file=sys.stderr)
        record = {"store": args.store, "status": "error", "error": message}
        code = EXIT_ERROR
    (args.repo_dir / RESULT_FILE).write_text(json.dumps(record))
    return code


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import feast
    import pandas as pd

    repo_dir: Path = args.repo_dir
    started = time.perf_counter()
    features_path, features, feature_rows = prepare_features(args.features, repo_dir)
    store = build_store(args.store, features_path, features, repo_dir)
    seconds_setup = time.perf_counter() - started

    t0 = time.perf_counter()
    spine = pd.read_parquet(args.spine)
    entity_df = spine.rename(columns={TIMESTAMP: "event_timestamp"})
    entity_df["event_timestamp"] = pd.to_datetime(entity_df["event_timestamp"], utc=True)
    t1 = time.perf_counter()
    result = store.get_historical_features(
        entity_df=entity_df, features=[f"{VIEW}:{name}" for name in features]
    ).to_df()
    t2 = time.perf_counter()
    position = result.columns.get_loc("event_timestamp")
    stamp = pd.to_datetime(result.pop("event_timestamp"), utc=True).dt.tz_convert(None)
    result.insert(position, TIMESTAMP, stamp.astype("datetime64[us]"))
    result.to_parquet(args.out, index=False)
    t3 = time.perf_counter()

    return {
        "store": args.store,
        "status": "ok",
        "spine_rows": len(spine),
        "result_rows": len(result),
        "feature_rows": feature_rows,
        "seconds_total": round(t3 - t0, 4),
        "seconds_load": round(t1 - t0, 4),
        "seconds_join": round(t2 - t1, 4),
        "seconds_write": round(t3 - t2, 4),
        "seconds_setup": round(seconds_setup, 4),
        "feast_version": feast.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.repo_dir is not None:
        return run_child(args)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())

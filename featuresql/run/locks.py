"""One run at a time per project and target: a lock row in the warehouse.

``hold`` inserts this run's row into ``featuresql.locks`` and keeps it when it is
the oldest row of the project (insert first, then check: two runs racing both
insert, and the later one backs off). A holder is stale, and its row removed,
when it ran on this host and its process is gone, or when its heartbeat is older
than ``STALE_AFTER`` (a killed run on another machine). The second run waits up
to ``timeout`` seconds, then fails naming the holder.

DuckDB adds its own, stronger lock: a database file opened for writing by one
process cannot be opened by another at all (``adapters/duckdb.py`` turns that
into a ``TargetBusyError`` naming the process, and ``Context`` retries the same way).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlglot import exp

from featuresql.adapters.base import WarehouseAdapter
from featuresql.errors import ExecutionError, FeaturesqlError, TargetBusyError
from featuresql.run.state import table
from featuresql.sql.dialects import timestamp_literal

STALE_AFTER = timedelta(hours=1)
HEARTBEAT_EVERY = 60.0  # seconds between beats: far below STALE_AFTER
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Holder:
    run_id: str
    pid: int
    host: str
    acquired_at: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host}, since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC)"

    def is_stale(self, now: datetime) -> bool:
        if self.host == socket.gethostname() and not _alive(self.pid):
            return True
        return now - self.heartbeat_at > STALE_AFTER


@contextmanager
def hold(
    adapter: WarehouseAdapter, project: str, run_id: str, *, timeout: float = 0.0, waited: float | None = None
) -> Iterator[None]:
    """Hold the project's lock on this target for the duration of the block.

    ``waited``: how long the caller has already waited for the target in all (``--lock-timeout``),
    which a busy error reports; by default ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        holder = _try_acquire(adapter, project, run_id)
        if holder is None:
            break
        if time.monotonic() >= deadline:
            raise TargetBusyError(
                f"the target is in use by featuresql {holder.describe()}", waited=timeout if waited is None else waited
            )
        time.sleep(POLL_SECONDS)
    try:
        yield
    except BaseException:
        _release_quietly(adapter, project, run_id)  # the block's error is the one to report
        raise
    try:
        adapter.execute(exp.delete(table("locks"), where=_is(project, run_id)))
    except FeaturesqlError as exc:
        hours = STALE_AFTER.total_seconds() / 3600
        raise ExecutionError(
            f"the run finished, but its lock on the target could not be released ({exc.one_line()}); the next "
            f"run takes it over once it is stale (its process gone, or no heartbeat for {hours:g} h)"
        ) from None


def _release_quietly(adapter: WarehouseAdapter, project: str, run_id: str) -> None:
    with suppress(FeaturesqlError):
        adapter.execute(exp.delete(table("locks"), where=_is(project, run_id)))


def _try_acquire(adapter: WarehouseAdapter, project: str, run_id: str) -> Holder | None:
    """None when this run holds the lock now; else the run that does."""
    now = datetime.now(UTC).replace(tzinfo=None)
    for holder in _holders(adapter, project):
        if holder.run_id != run_id and holder.is_stale(now):
            adapter.execute(exp.delete(table("locks"), where=_is(project, holder.run_id)))
    stamp = timestamp_literal(now, adapter.dialect)
    row = (
        exp.Literal.string(project),
        exp.Literal.string(run_id),
        exp.Literal.number(os.getpid()),
        exp.Literal.string(socket.gethostname()),
        stamp,
        stamp.copy(),
    )
    adapter.execute(exp.insert(exp.values([row]), table("locks")))
    first = _holders(adapter, project)[0]
    if first.run_id == run_id:
        return None
    adapter.execute(exp.delete(table("locks"), where=_is(project, run_id)))
    return first


def heartbeat(adapter: WarehouseAdapter, project: str, run_id: str) -> None:
    """Tell other runs this one is alive."""
    stamp = timestamp_literal(datetime.now(UTC), adapter.dialect)
    adapter.execute(exp.update(table("locks"), {"heartbeat_at": stamp}, where=_is(project, run_id)))


class Heartbeat:
    """``heartbeat`` after a committed batch, at most once every ``every`` seconds.

    Threads building models in parallel share it: one beat at a time (two updates of
    the lock row at once conflict on DuckDB and BigQuery), and no more often than
    needed against ``STALE_AFTER`` (each beat is a DML statement on the warehouse).
    A failed beat is ignored: the next one, or the run's end, follows.
    """

    def __init__(self, project: str, run_id: str, every: float = HEARTBEAT_EVERY):
        self.project, self.run_id, self.every = project, run_id, every
        self._lock = threading.Lock()
        self._last = time.monotonic()

    def __call__(self, adapter: WarehouseAdapter) -> None:
        with self._lock:
            if time.monotonic() - self._last < self.every:
                return
            self._last = time.monotonic()
            with suppress(FeaturesqlError):
                heartbeat(adapter, self.project, self.run_id)


def _holders(adapter: WarehouseAdapter, project: str) -> list[Holder]:
    query = (
        exp.select("run_id", "pid", "host", "acquired_at", "heartbeat_at")
        .from_(table("locks"))
        .where(exp.column("project").eq(exp.Literal.string(project)))
        .order_by("acquired_at", "run_id")
    )
    return [Holder(**{k: _naive_utc(v) for k, v in row.items()}) for row in adapter.fetch_arrow(query).to_pylist()]


def _naive_utc(value: Any) -> Any:
    """Lock times as naive UTC (BigQuery returns its TIMESTAMP zoned)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _is(project: str, run_id: str) -> exp.Expr:
    return exp.and_(
        exp.column("project").eq(exp.Literal.string(project)), exp.column("run_id").eq(exp.Literal.string(run_id))
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

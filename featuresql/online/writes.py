"""Applying a stream of changes to an online store: batched, on the store's worker threads, bounded in flight.

Rows stream from the warehouse; at most two batches per worker are in flight, so
featuresql's own memory stays flat whatever the number of entities.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from featuresql import checkpoints
from featuresql.adapters.store import Change, OnlineStore, WriteResult
from featuresql.errors import ExecutionError
from featuresql.serving.tables import StoreUnavailable


def write_items(store: OnlineStore, changes: Iterable[Change]) -> WriteResult:
    """Apply ``changes`` in ``store.batch_size`` batches on ``store.workers`` threads, a bounded number in flight."""
    total = WriteResult()
    in_flight: deque[Future[WriteResult]] = deque()

    def collect() -> None:
        nonlocal total
        total += in_flight.popleft().result()
        checkpoints.reach("sync_written")

    with ThreadPoolExecutor(store.workers, thread_name_prefix="featuresql-sync") as pool:
        try:
            batch: list[Change] = []
            for change in changes:
                batch.append(change)
                if len(batch) == store.batch_size:
                    in_flight.append(pool.submit(store.write_batch, batch))
                    batch = []
                    while len(in_flight) >= 2 * store.workers:
                        collect()
            if batch:
                in_flight.append(pool.submit(store.write_batch, batch))
            while in_flight:
                collect()
        except StoreUnavailable as exc:
            raise ExecutionError(str(exc)) from None
        finally:
            for future in in_flight:
                future.cancel()
    return total

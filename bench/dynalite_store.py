"""featuresql's DynamoDB store, writing with BatchWriteItem: a sync that dynalite can take.

dynalite 3.2.2 has neither TransactWriteItems (each sync batch is one transaction of
conditional puts) nor UpdateTimeToLive (the store turns on TTL when it makes the table), so
``featuresql sync`` against it fails with UnknownOperationException. The benchmarks that
serve from dynalite sync through this store instead: the same items (``run_sync``'s own
encoding, its mirror and manifest), written unconditionally 25 at a time into a table that
never holds an older value than the one written (a fresh table per run), and no TTL setting.
The reader only needs BatchGetItem, which dynalite has, and checks items' TTL itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from featuresql.adapters.dynamodb import DynamoDBStore
from featuresql.adapters.store import WriteResult
from featuresql.serving.tables import Item, StoreUnavailable, backoff

BATCH_WRITE_LIMIT = 25  # items per BatchWriteItem
MAX_ATTEMPTS = 8


class BatchWriteStore(DynamoDBStore):
    """``DynamoDBStore`` with unconditional BatchWriteItem writes and no TTL set-up."""

    def _ensure_ttl(self) -> None:
        pass  # no UpdateTimeToLive on dynalite; the reader ignores expired items anyway

    def write_batch(self, items: Sequence[Item]) -> WriteResult:
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            self._write_chunk(items[start : start + BATCH_WRITE_LIMIT])
        return WriteResult(written=len(items))

    def _write_chunk(self, items: Sequence[Item]) -> None:
        requests: list[Any] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(MAX_ATTEMPTS):
            response = self.client.batch_write_item(RequestItems={self.table: requests})
            requests = response.get("UnprocessedItems", {}).get(self.table, [])
            if not requests:
                return
            backoff(attempt)
        raise StoreUnavailable(
            f"{self.table}: {len(requests)} items unwritten after {MAX_ATTEMPTS} attempts"
        )


def open_batch_write_store(context: Any) -> BatchWriteStore:
    """The project's configured DynamoDB store (table, endpoint, workers), writing in batches."""
    from featuresql.online.stores import open_store

    configured = open_store(context)
    return BatchWriteStore(configured.config, configured.table, context.project.root)

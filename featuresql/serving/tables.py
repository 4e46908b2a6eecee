"""Reading items from the online stores: DynamoDB (boto3) and the local SQLite file (stdlib).

``open_table`` picks the table class by the manifest's store ``type`` from
``TABLES``, the reader's side of the store registry (``featuresql.adapters.store``
is the writer's; the reader imports nothing of it, to stay standard library only).

Both return items in DynamoDB's low-level form (``{"pk": {"S": ...}, "f": {"N":
"1.5"}}``), so ``items.from_attribute`` reads values the same way whatever the
store. The writers (``featuresql.adapters.dynamodb`` and ``.local_store``) use the
table layouts defined here, so reader and writer cannot drift.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from featuresql.serving.items import PARTITION_KEY

Item = dict[str, dict[str, Any]]
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
UPDATE_ATTRIBUTES = 100  # attributes per UpdateItem: its expression is at most 4 KB
RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)

# The local store's table: one row per item, the whole item as DynamoDB JSON.
SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS items ("
    "pk TEXT PRIMARY KEY, ts INTEGER NOT NULL, version INTEGER NOT NULL, expires INTEGER, item TEXT NOT NULL)"
)


class OnlineTable(Protocol):
    """What the reader reads (items by partition key, with the attributes asked for) and push writes."""

    def get_many(self, keys: Sequence[str], attributes: Sequence[str] | None) -> dict[str, Item]: ...

    def set_attributes(self, updates: Mapping[str, Mapping[str, str]]) -> None: ...


class StoreUnavailable(Exception):
    """The store did not answer (after retries): the reader answers 503, the writer fails the sync."""


class DynamoDBTable:
    """Batched, parallel reads of one DynamoDB table through one boto3 client."""

    def __init__(
        self,
        table: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        workers: int = 4,
        max_attempts: int = 8,
    ):
        self.table = table
        self.client = client or dynamodb_client(region, endpoint_url, pool=workers * 2)
        self.workers = workers
        self.max_attempts = max_attempts
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def get_many(self, keys: Sequence[str], attributes: Sequence[str] | None) -> dict[str, Item]:
        """Items by partition key (missing ones absent), with only ``attributes`` (plus ``pk``; None: all)."""
        unique = list(dict.fromkeys(keys))
        chunks = [unique[i : i + BATCH_GET_LIMIT] for i in range(0, len(unique), BATCH_GET_LIMIT)]
        found: dict[str, Item] = {}
        if len(chunks) == 1:
            found.update(self._get_chunk(chunks[0], attributes))
        else:
            for result in self._executor().map(lambda chunk: self._get_chunk(chunk, attributes), chunks):
                found.update(result)
        return found

    def _get_chunk(self, keys: list[str], attributes: Sequence[str] | None) -> dict[str, Item]:
        request: dict[str, Any] = {"Keys": [{PARTITION_KEY: {"S": key}} for key in keys]}
        if attributes is not None:
            names = {f"#a{number}": name for number, name in enumerate((PARTITION_KEY, *attributes))}
            request.update(ProjectionExpression=", ".join(names), ExpressionAttributeNames=names)
        found: dict[str, Item] = {}
        for attempt in range(self.max_attempts):
            try:
                response = self.client.batch_get_item(RequestItems={self.table: request})
            except Exception as exc:  # botocore's ClientError: retry throttling, report the rest
                if error_code(exc) not in RETRYABLE:
                    raise StoreUnavailable(f"DynamoDB table {self.table}: {error_text(exc)}") from None
            else:
                for item in response.get("Responses", {}).get(self.table, []):
                    found[item[PARTITION_KEY]["S"]] = item
                unprocessed = response.get("UnprocessedKeys", {}).get(self.table)
                if not unprocessed:
                    return found
                request = {**request, "Keys": unprocessed["Keys"]}
            backoff(attempt)
        raise StoreUnavailable(
            f"DynamoDB table {self.table} left {len(request['Keys'])} keys unread after {self.max_attempts} attempts"
        )

    def set_attributes(self, updates: Mapping[str, Mapping[str, str]]) -> None:
        """Set string attributes on items (created when missing), an UpdateItem per item in parallel
        (per 100 attributes: an update expression is at most 4 KB)."""
        calls = [
            (key, dict(list(attributes.items())[start : start + UPDATE_ATTRIBUTES]))
            for key, attributes in updates.items()
            for start in range(0, len(attributes), UPDATE_ATTRIBUTES)
        ]
        if len(calls) == 1:
            self._update(*calls[0])
        else:
            for _ in self._executor().map(lambda call: self._update(*call), calls):
                pass

    def _update(self, key: str, attributes: Mapping[str, str]) -> None:
        names = {f"#a{n}": name for n, name in enumerate(attributes)}
        values = {f":v{n}": {"S": value} for n, value in enumerate(attributes.values())}
        expression = "SET " + ", ".join(f"#a{n} = :v{n}" for n in range(len(names)))
        for attempt in range(self.max_attempts):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={PARTITION_KEY: {"S": key}},
                    UpdateExpression=expression,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
                return
            except Exception as exc:  # botocore's ClientError: retry throttling, report the rest
                if error_code(exc) not in RETRYABLE:
                    raise StoreUnavailable(f"DynamoDB table {self.table}: {error_text(exc)}") from None
            backoff(attempt)
        raise StoreUnavailable(f"DynamoDB table {self.table} kept refusing a write after {self.max_attempts} attempts")

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="featuresql-read")
            return self._pool


class SQLiteTable:
    """The local store: an SQLite file, one connection per thread."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")  # readers never wait for a sync writing
            connection.execute(SQLITE_SCHEMA)
            self._local.connection = connection
        return connection

    def get_many(self, keys: Sequence[str], attributes: Sequence[str] | None) -> dict[str, Item]:
        unique = list(dict.fromkeys(keys))
        wanted = None if attributes is None else {PARTITION_KEY, *attributes}
        found: dict[str, Item] = {}
        for start in range(0, len(unique), 500):  # SQLite's limit on bound parameters is 999 on old builds
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.connection().execute(f"SELECT pk, item FROM items WHERE pk IN ({marks})", chunk)
            for key, text in rows:
                item = json.loads(text)
                found[key] = item if wanted is None else {name: value for name, value in item.items() if name in wanted}
        return found

    def set_attributes(self, updates: Mapping[str, Mapping[str, str]]) -> None:
        """Set string attributes on items (created when missing, of version 0: any sync's put replaces
        them, and a sync never writes these keys), in one transaction."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            for key, attributes in updates.items():
                row = connection.execute("SELECT item FROM items WHERE pk = ?", (key,)).fetchone()
                item = json.loads(row[0]) if row else {PARTITION_KEY: {"S": key}}
                item.update((name, {"S": value}) for name, value in attributes.items())
                text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
                connection.execute(
                    "INSERT INTO items (pk, ts, version, expires, item) VALUES (?, 0, 0, NULL, ?) "
                    "ON CONFLICT (pk) DO UPDATE SET item = excluded.item",
                    (key, text),
                )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def _dynamodb(settings: dict[str, Any], client: Any) -> OnlineTable:
    # FEATURESQL_DYNAMODB_ENDPOINT points a deployed reader elsewhere (a local DynamoDB).
    endpoint = os.environ.get("FEATURESQL_DYNAMODB_ENDPOINT") or settings.get("endpoint_url")
    return DynamoDBTable(settings["table"], region=settings.get("region"), endpoint_url=endpoint, client=client)


def _sqlite(settings: dict[str, Any], client: Any) -> OnlineTable:
    return SQLiteTable(settings["path"])


# The manifest's store ``type`` -> how the reader opens it (``OnlineStore.reader_settings`` writes the settings).
TABLES: dict[str, Callable[[dict[str, Any], Any], OnlineTable]] = {"dynamodb": _dynamodb, "local": _sqlite}


def open_table(settings: dict[str, Any], *, client: Any = None) -> OnlineTable:
    """The table a manifest's store settings name; ``client`` is a boto3 client to reuse, if any."""
    opener = TABLES.get(str(settings.get("type")))
    if opener is None:
        raise ValueError(
            f"the reader cannot read a {settings.get('type')!r} online store; it reads {', '.join(TABLES)}"
        )
    return opener(settings, client)


def dynamodb_client(region: str | None, endpoint_url: str | None, *, pool: int = 10) -> Any:
    """A boto3 DynamoDB client; credentials come from boto3's usual chain (env, profile, role)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=max(pool, 10),
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    return boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url, config=config)


def backoff(attempt: int, base: float = 0.02, cap: float = 2.0) -> None:
    """Sleep before retry ``attempt`` (0-based): exponential with full jitter (AWS's advice)."""
    time.sleep(random.uniform(0, min(cap, base * 2**attempt)))


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def error_text(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

"""DynamoDB, through boto3: the production online store.

One table per project and target, partition key ``pk`` (a string; see
``featuresql.serving.items``), TTL enabled on the configured attribute.

Writes are ``TransactWriteItems`` of up to 100 conditional puts
(``attribute_not_exists(pk) OR attribute_not_exists(_v) OR _v < :v``) and deletes
(the same, of an existing item):
``BatchWriteItem`` takes no condition, and it is the condition that keeps an
earlier sync's late write from replacing a later sync's (Feast's store
overwrites blindly). A transaction is all or nothing, so when DynamoDB cancels
one, its ``CancellationReasons`` say which changes failed their condition (a
later sync wrote the item, or there is nothing to delete: they are skipped) and
the rest are sent again; throttling and
conflicts are retried with exponential backoff and jitter. The price: DynamoDB
bills a transactional write as two write units per item, which only the
changed entities pay (``featuresql sync`` writes nothing else). Measured on
DynamoDB Local, 100-item transactions write as fast as ``batch_writer``
(``bench/online.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from featuresql.adapters.store import Change, Deletion, OnlineStore, StoreConfig, StorePlace, WriteResult
from pydantic import Field

from featuresql.errors import ConfigError, ExecutionError
from featuresql.serving.items import PARTITION_KEY, VERSION
from featuresql.serving.tables import (
    RETRYABLE,
    DynamoDBTable,
    Item,
    StoreUnavailable,
    backoff,
    dynamodb_client,
    error_code,
    error_text,
)

TRANSACTION_LIMIT = 100
TRANSACTION_BYTES = 3_500_000  # DynamoDB refuses a TransactWriteItems request over 4 MB
MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's item size limit
# An item without _v (written by hand or another tool) is replaced or deleted by any sync.
CONDITION = "attribute_not_exists(#pk) OR attribute_not_exists(#v) OR #v < :v"
DELETE_CONDITION = "attribute_exists(#pk) AND (attribute_not_exists(#v) OR #v < :v)"
_RETRYABLE_REASONS = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)
MAX_ATTEMPTS = 10


class DynamoDBStoreConfig(StoreConfig):
    """DynamoDB. Credentials come from boto3's chain (environment, profile, role), never from here."""

    store: Literal["dynamodb"]
    table: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{3,255}$")  # default featuresql_<project>_<target>
    region: str | None = None
    endpoint_url: str | None = None
    capacity: Literal["on_demand", "provisioned"] = "on_demand"
    read_capacity: int = Field(5, gt=0)  # provisioned only
    write_capacity: int = Field(5, gt=0)
    create_table: bool = True  # False: the table is managed elsewhere (Terraform...) and must exist
    workers: int = Field(4, gt=0, le=64)  # parallel writes during sync, parallel reads in the reader


class DynamoDBStore(OnlineStore):
    type_name = "dynamodb"
    config_model = DynamoDBStoreConfig
    batch_size = TRANSACTION_LIMIT

    @classmethod
    def table_name(cls, config: Any, place: StorePlace) -> str:
        return str(config.table or f"featuresql_{place.project}_{place.target}")

    @classmethod
    def reader_policy(cls, settings: dict[str, Any], *, push: bool = False) -> dict[str, Any]:
        """``dynamodb:BatchGetItem`` on the one table, the only call the reader makes; the push
        Lambda also sets attributes of pushed items (``dynamodb:UpdateItem``).

        No wildcard: the account is the policy variable ``${aws:PrincipalAccount}`` (the
        account of the role it is attached to) and the region the store's ``region``
        (``${aws:RequestedRegion}`` when it has none).
        """
        region = settings.get("region") or "${aws:RequestedRegion}"
        table = f"arn:aws:dynamodb:{region}:${{aws:PrincipalAccount}}:table/{settings['table']}"
        if push:
            actions = ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"]
            statement = {"Sid": "PushOnlineEvents", "Effect": "Allow", "Action": actions}
        else:
            statement = {"Sid": "ReadOnlineFeatures", "Effect": "Allow", "Action": ["dynamodb:BatchGetItem"]}
        return {"Version": "2012-10-17", "Statement": [{**statement, "Resource": table}]}

    def __init__(self, config: Any, table: str, project_root: Any, *, client: Any = None):
        super().__init__(config, table, project_root)
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = dynamodb_client(self.config.region, self.config.endpoint_url, pool=self.workers * 2)
            except ImportError:
                raise ConfigError("the dynamodb online store needs boto3: pip install 'featuresql[dynamodb]'") from None
        return self._client

    @property
    def workers(self) -> int:
        return int(self.config.workers)

    def ensure_table(self) -> None:
        client = self.client  # a missing boto3 is its own error, not "cannot reach"
        try:
            description = client.describe_table(TableName=self.table)["Table"]
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise ExecutionError(f"cannot reach DynamoDB table {self.table}: {error_text(exc)}") from None
            if not self.config.create_table:
                raise ConfigError(
                    f"DynamoDB table {self.table} does not exist and create_table is false: "
                    "create it (partition key pk, a string) or set create_table: true"
                ) from None
            self._create()
        else:
            keys = [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]]
            if keys != [(PARTITION_KEY, "HASH")]:
                raise ConfigError(
                    f"DynamoDB table {self.table} has key {keys}, not featuresql's layout "
                    f"(partition key {PARTITION_KEY!r} only): choose another table name"
                )
        self._ensure_ttl()

    def _create(self) -> None:
        capacity: dict[str, Any] = {"BillingMode": "PAY_PER_REQUEST"}
        if self.config.capacity == "provisioned":
            throughput = {
                "ReadCapacityUnits": self.config.read_capacity,
                "WriteCapacityUnits": self.config.write_capacity,
            }
            capacity = {"BillingMode": "PROVISIONED", "ProvisionedThroughput": throughput}
        try:
            self.client.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
                **capacity,
            )
        except Exception as exc:
            if error_code(exc) != "ResourceInUseException":  # another sync created it meanwhile
                raise ExecutionError(f"cannot create DynamoDB table {self.table}: {error_text(exc)}") from None
        try:
            self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1})
        except Exception as exc:
            raise ExecutionError(f"DynamoDB table {self.table} did not become ready: {error_text(exc)}") from None

    def _ensure_ttl(self) -> None:
        attribute = self.config.ttl_attribute
        try:
            status = self.client.describe_time_to_live(TableName=self.table)["TimeToLiveDescription"]
        except Exception as exc:
            raise ExecutionError(
                f"cannot read the TTL setting of DynamoDB table {self.table}: {error_text(exc)}"
            ) from None
        current = status.get("AttributeName")
        if status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if current != attribute:
                raise ConfigError(
                    f"DynamoDB table {self.table} expires items on {current!r}, not {attribute!r}: "
                    f"set ttl_attribute: {current} in the online settings"
                )
            return
        try:
            self.client.update_time_to_live(
                TableName=self.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
            )
        except Exception as exc:
            raise ExecutionError(f"cannot enable TTL on DynamoDB table {self.table}: {error_text(exc)}") from None

    def write_batch(self, changes: Sequence[Change]) -> WriteResult:
        """Up to 100 changes as one transaction, or several when they are large (4 MB per transaction)."""
        total = WriteResult()
        for transaction in _by_size(changes, TRANSACTION_BYTES):
            total += self._write_transaction(transaction)
        return total

    def _write_transaction(self, changes: Sequence[Change]) -> WriteResult:
        pending = list(changes)
        skipped = 0
        last = ""
        for attempt in range(MAX_ATTEMPTS):
            try:
                self.client.transact_write_items(TransactItems=[self._action(change) for change in pending])
                deleted = sum(isinstance(change, Deletion) for change in pending)
                return WriteResult(written=len(pending) - deleted, deleted=deleted, skipped=skipped)
            except Exception as exc:
                code = last = error_code(exc)
                if code == "TransactionCanceledException":
                    reasons = [
                        r.get("Code", "None") for r in getattr(exc, "response", {}).get("CancellationReasons", [])
                    ]
                    refused = {n for n, reason in enumerate(reasons) if reason == "ConditionalCheckFailed"}
                    others = set(reasons) - {"None", "ConditionalCheckFailed"}
                    if others - _RETRYABLE_REASONS:
                        raise ExecutionError(
                            f"DynamoDB refused a write to {self.table}: {', '.join(sorted(others))} ({error_text(exc)})"
                        ) from None
                    last = ", ".join(sorted(others))
                    skipped += len(refused)
                    pending = [item for n, item in enumerate(pending) if n not in refused]
                    if not pending:
                        return WriteResult(skipped=skipped)
                    if refused and not others:
                        continue  # only condition failures: send the rest at once
                elif _unreachable(exc):  # botocore retried the connection already
                    raise ExecutionError(
                        f"cannot reach DynamoDB to write to {self.table} ({error_text(exc)}): "
                        "check the endpoint_url, region and network, then sync again"
                    ) from None
                elif code not in RETRYABLE or not _answered(exc):  # e.g. no credentials: not worth retrying
                    raise ExecutionError(f"DynamoDB refused a write to {self.table}: {error_text(exc)}") from None
            backoff(attempt)
        raise StoreUnavailable(
            f"DynamoDB kept refusing writes to {self.table} ({last or 'ConditionalCheckFailed'}) after "
            f"{MAX_ATTEMPTS} attempts: "
            "raise its write capacity or lower workers, then sync again"
        )

    def refusal(self, item: Item) -> str | None:
        size = sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())
        if size <= MAX_ITEM_BYTES:
            return None
        return f"the item is {size:,} bytes, over DynamoDB's limit of {MAX_ITEM_BYTES:,}: drop or shorten features"

    def _action(self, change: Change) -> dict[str, Any]:
        if isinstance(change, Deletion):
            return {
                "Delete": {
                    "TableName": self.table,
                    "Key": {PARTITION_KEY: {"S": change.key}},
                    "ConditionExpression": DELETE_CONDITION,
                    "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#v": VERSION},
                    "ExpressionAttributeValues": {":v": {"N": str(change.version)}},
                }
            }
        return {
            "Put": {
                "TableName": self.table,
                "Item": change,
                "ConditionExpression": CONDITION,
                "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#v": VERSION},
                "ExpressionAttributeValues": {":v": change[VERSION]},
            }
        }

    def scan(self, attributes: Sequence[str]) -> Iterator[Item]:
        """Every item, paginated (a sync reads this only for a store it cannot trust, and ``--repair``)."""
        names = {f"#a{number}": name for number, name in enumerate((PARTITION_KEY, *attributes))}
        request = {"TableName": self.table, "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        try:
            for page in self.client.get_paginator("scan").paginate(**request):
                yield from page.get("Items", [])
        except Exception as exc:
            raise ExecutionError(f"cannot scan DynamoDB table {self.table}: {error_text(exc)}") from None

    def read_batch(self, keys: Sequence[str], attributes: Sequence[str]) -> dict[str, Item]:
        return DynamoDBTable(self.table, client=self.client, workers=self.workers).get_many(keys, attributes)

    def teardown(self) -> None:
        try:
            self.client.delete_table(TableName=self.table)
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise ExecutionError(f"cannot delete DynamoDB table {self.table}: {error_text(exc)}") from None
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.client.describe_table(TableName=self.table)
            except Exception:
                return
            time.sleep(0.2)

    def reader_settings(self) -> dict[str, Any]:
        settings = {"type": "dynamodb", "table": self.table, "region": self.config.region}
        if self.config.endpoint_url:
            settings["endpoint_url"] = self.config.endpoint_url
        return settings


def _answered(exc: Exception) -> bool:
    """Whether DynamoDB answered (an error response)."""
    return isinstance(getattr(exc, "response", None), dict)


def _unreachable(exc: Exception) -> bool:
    """Whether the connection failed or timed out (as opposed to an answer, or a mistake on this side)."""
    from botocore.exceptions import ConnectionError, HTTPClientError

    return isinstance(exc, ConnectionError | HTTPClientError)


def _by_size(changes: Sequence[Change], limit: int) -> list[list[Change]]:
    """``changes`` in consecutive groups whose estimated request size stays under ``limit`` bytes."""
    groups: list[list[Change]] = [[]]
    size = 0
    for item in changes:
        estimate = 300 if isinstance(item, Deletion) else _item_bytes(item)
        if groups[-1] and size + estimate > limit:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += estimate
    return groups


def _value_bytes(value: dict[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it (numbers: about one byte per two digits)."""
    kind, payload = next(iter(value.items()))
    if kind == "N":
        return len(str(payload)) // 2 + 2
    if kind in ("S", "B"):
        return len(str(payload).encode())
    return 1


def _item_bytes(item: Item) -> int:
    """An upper estimate of an item's bytes in a request: names, values and the condition's share."""
    values = sum(len(name) + len(str(next(iter(value.values()))).encode()) + 8 for name, value in item.items())
    return values + 200

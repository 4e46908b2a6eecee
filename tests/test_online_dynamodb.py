"""What only DynamoDB has: its table settings, throttling, cancelled transactions and unprocessed keys.

Everything a sync must do on every store runs on DynamoDB (AWS's DynamoDB Local
through boto3) in test_sync.py; here the example project is built once and each
test syncs it to a table of its own. Throttling, cancelled transactions and
unprocessed keys never happen on DynamoDB Local, so they are injected with
botocore's ``before-call`` event: the hook answers in the server's place, with
the same error shapes DynamoDB sends. The local store has none of these: it is
one SQLite file, written by one thread in one transaction per batch.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from dynamodb_server import DynamoEndpoint, dynamodb_client, dynamodb_local_with_credentials
from online_stores import NOW, VARS, large_items, sync, table_name, use_dynamodb
from projects import built_example

from featuresql.context import Context
from featuresql.errors import ExecutionError
from featuresql.online.stores import open_store, read_manifest
from featuresql.online.sync import run_sync
from featuresql.serving.handler import reader_for
from featuresql.serving.items import FEATURE_TS, VERSION

pytestmark = pytest.mark.dynamodb

ONLINE = ("user_transactions", "user_spend_ratios")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoEndpoint]:
    with dynamodb_local_with_credentials(tmp_path_factory.mktemp("dynamodb")) as running:
        yield running


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_example(tmp_path_factory.mktemp("built") / "p", variables=VARS, now=NOW)


@pytest.fixture
def project(built: Path, endpoint: DynamoEndpoint, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of the built project whose dev target syncs to a fresh DynamoDB table."""
    copy = Path(shutil.copytree(built, tmp_path / "p"))
    use_dynamodb(copy, endpoint.endpoint_url, table_name(request.node.name))
    return copy


def test_sync_creates_the_table_on_demand_with_ttl(project: Path, endpoint: DynamoEndpoint) -> None:
    """The table's key, billing mode and TTL attribute: DynamoDB settings (the local store's table is
    a fixed SQLite schema, and it has no TTL of its own: the reader skips expired items)."""
    first = sync(project)
    assert all(written == changed > 100 for changed, written, _ in first.values())
    with Context(project, variables=VARS) as context:
        table = open_store(context).table
    client = dynamodb_client(endpoint)
    description = client.describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "_ttl" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")


class Faults:
    """Answers the first ``count`` calls of ``operation`` with ``answer(request body)`` instead of the server."""

    def __init__(
        self, client: Any, operation: str, answer: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]], count: int
    ):
        self.answer, self.left, self.calls = answer, count, 0
        client.meta.events.register(f"before-call.dynamodb.{operation}", self)

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        self.calls += 1
        if self.left <= 0:
            return None
        self.left -= 1
        status, parsed = self.answer(json.loads(params["body"]))  # the request as sent, before signing
        parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status})
        return AWSResponse("http://injected", status, {}, None), parsed  # type: ignore[arg-type]


def error(code: str, **extra: Any) -> Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]:
    return lambda params: (400, {"Error": {"Code": code, "Message": f"injected {code}"}, **extra})


def test_throttled_and_conflicting_writes_are_retried(project: Path) -> None:
    """Throttling and transaction conflicts are DynamoDB's answers to parallel TransactWriteItems (the
    local store writes from one thread and waits for SQLite's lock instead)."""
    with Context(project, variables=VARS) as context:
        store = open_store(context)
        store.ensure_table()
        throttled = Faults(store.client, "TransactWriteItems", error("ProvisionedThroughputExceededException"), 3)
        result = run_sync(context, now=NOW, store=store)
    assert throttled.left == 0 and throttled.calls > 3
    assert all(m.written == m.changed > 100 for m in result.models)
    assert sync(project) == dict.fromkeys(ONLINE, (0, 0, 0))  # nothing was left behind

    def conflict(params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        count = len(params["TransactItems"])
        reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (count - 1)
        return 400, {
            "Error": {"Code": "TransactionCanceledException", "Message": "injected"},
            "CancellationReasons": reasons,
        }

    Faults(store.client, "TransactWriteItems", conflict, 2)
    item = {"pk": {"S": "m#[1]"}, FEATURE_TS: {"N": "5"}, VERSION: {"N": "1"}}
    assert store.write_batch([item]).written == 1


def test_a_store_that_keeps_throttling_fails_the_sync_and_the_next_sync_finishes(project: Path) -> None:
    """A table short of write capacity: DynamoDB's (the local store has no capacity to run out of)."""
    with Context(project, variables=VARS) as context:
        store = open_store(context)
        store.ensure_table()
        Faults(store.client, "TransactWriteItems", error("ThrottlingException"), 10**6)
        with pytest.raises(ExecutionError, match=r"kept refusing writes.*raise its write capacity"):
            run_sync(context, now=NOW, store=store)
    finished = sync(project)
    assert all(written == changed > 0 for changed, written, _ in finished.values())
    assert sync(project) == dict.fromkeys(ONLINE, (0, 0, 0))


def test_unprocessed_keys_are_read_again(project: Path) -> None:
    """BatchGetItem may leave keys unprocessed, or throttle: the reader reads them again, then answers 503
    (the local store reads with one SQLite query, which has no such partial answer)."""
    sync(project)
    with Context(project, variables=VARS) as context:
        reader = reader_for(read_manifest(context))
    reader.clock = NOW.timestamp
    client = reader.table.client  # type: ignore[attr-defined]

    def unprocessed(params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"Responses": {}, "UnprocessedKeys": params["RequestItems"]}

    faults = Faults(client, "BatchGetItem", unprocessed, 2)
    request = {"entities": {"user_id": list(range(1, 101))}, "features": list(ONLINE)}  # two chunks of 100 keys
    status, body = reader.answer(request)
    assert status == 200 and faults.left == 0 and faults.calls >= 4
    stamps = [r["feature_timestamps"]["user_spend_ratios"] for r in json.loads(body)["results"]]
    assert sum(stamp is not None for stamp in stamps) > 90

    Faults(client, "BatchGetItem", error("ProvisionedThroughputExceededException"), 10**6)
    status, body = reader.answer({"entities": {"user_id": [1]}, "features": ["user_spend_ratios"]})
    assert status == 503 and "unread" in json.loads(body)["error"]["message"]


def test_a_batch_over_4_mb_goes_as_several_transactions(project: Path) -> None:
    """DynamoDB refuses a TransactWriteItems request over 4 MB (the local store has no such limit;
    test_sync.py writes the same batch to every store)."""
    with Context(project, variables=VARS) as context:
        store = open_store(context)
    store.ensure_table()
    transactions = Faults(store.client, "TransactWriteItems", error("unused"), 0)  # counts, answers nothing
    batch = large_items()
    assert store.write_batch(batch).written == len(batch)
    assert transactions.calls >= 2

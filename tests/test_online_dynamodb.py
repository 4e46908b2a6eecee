"""`featuresql sync` to DynamoDB (AWS's DynamoDB Local through boto3), and the faults it must ride out.

The example project is built once; each test syncs it to a table of its own.
Throttling, cancelled transactions and unprocessed keys never happen on DynamoDB
Local, so they are injected with botocore's ``before-call`` event: the hook
answers in the server's place, with the same error shapes DynamoDB sends.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from botocore.awsrequest import AWSResponse
from conftest import SMALL_VARS, copy_example
from dynamodb_server import REGION, dynamodb_client, dynamodb_local_with_credentials

from featuresql.context import Context
from featuresql.errors import ExecutionError
from featuresql.online.stores import open_store, read_manifest
from featuresql.online.sync import run_sync
from featuresql.serving.handler import reader_for
from featuresql.serving.items import FEATURE_TS, VERSION

pytestmark = pytest.mark.dynamodb

# DynamoDB Local deletes expired items by the wall clock, so the demo data ends yesterday and NOW is now.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
VARS = {**SMALL_VARS, "demo_end": (NOW - timedelta(days=1)).strftime("%Y-%m-%d")}
ONLINE = ("user_transactions", "user_spend_ratios")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with dynamodb_local_with_credentials(tmp_path_factory.mktemp("dynamodb")) as running:
        yield running


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_example(tmp_path_factory.mktemp("built") / "p")
    with Context(project, variables=VARS) as context:
        assert context.run(now=NOW).ok
    return project


@pytest.fixture
def project(built: Path, endpoint: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of the built project whose dev target syncs to a fresh DynamoDB table."""
    copy = tmp_path / "p"
    shutil.copytree(built, copy)
    table = "t_" + request.node.name.replace("[", "_").replace("]", "")[:40]
    (copy / "profiles.yml").write_text(
        "target: dev\ntargets:\n  dev:\n    type: duckdb\n    path: target/cash_advance.duckdb\n"
        f"    online: {{store: dynamodb, table: {table}, endpoint_url: '{endpoint.endpoint_url}', "
        f"region: {REGION}, workers: 3}}\n"
    )
    return copy


def sync(project: Path, now: datetime = NOW) -> dict[str, tuple[int, int, int]]:
    with Context(project, variables=VARS) as context:
        result = run_sync(context, now=now)
    return {m.model: (m.changed, m.written, m.skipped) for m in result.models}


def scan(endpoint: Any, table: str) -> dict[str, dict[str, Any]]:
    pages = dynamodb_client(endpoint).get_paginator("scan").paginate(TableName=table)
    return {item["pk"]["S"]: item for page in pages for item in page["Items"]}


def table_of(project: Path) -> str:
    with Context(project, variables=VARS) as context:
        return open_store(context).table


def test_sync_creates_the_table_with_ttl_and_writes_each_changed_entity_once(project: Path, endpoint: Any) -> None:
    first = sync(project)
    assert all(written == changed > 100 for changed, written, _ in first.values())
    table = table_of(project)
    client = dynamodb_client(endpoint)
    description = client.describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "_ttl" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    stored = scan(endpoint, table)
    with duckdb.connect(str(project / "target" / "cash_advance.duckdb"), read_only=True) as connection:
        mirrors = {
            model: connection.execute(f"select user_id, count_30d = 0 from featuresql.online_{model}").fetchall()
            if model == "user_transactions"
            else connection.execute(f"select user_id, false from featuresql.online_{model}").fetchall()
            for model in ONLINE
        }
    written = {f"{model}#[{user}]" for model, rows in mirrors.items() for user, _ in rows}
    empty = {f"{model}#[{user}]" for model, rows in mirrors.items() for user, is_empty in rows if is_empty}
    assert len(written) == sum(count for _, count, _ in first.values())
    # An empty window's item expires at once; DynamoDB Local's TTL sweep may already have deleted it.
    assert written - empty <= set(stored) <= written
    assert sync(project) == dict.fromkeys(ONLINE, (0, 0, 0))
    assert set(scan(endpoint, table)) <= set(stored)


def test_online_values_from_dynamodb_equal_the_extract(project: Path) -> None:
    sync(project)
    users = [*range(1, 501, 7), 10**12]
    spine = pa.table({"user_id": users, "ts": [NOW.replace(tzinfo=None)] * len(users)})
    with Context(project, variables=VARS) as context:
        offline = context.extract(spine, list(ONLINE)).table
        reader = reader_for(read_manifest(context))
    assert offline is not None
    reader.clock = NOW.timestamp
    status, body = reader.answer({"entities": {"user_id": users}, "features": list(ONLINE)})
    assert status == 200, body
    results = json.loads(body, parse_float=Decimal)["results"]  # decimals compare exactly
    for result, row in zip(results, offline.to_pylist(), strict=True):
        for name, value in result["features"].items():
            expected = row[name]
            if isinstance(expected, float):
                assert math.isclose(float(value), expected, rel_tol=1e-12), (row["user_id"], name)
            else:
                assert value == expected, (row["user_id"], name)


def test_an_older_value_is_refused_item_by_item(project: Path, endpoint: Any) -> None:
    sync(project)
    with Context(project, variables=VARS) as context:
        store = open_store(context)
    key = "user_transactions#[42]"
    current = store.read_batch([key], [FEATURE_TS, VERSION, "count_7d"])[key]
    ts, version = int(current[FEATURE_TS]["N"]), int(current[VERSION]["N"])

    def item(pk: str, ts: int, version: int, count: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, FEATURE_TS: {"N": str(ts)}, VERSION: {"N": str(version)}, "count_7d": {"N": count}}

    batch = [
        item(key, ts - 1, version + 9, "111"),
        item(key.replace("42", "43"), 1, 1, "222"),
        item("user_transactions#[999999]", ts, version, "333"),
    ]
    result = store.write_batch(batch)  # a cancelled transaction, then the one newer item alone
    assert (result.written, result.skipped) == (1, 2)
    after = store.read_batch([key, "user_transactions#[999999]"], ["count_7d"])
    assert after[key]["count_7d"] == current["count_7d"]
    assert after["user_transactions#[999999]"]["count_7d"]["N"] == "333"
    assert store.write_batch([item(key, ts, version + 1, "444")]).written == 1  # same time, later sync


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


def test_throttled_and_conflicting_writes_are_retried(project: Path, endpoint: Any) -> None:
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


def test_a_store_that_keeps_throttling_fails_the_sync_and_the_next_sync_finishes(project: Path, endpoint: Any) -> None:
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


def test_large_items_are_split_across_transactions(project: Path) -> None:
    """100 items of 50 KB are over a transaction's 4 MB: the batch goes as several transactions."""
    with Context(project, variables=VARS) as context:
        store = open_store(context)
    store.ensure_table()
    text = "x" * 50_000
    batch = [
        {"pk": {"S": f"big#[{n}]"}, FEATURE_TS: {"N": "1"}, VERSION: {"N": "1"}, "note": {"S": text}}
        for n in range(100)
    ]
    assert store.write_batch(batch).written == 100
    stored = store.read_batch([f"big#[{n}]" for n in range(100)], ["note"])
    assert len(stored) == 100 and all(item["note"]["S"] == text for item in stored.values())

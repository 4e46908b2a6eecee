"""Every way to push events online, each with exactly-once effect, read back against the extract.

The example project with a ``card_spend`` stream model, synced at 2026-06-30 00:00:

- the push Lambda (``featuresql package-lambda --push bank.transactions``), its zip run by the
  real Lambda runtime client on DynamoDB Local, with recorded Kinesis, SQS and API Gateway
  event shapes, each batch delivered twice;
- ``featuresql serve``'s ``POST /push`` over HTTP, on the local store.

A bad record is rejected with its reason and the rest apply (Kinesis: logged and skipped;
SQS: reported in ``batchItemFailures``; HTTP: 207 with per-record results). After the
pushes, the same events are loaded into the warehouse, and reads at times up to ``B +
horizon`` equal ``featuresql extract`` at those times.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import zipfile
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import cli_process
import pytest
from click.testing import CliRunner
from dynamodb_server import DynamoEndpoint, dynamodb_local_with_credentials
from lambda_function import running_lambda
from lambda_runtime import load_event
from projects import SMALL_VARS_ARG, copy_example
from test_stream_models import CARD_SPEND, LATE, PUSHED, _load, _record, assert_reads_as_extract

from featuresql.cli.main import cli as command
from featuresql.serving.manifest import Manifest
from featuresql.serving.push import StaleDefinition, push
from featuresql.serving.tables import open_table

TIMES = [f"2026-06-30 {t}" for t in ("00:00:00", "00:10:00", "01:00:00", "01:31:00", "02:00:00")]
BAD = {"transaction_id": 1, "user_id": "forty-two", "amount": "1.00", "status": "settled", "ts": "2026-06-30T00:05:00Z"}


def cli(project: Path, *args: str) -> str:
    result = CliRunner().invoke(command, ["--project-dir", str(project), *args])
    assert result.exit_code == 0, result.output
    return result.output


def streaming_example(root: Path, online: str | None = None) -> Path:
    profile = "target: dev\ntargets:\n  dev:\n    type: duckdb\n    path: target/cash_advance.duckdb\n"
    project = copy_example(root / "cash_advance", [("profiles.yml", None, profile + (online or ""))])
    (project / "features" / "card_spend.sql").write_text(CARD_SPEND)
    cli(project, "--vars", SMALL_VARS_ARG, "run", "--now", "2026-06-30")
    cli(project, "sync", "--now", "2026-06-30")
    return project


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoEndpoint]:
    with dynamodb_local_with_credentials(tmp_path_factory.mktemp("dynamodb")) as running:
        yield running


@pytest.mark.dynamodb
def test_the_push_lambda_takes_kinesis_sqs_and_api_gateway_events(tmp_path: Path, endpoint: DynamoEndpoint) -> None:
    online = (
        f"    online: {{store: dynamodb, table: push_lambda, endpoint_url: '{endpoint.endpoint_url}', "
        f"region: {endpoint.region}}}\n"
    )
    project = streaming_example(tmp_path, online)
    archive = tmp_path / "push.zip"
    output = cli(project, "package-lambda", "--push", "bank.transactions", "--out", str(archive))
    assert "featuresql.serving.push_handler.handler" in output
    policy = json.loads((tmp_path / "push-iam-policy.json").read_text())
    assert policy["Statement"][0]["Action"] == ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"]
    task = tmp_path / "task"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(task)
    records = [_record(*event) for event in [*PUSHED, LATE]]
    env = {"FEATURESQL_DYNAMODB_ENDPOINT": endpoint.endpoint_url}
    with running_lambda("featuresql.serving.push_handler.handler", cwd=task, env=env, function_name="push") as push:
        kinesis = kinesis_event([*records[:3], BAD])
        for _ in range(2):  # a replay counts once
            assert push.invoke(kinesis).payload == {"batchItemFailures": []}
        sqs = sqs_event([records[3], BAD, records[4]])
        for _ in range(2):
            answer = push.invoke(sqs).payload
            assert answer == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}, answer
        request = copy.deepcopy(load_event("apigw_v2"))
        request["body"] = json.dumps({"source": "bank.transactions", "records": [records[5], BAD, records[6]]})
        response = push.invoke(request).payload
        assert response["statusCode"] == 207, response
        results = json.loads(response["body"])["results"]
        assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
        assert results[0]["models"] == {"card_spend": "counted"}
        assert results[2]["models"] == {"card_spend": "late"}  # older than B: left to the warehouse
        assert results[1]["error"] == "column 'user_id' is an integer column (int64): give a whole number"
    _load(project, PUSHED)
    assert_reads_as_extract(project, tmp_path, TIMES)


def test_serve_takes_pushes_over_http(tmp_path: Path) -> None:
    project = streaming_example(tmp_path)
    records = [_record(*event) for event in PUSHED]
    with cli_process.serving(project, tmp_path / "serve.log") as ((host, port), _):
        for _ in range(2):  # a client resending counts once
            status, body = post(host, port, "/push", {"source": "bank.transactions", "records": [*records, BAD]})
            assert status == 207, body
            assert [r["status"] for r in body["results"]] == ["accepted"] * len(records) + ["rejected"]
        status, body = post(host, port, "/push", {"source": "bank.nothing", "records": []})
        assert status == 404 and "no online stream model reads source 'bank.nothing'" in body["error"]["message"]
        status, body = post(host, port, "/push", {"records": []})
        assert status == 400, body
    _load(project, PUSHED)
    assert_reads_as_extract(project, tmp_path, TIMES)


def post(host: str, port: int, path: str, payload: Any) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("POST", path, json.dumps(payload), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def kinesis_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    template = load_event("kinesis")["Records"][0]
    event: dict[str, Any] = {"Records": []}
    for number, record in enumerate(records):
        entry = copy.deepcopy(template)
        entry["kinesis"]["data"] = base64.b64encode(json.dumps(record).encode()).decode()
        entry["kinesis"]["sequenceNumber"] = str(4959033827149025660855969253836157109592157598913658 + number)
        event["Records"].append(entry)
    return event


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    template = load_event("sqs")["Records"][0]
    event: dict[str, Any] = {"Records": []}
    for number, record in enumerate(records):
        entry = copy.deepcopy(template)
        entry["body"] = json.dumps(record)
        entry["messageId"] = f"message-{number}"
        event["Records"].append(entry)
    return event


def test_a_push_under_another_definition_than_the_stores_is_refused(tmp_path: Path) -> None:
    """After a change of the model is synced, a pusher still holding the old manifest pushes nothing:
    its events would be computed by the old row-level SQL."""
    project = streaming_example(tmp_path)
    manifest_file = project / "target" / "online" / "dev" / "manifest.json"
    old = Manifest.load(manifest_file)
    model = project / "features" / "card_spend.sql"
    model.write_text(model.read_text().replace("where status = 'settled'", "where status <> 'declined'"))
    cli(project, "--vars", SMALL_VARS_ARG, "run", "--now", "2026-06-30", "--full-refresh", "-s", "card_spend")
    cli(project, "sync", "--now", "2026-06-30")
    table = open_table(old.store)
    with pytest.raises(StaleDefinition, match=r"^the store holds card_spend under schema \w+, this push computes"):
        push(old, table, "bank.transactions", [_record(*PUSHED[0])])
    outcome = push(Manifest.load(manifest_file), table, "bank.transactions", [_record(*PUSHED[0])])
    assert outcome.results == [{"status": "accepted", "models": {"card_spend": "counted"}}]


def test_push_reads_csv_and_parquet_files_and_standard_input(tmp_path: Path) -> None:
    """The same records as CSV (text values, an empty field NULL), parquet (typed) and JSON lines on
    standard input: each file counts them once, whatever the format."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    project = streaming_example(tmp_path)
    records = [_record(*event) for event in PUSHED]
    columns = ["transaction_id", "user_id", "merchant_id", "merchant_category", "amount", "status", "ts"]
    csv_file = tmp_path / "swipes.csv"
    lines = [",".join(columns)] + [
        ",".join("" if r.get(c) is None else str(r[c]) for c in columns) for r in records[:3]
    ]
    csv_file.write_text("\n".join(lines) + "\n")
    table = pa.table(
        {
            "transaction_id": [r["transaction_id"] for r in records[3:]],
            "user_id": [r["user_id"] for r in records[3:]],
            "merchant_id": [r["merchant_id"] for r in records[3:]],  # every column: a record's id is of them all
            "amount": pa.array([Decimal(r["amount"]) for r in records[3:]], pa.decimal128(12, 2)),
            "status": [r["status"] for r in records[3:]],
            "ts": pa.array([datetime.fromisoformat(r["ts"].rstrip("Z")) for r in records[3:]], pa.timestamp("us")),
        }
    )
    parquet_file = tmp_path / "swipes.parquet"
    pq.write_table(table, parquet_file)
    assert "Pushed 3 of 3 records" in cli(project, "push", "bank.transactions", str(csv_file))
    assert "Pushed 3 of 3 records" in cli(project, "push", "bank.transactions", str(parquet_file))
    again = "".join(json.dumps(r) + "\n" for r in records)  # everything once more, on standard input
    result = CliRunner().invoke(command, ["--project-dir", str(project), "push", "bank.transactions", "-"], input=again)
    assert result.exit_code == 0 and "Pushed 6 of 6 records" in result.output, result.output
    _load(project, PUSHED)
    assert_reads_as_extract(project, tmp_path, TIMES)

"""The push Lambda: ``featuresql.serving.push_handler.handler`` (standard library and boto3 only).

Packaged by ``featuresql package-lambda --push SOURCE``; it takes three kinds of events:

- **Kinesis** (``Records[].kinesis.data``, base64 of one JSON record of SOURCE each). A record
  that can never be pushed (bad JSON, a value not of its column's type) is logged with its
  reason and skipped: retrying it cannot help, and reporting it would hold up the shard. When
  the store cannot be written, or holds the model under another definition than this
  function's (redeploy it after a sync of the change), the batch answers ``batchItemFailures`` from its first record
  (turn on ``ReportBatchItemFailures``): Lambda retries them, and each counts once.
- **SQS** (``Records[].body``, one JSON record each). A bad record, and every record when the
  store cannot be written, is reported in ``batchItemFailures`` by its ``messageId``: it goes
  back to the queue, and to the queue's dead-letter queue after ``maxReceiveCount``; the rest
  of the batch is applied. Its reason is logged.
- **API Gateway / function URL** (HTTP API v2 or REST v1): ``POST`` with the body of
  ``featuresql.serving.push_requests`` (SOURCE is taken from the body), answered 200, 207,
  400, 404 or 503 with per-record results.

``FEATURESQL_PUSH_SOURCE`` names SOURCE (the package sets it in ``push_source.json``);
the manifest and ``FEATURESQL_DYNAMODB_ENDPOINT`` are read as the reader's handler does.
"""

from __future__ import annotations

import base64
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from featuresql.serving.manifest import Manifest
from featuresql.serving.push import PushOutcome, StaleDefinition, push
from featuresql.serving.push_requests import answer_push
from featuresql.serving.tables import OnlineTable, StoreUnavailable, open_table

MANIFEST_FILE = "online_manifest.json"
SOURCE_FILE = "push_source.json"
_HEADERS = {"content-type": "application/json"}
_container: tuple[Manifest, Any, str] | None = None


def handler(event: Any, context: Any = None) -> Any:
    manifest, table, source = _setup()
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list) and records and isinstance(records[0], dict):
        origin = records[0].get("eventSource")
        if origin == "aws:kinesis":
            return _kinesis(manifest, table, source, records)
        if origin == "aws:sqs":
            return _sqs(manifest, table, source, records)
    if isinstance(event, dict) and ("httpMethod" in event or "requestContext" in event):
        return _http(manifest, table, event)
    _, body = answer_push(manifest, table, json.dumps(event, default=str))  # a direct invocation
    return json.loads(body, parse_float=Decimal)


def _kinesis(manifest: Manifest, table: OnlineTable, source: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    decoded, ids = [], []
    for record in records:
        sequence = record.get("kinesis", {}).get("sequenceNumber")
        try:
            decoded.append(json.loads(base64.b64decode(record["kinesis"]["data"]), parse_float=Decimal))
            ids.append(sequence)
        except (KeyError, ValueError, TypeError) as exc:
            _log(f"kinesis record {sequence}: skipped: not a base64 JSON record ({exc})")
    try:
        outcome = push(manifest, table, source, decoded)
    except (StoreUnavailable, StaleDefinition) as exc:
        _log(f"nothing was pushed ({exc}): the batch is retried")
        return {"batchItemFailures": [{"itemIdentifier": ids[0]}] if ids else []}
    for number, reason in outcome.rejected:
        _log(f"kinesis record {ids[number]}: skipped: {reason}")
    return {"batchItemFailures": []}


def _sqs(manifest: Manifest, table: OnlineTable, source: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    decoded, ids, failed = [], [], []
    for record in records:
        message = record.get("messageId")
        try:
            decoded.append(json.loads(record["body"], parse_float=Decimal))
            ids.append(message)
        except (KeyError, ValueError, TypeError) as exc:
            _log(f"sqs message {message}: not a JSON record ({exc})")
            failed.append(message)
    try:
        outcome: PushOutcome = push(manifest, table, source, decoded)
    except (StoreUnavailable, StaleDefinition) as exc:
        _log(f"nothing was pushed ({exc}): the batch is retried")
        return {"batchItemFailures": [{"itemIdentifier": m} for m in [*ids, *failed]]}
    for number, reason in outcome.rejected:
        _log(f"sqs message {ids[number]}: {reason}")
        failed.append(ids[number])
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


def _http(manifest: Manifest, table: OnlineTable, event: dict[str, Any]) -> dict[str, Any]:
    context = event.get("requestContext")
    method = event.get("httpMethod") or (context.get("http", {}).get("method") if isinstance(context, dict) else None)
    if method != "POST":
        status, body = 405, json.dumps({"error": {"status": 405, "message": f"use POST, not {method}"}})
    else:
        text = event.get("body") or ""
        if event.get("isBase64Encoded") and isinstance(text, str):
            try:
                text = base64.b64decode(text).decode("utf-8")
            except ValueError:
                text = "\x00"  # answered as invalid JSON
        status, body = answer_push(manifest, table, text if isinstance(text, str) else "\x00")
    return {"statusCode": status, "headers": _HEADERS, "body": body, "isBase64Encoded": False}


def _setup() -> tuple[Manifest, Any, str]:
    global _container
    if _container is None:
        root = Path(__file__).resolve().parents[2]
        manifest = Manifest.load(os.environ.get("FEATURESQL_MANIFEST") or root / MANIFEST_FILE)
        source = os.environ.get("FEATURESQL_PUSH_SOURCE")
        if not source:
            source = str(json.loads((root / SOURCE_FILE).read_text(encoding="utf-8"))["source"])
        _container = (manifest, open_table(manifest.store), source)
    return _container


def _log(line: str) -> None:
    print(line, flush=True)  # the function's log (CloudWatch)

"""The Lambda entry point: ``featuresql.serving.handler.handler`` (stdlib and boto3 only).

It answers API Gateway REST (v1) and HTTP API (v2) events, function URL events
(the v2 shape) and direct invocations (the request object itself as the event).
HTTP events get ``{"statusCode", "headers", "body"}``: POST carries the JSON
request in its body (base64 or not), GET in its query string. A direct
invocation gets the response object, or ``{"error": {"status", "message"}}``.

The manifest is read and the client built once per container, at the first
request: ``FEATURESQL_MANIFEST`` names the manifest file (default:
``online_manifest.json`` at the root of the deployment zip, next to the
``featuresql`` folder). ``FEATURESQL_DYNAMODB_ENDPOINT`` overrides the endpoint
(a local DynamoDB); the region and credentials are the Lambda's own.
"""

from __future__ import annotations

import base64
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from featuresql.serving.manifest import Manifest
from featuresql.serving.reader import Reader
from featuresql.serving.tables import open_table

MANIFEST_FILE = "online_manifest.json"
_HEADERS = {"content-type": "application/json"}
_reader: Reader | None = None


def handler(event: Any, context: Any = None) -> Any:
    """The Lambda handler."""
    reader = _container_reader()
    if isinstance(event, dict) and _is_http(event):
        status, body = _answer_http(reader, event)
        return {"statusCode": status, "headers": _HEADERS, "body": body, "isBase64Encoded": False}
    _, body = reader.answer(event)
    return json.loads(body, parse_float=Decimal)  # the runtime writes Decimals as exact JSON numbers


def _is_http(event: dict[str, Any]) -> bool:
    return "httpMethod" in event or isinstance(_http_context(event), dict)


def _http_context(event: dict[str, Any]) -> Any:
    context = event.get("requestContext")
    return context.get("http") if isinstance(context, dict) else None


def _answer_http(reader: Reader, event: dict[str, Any]) -> tuple[int, str]:
    method = event["httpMethod"] if "httpMethod" in event else _http_context(event).get("method")
    if method == "GET":
        parameters = _query_parameters(event)
        if parameters is None:
            return _error(400, "the event's query string parameters are malformed")
        return reader.answer_query(parameters)
    if method != "POST":
        return _error(405, f"use POST (or GET), not {method}")
    body = event.get("body") or ""
    if not isinstance(body, str):
        return _error(400, "the event's body is not a string")
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except ValueError:
            return _error(400, "the request body is not valid base64")
    return reader.answer_body(body)


def _query_parameters(event: dict[str, Any]) -> dict[str, list[str]] | None:
    """The query string as ``parse_qs`` gives it, or None when the event's fields have other types."""
    if "rawQueryString" in event:  # v2 and function URLs
        raw = event["rawQueryString"] or ""
        return parse_qs(raw) if isinstance(raw, str) else None
    multi = event.get("multiValueQueryStringParameters")
    if multi:
        parameters = multi
    else:
        single = event.get("queryStringParameters") or {}
        parameters = {name: [value] for name, value in single.items()} if isinstance(single, dict) else None
    if not isinstance(parameters, dict) or not all(
        isinstance(values, list) and all(isinstance(value, str) for value in values) for values in parameters.values()
    ):
        return None
    return {name: list(values) for name, values in parameters.items()}


def _error(status: int, message: str) -> tuple[int, str]:
    return status, json.dumps({"error": {"status": status, "message": message}})


def _container_reader() -> Reader:
    global _reader
    if _reader is None:
        path = os.environ.get("FEATURESQL_MANIFEST") or Path(__file__).resolve().parents[2] / MANIFEST_FILE
        _reader = reader_for(Manifest.load(path))
    return _reader


def reader_for(manifest: Manifest, *, client: Any = None) -> Reader:
    """A reader of the store the manifest names (``featuresql serve`` uses it too)."""
    return Reader(manifest, open_table(manifest.store, client=client))

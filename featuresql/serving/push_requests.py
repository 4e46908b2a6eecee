"""Push requests over HTTP: ``POST /push`` on ``featuresql serve`` and API Gateway events to the push
Lambda (standard library only).

The body is ``{"source": "bank.transactions", "records": [{...}, ...]}``. The answer lists each
record's result in order (``featuresql.serving.push``): 200 when every record was accepted,
207 (multi-status) when some were rejected, the others applied all the same; a request that
cannot be taken at all is a 400 (its shape), 404 (an unknown source) or 409 (the store holds the
model under another definition: nothing is pushed), and a store that
cannot be written a 503: send it again, which counts each record once.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from featuresql.serving.manifest import Manifest
from featuresql.serving.push import PushError, PushTable, StaleDefinition, push
from featuresql.serving.tables import StoreUnavailable

MAX_RECORDS = 10_000


def answer_push(manifest: Manifest, table: PushTable, body: bytes | str) -> tuple[int, str]:
    """``(status, JSON body)`` for a push request's body."""
    try:
        payload = json.loads(body or b"null", parse_float=Decimal)  # decimals exactly as sent
    except (ValueError, RecursionError) as exc:
        return _error(400, f"the push body is not valid JSON: {exc}")
    if not isinstance(payload, dict) or not isinstance(payload.get("source"), str):
        return _error(400, 'a push is a JSON object {"source": "<source>.<table>", "records": [...]}')
    records = payload.get("records")
    if not isinstance(records, list):
        return _error(400, '"records" is a JSON array of the source\'s rows, e.g. [{"user_id": 42, ...}]')
    if len(records) > MAX_RECORDS:
        return _error(413, f"{len(records):,} records in one push: send at most {MAX_RECORDS:,}")
    unknown = sorted(set(payload) - {"source", "records"})
    if unknown:
        return _error(400, f"unknown field {unknown[0]!r} in the push: give source and records")
    try:
        outcome = push(manifest, table, payload["source"], records)
    except PushError as exc:
        return _error(404, str(exc))
    except StaleDefinition as exc:
        return _error(409, str(exc))
    except StoreUnavailable as exc:
        return _error(503, f"{exc}: nothing was lost, push the records again")
    status = 207 if outcome.rejected else 200
    return status, to_json({"results": outcome.results})


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _error(status: int, message: str) -> tuple[int, str]:
    return status, json.dumps({"error": {"status": status, "message": message}})

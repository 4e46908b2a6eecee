"""Answering feature requests from an online table (stdlib only; the table may use boto3).

A response lists, per requested entity, the requested features named
``<model>__<feature>`` (as in training extracts) and each model's feature
timestamp (the boundary or snapshot time of the row served; null when the
entity has no item)::

    {"results": [{"entity": {"user_id": 1},
                  "features": {"user_transactions__tx_count_7d": 3, ...},
                  "feature_timestamps": {"user_transactions": "2026-06-30T00:00:00Z"}}]}

An item whose TTL has passed is treated as missing even before DynamoDB deletes
it (deletion can lag by days): a missing item reads as the feature defaults,
0 for count-like window features and null otherwise. Decimal features are
written as exact JSON numbers.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from featuresql.serving.items import FEATURE_TS, ItemError, from_attribute, micros_to_iso, partition_key
from featuresql.serving.manifest import Manifest
from featuresql.serving.request import FeatureRequest, RequestError, parse_query, parse_request
from featuresql.serving.tables import Item, OnlineTable, StoreUnavailable


class Reader:
    """A manifest and an online table: requests in, ``(status, JSON body)`` out."""

    def __init__(self, manifest: Manifest, table: OnlineTable, clock: Callable[[], float] = time.time):
        self.manifest = manifest
        self.table = table
        self.clock = clock

    def answer_body(self, body: bytes | str) -> tuple[int, str]:
        """A POST body: JSON text."""
        try:
            payload = json.loads(body or b"null")
        except ValueError as exc:
            return _error(400, f"the request body is not valid JSON: {exc}")
        except RecursionError:
            return _error(400, "the request body is not valid JSON: nested too deeply")
        return self.answer(payload)

    def answer(self, payload: Any) -> tuple[int, str]:
        """A decoded JSON request."""
        return self._respond(lambda: parse_request(payload, self.manifest))

    def answer_query(self, parameters: dict[str, list[str]]) -> tuple[int, str]:
        """A GET request's query parameters."""
        return self._respond(lambda: parse_query(parameters, self.manifest))

    def _respond(self, parse: Callable[[], FeatureRequest]) -> tuple[int, str]:
        try:
            return 200, to_json(self.read(parse()))
        except RequestError as exc:
            return _error(exc.status, exc.message)
        except ItemError as exc:  # a key over DynamoDB's size limit
            return _error(400, str(exc))
        except StoreUnavailable as exc:
            return _error(503, str(exc))

    def read(self, request: FeatureRequest) -> dict[str, Any]:
        """The response for a parsed request (see the module docstring)."""
        models = self.manifest.models
        keys = {
            model: [partition_key(model, [entity[c] for c in models[model].key_columns]) for entity in request.entities]
            for model in request.features
        }
        attributes = sorted(
            {FEATURE_TS, self.manifest.ttl_attribute, *(f for fs in request.features.values() for f in fs)}
        )
        items = self.table.get_many([key for model_keys in keys.values() for key in model_keys], attributes)
        now = self.clock()
        results = []
        for number, entity in enumerate(request.entities):
            values: dict[str, Any] = {}
            stamps: dict[str, str | None] = {}
            for model_name, features in request.features.items():
                model = models[model_name]
                item = self._live(items.get(keys[model_name][number]), now)
                stamps[model_name] = micros_to_iso(int(item[FEATURE_TS]["N"])) if item else None
                for name in features:
                    feature = model.features[name]
                    attribute = item.get(name) if item else None
                    value = feature.default if attribute is None else from_attribute(attribute, feature.kind)
                    values[f"{model_name}__{name}"] = _jsonable(value)
            results.append({"entity": entity, "features": values, "feature_timestamps": stamps})
        return {"results": results}

    def _live(self, item: Item | None, now: float) -> Item | None:
        if item is None:
            return None
        expires = item.get(self.manifest.ttl_attribute)
        if expires is not None and "N" in expires and float(expires["N"]) < now:
            return None
        return item


def _error(status: int, message: str) -> tuple[int, str]:
    return status, json.dumps({"error": {"status": status, "message": message}})


def to_json(value: Any) -> str:
    """JSON text with ``Decimal`` values written exactly as numbers (``json`` alone cannot)."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except TypeError:  # a Decimal somewhere: the slower exact path
        return _exact_json(value)


def _exact_json(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_exact_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_exact_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _jsonable(value: Any) -> Any:
    """Non-finite doubles as the strings "NaN", "Infinity" and "-Infinity" (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value

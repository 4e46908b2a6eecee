"""Answering feature requests from an online table (stdlib only; the table may use boto3).

A response lists, per requested entity, the requested features named
``<model>__<feature>`` (as in training extracts) and each model's feature
timestamp (the boundary or snapshot time of the row served; null when the
entity has no item)::

    {"results": [{"entity": {"user_id": 1},
                  "features": {"user_transactions__tx_count_7d": 3, ...},
                  "feature_timestamps": {"user_transactions": "2026-06-30T00:00:00Z"}}]}

An item is missing from the first instant it no longer answers (``_exp``, in
microseconds; else the TTL attribute), even before the store deletes it
(DynamoDB's deletion can lag by days): a missing item reads as the feature
defaults, 0 for count-like window features and null otherwise, as an extract
reads an entity with no row. Before a model's ``start`` every feature is null,
count-like ones included (unknown is not zero); so it is until the first boundary
is available, at ``start + data_delay``, as in an extract.

The reader never answers with a value it cannot stand behind:

- an item written under another schema version than the manifest's (the model
  changed; this reader's manifest is older or newer than the items) is a 409,
  naming the model and what to redeploy or sync;
- every request also reads the store's sync marker: a store that has none (never
  synced, or wiped) is a 503, and so is a model it does not hold yet (a reader
  packaged before the model's first sync); a model it holds under another
  schema is a 409;
- an on-demand model the last sync served with other programs (its SQL or its inputs'
  types changed since this reader was packaged) is a 409, one it did not serve a 503
  (the marker records each program's digest);
- with ``strict_time`` (``featuresql read --now``), a read earlier than the last
  sync's time, or than an item's availability, is a 409: the store holds the
  present values, not the past.

Decimal features are written as exact JSON numbers.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from featuresql.serving.expression_times import to_text
from featuresql.serving.expressions import EvaluationError, evaluate
from featuresql.serving.items import (
    EXPIRES,
    FEATURE_TS,
    MARKER_KEY,
    MARKER_MODELS,
    MARKER_ON_DEMAND,
    MARKER_STREAMS,
    MARKER_SYNCED_AT,
    SCHEMA_VERSION,
    ItemError,
    from_attribute,
    micros_to_iso,
    partition_key,
)
from featuresql.serving.manifest import Manifest, OnlineModel, OnlineOnDemand, OnlineStream
from featuresql.serving.request import FeatureRequest, RequestError, parse_query, parse_request
from featuresql.serving.stream_items import pushed_key
from featuresql.serving.stream_reads import entity_values, guessed_tiles, missing_tiles
from featuresql.serving.stream_state import StoreAhead
from featuresql.serving.tables import Item, OnlineTable, StoreUnavailable


class Reader:
    """A manifest and an online table: requests in, ``(status, JSON body)`` out."""

    def __init__(
        self,
        manifest: Manifest,
        table: OnlineTable,
        clock: Callable[[], float] = time.time,
        *,
        strict_time: bool = False,
    ):
        self.manifest = manifest
        self.table = table
        self.clock = clock
        self.strict_time = strict_time  # refuse a read earlier than an item's availability (read --now)

    def answer_body(self, body: bytes | str) -> tuple[int, str]:
        """A POST body: JSON text."""
        try:
            payload = json.loads(body or b"null", parse_float=Decimal)  # request decimals exactly as sent
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
        on_demand = {name: self.manifest.on_demand[name] for name in request.on_demand}
        needed = {name: list(features) for name, features in request.features.items()}
        for computed in on_demand.values():
            for name, input_feature in computed.inputs:
                if input_feature not in needed.setdefault(name, []):
                    needed[name].append(input_feature)
        keys = {
            name: [partition_key(name, [entity[c] for c in models[name].key_columns]) for entity in request.entities]
            for name in needed
        }
        ttl_attribute = self.manifest.ttl_attribute
        wanted = {f for fs in needed.values() for f in fs}
        marker_attributes = (MARKER_MODELS, MARKER_SYNCED_AT, *((MARKER_ON_DEMAND,) if on_demand else ()))
        attributes = sorted({FEATURE_TS, EXPIRES, SCHEMA_VERSION, ttl_attribute, *marker_attributes, *wanted})
        now = round(self.clock() * 1_000_000)
        streams = {name: stream for name in needed if (stream := models[name].stream) is not None}
        pushed = [
            pushed_key(key, models[name].schema, tile)
            for name, stream in streams.items()
            for key in keys[name]
            for tile in guessed_tiles(stream, now)
        ]
        everything = [MARKER_KEY, *(key for model_keys in keys.values() for key in model_keys), *pushed]
        # pushed items name their events' attributes by record id: no projection can list them
        items = self.table.get_many(everything, None if streams else attributes)
        self._check_held(items.get(MARKER_KEY), needed, now)
        self._check_computed(items[MARKER_KEY], on_demand)
        synced = self._stream_boundaries(items[MARKER_KEY], streams)
        later = [
            missing
            for name, stream in streams.items()
            for key in keys[name]
            for missing in missing_tiles(stream, key, models[name].schema, items.get(key), now, synced[name])
        ]
        if later:  # a late sync: the answer reaches back to tiles the first read did not guess
            items.update(self.table.get_many(later, None))
        results = []
        for number, entity in enumerate(request.entities):
            values: dict[str, Any] = {}
            stamps: dict[str, str | None] = {}
            read: dict[str, Any] = {}  # "model.feature" -> its value, what on-demand programs read
            for model_name, wanted_features in needed.items():
                model = models[model_name]
                if model.stream is not None:
                    key = keys[model_name][number]
                    self._live(model, items.get(key), now)  # the state's schema is the reader's
                    fresh, as_of = self._fresh(model, key, items, now, synced[model_name])
                    stamps[model_name] = micros_to_iso(as_of * 1_000_000)
                    read.update((f"{model_name}.{name}", fresh[name]) for name in wanted_features)
                    continue
                before_start = model.start is not None and now < model.start + model.data_delay * 1_000_000
                item = None if before_start else self._live(model, items.get(keys[model_name][number]), now)
                stamps[model_name] = micros_to_iso(int(item[FEATURE_TS]["N"])) if item else None
                for name in wanted_features:
                    feature = model.features[name]
                    attribute = item.get(name) if item else None
                    if before_start:
                        value = None
                    else:
                        value = feature.default if attribute is None else from_attribute(attribute, feature.kind)
                    read[f"{model_name}.{name}"] = value
            for model_name, requested in request.features.items():
                for name in requested:
                    values[request.output_name(model_name, name)] = _jsonable(read[f"{model_name}.{name}"])
            for model_name, requested in request.on_demand.items():
                inputs = read | {f"request.{c}": v for c, v in request.requests[number].items()}
                for name in requested:
                    value = _evaluate(on_demand[model_name].features[name], inputs, model_name, name, number)
                    values[request.output_name(model_name, name)] = _jsonable(value)
            results.append({"entity": entity, "features": values, "feature_timestamps": stamps})
        return {"results": results}

    def _check_held(self, marker: Item | None, requested: Mapping[str, Sequence[str]], now: int) -> None:
        """The store holds every requested model under this reader's schema (its marker says so)."""
        if marker is None:
            raise RequestError(
                503, "the online store has no sync marker (never synced, or wiped): run `featuresql sync`"
            )
        held = json.loads(marker.get(MARKER_MODELS, {}).get("S", "{}"))
        for name in requested:
            schema = self.manifest.models[name].schema
            if name not in held:
                raise RequestError(503, f"the online store does not hold {name} yet: run `featuresql sync`")
            if held[name] != schema:
                raise RequestError(
                    409,
                    f"the store holds {name} under schema {held[name]}, this reader serves schema {schema}: "
                    "sync the target, then redeploy the reader (featuresql package-lambda)",
                )
        synced_at = marker.get(MARKER_SYNCED_AT)
        if self.strict_time and synced_at is not None and now < int(synced_at["N"]):
            raise RequestError(
                409,
                f"cannot answer as of {micros_to_iso(now)}: the store holds values as of "
                f"{micros_to_iso(int(synced_at['N']))}, not the past; use featuresql extract for earlier times",
            )

    def _check_computed(self, marker: Item, on_demand: Mapping[str, OnlineOnDemand]) -> None:
        """The last sync served these on-demand models with this reader's programs (the marker's digests)."""
        if not on_demand:
            return
        synced = json.loads(marker.get(MARKER_ON_DEMAND, {}).get("S", "{}"))
        for name, computed in on_demand.items():
            if name not in synced:
                raise RequestError(503, f"the online store's last sync did not serve {name}: run `featuresql sync`")
            if synced[name] != computed.digest:
                raise RequestError(
                    409,
                    f"{name} was synced as {synced[name]}, this reader computes it as {computed.digest} (its SQL "
                    "or its inputs' types changed): sync the target, then redeploy the reader "
                    "(featuresql package-lambda)",
                )

    def _stream_boundaries(self, marker: Item, streams: Mapping[str, OnlineStream]) -> dict[str, int]:
        """Each stream model's ``B`` as the last sync left it (the marker's)."""
        if not streams:
            return {}
        synced = json.loads(marker.get(MARKER_STREAMS, {}).get("S", "{}"))
        for name in streams:
            if name not in synced:
                raise RequestError(
                    503, f"the online store holds no state of stream model {name}: run `featuresql sync`"
                )
        return {name: int(synced[name]) for name in streams}

    def _fresh(
        self, model: OnlineModel, key: str, items: Mapping[str, Item], now: int, synced: int
    ) -> tuple[dict[str, Any], int]:
        stream = model.stream
        assert stream is not None, f"{model.name} is no stream model"
        try:
            return entity_values(stream, key, model.schema, items, now, synced)
        except StoreAhead:
            raise RequestError(
                409,
                f"cannot answer {stream.rows.model} as of {micros_to_iso(now)}: the store's state of it was synced "
                "later and no longer reaches back there; use featuresql extract for earlier times",
            ) from None

    def _live(self, model: OnlineModel, item: Item | None, now: int) -> Item | None:
        """The item if it answers at ``now`` (epoch microseconds); raises when it cannot be read right."""
        if item is None:
            return None
        if item_expired(item, self.manifest.ttl_attribute, now):
            return None
        schema = item.get(SCHEMA_VERSION, {}).get("S")
        if schema != model.schema:
            raise RequestError(
                409,
                f"the store holds {model.name} items of schema {schema or 'unversioned'}, this reader serves "
                f"schema {model.schema}: sync the target, then redeploy the reader (featuresql package-lambda)",
            )
        available = int(item[FEATURE_TS]["N"]) + model.data_delay * 1_000_000
        if self.strict_time and now < available:
            raise RequestError(
                409,
                f"cannot answer as of {micros_to_iso(now)}: the store holds {model.name} values available from "
                f"{micros_to_iso(available)}, not the past; use featuresql extract for earlier times",
            )
        return item


def item_expired(item: Item, ttl_attribute: str, now: int) -> bool:
    """Whether ``item`` no longer answers at ``now`` (epoch microseconds): ``_exp`` reached, inclusive.

    Items without ``_exp`` fall back to the TTL attribute (epoch seconds).
    """
    exact = item.get(EXPIRES)
    if exact is not None and "N" in exact:
        return now >= int(exact["N"])
    expires = item.get(ttl_attribute)
    return expires is not None and "N" in expires and now >= int(float(expires["N"]) * 1_000_000)


def _evaluate(program: list[Any], inputs: dict[str, Any], model: str, feature: str, number: int) -> Any:
    try:
        return evaluate(program, inputs)
    except EvaluationError as exc:  # the warehouse fails the same query: no value to stand behind
        raise RequestError(422, f"on-demand feature {model}.{feature} of entity {number}: {exc}") from None


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
    """Non-finite doubles as the strings "NaN", "Infinity" and "-Infinity" (JSON has no such numbers);
    an on-demand time as stored times read (``2026-06-30T10:00:00Z``)."""
    if isinstance(value, date):
        return to_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value

"""Pushing source records to the online store: each counts in the next read of every stream model
that reads its source (standard library only; boto3 through the table). DESIGN.md section 11.

A batch of records of one source is read and checked record by record: a bad record
is rejected with its reason and the rest still apply. A good record becomes, per
stream model reading the source, one event (or none, when the model's WHERE drops
it or its key or time is NULL), written to the model's pushed item for the event's
tile (``featuresql.serving.stream_items``) under the record's id, so a record
delivered twice is held once. An event older than the model's ``B`` at the last
sync is left to the warehouse: sync's slots there replace pushed events, so pushing
it changes nothing; its result says so (it counts once the warehouse has it, and
the next sync, within the model's ``lookback``).

Each record's result is ``{"status": "accepted", "models": {model: outcome}}`` with
outcome ``counted``, ``filtered`` (dropped by the row-level SQL: no event) or
``late`` (older than ``B``), or ``{"status": "rejected", "error": reason}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from featuresql.serving.items import MARKER_KEY, MARKER_MODELS, MARKER_STREAMS, ItemError, partition_key
from featuresql.serving.manifest import Manifest, OnlineModel
from featuresql.serving.push_records import RecordError, StreamRows, event_of, read_record, record_id
from featuresql.serving.stream_items import encode_event, event_attribute, pushed_key

MICROS = 1_000_000


class PushTable(Protocol):
    """What push needs of a store: the marker read, and attributes set on items (created when missing)."""

    def get_many(self, keys: Sequence[str], attributes: Sequence[str] | None) -> dict[str, Any]: ...

    def set_attributes(self, updates: Mapping[str, Mapping[str, str]]) -> None: ...


class PushError(Exception):
    """A push request that cannot be taken at all (an unknown source); the message says why."""


class StaleDefinition(Exception):
    """The store holds a stream model under another definition than the pusher's: nothing is pushed."""


@dataclass(frozen=True)
class PushOutcome:
    results: list[dict[str, Any]]

    @property
    def rejected(self) -> list[tuple[int, str]]:
        return [(n, r["error"]) for n, r in enumerate(self.results) if r["status"] == "rejected"]

    def count(self, outcome: str) -> int:
        return sum(outcome in r.get("models", {}).values() for r in self.results)


def stream_sources(manifest: Manifest) -> dict[str, list[OnlineModel]]:
    """Source table ('source_name.table') -> the stream models that read it."""
    found: dict[str, list[OnlineModel]] = {}
    for model in manifest.models.values():
        if model.stream is not None:
            found.setdefault(model.stream.rows.source.lower(), []).append(model)
    return found


def push(
    manifest: Manifest, table: PushTable, source: str, records: Iterable[Any], *, text: bool = False
) -> PushOutcome:
    """Apply ``records`` of ``source`` (decoded JSON objects; ``text``: their values are text, as CSV's);
    see the module docstring."""
    models = stream_sources(manifest).get(source.lower())
    if not models:
        known = sorted(stream_sources(manifest))
        if not known:
            raise PushError(
                f"no online stream model reads source {source!r}: no stream model is synced to this store "
                "(set config(stream_grain=...) on an online window model, then sync)"
            )
        raise PushError(f"no online stream model reads source {source!r}: stream models read {', '.join(known)}")
    boundaries = _boundaries(table, models)
    rows = [_rows(model) for model in models]
    results: list[dict[str, Any]] = []
    updates: dict[str, dict[str, str]] = {}
    for record in records:
        try:
            values = read_record(record, rows[0].source_types, text=text)
            identity = record_id(values, rows[0].event_id)
            outcomes, writes = _events(models, values, identity, boundaries)
        except (RecordError, ItemError) as exc:
            results.append({"status": "rejected", "error": str(exc)})
            continue
        for key, attributes in writes:
            updates.setdefault(key, {}).update(attributes)
        results.append({"status": "accepted", "models": outcomes})
    if updates:
        table.set_attributes(updates)
    return PushOutcome(results)


def _rows(model: OnlineModel) -> StreamRows:
    assert model.stream is not None, f"{model.name} is no stream model"
    return model.stream.rows


def _events(
    models: list[OnlineModel], values: Mapping[str, Any], identity: str, boundaries: Mapping[str, int | None]
) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
    outcomes: dict[str, str] = {}
    writes = []
    for model in models:
        name, stream = model.name, model.stream
        assert stream is not None
        event = event_of(stream.rows, values, identity)
        if event is None:
            outcomes[name] = "filtered"
            continue
        boundary = boundaries.get(name)
        if boundary is not None and event.time < boundary * MICROS:
            outcomes[name] = "late"
            continue
        tile = event.time // (stream.shape.grain * MICROS)
        key = pushed_key(partition_key(name, list(event.keys)), model.schema, tile)
        writes.append((key, {event_attribute(identity): encode_event(event.time, event.inputs)}))
        outcomes[name] = "counted"
    return outcomes, writes


def _boundaries(table: PushTable, models: list[OnlineModel]) -> dict[str, int | None]:
    """Each model's ``B`` at the last sync (None before its first: every event counts); refuses a store
    that holds a model under another definition than this manifest's (its reader would not merge the
    events, or would merge them wrongly)."""
    marker = table.get_many([MARKER_KEY], [MARKER_STREAMS, MARKER_MODELS]).get(MARKER_KEY) or {}
    synced = json.loads(marker.get(MARKER_STREAMS, {}).get("S", "{}"))
    held = json.loads(marker.get(MARKER_MODELS, {}).get("S", "{}"))
    for model in models:
        if model.name in held and held[model.name] != model.schema:
            raise StaleDefinition(
                f"the store holds {model.name} under schema {held[model.name]}, this push computes schema "
                f"{model.schema}: redeploy the push function (featuresql package-lambda --push), or use "
                "the manifest of the last sync"
            )
    return {model.name: synced.get(model.name) for model in models}

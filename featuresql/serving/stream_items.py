"""How a stream model's online state is laid out in store items (standard library only).

Per (model, entity) there are two kinds of items, so that the writer that changes
often (push) never rewrites the big one (sync's), which DynamoDB would bill at its
whole size:

- the **state item**, under the entity's partition key (``<model>#<key>``), written
  by sync: ``_b`` (the boundary ``B`` it was synced to, epoch seconds) and ``_st``
  (its warehouse slots, ``featuresql.serving.stream_state``, as JSON text), with the
  sync's ``_v``, ``_run``, ``_sv`` and ``_ts`` (``B`` in microseconds) like any item;
- one **pushed item** per model-grain tile at or after ``B`` that events were pushed
  to, under ``<model>#<key>#p<tile>``, written by push: one attribute per pushed
  event, named ``e<record id>``, holding ``[time in microseconds, {input: value}]``
  as JSON text. Setting an attribute is idempotent: a record delivered twice is
  held once. Keys end in ``]`` before the ``#p``, so they never meet an entity's key.

Values in the JSON text keep their exact type: integers and strings as themselves,
and tagged lists for the rest (``["d", "12.50"]`` a decimal, ``["f", "0.1"]`` a double
by its repr, NaN and infinities included, ``["q", n, d]`` a fraction, ``["t", micros]``
a timestamp, ``["D", "2026-06-30"]`` a date). A partial's own lists (first and last
keep ``[time, tie-break, value]``) are tagged ``["l", ...]``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from featuresql.serving.items import KEY_SEPARATOR

STATE_BOUNDARY = "_b"
STATE_SLOTS = "_st"
EVENT_PREFIX = "e"
PUSHED_MARK = f"{KEY_SEPARATOR}p"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


def pushed_key(entity_key: str, tile: int) -> str:
    """The pushed item of ``entity_key`` (a partition key ``<model>#<key>``) for model-grain tile ``tile``."""
    return f"{entity_key}{PUSHED_MARK}{tile}"


def is_pushed_key(key: str) -> bool:
    """Whether ``key`` is a pushed item's (sync leaves those to push and the reader)."""
    head, mark, tile = key.rpartition(PUSHED_MARK)
    return bool(mark) and head.endswith("]") and tile.lstrip("-").isdigit()


def event_attribute(record: str) -> str:
    return f"{EVENT_PREFIX}{record}"


def encode_event(time: int, inputs: dict[str, Any]) -> str:
    return dumps([time, inputs])


def pushed_events(item: dict[str, Any] | None) -> dict[str, list[Any]]:
    """The events of a pushed item: record id -> [time, inputs]."""
    if not item:
        return {}
    return {
        name[len(EVENT_PREFIX) :]: loads(value["S"])
        for name, value in item.items()
        if name.startswith(EVENT_PREFIX) and "S" in value
    }


def state_of(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A state item as ``stream_state``'s state (``b`` and ``slots``), None when there is none."""
    if not item or STATE_BOUNDARY not in item:
        return None
    return {"b": int(item[STATE_BOUNDARY]["N"]), "slots": loads(item[STATE_SLOTS]["S"])}


def dumps(value: Any) -> str:
    return json.dumps(_tagged(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def loads(text: str) -> Any:
    return _untagged(json.loads(text))


def _tagged(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return ["f", repr(value)]
    if isinstance(value, Decimal):
        return ["d", str(value)]
    if isinstance(value, Fraction):
        return ["q", value.numerator, value.denominator]
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return ["t", (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds]
    if isinstance(value, date):
        return ["D", value.isoformat()]
    if isinstance(value, dict):
        return {str(k): _tagged(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return ["l", *(_tagged(v) for v in value)]
    raise TypeError(f"a stream partial cannot hold {type(value).__name__} values ({value!r})")


def _untagged(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untagged(v) for k, v in value.items()}
    if not isinstance(value, list):
        return value
    tag = value[0]
    if tag == "l":
        return [_untagged(v) for v in value[1:]]
    if tag == "f":
        return float(value[1])
    if tag == "d":
        return Decimal(value[1])
    if tag == "q":
        return Fraction(value[1], value[2])
    if tag == "t":
        return _NAIVE_EPOCH + timedelta(microseconds=value[1])  # naive UTC, as the warehouse hands times over
    if tag == "D":
        return date.fromisoformat(value[1])
    raise ValueError(f"unknown value tag {tag!r} in a stream item")

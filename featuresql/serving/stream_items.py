"""How a stream model's online state is laid out in store items (standard library only).

Per (model, entity) there are two kinds of items, so that the writer that changes
often (push) never rewrites the big one (sync's), which DynamoDB would bill at its
whole size:

- the **state item**, under the entity's partition key (``<model>#<key>``), written
  by sync: ``_b`` (the boundary ``B`` it was synced to, epoch seconds) and ``_st``
  (its warehouse slots, ``featuresql.serving.stream_state``, as JSON text), with the
  sync's ``_v``, ``_run``, ``_sv`` and ``_ts`` (``B`` in microseconds) like any item;
- one **pushed item** per model-grain tile at or after ``B`` that events were pushed
  to, under ``<model>#<key>#p<schema>:<tile>``, written by push: one attribute per
  pushed event, named ``e<record id>``, holding ``[time in microseconds, {input:
  value}]`` as JSON text. Setting an attribute is idempotent: a record delivered
  twice is held once. The key names the model's schema version the event was
  computed under, so a reader of another definition never merges it. Keys end in
  ``]`` before the ``#p``, so they never meet an entity's key.

Values in the JSON text keep their exact type, and read back with one ``json.loads``:
integers, strings, lists and booleans as themselves, decimals as JSON numbers (read
with ``parse_float=Decimal``; a decimal of no fractional digits is written with an
exponent, ``5E+0``, so it stays one), and the rest as one-key objects whose key
cannot be a column's or a part's name: ``{"$f": "0.1"}`` a double by its repr (NaN
and infinities included), ``{"$q": [n, d]}`` a fraction, ``{"$t": micros}`` a
timestamp (naive UTC), ``{"$D": "2026-06-30"}`` a date.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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


def pushed_key(entity_key: str, schema: str, tile: int) -> str:
    """The pushed item of ``entity_key`` (a partition key ``<model>#<key>``) for model-grain tile ``tile``,
    of events computed under the model's schema version ``schema``."""
    return f"{entity_key}{PUSHED_MARK}{schema}:{tile}"


def is_pushed_key(key: str) -> bool:
    """Whether ``key`` is a pushed item's (sync leaves those to push and the reader)."""
    head, mark, tail = key.rpartition(PUSHED_MARK)
    schema, colon, tile = tail.partition(":")
    return bool(mark and colon) and head.endswith("]") and schema.isalnum() and tile.lstrip("-").isdigit()


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
    return "".join(_text(value))


def loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, object_hook=_untagged)


def _text(value: Any) -> Iterator[str]:
    if value is None or isinstance(value, bool | int | str):
        yield json.dumps(value, ensure_ascii=False)
    elif isinstance(value, Decimal):
        text = str(value)
        yield text if "." in text or "E" in text else f"{text}E+0"  # read back as a decimal, not an integer
    elif isinstance(value, float):
        yield f'{{"$f":"{value!r}"}}'
    elif isinstance(value, dict):
        yield "{"
        for number, (key, item) in enumerate(sorted(value.items())):  # one text per value: sync compares digests
            yield f"{',' if number else ''}{json.dumps(str(key), ensure_ascii=False)}:"
            yield from _text(item)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for number, item in enumerate(value):
            if number:
                yield ","
            yield from _text(item)
        yield "]"
    elif isinstance(value, Fraction):
        yield f'{{"$q":[{value.numerator},{value.denominator}]}}'
    elif isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        yield f'{{"$t":{(delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds}}}'
    elif isinstance(value, date):
        yield f'{{"$D":"{value.isoformat()}"}}'
    else:
        raise TypeError(f"a stream partial cannot hold {type(value).__name__} values ({value!r})")


def _untagged(entry: dict[str, Any]) -> Any:
    if len(entry) != 1:
        return entry
    ((tag, value),) = entry.items()
    if tag == "$f":
        return float(value)
    if tag == "$q":
        return Fraction(value[0], value[1])
    if tag == "$t":
        return _NAIVE_EPOCH + timedelta(microseconds=value)  # naive UTC, as the warehouse hands times over
    if tag == "$D":
        return date.fromisoformat(value)
    return entry

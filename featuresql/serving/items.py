"""How entity keys and feature values are written in DynamoDB: one module for writer and reader.

Entity keys. An item's partition key is ``<model>#<key>``, where ``<key>`` is the
entity's key values, in the order project.yml declares them, as a compact JSON
array: integers in decimal, strings as JSON strings (``json.dumps`` with
``ensure_ascii=False`` and no spaces). So the integer 7 is ``[7]`` and the string
"7" is ``["7"]``: they never collide; composite keys are ``[7,"DE"]``; any
string, separators and quotes included, round-trips. Booleans, floats and NULL
are not keys (a float is not exact, and a NULL key matches nothing offline either).

Feature values, as DynamoDB attribute values: integers, decimals and doubles are
numbers (``N``) written exactly (a double as its shortest repr, which reads back
as the same double); strings ``S``; booleans ``BOOL``; NULL ``NULL``. DynamoDB
numbers cannot hold NaN or infinities: those are the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (``S``), read back as floats. Timestamps and
dates are ISO-8601 strings (``2026-06-30T00:00:00Z``, ``2026-06-30``).

Item attributes: ``pk`` (the partition key), one attribute per feature, ``_ts``
(the row's feature timestamp, epoch microseconds), ``_v`` (the sync's version: a
sequence kept per store, which orders every write to it), ``_run`` (the sync's
id), ``_sv`` (the schema version of the model's items: the reader refuses an item
written under another one), ``_exp`` (the first instant, in epoch microseconds,
at which the item no longer answers: its window is empty or its ``ttl`` has
passed; absent when it never expires) and the TTL attribute (``_exp`` rounded up
to epoch seconds, for the store's own expiry; ``_ttl`` unless configured).
Feature columns may not use these names.

One item per store is not an entity's: the sync marker, under ``MARKER_KEY``
(no model name is empty, so it collides with none), records which sync last
completed on the store, the models it holds with their schema versions and the
time it synced as of (``featuresql.online.records``); the reader reads it with
every request.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

KEY_SEPARATOR = "#"
MAX_KEY_BYTES = 2048  # DynamoDB's limit on a partition key
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
PARTITION_KEY = "pk"
FEATURE_TS = "_ts"
VERSION = "_v"
RUN = "_run"
EXPIRES = "_exp"
SCHEMA_VERSION = "_sv"
DEFAULT_TTL_ATTRIBUTE = "_ttl"
RESERVED = frozenset({PARTITION_KEY, FEATURE_TS, VERSION, RUN, EXPIRES, SCHEMA_VERSION})
MARKER_KEY = f"{KEY_SEPARATOR}featuresql-sync"
# The marker's own attributes: the sync record's generation, the models the store holds (a JSON object of
# model -> schema version) and the --now of the last sync completed on it (epoch microseconds).
MARKER_GENERATION = "generation"
MARKER_MODELS = "models"
MARKER_SYNCED_AT = "synced_at"
MARKER_ON_DEMAND = "on_demand"  # JSON: on-demand model -> the digest of the programs the last sync served
MARKER_STREAMS = "streams"  # JSON: stream model -> B, the boundary (epoch seconds) its states were synced to

KeyValue = int | str
AttributeValue = dict[str, Any]


class ItemError(ValueError):
    """A key or value that has no item encoding (the message says which and why)."""


def entity_key(values: tuple[Any, ...] | list[Any]) -> str:
    """The canonical text of an entity's key values (see the module docstring)."""
    if not values:
        raise ItemError("an entity key needs at least one value")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | str):
            kind = "NULL" if value is None else type(value).__name__
            raise ItemError(f"entity key values are integers or strings, not {kind} ({value!r})")
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def parse_entity_key(text: str) -> tuple[KeyValue, ...]:
    """The key values of ``entity_key``'s text."""
    try:
        values = json.loads(text)
    except ValueError:
        raise ItemError(f"not an entity key: {text!r}") from None
    if not isinstance(values, list) or not values or not all(_is_key_value(v) for v in values):
        raise ItemError(f"not an entity key: {text!r}")
    return tuple(values)


def _is_key_value(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def warehouse_key(value: Any) -> Any:
    """An entity key value as a warehouse returns it, in the form keys are encoded.

    Snowflake returns an integer key of type NUMBER(38, 0) as a ``Decimal``; the
    key is the integer (the int 7 and the string "7" stay apart).
    """
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def partition_key(model: str, key_values: tuple[Any, ...] | list[Any]) -> str:
    """``<model>#<entity key>``: one item per model and entity."""
    if not model or KEY_SEPARATOR in model:
        raise ItemError(f"model name {model!r} cannot be part of a key")
    key = f"{model}{KEY_SEPARATOR}{entity_key(key_values)}"
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ItemError(f"the key of {model} {key_values!r} is over DynamoDB's {MAX_KEY_BYTES} bytes")
    return key


def split_partition_key(key: str) -> tuple[str, tuple[KeyValue, ...]]:
    model, separator, rest = key.partition(KEY_SEPARATOR)
    if not separator:
        raise ItemError(f"not a partition key: {key!r}")
    return model, parse_entity_key(rest)


def to_attribute(value: Any) -> AttributeValue:
    """A feature value as a DynamoDB attribute value (the low-level client's form)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"S": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
        return {"N": repr(value)}
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ItemError(f"{value!r} has no DynamoDB number")
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value
        return {"S": utc.replace(tzinfo=None).isoformat() + "Z"}
    if isinstance(value, date):
        return {"S": value.isoformat()}
    raise ItemError(f"feature values are numbers, strings, booleans or NULL, not {type(value).__name__}")


def from_attribute(attribute: AttributeValue, kind: str | None = None) -> Any:
    """A DynamoDB attribute value as Python, given the feature's type family when known.

    ``kind`` is ``integer``, ``float``, ``decimal``, ``string``, ``boolean``,
    ``timestamp`` or ``date`` (the online manifest records it; the last two read
    back as their ISO strings). DynamoDB normalises numbers (``2.0`` is stored as
    ``2``), so a double reads back as a float only when ``kind`` says so; without a
    kind, whole numbers are ints and others floats.
    """
    if "NULL" in attribute:
        return None
    if "BOOL" in attribute:
        return bool(attribute["BOOL"])
    if "S" in attribute:
        text = attribute["S"]
        if kind == "float" and text in NON_FINITE:
            return NON_FINITE[text]
        return text
    if "N" in attribute:
        number = Decimal(attribute["N"])
        if kind == "decimal":
            return number
        if kind == "integer" or (kind is None and number == number.to_integral_value()):
            return int(number)
        return float(number)
    raise ItemError(f"unsupported attribute value {attribute!r}")


def micros_to_iso(micros: int) -> str:
    """Epoch microseconds as an ISO-8601 UTC timestamp (``2026-06-30T00:00:00Z``)."""
    seconds, fraction = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{fraction:06d}Z" if fraction else f"{text}Z"

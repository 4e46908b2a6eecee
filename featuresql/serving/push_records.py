"""Pushed records: rows of a stream model's source table, read as their declared types and run
through the model's row-level programs (standard library only; DESIGN.md section 11).

A record is a JSON object of the source's columns; a column left out is NULL, a column
the source does not declare is refused. Each value must be exactly of its column's
declared type (the rules of request values, ``featuresql.serving.request_columns``): a
pushed event is never rounded into the store.

Every record has an id, so that a record delivered twice (a Lambda retry, a Kinesis
replay, a client resending) counts once: the source's declared ``event_id`` column, or
else a hash of the whole record as read (``1.5`` and ``1.50`` in a decimal column, or
the same columns in another order, are one record).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from featuresql.serving.expression_errors import EvaluationError
from featuresql.serving.expression_times import epoch_micros
from featuresql.serving.expressions import Program, evaluate
from featuresql.serving.request_columns import RequestValueError, request_value


class RecordError(Exception):
    """A record that cannot be pushed; the message says which column and why."""


@dataclass(frozen=True)
class StreamRows:
    """What the reader's push path knows of one stream model (``RowPrograms`` in the manifest)."""

    model: str
    source: str  # 'source_name.table'
    source_types: Mapping[str, str]  # column -> expression type
    keys: tuple[str, ...]
    timestamp: str
    where: Program | None
    columns: Mapping[str, Program]  # the events' columns (keys, timestamp, inputs) -> programs
    event_id: str | None = None


@dataclass(frozen=True)
class PushedEvent:
    """One event of one stream model, ready for the store."""

    keys: tuple[Any, ...]
    time: int  # epoch microseconds
    inputs: dict[str, Any]  # the window features' input columns -> values
    event_id: str


def read_record(record: Any, types: Mapping[str, str], *, text: bool = False) -> dict[str, Any]:
    """``record`` (a decoded JSON object; with ``text``, of CSV text values) as typed values of the
    source's columns, or a ``RecordError``."""
    if not isinstance(record, dict):
        raise RecordError('a record is a JSON object of the source\'s columns, e.g. {"user_id": 42, ...}')
    values: dict[str, Any] = dict.fromkeys(types)
    for name, value in record.items():
        column = str(name).lower()
        if column not in types or not _encodable(column):
            raise RecordError(f"unknown column {name!r}: the source declares {', '.join(types)}")
        try:
            values[column] = value if types[column] == "other" else request_value(value, types[column], text=text)
        except RequestValueError as exc:
            raise RecordError(f"column {column!r} {exc}") from None
        if isinstance(values[column], str) and not _encodable(values[column]):
            raise RecordError(f"column {column!r} holds a lone UTF-16 surrogate, which is no text: send UTF-8")
    return values


def record_id(values: Mapping[str, Any], event_id: str | None) -> str:
    """The record's id: its ``event_id`` column as text, or a hash of all its values."""
    if event_id is not None:
        value = values.get(event_id)
        if value is None:
            raise RecordError(f"column {event_id!r} is the source's event_id, so it cannot be NULL")
        return str(_canonical(value))
    text = json.dumps([[name, _canonical(values[name])] for name in sorted(values)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def event_of(rows: StreamRows, values: Mapping[str, Any], record: str) -> PushedEvent | None:
    """The model's event of a read record (``record``: its id), or None when its WHERE drops it
    or it has a NULL key or event time (it belongs to no entity or window, as in the warehouse)."""
    try:
        if rows.where is not None and evaluate(rows.where, values) is not True:
            return None
        computed = {name: evaluate(program, values) for name, program in rows.columns.items()}
    except EvaluationError as exc:
        raise RecordError(f"the row-level SQL of {rows.model!r} fails on it: {exc}") from None
    keys = tuple(computed[key] for key in rows.keys)
    if any(key is None for key in keys):
        return None
    moment = computed[rows.timestamp]
    if moment is None:  # no time, no window: the warehouse's windows drop it too
        return None
    inputs = {name: value for name, value in computed.items() if name not in (*rows.keys, rows.timestamp)}
    return PushedEvent(keys, epoch_micros(moment), inputs, record)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _canonical(value: Any) -> str | None:
    """One text per value (None stays NULL): decimals without trailing zeros, times in ISO with
    microseconds. A column has one type, so texts of different types never meet."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, default=str)  # a column of a type streams do not read

"""A request's own values for on-demand features, read as their declared types (stdlib only).

An on-demand model declares its request columns with SQL types; a request carries
them next to the entity keys, one value per entity (Feast's entity rows)::

    {"service": "advance_risk", "entities": [{"user_id": 42, "requested_amount": 150.00}]}

A value must be exactly of its column's type, or the request is a 400: the reader
never rounds what the client sent. ``null`` is SQL NULL. In a JSON body a decimal
column takes a number (read exactly: the reader parses the body's numbers as
decimals) or its text (``"150.00"``); a number the Lambda runtime already decoded
as a double (a direct invocation) is read by its shortest text (``150.1``), so past
15 significant digits send text.
An integer column takes a whole number, a double column any number, a string
column a string, a boolean column ``true``/``false``. In a query string every value
is text: ``?user_id=42&requested_amount=150.00``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)")  # no exponent, no NaN: what a warehouse decimal reads
_BOUNDS = {"int32": 2**31, "int64": 2**63}
_DOUBLE_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class RequestValueError(Exception):
    """A request value not of its column's type: the message says which and why."""


def request_value(value: Any, kind: str, *, text: bool) -> Any:
    """``value`` (decoded JSON, or query-string text when ``text``) as a value of expression type ``kind``."""
    if value is None or (text and value == "null"):
        return None
    if kind.startswith("int"):
        return _integer(value, kind, text=text)
    if kind.startswith("decimal"):
        return _decimal(value, kind)
    if kind == "float":
        return _double(value, text=text)
    if kind in ("timestamp", "date"):
        return _time(value, kind)
    if kind == "boolean":
        if text and value in ("true", "false"):
            return value == "true"
        if isinstance(value, bool):
            return value
        raise RequestValueError("is a boolean column: give true or false")
    if isinstance(value, str):
        return value
    raise RequestValueError("is a string column: give a string")


def _integer(value: Any, kind: str, *, text: bool) -> int:
    if text and isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value):
        value = int(value)
    if isinstance(value, Decimal):
        if value.is_finite() and value.adjusted() >= 19:  # past any BIGINT: refused before int() builds it
            raise RequestValueError(f"is an integer column ({kind}): the number is out of its range")
        if value == value.to_integral_value():
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestValueError(f"is an integer column ({kind}): give a whole number")
    if not -_BOUNDS[kind] <= value < _BOUNDS[kind]:
        raise RequestValueError(f"is an integer column ({kind}): {value} is out of its range")
    return value


def _decimal(value: Any, kind: str) -> Decimal:
    precision, scale = (int(part) for part in kind[8:-1].split(","))
    if isinstance(value, float):
        value = repr(value)  # what the client wrote, as far as a double can tell
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise RequestValueError(f"is {kind}: {value!r} is not a decimal number")
        value = Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise RequestValueError(f"is {kind}: give a number or its text")
    number = Decimal(value)
    try:
        exact = number.quantize(Decimal(1).scaleb(-scale))
    except InvalidOperation:  # more digits than the context holds: far past any DECIMAL
        raise RequestValueError(f"is {kind}: {value} does not fit it") from None
    if exact != number:
        raise RequestValueError(f"is {kind}: {value} has more than {scale} decimal places")
    if abs(exact) >= Decimal(10) ** (precision - scale):
        raise RequestValueError(f"is {kind}: {value} has more than {precision - scale} integer digits")
    return exact.copy_abs() if exact.is_zero() else exact  # -0.00 is 0.00, as the warehouse stores it


def _double(value: Any, *, text: bool) -> float:
    if text and isinstance(value, str) and _DOUBLE_TEXT.fullmatch(value):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise RequestValueError("is a double column: give a number")
    try:
        return float(value)  # a Decimal past a double's range is infinity, as DuckDB casts it
    except OverflowError:  # an int past it
        raise RequestValueError("is a double column: the number is out of its range") from None


def _time(value: Any, kind: str) -> Any:
    """ISO text: a DATE ``2026-06-30``; a TIMESTAMP ``2026-06-30T10:00:00`` in UTC (``Z`` or ``+00:00``
    allowed; another offset is refused: a warehouse's CAST to TIMESTAMP would drop it, not convert)."""
    if not isinstance(value, str):
        raise RequestValueError(f"is a {kind.upper()} column: give ISO text such as '2026-06-30T10:00:00Z'")
    try:
        if kind == "date":
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value)
        if moment.utcoffset() not in (None, timedelta(0)):
            raise ValueError("not UTC")
    except ValueError:
        raise RequestValueError(
            f"is a {kind.upper()} column: {value!r} is not UTC ISO text such as 2026-06-30T10:00:00Z"
        ) from None
    return moment.replace(tzinfo=None)

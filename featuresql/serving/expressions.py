"""Evaluating compiled SQL expressions in the reader, exactly as the warehouse does (stdlib only).

``featuresql.sql.expressions`` compiles a SQL expression (an on-demand feature)
into a *program*: nested lists ``[op, type, *arguments]``, JSON as it is stored in
the online manifest, every node typed at compile time. This module runs one with
the values of a request and of stored features. It follows DuckDB, the project
dialect the programs are compiled from, value for value:

- integers have their type's width (``int32`` for a literal such as ``7``, ``int64`` for
  BIGINT): a result outside it is an error, as in DuckDB;
- decimals are exact (``Decimal`` with enough digits; ``+``, ``-``, ``*`` never round) and
  typed ``decimal(p,s)`` by DuckDB's rules: a result with more than ``p - s`` integer
  digits is an error, as DuckDB's overflow check;
- ``/`` divides as doubles, IEEE (``1/0`` is ``inf``, ``0/0`` NaN); ``//`` of two
  integers truncates toward zero and of anything else divides as doubles; ``%``
  keeps the dividend's sign; ``//`` by zero is an error, and so is ``%`` but for
  doubles (NaN, as C's fmod);
- a float operand makes the operation float (a decimal is converted to the nearest double);
- doubles compare and sort totally, as DuckDB's: NaN equals NaN and is above every number;
- NULL propagates, AND/OR/NOT are three-valued, ``IN`` and ``BETWEEN`` as in SQL,
  ``LEAST``/``GREATEST`` skip NULLs, ``ROUND`` rounds half away from zero (a double
  ``round(x, n)`` is ``round(x * 10^n) / 10^n`` in doubles, as DuckDB computes it).

A type is ``int8``, ``int16``, ``int32``, ``int64``, ``decimal(p,s)``, ``float``,
``boolean``, ``string``, ``timestamp``, ``date`` or ``null``. Strings and times have
modules of their own: ``expression_strings`` and ``expression_times``.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from featuresql.serving import expression_strings as strings
from featuresql.serving import expression_times as times
from featuresql.serving.expression_errors import EvaluationError

__all__ = ["EvaluationError", "Program", "evaluate"]

Program = list[Any]
_TIMES = ("timestamp", "date")
_EXACT = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_UP, traps=[decimal.InvalidOperation])
_WIDE = decimal.Context(prec=1200, Emin=-2000, Emax=2000, traps=[decimal.InvalidOperation])  # any double, exactly


def evaluate(program: Program, values: Mapping[str, Any]) -> Any:
    """The value of ``program`` with ``values`` (column name -> Python value; None is NULL)."""
    op, kind, *arguments = program
    if op == "lit":
        return _literal(arguments[0], kind)
    if op == "col":
        return _as(values.get(arguments[0]), kind)
    handler = _SPECIAL.get(op)
    if handler is not None:
        return handler(kind, arguments, values)
    operands = [evaluate(argument, values) for argument in arguments]
    if any(value is None for value in operands):
        return None
    return _checked(_STRICT[op](kind, *operands), kind)


# -- values ---------------------------------------------------------------------------------------


def _is_decimal(kind: str) -> bool:
    return kind.startswith("decimal")


def _is_integer(kind: str) -> bool:
    return kind.startswith("int")


def _literal(text: Any, kind: str) -> Any:
    if text is None:
        return None
    if _is_decimal(kind):
        return Decimal(text)
    if kind == "float":
        return float(text)
    if kind in _TIMES:
        return times.as_time(text, kind)
    return text


def _as(value: Any, kind: str) -> Any:
    """A value in the representation of ``kind`` (a float feature is a float, a decimal a Decimal)."""
    if value is None or isinstance(value, bool):
        return value
    if kind == "float":
        return _to_float(value)
    if kind in _TIMES:
        return times.as_time(value, kind)
    if _is_decimal(kind):
        exact = value if isinstance(value, Decimal) else Decimal(str(value) if isinstance(value, float) else value)
        scale = int(kind[8:-1].split(",")[1])  # a value of a DECIMAL(p,s) has s digits, as the warehouse stores it
        return exact.quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP, context=_EXACT)
    return value


def _numeric(value: Any, kind: str) -> Any:
    """An operand converted to the operation's type: to a double for ``float``, exact otherwise."""
    if kind == "float":
        return _to_float(value)
    if _is_decimal(kind) and isinstance(value, int):
        return Decimal(value)
    return value


def _checked(value: Any, kind: str) -> Any:
    """The value, if it fits its type (DuckDB's overflow checks)."""
    if value is None or isinstance(value, bool):
        return value
    if _is_integer(kind):
        bits = int(kind[3:])
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise EvaluationError(f"overflow: {value} is outside {kind}")
    elif _is_decimal(kind):
        precision, scale = (int(part) for part in kind[8:-1].split(","))
        if value.copy_abs() >= _EXACT.power(10, precision - scale):
            raise EvaluationError(f"overflow: {value} is outside {kind}")
    return value


# -- arithmetic -----------------------------------------------------------------------------------


def _add(kind: str, left: Any, right: Any) -> Any:
    a, b = _numeric(left, kind), _numeric(right, kind)
    return _EXACT.add(a, b) if _is_decimal(kind) else a + b


def _subtract(kind: str, left: Any, right: Any) -> Any:
    a, b = _numeric(left, kind), _numeric(right, kind)
    return _EXACT.subtract(a, b) if _is_decimal(kind) else a - b


def _multiply(kind: str, left: Any, right: Any) -> Any:
    a, b = _numeric(left, kind), _numeric(right, kind)
    return _EXACT.multiply(a, b) if _is_decimal(kind) else a * b


def _divide(kind: str, left: Any, right: Any) -> float:
    """IEEE division of two doubles: a zero divisor gives an infinity or NaN, never an error."""
    a, b = _to_float(left), _to_float(right)
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _integer_divide(kind: str, left: Any, right: Any) -> Any:
    if right == 0:
        raise EvaluationError("division by zero")
    if not _is_integer(kind):
        return _divide(kind, left, right)
    quotient = abs(left) // abs(right)
    return quotient if (left < 0) == (right < 0) else -quotient


def _modulo(kind: str, left: Any, right: Any) -> Any:
    a, b = _numeric(left, kind), _numeric(right, kind)
    if kind == "float":  # C's fmod: NaN for a zero divisor or an infinite dividend, never an error
        return math.nan if b == 0 or math.isinf(a) or math.isnan(a) or math.isnan(b) else math.fmod(a, b)
    if b == 0:
        raise EvaluationError("division by zero")
    if _is_decimal(kind):
        return _EXACT.remainder(a, b)  # the sign of the dividend, as C's fmod
    remainder = abs(a) % abs(b)
    return remainder if a >= 0 else -remainder


def _negate(kind: str, value: Any) -> Any:
    return _EXACT.minus(_numeric(value, kind)) if _is_decimal(kind) else -value


def _absolute(kind: str, value: Any) -> Any:
    return _EXACT.abs(_numeric(value, kind)) if _is_decimal(kind) else abs(value)


def _round(kind: str, value: Any, digits: Any = 0) -> Any:
    if _is_decimal(kind):
        return _numeric(value, kind).quantize(Decimal(1).scaleb(-digits), context=_EXACT)
    if _is_integer(kind):
        if digits >= 0:
            return value
        step = 10**-digits
        magnitude = (abs(value) + step // 2) // step * step
        return magnitude if value >= 0 else -magnitude
    x = _to_float(value)
    if math.isinf(x) or math.isnan(x) or digits > 400:
        return x  # no double has digits that far right
    if digits < -400:
        return math.copysign(0.0, x)
    # The exact binary value rounded half away from zero (2.675 is 2.67499999...: 2.67), as DuckDB 2.
    exact = Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=decimal.ROUND_HALF_UP, context=_WIDE)
    return math.copysign(float(exact), x) if exact == 0 else float(exact)


# -- math -----------------------------------------------------------------------------------------


def _logarithm(function: Callable[[float], float]) -> Callable[..., float]:
    """A logarithm as C computes it: -inf at 0, NaN below, never an exception."""

    def logarithm(kind: str, value: Any) -> float:
        x = _to_float(value)
        if math.isnan(x) or x < 0:
            return math.nan
        if x == 0:
            return -math.inf
        return function(x)

    return logarithm


def _exp(kind: str, value: Any) -> float:
    try:
        return math.exp(_to_float(value))
    except OverflowError:
        return math.inf


def _sqrt(kind: str, value: Any) -> float:
    x = _to_float(value)
    return math.nan if x < 0 else math.sqrt(x)


def _power(kind: str, base: Any, exponent: Any) -> float:
    """C's pow: an overflow is an infinity, a domain error NaN, 0 to a negative power an infinity."""
    x, y = float(base), float(exponent)
    odd = y.is_integer() and abs(y) < 2**53 and int(y) % 2 == 1
    try:
        return math.pow(x, y)
    except OverflowError:
        return -math.inf if x < 0 and odd else math.inf
    except (ValueError, ZeroDivisionError):
        if x == 0:
            return math.copysign(math.inf, x) if odd else math.inf
        return math.nan


def _rounding(up: bool) -> Callable[..., Any]:
    """CEIL (``up``) or FLOOR: decimals stay decimals, integers become doubles (as DuckDB's)."""

    def rounding(kind: str, value: Any) -> Any:
        if _is_decimal(kind):
            return _numeric(value, kind).to_integral_value(decimal.ROUND_CEILING if up else decimal.ROUND_FLOOR)
        x = _to_float(value)
        if math.isinf(x) or math.isnan(x):
            return x
        result = float(math.ceil(x) if up else math.floor(x))
        return math.copysign(result, x) if result == 0 else result

    return rounding


def _sign(kind: str, value: Any) -> int:
    if isinstance(value, float) and math.isnan(value):
        return 0
    return int(value > 0) - int(value < 0)


def _cast(kind: str, value: Any) -> Any:
    """CAST(value AS kind), as DuckDB rounds and range-checks it."""
    if kind in _TIMES:
        return times.cast(kind, value)
    if kind == "boolean":
        return bool(value)
    if kind == "float":
        return _to_float(value)
    if isinstance(value, bool):
        value = int(value)
    if _is_integer(kind):
        if isinstance(value, float):
            if math.isnan(value) or math.isinf(value):
                raise EvaluationError(f"cannot cast {value} to {kind}")
            return round(value)  # nearbyint: halves to even, as DuckDB casts a double
        if isinstance(value, Decimal):
            return int(value.quantize(Decimal(1), rounding=decimal.ROUND_HALF_UP, context=_EXACT))
        return value
    scale = int(kind[8:-1].split(",")[1])
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise EvaluationError(f"cannot cast {value} to {kind}")
        scaled = value * 10.0**scale
        whole = math.floor(abs(scaled))
        rounded = whole + 1 if abs(scaled) - whole >= 0.5 else whole  # computed in doubles, halves away
        return Decimal(int(math.copysign(rounded, scaled))).scaleb(-scale, context=_EXACT)
    return Decimal(value).quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP, context=_EXACT)


def _to_float(value: Any) -> float:
    """The nearest double (a decimal rounds once, as DuckDB converts it)."""
    return float(value)


def _concat(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> str:
    """CONCAT skips NULLs (``||`` does not)."""
    return "".join(v for v in (evaluate(argument, values) for argument in arguments) if v is not None)


# -- comparisons ----------------------------------------------------------------------------------


def _compare(op: str) -> Callable[..., bool]:
    def compare(kind: str, left: Any, right: Any) -> bool:
        a, b = _comparable(left, right)
        if isinstance(a, float):  # DuckDB orders doubles totally: NaN equals NaN and is above every number
            a, b = _order(a), _order(b)
        if op == "eq":
            return bool(a == b)
        if op == "ne":
            return bool(a != b)
        if op == "lt":
            return bool(a < b)
        if op == "le":
            return bool(a <= b)
        if op == "gt":
            return bool(a > b)
        return bool(a >= b)

    return compare


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Two operands as the warehouse compares them: a float with anything numeric as doubles."""
    if (isinstance(left, float) and not isinstance(right, (bool, str))) or (
        isinstance(right, float) and not isinstance(left, (bool, str))
    ):
        return float(left), float(right)
    return left, right


def _same(left: Any, right: Any) -> bool:
    """IS NOT DISTINCT FROM: NULLs are the same; NaN is the same as NaN (as DuckDB orders it)."""
    if left is None or right is None:
        return left is None and right is None
    a, b = _comparable(left, right)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return bool(a == b)


# -- the forms that look at NULLs themselves -------------------------------------------------------


def _connective(decisive: bool) -> Callable[..., bool | None]:
    """AND (``decisive`` False) or OR (True): the decisive value wins over NULL, NULL over the other."""

    def connective(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> bool | None:
        result: bool | None = not decisive
        for argument in arguments:
            value = evaluate(argument, values)
            if value is decisive:
                return bool(decisive)
            if value is None:
                result = None
        return result

    return connective


def _not(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> bool | None:
    value = evaluate(arguments[0], values)
    return None if value is None else not value


def _is_null(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> bool:
    return evaluate(arguments[0], values) is None


def _distinct(negated: bool) -> Callable[..., bool]:
    def distinct(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> bool:
        same = _same(evaluate(arguments[0], values), evaluate(arguments[1], values))
        return same if negated else not same

    return distinct


def _case(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> Any:
    branches, otherwise = arguments
    for condition, result in branches:
        if evaluate(condition, values) is True:
            return _as(evaluate(result, values), kind)
    return _as(evaluate(otherwise, values), kind)


def _coalesce(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> Any:
    for argument in arguments:
        value = evaluate(argument, values)
        if value is not None:
            return _as(value, kind)
    return None


def _nullif(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> Any:
    value, other = evaluate(arguments[0], values), evaluate(arguments[1], values)
    if value is not None and other is not None and _compare("eq")(kind, value, other):
        return None
    return _as(value, kind)


def _in(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> bool | None:
    value = evaluate(arguments[0], values)
    if value is None:
        return None
    unknown = False
    for item in arguments[1]:
        candidate = evaluate(item, values)
        if candidate is None:
            unknown = True
        elif _compare("eq")(kind, value, candidate):
            return True
    return None if unknown else False


def _between(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> bool | None:
    value, low, high = (evaluate(argument, values) for argument in arguments)
    above = None if value is None or low is None else _compare("ge")(kind, value, low)
    below = None if value is None or high is None else _compare("le")(kind, value, high)
    if above is False or below is False:
        return False
    return None if above is None or below is None else True


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    """LEAST or GREATEST: NULLs skipped; NaN orders above every number, as DuckDB sorts doubles."""

    def extreme(kind: str, arguments: Sequence[Program], values: Mapping[str, Any]) -> Any:
        found = [_numeric(_as(v, kind), kind) for v in (evaluate(a, values) for a in arguments) if v is not None]
        return pick(found, key=_order) if found else None

    return extreme


def _order(value: Any) -> tuple[int, Any]:
    return (1, 0) if isinstance(value, float) and math.isnan(value) else (0, value)


_STRICT: dict[str, Callable[..., Any]] = {
    "add": _add,
    "sub": _subtract,
    "mul": _multiply,
    "div": _divide,
    "intdiv": _integer_divide,
    "mod": _modulo,
    "neg": _negate,
    "abs": _absolute,
    "round": _round,
    "ln": _logarithm(math.log),
    "log10": _logarithm(math.log10),
    "log2": _logarithm(math.log2),
    "exp": _exp,
    "sqrt": _sqrt,
    "power": _power,
    "ceil": _rounding(up=True),
    "floor": _rounding(up=False),
    "sign": _sign,
    "cast": _cast,
    "length": strings.length,
    "pipe": strings.pipe,
    "trim": strings.trim("both"),
    "ltrim": strings.trim("leading"),
    "rtrim": strings.trim("trailing"),
    "lower": strings.lower,
    "upper": strings.upper,
    "substring": strings.substring,
    "like": strings.like,
    "eq": _compare("eq"),
    "ne": _compare("ne"),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
}
_SPECIAL: dict[str, Callable[[str, Sequence[Any], Mapping[str, Any]], Any]] = {
    "and": _connective(decisive=False),
    "or": _connective(decisive=True),
    "not": _not,
    "is_null": _is_null,
    "distinct": _distinct(negated=False),
    "not_distinct": _distinct(negated=True),
    "case": _case,
    "coalesce": _coalesce,
    "nullif": _nullif,
    "in": _in,
    "between": _between,
    "concat": _concat,
    "least": _extreme(min),
    "greatest": _extreme(max),
    "shift": lambda kind, arguments, values: times.shift(kind, arguments, values, evaluate),
    "date_diff": lambda kind, arguments, values: times.date_diff(kind, arguments, values, evaluate),
    "extract": lambda kind, arguments, values: times.extract(kind, arguments, values, evaluate),
    "trunc": lambda kind, arguments, values: times.truncate(kind, arguments, values, evaluate),
}

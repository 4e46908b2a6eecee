"""Compiling a scalar SQL expression into a program the reader evaluates (``featuresql.serving.expressions``).

The supported subset is explicit: every construct below is typed at compile time,
anything else is refused with ``UnsupportedExpression`` naming it. Programs are
nested lists ``[op, type, *arguments]`` (JSON, stored in the online manifest), so
the reader needs the standard library only. Types follow DuckDB, the dialect
expressions are written in: see the evaluator's docstring for the value rules.

Supported: literals (integers, decimals such as ``1.5``, doubles such as ``1e3``,
strings, booleans, NULL), columns of known type, ``+ - * / // %`` and unary minus,
comparisons, ``AND OR NOT``, ``IS [NOT] NULL``, ``IS [NOT] DISTINCT FROM``, ``CASE``,
``IF``, ``COALESCE``, ``NULLIF``, ``[NOT] IN (list)``, ``[NOT] BETWEEN``, ``ABS``,
``ROUND``, ``LEAST``, ``GREATEST``, ``LN``, ``LOG``/``LOG10``, ``LOG2``, ``EXP``, ``SQRT``,
``POWER``, ``CEIL``, ``FLOOR``, ``SIGN``, ``CAST`` between numbers and booleans,
``LENGTH``, ``LOWER``, ``UPPER``, ``||``, ``CONCAT``, ``TRIM``/``LTRIM``/``RTRIM``, ``SUBSTRING``,
``[NOT] LIKE``; on TIMESTAMP and DATE values, literals, ``± INTERVAL``, ``DATE_DIFF``,
``EXTRACT``, ``YEAR``/``MONTH``/``DAY``, ``DATE_TRUNC`` and comparisons
(``featuresql.sql.expression_times``).

Types are DuckDB's, exactly, because the evaluator's overflow checks depend on them:
``int8``..``int64`` (a literal is ``int32`` when it fits), ``decimal(p,s)`` (a literal
such as ``0.125`` is ``decimal(4,3)``: every digit written counts), ``float``,
``boolean``, ``string``. Integer arithmetic keeps the wider integer; a decimal with an
integer takes the integer as ``decimal(19,0)`` (``int64``) or ``decimal(10,0)``
(``int32``); ``+ -`` give ``decimal(max integer digits + max scale + 1, max scale)``,
``*`` adds precisions and scales (kept at 18 when both are at most 18 wide and the
scale fits, as DuckDB computes it in 64 bits), ``%`` and choices (CASE, COALESCE,
LEAST...) the common supertype; every precision is capped at 38. A NULL literal in
arithmetic is refused: it is always NULL, and DuckDB types it inconsistently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from featuresql.sql import expression_times as times
from featuresql.sql.expression_types import (
    arithmetic_type,
    decimal_type,
    is_number,
    kind_of,
    precision_scale,
    supertype,
)

__all__ = ["Program", "UnsupportedExpression", "check_supported", "compile_expression", "is_number", "kind_of"]

Program = list[Any]
ON_DEMAND = "an on-demand feature"
_ARITHMETIC = {exp.Add: "add", exp.Sub: "sub", exp.Mul: "mul", exp.Mod: "mod"}
_COMPARISONS = {exp.EQ: "eq", exp.NEQ: "ne", exp.LT: "lt", exp.LTE: "le", exp.GT: "gt", exp.GTE: "ge"}
# What a refused construct is, in the words of the error.
_KINDS = (
    (exp.AggFunc, "an aggregate"),
    (exp.Window, "a window function"),
    (exp.Subquery, "a subquery"),
    (exp.Select, "a subquery"),
    (exp.Rand, "a non-deterministic function"),
    (exp.CurrentTimestamp, "a non-deterministic function"),
    (exp.Anonymous, "an unknown function"),
)


# Nodes that are part of a supported construct, not constructs of their own (a CAST's type, a column's name).
_PARTS = (exp.Identifier, exp.DataType, exp.DataTypeParam, exp.Var, exp.Interval)  # an interval: in ± only


class UnsupportedExpression(Exception):
    """A construct outside the subset: ``construct`` is its SQL, ``message`` says what it is."""

    def __init__(self, construct: str, message: str):
        super().__init__(message)
        self.construct = construct
        self.message = message


def compile_expression(expression: exp.Expr, columns: Mapping[str, str], subject: str = ON_DEMAND) -> Program:
    """The program of ``expression``; ``columns`` maps each column it may name (``amount``,
    ``request.amount``, lower case) to its type family. ``subject`` names what the expression
    is in errors (``an on-demand feature``, ``a stream model's row-level SQL``)."""
    return _Compiler(columns, subject).compile(expression)


def check_supported(expression: exp.Expr) -> None:
    """Refuse any construct outside the subset, before types are known (``featuresql compile``);
    the typed compile, with the stored features' warehouse types, comes later."""
    handled = set(_Compiler({}).handlers) | {exp.Paren}
    for node in expression.walk():
        if isinstance(node, _PARTS):
            continue
        if type(node) not in handled:
            raise _refused(node)


def result_type(program: Program) -> str:
    return str(program[1])


class _Compiler:
    def __init__(self, columns: Mapping[str, str], subject: str = ON_DEMAND):
        self.columns = columns
        self.subject = subject
        self.handlers = self._handlers()  # built once per expression, not per node

    def compile(self, node: exp.Expr) -> Program:
        if isinstance(node, exp.Paren):
            return self.compile(node.this)
        handler = self.handlers.get(type(node))
        if handler is None:
            raise _refused(node, self.subject)
        try:
            return handler(node)
        except times.TimeError as exc:
            raise UnsupportedExpression(exc.construct, exc.message) from None

    def _handlers(self) -> dict[type[exp.Expr], Callable[[Any], Program]]:
        handlers: dict[type[exp.Expr], Callable[[Any], Program]] = {
            exp.Literal: self._literal,
            exp.Null: lambda node: ["lit", "null", None],
            exp.Boolean: lambda node: ["lit", "boolean", bool(node.this)],
            exp.Column: self._column,
            exp.Neg: lambda node: self._unary("neg", node.this),
            exp.Div: self._divide,
            exp.IntDiv: self._integer_divide,
            exp.And: lambda node: ["and", "boolean", *self._conditions(node.this, node.expression)],
            exp.Or: lambda node: ["or", "boolean", *self._conditions(node.this, node.expression)],
            exp.Not: self._not,
            exp.Is: self._is,
            exp.NullSafeEQ: lambda node: self._distinct("not_distinct", node),
            exp.NullSafeNEQ: lambda node: self._distinct("distinct", node),
            exp.Case: self._case,
            exp.If: self._if,
            exp.Coalesce: lambda node: self._choose("coalesce", [node.this, *node.expressions]),
            exp.Nullif: self._nullif,
            exp.In: self._in,
            exp.Between: self._between,
            exp.Abs: lambda node: self._unary("abs", node.this),
            exp.Ln: lambda node: self._double("ln", node.this),
            exp.Log: self._log,
            exp.Exp: lambda node: self._double("exp", node.this),
            exp.Sqrt: lambda node: self._double("sqrt", node.this),
            exp.Pow: lambda node: ["power", "float", self._number(node.this), self._number(node.expression)],
            exp.Ceil: lambda node: self._ceil_floor("ceil", node),
            exp.Floor: lambda node: self._ceil_floor("floor", node),
            exp.Sign: lambda node: ["sign", "int8", self._number(node.this)],
            exp.Cast: self._cast,
            exp.Length: lambda node: ["length", "int64", self._string(node.this)],
            exp.Lower: lambda node: ["lower", "string", self._string(node.this)],
            exp.Upper: lambda node: ["upper", "string", self._string(node.this)],
            exp.DPipe: lambda node: ["pipe", "string", self._string(node.this), self._string(node.expression)],
            exp.Concat: lambda node: ["concat", "string", *(self._string(e) for e in node.expressions)],
            exp.Trim: self._trim,
            exp.Substring: self._substring,
            exp.Like: self._like,
            exp.Round: self._round,
            exp.DateDiff: lambda node: times.date_diff(node, self.compile),
            exp.Extract: lambda node: times.extract(node, self.compile),
            exp.Year: lambda node: times.extract(node, self.compile, "year"),
            exp.Month: lambda node: times.extract(node, self.compile, "month"),
            exp.Day: lambda node: times.extract(node, self.compile, "day"),
            exp.TimestampTrunc: lambda node: times.truncate(node, self.compile),
            exp.DateTrunc: lambda node: times.truncate(node, self.compile),
            exp.Least: lambda node: self._choose("least", [node.this, *node.expressions], numbers=True),
            exp.Greatest: lambda node: self._choose("greatest", [node.this, *node.expressions], numbers=True),
        }
        handlers |= {kind: self._arithmetic for kind in _ARITHMETIC}
        handlers |= {kind: self._comparison for kind in _COMPARISONS}
        return handlers

    # -- leaves -----------------------------------------------------------------------------------

    def _literal(self, node: exp.Literal) -> Program:
        text = node.this
        if node.is_string:
            return ["lit", "string", text]
        if "e" in text.lower():
            return ["lit", "float", text]
        if "." in text:
            digits = sum(character.isdigit() for character in text)
            scale = len(text.partition(".")[2])
            if max(digits, scale) > 38:
                return ["lit", "float", text]  # DuckDB reads a longer decimal literal as a double
            return ["lit", decimal_type(max(digits, scale), scale), text]
        value = int(text)
        for bits in (32, 64):
            if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                return ["lit", f"int{bits}", value]
        raise UnsupportedExpression(text, f"{text} does not fit a BIGINT: write it as a decimal ({text}.0)")

    def _column(self, node: exp.Column) -> Program:
        name = ".".join(part.name.lower() for part in node.parts)
        declared = self.columns.get(name)
        if declared is None:
            known = ", ".join(sorted(self.columns)) or "none"
            raise UnsupportedExpression(node.sql("duckdb"), f"unknown column {name!r} (columns: {known})")
        kind = kind_of(declared)
        if kind == "other":
            raise UnsupportedExpression(
                node.sql("duckdb"), f"column {name!r} is {declared}, which {self.subject} cannot read yet"
            )
        return ["col", kind, name]

    # -- numbers ----------------------------------------------------------------------------------

    def _arithmetic(self, node: exp.Binary) -> Program:
        if isinstance(node, exp.Add | exp.Sub):
            shifted = times.shift(node, self.compile)
            if shifted is not None:
                return shifted
        left, right = self._numbers(node)
        op = _ARITHMETIC[type(node)]
        kind = arithmetic_type(op, left[1], right[1])
        if kind.startswith("decimal") and precision_scale(kind)[1] > 38:
            raise UnsupportedExpression(
                node.sql("duckdb"), f"{node.sql('duckdb')} needs a scale over 38 digits: round or cast an operand"
            )
        return [op, kind, left, right]

    def _divide(self, node: exp.Div) -> Program:
        left, right = self._numbers(node)
        return ["div", "float", left, right]

    def _integer_divide(self, node: exp.IntDiv) -> Program:
        left, right = self._numbers(node)
        whole = left[1].startswith("int") and right[1].startswith("int")
        return ["intdiv", arithmetic_type("add", left[1], right[1]) if whole else "float", left, right]

    def _unary(self, op: str, operand: exp.Expr) -> Program:
        value = self._number(operand)
        return [op, value[1], value]

    def _double(self, op: str, operand: exp.Expr) -> Program:
        return [op, "float", self._number(operand)]

    def _log(self, node: exp.Log) -> Program:
        """LOG(x) and LOG10(x) are base 10 in DuckDB, LOG2(x) base 2; another base is refused."""
        if node.expression is not None:
            base = node.this
            if isinstance(base, exp.Literal) and base.this in ("2", "10"):
                return self._double("log2" if base.this == "2" else "log10", node.expression)
            raise UnsupportedExpression(node.sql("duckdb"), f"{node.sql('duckdb')}: write LOG10(x), LOG2(x) or LN(x)")
        return self._double("log10", node.this)

    def _ceil_floor(self, op: str, node: exp.Func) -> Program:
        if node.args.get("decimals") is not None:
            raise UnsupportedExpression(node.sql("duckdb"), f"{node.sql('duckdb')}: CEIL and FLOOR take one argument")
        value = self._number(node.this)
        kind = value[1]
        if kind.startswith("decimal"):
            kind = decimal_type(precision_scale(kind)[0], 0)
        elif kind.startswith("int"):
            kind = "float"  # DuckDB's CEIL and FLOOR of an integer are doubles
        return [op, kind, value]

    def _cast(self, node: exp.Cast) -> Program:
        if isinstance(node, exp.TryCast):
            raise UnsupportedExpression(node.sql("duckdb"), f"{node.sql('duckdb')}: TRY_CAST is not supported")
        target = node.to.sql("duckdb")
        kind = kind_of(target)
        if kind in times.TIME_KINDS:
            return times.cast(node, kind, self.compile)
        value = self.compile(node.this)
        numeric = is_number(value[1]) or value[1] in ("boolean", "null")
        if (kind not in ("float", "boolean") and not kind.startswith(("int", "decimal"))) or not numeric:
            raise UnsupportedExpression(
                node.sql("duckdb"),
                f"{node.sql('duckdb')}: CAST converts between numbers and booleans only (not {value[1]} to {target})",
            )
        if kind == "boolean" and value[1] == "boolean":
            return value
        return ["cast", kind, value]

    def _string(self, node: exp.Expr) -> Program:
        program = self.compile(node)
        if program[1] not in ("string", "null"):
            raise UnsupportedExpression(
                node.sql("duckdb"), f"{node.sql('duckdb')} is a {program[1]}, not a string: cast it in the warehouse"
            )
        return program

    def _integer(self, node: exp.Expr) -> Program:
        program = self.compile(node)
        if not program[1].startswith("int") and program[1] != "null":
            raise UnsupportedExpression(node.sql("duckdb"), f"{node.sql('duckdb')} is a {program[1]}, not an integer")
        return program

    def _trim(self, node: exp.Trim) -> Program:
        if node.expression is not None or node.args.get("collation") is not None:
            raise UnsupportedExpression(node.sql("duckdb"), f"{node.sql('duckdb')}: TRIM takes one argument (spaces)")
        op = {None: "trim", "LEADING": "ltrim", "TRAILING": "rtrim"}.get(node.args.get("position"), "trim")
        return [op, "string", self._string(node.this)]

    def _substring(self, node: exp.Substring) -> Program:
        arguments = [self._string(node.this), self._integer(node.args["start"])]
        if node.args.get("length") is not None:
            arguments.append(self._integer(node.args["length"]))
        return ["substring", "string", *arguments]

    def _like(self, node: exp.Like) -> Program:  # LIKE ... ESCAPE parses as Escape: refused as unknown
        test = ["like", "boolean", self._string(node.this), self._string(node.expression)]
        return ["not", "boolean", test] if node.args.get("negate") else test

    def _round(self, node: exp.Round) -> Program:
        value = self._number(node.this)
        digits = node.args.get("decimals")
        places = 0
        if digits is not None:
            if not (isinstance(digits, exp.Literal) and digits.is_int) and not (
                isinstance(digits, exp.Neg) and isinstance(digits.this, exp.Literal) and digits.this.is_int
            ):
                raise UnsupportedExpression(node.sql("duckdb"), "ROUND's digits must be an integer literal")
            places = int(digits.sql("duckdb"))
            if not -(2**31) <= places < 2**31:
                raise UnsupportedExpression(node.sql("duckdb"), "ROUND's digits must fit an INTEGER")
        kind = value[1]
        if kind.startswith("decimal"):
            precision, scale = precision_scale(kind)
            if places < 0:  # a carry may need one more integer digit
                kind = decimal_type(max(precision - scale + 1, precision), 0)
            elif places < scale:
                kind = decimal_type(precision, places)
        return ["round", kind, value, ["lit", "int32", places]]

    def _numbers(self, node: exp.Binary) -> tuple[Program, Program]:
        return self._number(node.this), self._number(node.expression)

    def _number(self, node: exp.Expr, *, null: bool = False) -> Program:
        program = self.compile(node)
        if program[1] == "null" and not null:
            raise UnsupportedExpression(
                node.sql("duckdb"), f"{node.sql('duckdb')} is NULL in arithmetic, which is always NULL: write NULL"
            )
        if program[1] != "null" and not is_number(program[1]):
            raise UnsupportedExpression(node.sql("duckdb"), f"{node.sql('duckdb')} is a {program[1]}, not a number")
        return program

    # -- conditions -------------------------------------------------------------------------------

    def _comparison(self, node: exp.Binary) -> Program:
        left, right = self.compile(node.this), self.compile(node.expression)
        _comparable(node, left[1], right[1])
        return [_COMPARISONS[type(node)], "boolean", *_as_timestamps([left, right])]

    def _distinct(self, op: str, node: exp.Binary) -> Program:
        left, right = self.compile(node.this), self.compile(node.expression)
        _comparable(node, left[1], right[1])
        return [op, "boolean", *_as_timestamps([left, right])]

    def _conditions(self, *nodes: exp.Expr) -> list[Program]:
        programs = [self.compile(node) for node in nodes]
        for node, program in zip(nodes, programs, strict=True):
            if program[1] not in ("boolean", "null"):
                raise UnsupportedExpression(
                    node.sql("duckdb"), f"{node.sql('duckdb')} is a {program[1]}, not a condition"
                )
        return programs

    def _not(self, node: exp.Not) -> Program:
        return ["not", "boolean", *self._conditions(node.this)]

    def _is(self, node: exp.Is) -> Program:
        if not isinstance(node.expression, exp.Null):
            raise UnsupportedExpression(
                node.sql("duckdb"), "IS compares with NULL only (or use IS [NOT] DISTINCT FROM)"
            )
        return ["is_null", "boolean", self.compile(node.this)]

    def _in(self, node: exp.In) -> Program:
        if node.args.get("query") is not None or node.args.get("unnest") is not None:
            raise UnsupportedExpression(
                node.sql("duckdb"), f"{node.sql('duckdb')}: IN takes a list of values, not a subquery"
            )
        value = self.compile(node.this)
        items = [self.compile(item) for item in node.expressions]
        for item, program in zip(node.expressions, items, strict=True):
            _comparable(item, value[1], program[1])
        value, *items = _as_timestamps(_as_doubles([value, *items]))
        return ["in", "boolean", value, items]

    def _between(self, node: exp.Between) -> Program:
        value, low, high = self.compile(node.this), self.compile(node.args["low"]), self.compile(node.args["high"])
        _comparable(node, value[1], low[1])
        _comparable(node, value[1], high[1])
        return ["between", "boolean", *_as_timestamps(_as_doubles([value, low, high]))]

    # -- choices ----------------------------------------------------------------------------------

    def _case(self, node: exp.Case) -> Program:
        conditions: list[exp.Expr]
        if node.this is not None:  # CASE x WHEN v THEN ...: each WHEN is x = v
            conditions = [exp.EQ(this=node.this.copy(), expression=branch.this.copy()) for branch in node.args["ifs"]]
        else:
            conditions = [branch.this for branch in node.args["ifs"]]
        results = [branch.args["true"] for branch in node.args["ifs"]]
        return self._branches(node, conditions, results, node.args.get("default"))

    def _if(self, node: exp.If) -> Program:
        return self._branches(node, [node.this], [node.args["true"]], node.args.get("false"))

    def _branches(
        self, node: exp.Expr, conditions: list[exp.Expr], results: list[exp.Expr], default: exp.Expr | None
    ) -> Program:
        tests = self._conditions(*conditions)
        values = [self.compile(result) for result in results]
        otherwise = self.compile(default) if default is not None else ["lit", "null", None]
        kind = _common(node, [str(value[1]) for value in (*values, otherwise)])
        return ["case", kind, [list(pair) for pair in zip(tests, values, strict=True)], otherwise]

    def _choose(self, op: str, nodes: list[exp.Expr], *, numbers: bool = False) -> Program:
        programs = [self._number(node, null=True) if numbers else self.compile(node) for node in nodes]
        kind = _common(nodes[0].parent or nodes[0], [program[1] for program in programs])
        return [op, kind, *programs]

    def _nullif(self, node: exp.Nullif) -> Program:
        value, other = self.compile(node.this), self.compile(node.expression)
        _comparable(node, value[1], other[1])
        return ["nullif", value[1], value, other]


def _common(node: exp.Expr, kinds: list[str]) -> str:
    """The one type of several results (CASE, COALESCE...): numbers widen; others must agree."""
    found = [kind for kind in kinds if kind != "null"]
    if not found:
        return "null"
    if all(is_number(kind) for kind in found):
        return supertype(found)
    if len(set(found)) > 1:
        raise UnsupportedExpression(
            node.sql("duckdb"),
            f"{node.sql('duckdb')} mixes {' and '.join(sorted(set(found)))} results: cast them to one type",
        )
    return found[0]


def _as_doubles(programs: list[Program]) -> list[Program]:
    """Operands compared in one type (IN, BETWEEN): with a double among them, every number is a double."""
    if not any(program[1] == "float" for program in programs):
        return programs
    return [["cast", "float", p] if is_number(p[1]) and p[1] != "float" else p for p in programs]


def _as_timestamps(programs: list[Program]) -> list[Program]:
    """Times compared in one type: with a TIMESTAMP among them, a DATE is its midnight (DuckDB's rule)."""
    if not any(program[1] == "timestamp" for program in programs):
        return programs
    return [["cast", "timestamp", p] if p[1] == "date" else p for p in programs]


def _comparable(node: exp.Expr, left: str, right: str) -> None:
    kinds = {left, right} - {"null"}
    if kinds == set(times.TIME_KINDS):
        return
    if len(kinds) > 1 and not all(is_number(kind) for kind in kinds):
        raise UnsupportedExpression(
            node.sql("duckdb"), f"{node.sql('duckdb')} compares a {left} with a {right}: cast one of them"
        )


def _refused(node: exp.Expr, subject: str = ON_DEMAND) -> UnsupportedExpression:
    sql = node.sql("duckdb")
    what = next((kind for cls, kind in _KINDS if isinstance(node, cls)), None)
    if what is None:
        what = (
            "a function outside the supported subset" if isinstance(node, exp.Func) else "outside the supported subset"
        )
    return UnsupportedExpression(sql, f"{sql} is {what}, which {subject} cannot use")

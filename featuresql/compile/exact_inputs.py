"""Which inputs of a window model's features are exact numbers: integers or decimals.

variance and stddev of an exact input are computed from exact sums, bit for bit the
same on every run; of any other input, from doubles (``featuresql.sql.windows``).
Calling a double exact would run the textbook formula on doubles, so the test is
conservative. An input is exact when each value it can take comes from:

- a column of a table in the FROM clause whose declared (or introspected) type is an
  integer or a decimal;
- a CAST to an integer or decimal type;
- an integer literal or NULL;

combined by ``+``, ``-``, ``*``, unary minus, ABS, CASE, IF and COALESCE. Anything
else (a division, a function, a decimal literal, a column of a subquery or CTE, a
column of unknown type) makes it a double: sqlglot's type inference alone would call
``amount / 3`` and ``amount * 1.5`` decimals, where DuckDB divides in double and
BigQuery reads ``1.5`` as FLOAT64. Cast such an input to a decimal to make it exact.
Where the compiler does not know the columns of every table a model reads (an
undeclared source), none of its inputs is exact.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from featuresql.compile.checks import Schema
from featuresql.sql.types import is_exact_number, parse_type

# Combinations of exact numbers that stay exact: their value arguments are checked in turn.
_COMBINATIONS = (exp.Add, exp.Sub, exp.Mul, exp.Neg, exp.Paren, exp.Abs, exp.Coalesce)


def exact_inputs(events: exp.Select, schema: Schema, dialect: str) -> set[str]:
    """The aliases of the ``events`` query's selects that are exact numbers (see the module docstring).

    ``schema`` holds the column types of the tables the query reads, as the compiler
    qualified it with; ``dialect`` is the one its SQL and type names are written in.
    """
    try:
        qualified = qualify(
            events.copy(),
            schema=dict(schema),
            dialect=dialect,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
    except OptimizeError:  # a query sqlglot cannot resolve: its inputs are computed as doubles
        return set()
    scope = build_scope(qualified)
    if scope is None:
        return set()
    reader = _Reader(scope, schema, dialect)
    return {item.alias for item in qualified.selects if isinstance(item, exp.Alias) and reader.exact(item.this)}


class _Reader:
    def __init__(self, scope: Scope, schema: Schema, dialect: str):
        self.scope = scope
        self.dialect = dialect
        # Names as qualify() may have normalised them: compared in lower case.
        self.types = {
            (db.lower(), table.lower(), column.lower()): kind
            for db, tables in schema.items()
            for table, columns in tables.items()
            for column, kind in columns.items()
        }

    def exact(self, node: exp.Expr) -> bool:
        if isinstance(node, exp.Cast):
            return is_exact_number(node.to)
        if isinstance(node, exp.Null):
            return True
        if isinstance(node, exp.Literal):
            return node.is_int
        if isinstance(node, exp.Column):
            return self._declared_exact(node)
        return self._parts_exact(node)

    def _parts_exact(self, node: exp.Expr) -> bool:
        if isinstance(node, exp.Case):
            values = [branch.args.get("true") for branch in node.args.get("ifs") or []]
            values.append(node.args.get("default"))
        elif isinstance(node, exp.If):
            values = [node.args.get("true"), node.args.get("false")]
        elif isinstance(node, _COMBINATIONS):
            values = [node.this, node.args.get("expression"), *node.expressions]
        else:
            return False
        return all(self.exact(value) for value in values if value is not None)

    def _declared_exact(self, column: exp.Column) -> bool:
        source = self.scope.sources.get(column.table)
        if not isinstance(source, exp.Table):  # a subquery or CTE (a Scope), or an unqualified column
            return False
        kind = self.types.get((source.db.lower(), source.name.lower(), column.name.lower()))
        data_type = parse_type(kind, self.dialect) if kind else None
        return data_type is not None and is_exact_number(data_type)

"""On-demand models: scalar SQL over request columns and other models' features, computed per request.

A model with ``config(kind='on_demand', request={'amount': 'decimal(12,2)'})`` is one
SELECT of expressions, FROM the models it reads with ``ref()`` (a comma list, no join
condition: every model is looked up for the same request's entity keys)::

    select request.amount / nullif(user_transactions.amount_avg_30d, 0) as amount_vs_avg_30d
    from {{ ref('user_transactions') }}

A column is ``request.<column>``, ``<model or alias>.<feature>``, or a bare name found
in exactly one of them. It has no table: ``featuresql extract`` evaluates it in the
warehouse over the spine's columns (the request) and the point-in-time features, and
the reader evaluates the same SQL, compiled into a program by
``featuresql.sql.expressions``, with the request's values and the stored features.
Here the structure and the subset are checked; the typed compile needs the stored
features' warehouse types and happens where they are known (``programs``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlglot import exp

from featuresql.compile.checks import node_line
from featuresql.compile.models import CompiledModel, OnDemandFeature, OnDemandModel
from featuresql.compile.on_demand_engines import check_engine
from featuresql.errors import CompileError, closest
from featuresql.project.config import ModelConfig
from featuresql.project.loader import ModelFile
from featuresql.sql.expressions import (
    Program,
    UnsupportedExpression,
    check_supported,
    compile_expression,
    kind_of,
)
from featuresql.sql.point_in_time import REQUEST

_RESERVED = {"features", "service", "version", "entities", REQUEST}  # what a request names beside its columns
Fail = Callable[[str, exp.Expr | None], CompileError]  # a one-line error at a node's line
_CLAUSES = ("with", "where", "group", "having", "qualify", "order", "limit", "offset", "distinct", "windows")


def compile_on_demand(
    model: ModelFile,
    query: exp.Query,
    config: ModelConfig,
    rendered: str,
    compiled: Mapping[str, CompiledModel],
    schema: str,
    dialect: str,
    config_line: int | None,
    target: str,
    key_columns: set[str],
) -> OnDemandModel:
    """The on-demand model of ``query`` (the rendered SELECT, parsed in the project ``dialect``), for
    a target whose SQL is ``target``: a construct it cannot compute as the reader does is refused.
    ``key_columns``: every entity key column of the project (a request carries them by name)."""

    def fail(message: str, node: exp.Expr | None = None) -> CompileError:
        line = node_line(node) if node is not None else None
        return CompileError(f"on-demand model {model.name!r}: {message}", path=model.path, line=line)

    if not isinstance(query, exp.Select):
        raise fail("must be a single SELECT of expressions (no UNION)")
    for clause in _CLAUSES:
        node = query.args.get(clause)
        if node:
            raise fail(
                f"has a {clause.upper()} clause: an on-demand model computes one row per request, "
                "from expressions only; move the logic into the models it refs",
                node if isinstance(node, exp.Expr) else None,
            )
    request = _request_columns(model, config, dialect, config_line, key_columns)
    tables = _tables(query, compiled, schema, fail)
    if not tables:
        raise fail("reads no model: name the models whose features it uses with FROM {{ ref('...') }}")
    refs = tuple(dict.fromkeys(tables.values()))
    keys = tuple(dict.fromkeys(k for name in refs for k in compiled[name].settings.keys))
    features: list[OnDemandFeature] = []
    for item in query.expressions:
        feature = _feature(item, request, tables, compiled, keys, target, dialect, fail)
        if feature.name in (f.name for f in features):
            raise fail(f"two features are named {feature.name!r}: rename one", item)
        features.append(feature)
    inputs = tuple(dict.fromkeys(pair for feature in features for pair in feature.inputs))
    unused = [name for name in refs if name not in {m for m, _ in inputs}]
    if unused:
        raise fail(f"refs {unused[0]!r} but uses none of its features: remove it from FROM")
    return OnDemandModel(
        name=model.name,
        path=model.path,
        request=request,
        features=tuple(features),
        inputs=inputs,
        refs=refs,
        keys=keys,
        rendered_sql=rendered,
        description=config.description,
        owner=config.owner,
        tags=tuple(config.tags),
        request_line=config_line,
    )


def _feature(
    item: exp.Expr,
    request: dict[str, str],
    tables: dict[str, str],
    compiled: Mapping[str, CompiledModel],
    keys: tuple[str, ...],
    target: str,
    dialect: str,
    fail: Fail,
) -> OnDemandFeature:
    """One SELECT item as a feature: its columns resolved to ``request.<c>`` or ``<model>.<feature>``,
    its constructs within the subset (and within what ``target`` computes as the reader)."""
    if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
        raise fail("select each feature as an expression with a name, not *", item)
    if not isinstance(item, exp.Alias | exp.Column):
        raise fail(f"name the expression {item.sql(dialect)!r} with AS", item)
    name = item.alias_or_name.lower()
    if name in keys:
        raise fail(f"feature {name!r} is named like an entity key column: rename it", item)
    expression = item.this.copy() if isinstance(item, exp.Alias) else item.copy()
    inputs: dict[tuple[str, str], None] = {}
    for column in list(expression.find_all(exp.Column)):
        table, column_name = _resolve(column, request, tables, compiled, fail)
        if table != REQUEST:
            inputs[table, column_name] = None
        column.replace(exp.column(column_name, table=table))
    try:
        check_supported(expression)
        check_engine(expression, target)
    except UnsupportedExpression as exc:
        raise fail(f"{exc.message} (the supported SQL: README, On-demand features)", item) from None
    return OnDemandFeature(name, expression, node_line(item), tuple(inputs))


def programs(model: OnDemandModel, input_types: Mapping[tuple[str, str], str], dialect: str) -> dict[str, Program]:
    """Each feature's program for the reader, typed with its inputs' warehouse types (in ``dialect``).

    A type outside the subset, or an expression that does not type (a string added to a
    number), is a one-line error at the feature's line.
    """
    columns = {f"{REQUEST}.{name}": kind for name, kind in model.request.items()}  # DuckDB's types already
    for (source, name), kind in input_types.items():
        columns[f"{source}.{name}"] = duckdb_type(kind, dialect)
    compiled = {}
    for item in model.features:
        try:
            compiled[item.name] = compile_expression(item.expression, columns)
        except UnsupportedExpression as exc:
            raise CompileError(
                f"on-demand model {model.name!r}, feature {item.name!r}: {exc.message}",
                path=model.path,
                line=item.line,
            ) from None
    return compiled


def request_kind(model: OnDemandModel, column: str) -> str:
    """The expression type of a request column (``decimal(12,2)``, ``string``...)."""
    return kind_of(model.request[column])


def duckdb_type(type_text: str, dialect: str) -> str:
    try:
        return exp.DataType.build(type_text, dialect=dialect).sql("duckdb")
    except Exception:  # sqlglot raises ParseError or ValueError for what is not a type
        return type_text


def _request_columns(
    model: ModelFile, config: ModelConfig, dialect: str, line: int | None, key_columns: set[str]
) -> dict[str, str]:
    """The request columns with their types as DuckDB writes them (``DECIMAL(12,2)``): one spelling
    for the extract's CAST, the type check and the reader, whatever the project dialect."""

    def refuse(message: str) -> CompileError:
        return CompileError(f"on-demand model {model.name!r}: {message}", path=model.path, line=line)

    types = {}
    for name, type_text in config.request.items():
        normalized = duckdb_type(type_text, dialect)
        if kind_of(normalized) == "other":
            raise refuse(
                f"request column {name!r} has type {type_text!r}, which on-demand features do not support: use "
                "INTEGER, BIGINT, DECIMAL(p,s), DOUBLE, VARCHAR, BOOLEAN, TIMESTAMP or DATE"
            )
        digits = [int(e.name) for e in exp.DataType.build(normalized, dialect="duckdb").expressions]
        if digits and not (1 <= digits[0] <= 38 and 0 <= (digits[1:] or [0])[0] <= digits[0]):
            raise refuse(f"request column {name!r} is {type_text}: a DECIMAL(p,s) has 1 <= p <= 38 and 0 <= s <= p")
        if name in _RESERVED or name in key_columns:
            what = "an entity key column" if name in key_columns else "a request parameter"
            raise refuse(f"request column {name!r} is named like {what}, which the request also carries: rename it")
        types[name] = normalized
    return types


def _tables(query: exp.Select, compiled: Mapping[str, CompiledModel], schema: str, fail: Fail) -> dict[str, str]:
    """Each FROM table's name in the expressions (its alias, else the model) -> the model it is."""
    from_ = query.args.get("from_") or query.args.get("from")
    found = [from_.this] if from_ is not None else []
    for join in query.args.get("joins") or []:
        if join.args.get("on") or join.args.get("using") or join.side:
            raise fail("joins its models with a condition: list them in FROM separated by commas", join)
        found.append(join.this)
    tables: dict[str, str] = {}
    for table in found:
        if not isinstance(table, exp.Table) or table.db.lower() != schema.lower() or table.name not in compiled:
            raise fail(f"reads {table.sql()!r}: an on-demand model reads only models, with {{{{ ref('...') }}}}", table)
        source = compiled[table.name]
        if not source.settings.keys or source.settings.timestamp is None:
            raise fail(
                f"reads {table.name!r}, which has no entity and timestamp, so it cannot be looked up per request",
                table,
            )
        tables[table.alias_or_name.lower()] = table.name
    if REQUEST in tables:
        raise fail(f"a FROM table is named {REQUEST!r}, the name of the request's columns: alias it", query)
    return tables


def _resolve(
    column: exp.Column,
    request: dict[str, str],
    tables: dict[str, str],
    compiled: Mapping[str, CompiledModel],
    fail: Fail,
) -> tuple[str, str]:
    """(``request`` or model, column) for a column as written."""
    name, table = column.name.lower(), column.table.lower()
    if column.args.get("db") or column.args.get("catalog"):
        raise fail(f"{column.sql()!r}: write request.<column> or <model>.<feature>", column)
    if table == REQUEST:
        if name not in request:
            declared = ", ".join(request) or "none"
            raise fail(
                f"request column {name!r} is not declared{closest(name, list(request))}; declared: {declared} "
                "(config(request={...}))",
                column,
            )
        return REQUEST, name
    if table:
        if table not in tables:
            raise fail(f"{column.sql()!r} names {table!r}, which is not in FROM{closest(table, list(tables))}", column)
        source = compiled[tables[table]]
        if name not in source.feature_columns:
            raise fail(
                f"model {source.name!r} has no feature {name!r}{closest(name, list(source.feature_columns))}",
                column,
            )
        return source.name, name
    matches = [(REQUEST, name)] if name in request else []
    matches += [(model, name) for model in dict.fromkeys(tables.values()) if name in compiled[model].feature_columns]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise fail(f"unknown column {name!r}: write request.<column> or <model>.<feature>", column)
    where = " and ".join(f"{m}.{c}" for m, c in matches)
    raise fail(f"column {name!r} is ambiguous ({where}): qualify it", column)


def check_request_types(models: dict[str, OnDemandModel]) -> None:
    """One request carries one value per column name: models sharing a request column share its type."""
    seen: dict[str, tuple[str, str]] = {}
    for name, model in models.items():
        for column, kind in model.request.items():
            other = seen.setdefault(column, (kind, name))
            if other[0] != kind:
                raise CompileError(
                    f"on-demand model {name!r} declares request column {column!r} as {kind}, on-demand model "
                    f"{other[1]!r} as {other[0]}: a request carries one {column}; give both one type, or rename one",
                    path=model.path,
                    line=model.request_line,
                )

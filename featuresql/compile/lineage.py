"""Column-level lineage: every model column back to the source columns it is computed from.

The graph's nodes are columns:

- ``source:<source>.<table>.<column>``: a column of a table declared in sources.yml
  (whether or not its columns are declared there);
- ``model:<model>.<column>``: an output column of a compiled model, keys and timestamp included;
- ``table:<catalog>.<db>.<name>.<column>`` (the parts the model wrote): a column of a relation
  that is neither a declared source nor a model, written by hand in a model. The trace ends there.

Each model column has edges to the columns it is computed from: upstream model columns
(through ``ref()``) or source columns, never the intermediate columns of CTEs and subqueries.
They are found with ``sqlglot.lineage`` over the compiled query in the target's dialect,
qualified once per model against a schema of the declared source columns and the upstream
models' columns (``select *`` is expanded from it):

- Snapshot models: every output column is traced through the query (CTEs, subqueries, joins,
  unions). An ``as_of_join`` is not traced through its generated point-in-time SQL: each of its
  ``<model>__<feature>`` columns comes from ``model:<model>.<feature>`` and each spine column
  from that column of the spine relation (``CompiledModel.as_of_joins``).
- Window models: keys and timestamp are traced through the model's row-level events query; a
  feature depends on the columns of its input expression and of its ``tie_break=`` expression,
  traced the same way. The keys and timestamp that place each event in an entity's window are
  not counted as inputs of every feature (``window_sum('amount')`` depends on amount alone);
  but ``window_count()`` without an input counts rows, and which rows fall in its window is
  decided by the timestamp alone: it depends on the events' timestamp column; and
  ``window_first``/``window_last`` take the value of the earliest/latest event, so they also
  depend on the timestamp (as an ORDER BY column counts, below).

What counts, as in ``sqlglot.lineage``:

- a column depends on every column its expression reads; constants contribute nothing
  (``case when status = 'declined' then 1 else 0 end`` depends on status alone);
- an analytic function depends on its PARTITION BY and ORDER BY columns, which decide its
  value (``row_number() over (partition by user_id order by ts)`` depends on user_id and ts);
- filters are not lineage: WHERE, HAVING, QUALIFY, GROUP BY and join conditions decide which
  rows exist, not what a column holds (``where status = 'settled'`` adds no edge);
- one addition: ``EXISTS (subquery)`` selected as a column depends on every column its
  subquery reads, its own and the outer query's, since its conditions are its whole value
  (``sqlglot.lineage`` alone finds none).

Column names are lower case, except a model's output columns, spelled as the model spells
them. A column sqlglot cannot attribute to a relation (ambiguous without a schema) is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope
from sqlglot.schema import MappingSchema

from featuresql.compile.models import AsOfJoin, CompiledModel, CompiledProject
from featuresql.errors import CompileError
from featuresql.project.loader import Project

SOURCE = "source:"
MODEL = "model:"
TABLE = "table:"
_SPINE = "__spine"

RelationKey = tuple[str, str, str]  # catalog, db, name; lower case, "" when absent


@dataclass(frozen=True)
class Lineage:
    """The column graph of a compiled project.

    ``edges`` maps every node (model and source columns alike) to its direct upstream
    nodes, sorted; source and ``table:`` columns have none. Its keys come model by model in
    dependency order, each model's columns in its output order, then the other nodes.
    """

    edges: dict[str, tuple[str, ...]]

    def upstream(self, node: str) -> set[str]:
        """Every ancestor of ``node`` (not the node itself); empty for an unknown node."""
        found: set[str] = set()
        pending = list(self.edges.get(node, ()))
        while pending:
            current = pending.pop()
            if current not in found:
                found.add(current)
                pending.extend(self.edges.get(current, ()))
        return found

    def source_columns(self, model: str, column: str) -> set[str]:
        """The source columns ``model.column`` is computed from, as ``<source>.<table>.<column>``.

        Raises KeyError when the model has no such column (names compare case-insensitively).
        """
        node = self._model_node(model, column)
        return {n.removeprefix(SOURCE) for n in self.upstream(node) if n.startswith(SOURCE)}

    def _model_node(self, model: str, column: str) -> str:
        node = f"{MODEL}{model}.{column}"
        if node in self.edges:
            return node
        matches = [n for n in self.edges if n.lower() == node.lower()]
        if not matches:
            raise KeyError(f"no column {model}.{column} in the lineage")
        return matches[0]


def column_lineage(compiled: CompiledProject, project: Project) -> Lineage:
    """The column lineage of every compiled model; CompileError naming the model if sqlglot fails."""
    tracer = _Tracer(compiled.dialect, _source_relations(project))
    edges: dict[str, tuple[str, ...]] = {}
    for model in compiled.models.values():
        try:
            columns = tracer.window(model) if model.window is not None else tracer.snapshot(model)
        except SqlglotError as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CompileError(
                f"model {model.name!r}: cannot compute its column lineage: {problem}", path=model.path
            ) from None
        tracer.add_model(model, list(columns))
        for column, upstream in columns.items():
            edges[f"{MODEL}{model.name}.{column}"] = tuple(sorted(upstream))
    for parents in list(edges.values()):
        for node in parents:
            edges.setdefault(node, ())
    return Lineage(edges)


@dataclass(frozen=True)
class _Relation:
    """A source or model relation as lineage names it."""

    node: str  # the node prefix: "source:bank.transactions", "model:user_profile"
    columns: tuple[str, ...]  # empty: unknown (a source without declared columns)
    spelling: dict[str, str] = field(default_factory=dict)  # lower-case column -> the name in nodes


def _source_relations(project: Project) -> dict[RelationKey, _Relation]:
    relations = {}
    for source in project.sources.values():
        key = _key(source.database, source.schema, source.identifier)
        columns = tuple(source.columns)
        relations[key] = _Relation(f"{SOURCE}{source.key}", columns, {c.lower(): c.lower() for c in columns})
    return relations


def _key(catalog: str | None, db: str | None, name: str) -> RelationKey:
    return ((catalog or "").lower(), (db or "").lower(), name.lower())


def _table_key(table: exp.Table) -> RelationKey:
    return _key(table.catalog, table.db, table.name)


class _Tracer:
    """Traces queries in one dialect against the relations known so far (models in dependency order)."""

    def __init__(self, dialect: str, relations: dict[RelationKey, _Relation]):
        self.dialect = dialect
        self.relations = relations

    def add_model(self, model: CompiledModel, columns: Sequence[str]) -> None:
        spelling = {c.lower(): c for c in columns}
        self.relations[_table_key(model.relation)] = _Relation(f"{MODEL}{model.name}", tuple(columns), spelling)

    def snapshot(self, model: CompiledModel) -> dict[str, set[str]]:
        """Each output column of a snapshot model, spelled as the model spells it, and its upstream."""
        traced = self.trace(_with_stand_ins(model.query.copy(), model.as_of_joins, self.dialect))
        spelling = {c.lower(): c for c in model.columns if c != "*"}
        return {spelling.get(name, name): upstream for name, upstream in traced.items()}

    def window(self, model: CompiledModel) -> dict[str, set[str]]:
        """Keys, timestamp and features of a window model, traced through its events query."""
        assert model.window is not None
        traced = self.trace(model.query.copy())
        keys, timestamp = model.window.keys, model.window.timestamp

        def events(*names: str | None) -> set[str]:
            return set().union(*(traced.get(name.lower(), set()) for name in names if name))

        columns = {name: events(name) for name in (*keys, timestamp)}
        for feature in model.window.features:
            if feature.column is None:  # window_count(): which rows fall in the window
                columns[feature.name] = events(timestamp)
            elif feature.spec.pick is not None:  # first/last: the event time picks the value, as its tie-break does
                columns[feature.name] = events(feature.column, feature.tie_break_column, timestamp)
            else:
                columns[feature.name] = events(feature.column, feature.tie_break_column)
        return columns

    def trace(self, query: exp.Query) -> dict[str, set[str]]:
        """Each output column of ``query`` (lower case) and the relation columns it reads.

        ``query`` is qualified in place once; its scope serves every column.
        """
        schema = self._schema(query)
        qualified = qualify(query, schema=schema, dialect=self.dialect, validate_qualify_columns=False, identify=False)
        _lift_exists(qualified)
        scope = build_scope(qualified)
        nodes = lineage(None, qualified, schema, dialect=self.dialect, scope=scope, trim_selects=False, copy=False)
        return {name.lower(): self._leaves(node) for name, node in nodes.items()}

    def _schema(self, query: exp.Query) -> MappingSchema:
        """The columns of every known relation ``query`` reads (padded to one nesting depth)."""
        ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
        tables: dict[tuple[str, ...], tuple[str, ...]] = {}
        for table in query.find_all(exp.Table):
            if not table.name or (not table.db and table.name.lower() in ctes):
                continue
            relation = self.relations.get(_table_key(table))
            if relation is not None and relation.columns:
                parts = tuple(p for p in (table.catalog, table.db, table.name) if p)
                tables[parts] = relation.columns
        depth = max((len(parts) for parts in tables), default=1)
        mapping: dict[str, Any] = {}
        for parts, columns in tables.items():
            level = mapping
            for part in ("",) * (depth - len(parts)) + parts[:-1]:
                level = level.setdefault(part, {})
            level[parts[-1]] = dict.fromkeys(columns, "UNKNOWN")
        return MappingSchema(mapping, dialect=self.dialect)

    def _leaves(self, node: Node) -> set[str]:
        return {
            self._column_node(step.expression, step.name)
            for step in node.walk()
            if not step.downstream and isinstance(step.expression, exp.Table)
        }

    def _column_node(self, table: exp.Table, name: str) -> str:
        column = "*" if name == "*" else exp.to_column(name, dialect=self.dialect).name.lower()
        relation = self.relations.get(_table_key(table))
        if relation is None:
            parts = [p for p in (table.catalog, table.db, table.name) if p]
            where = ".".join(parts) if parts else table.this.sql(self.dialect)
            return f"{TABLE}{where.lower()}.{column}"
        return f"{relation.node}.{relation.spelling.get(column, column)}"


def _with_stand_ins(query: exp.Query, joins: Sequence[AsOfJoin], dialect: str) -> exp.Query:
    """``query`` with each as_of_join subquery replaced by a plain SELECT of where its columns come from.

    The subquery is found by equality with the join's generated query (as the compiler built it).
    """
    if not joins:
        return query
    generated = [join.query(dialect) for join in joins]
    for subquery in list(query.find_all(exp.Subquery)):
        for join, join_query in zip(joins, generated, strict=True):
            if subquery.this == join_query:
                subquery.set("this", _stand_in(join))
                break
    return query


def _stand_in(join: AsOfJoin) -> exp.Select:
    """``select __spine.<c> as <c>, ..., __m<n>.<f> as <model>__<f>, ... from spine, model, ...``.

    Same columns as the point-in-time join, each read from the column it copies.
    """
    columns = [exp.column(c, table=_SPINE).as_(c) for c in join.spine_columns]
    relations = [_aliased(join.spine, _SPINE)]
    for number, model in enumerate(join.models):
        alias = f"__m{number}"
        columns += [exp.column(c, table=alias).as_(model.output_name(c)) for c in model.columns]
        relations.append(_aliased(model.relation, alias))
    select = exp.select(*columns).from_(relations[0])
    for relation in relations[1:]:
        select = select.join(relation, join_type="cross")
    return select


def _aliased(table: exp.Table, alias: str) -> exp.Table:
    table = table.copy()
    table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return table


def _lift_exists(query: exp.Expr) -> None:
    """Make each EXISTS selected as a value traceable through the columns its subquery reads.

    ``exists (select 1 from t as r where r.a = o.a)`` becomes
    ``(o.a, exists (select r.a as __exists_0 from t as r where ...))``: the subquery's own
    columns are selected, so sqlglot traces them; the outer ones sit next to it.
    """
    for exists in list(query.find_all(exp.Exists)):
        inner = exists.this
        if not isinstance(inner, exp.Select) or not _is_selected(exists):
            continue
        own = {source.alias_or_name for source in _from_sources(inner)}
        columns = [c for c in inner.find_all(exp.Column) if c.parent_select is inner]
        outer = [c.copy() for c in columns if c.table not in own]
        selected = [c.copy().as_(f"__exists_{n}") for n, c in enumerate(c for c in columns if c.table in own)]
        lifted = inner.select(*selected, append=False) if selected else inner.copy()
        exists.replace(exp.Tuple(expressions=[*outer, exp.Exists(this=lifted)]))


def _is_selected(node: exp.Expr) -> bool:
    """Whether ``node`` is part of a projection of its SELECT (not its WHERE, JOIN...)."""
    while node.parent is not None and not isinstance(node.parent, exp.Select):
        node = node.parent
    return node.parent is not None and node.arg_key == "expressions"


def _from_sources(select: exp.Select) -> Iterable[exp.Expr]:
    from_ = select.args.get("from_")
    if from_ is not None:
        yield from_.this
    for join in select.args.get("joins") or ():
        yield join.this

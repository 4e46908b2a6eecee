"""Rendered SQL -> sqlglot AST -> validated, compiled models.

For every model: render Jinja (recording refs, sources and config), parse in
the project dialect (errors point at file and line), qualify columns against
declared source columns and upstream models (an unknown column is an error
suggesting the closest name), and, for window models, find the window markers
and split the query into its row-level part and its features.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, OptimizeError, ParseError, TokenError
from sqlglot.optimizer.qualify import qualify

from featuresql.adapters import adapter_class
from featuresql.compile.as_of_join import expand_as_of_join, find_markers, render_as_of_join
from featuresql.compile.checks import Schema, check_online_model, check_timestamp_type, column_error, node_line
from featuresql.compile.exact_inputs import exact_inputs
from featuresql.compile.kinds import check_kinds
from featuresql.compile.models import AsOfJoin, CompiledModel, CompiledProject, ModelSettings, OnDemandModel
from featuresql.compile.on_demand import check_request_types, compile_on_demand
from featuresql.compile.portability import INVALID, unportable
from featuresql.compile.services import resolve_services
from featuresql.compile.streams import row_programs, stream_settings
from featuresql.errors import CompileError, closest
from featuresql.project.config import ModelConfig, validate
from featuresql.project.graph import CycleError, Graph
from featuresql.project.jinja import MacroEnvironment, ModelContext
from featuresql.project.loader import ModelFile, Project
from featuresql.serving.items import DEFAULT_TTL_ATTRIBUTE, RESERVED
from featuresql.sql import dialects
from featuresql.sql.coverage import STATE_COLUMNS, STATE_SCHEMA
from featuresql.sql.engines import DEFAULT_ENGINE
from featuresql.sql.windows import WindowFeature, WindowModel, features_of_marker, is_marker, render_marker

ColumnsOf = Callable[[exp.Table], dict[str, str] | None]


def compile_project(
    project: Project,
    *,
    target: str = "dev",
    target_type: str = DEFAULT_ENGINE,
    dialect: str | None = None,
    schema: str = "main",
    variables: dict[str, Any] | None = None,
    columns_of: ColumnsOf | None = None,
    only: set[str] | None = None,
    state_project: str | None = None,
) -> CompiledProject:
    """Compile the models of ``project`` for a target; raises CompileError on the first problem.

    ``target_type`` is the profile's ``type`` (``target.type`` in Jinja, and what
    macros dispatch on); ``dialect`` is the SQL the target's adapter runs, by default
    that adapter's own. Every model is rendered (the graph needs every ref); with
    ``only``, just those models and their ancestors are parsed and checked (an
    extract needs no more). ``state_project`` names the interval state an ``as_of_join``
    reads (default: the project's name; unit tests keep a state of their own).
    """
    dialect = dialect or adapter_class(target_type).dialect
    compiler = _Compiler(project, target, target_type, dialect, schema, variables or {}, columns_of)
    compiler.state_project = state_project or project.name
    return compiler.run(only)


class _Compiler:
    def __init__(
        self,
        project: Project,
        target: str,
        target_type: str,
        dialect: str,
        schema: str,
        variables: dict[str, Any],
        columns_of: ColumnsOf | None,
    ):
        self.project = project
        self.state_project = project.name
        self.target = target
        self.target_type = target_type
        self.dialect = dialect
        self.schema = schema
        self.read_dialect = project.config.dialect
        self.variables = {**project.config.vars, **variables}
        self.columns_of = columns_of
        info = {"name": target, "type": target_type, "schema": schema}
        self.macros = MacroEnvironment(project.macro_files, target_type, info, project.root)
        self.macros.namespace["featuresql_window"] = render_marker
        self.macros.namespace.setdefault("as_of_join", render_as_of_join)  # a project macro may replace it
        self.compiled: dict[str, CompiledModel] = {}

    def run(self, only: set[str] | None = None) -> CompiledProject:
        contexts = self._render_all() if only is None else self._render_closure(only)
        configs = {name: self._config(self.project.models[name], ctx) for name, ctx in contexts.items()}
        enabled = {name for name, config in configs.items() if config.enabled}
        for name in sorted(enabled):
            for ref in contexts[name].refs:
                if ref not in enabled:
                    raise CompileError(
                        f"model {name!r} refs {ref!r}, which is disabled (enabled: false): enable it or remove the ref",
                        path=self.project.models[name].path,
                    )
        on_demand = {name for name in enabled if configs[name].kind == "on_demand"}
        check_kinds(self.project.models, configs, contexts, on_demand)
        stored = enabled - on_demand
        graph = Graph({n: contexts[n].refs for n in stored}, {n: configs[n].tags for n in stored})
        try:
            order = graph.order()
        except CycleError as exc:
            first, second = exc.models[0], exc.models[1]
            path, line = self.project.models[first].path, contexts[first].ref_lines.get(second)
            raise CycleError(exc.models, path=path, line=line) from None
        for name in order:
            self.compiled[name] = self._compile(self.project.models[name], contexts[name])
        computed = {
            name: self._on_demand(self.project.models[name], contexts[name], configs[name])
            for name in sorted(on_demand)
        }
        check_request_types(computed)
        children = {name: tuple(graph.children.get(name, ())) for name in self.compiled}
        hooks = {}
        if only is None:  # a partial compile serves extracts, which run no hooks
            hooks = {
                name: [self._hook(text, name, number) for number, text in enumerate(getattr(self.project.config, name))]
                for name in ("on_run_start", "on_run_end")
            }
        services = {}
        if only is None:  # a partial compile resolves the one service it was asked for (Context.service)
            entities = {name: entity.keys for name, entity in self.project.config.entities.items()}
            services = resolve_services(self.compiled, self.project.services, entities, computed)
        return CompiledProject(
            self.project.name,
            self.target,
            self.dialect,
            self.compiled,
            children,
            hooks,
            self.target_type,
            services,
            computed,
        )

    def _on_demand(self, model: ModelFile, context: ModelContext, config: ModelConfig) -> OnDemandModel:
        query = self._parse(model, context.rendered)
        return compile_on_demand(
            model,
            query,
            config,
            context.rendered,
            self.compiled,
            self.schema,
            self.read_dialect,
            context.config_line,
            self.dialect,
            {key.lower() for entity in self.project.config.entities.values() for key in entity.keys},
        )

    def _render_all(self) -> dict[str, ModelContext]:
        return {name: self._render(model) for name, model in self.project.models.items()}

    def _render_closure(self, only: set[str]) -> dict[str, ModelContext]:
        """``only`` and every model they ref, transitively (unknown names are left out)."""
        contexts: dict[str, ModelContext] = {}
        pending = [name for name in sorted(only) if name in self.project.models]
        while pending:
            name = pending.pop()
            if name not in contexts:
                contexts[name] = self._render(self.project.models[name])
                pending.extend(ref for ref in contexts[name].refs if ref in self.project.models)
        return contexts

    def _hook(self, text: str, name: str, number: int) -> list[exp.Expr]:
        """A project hook rendered and parsed in the project dialect (run before/after the models)."""
        path = self.project.root / "project.yml"
        sql = self.macros.render(text, self._context(name, path, f"the {name} hook"))
        lines = self.project.hook_lines.get(name, ())
        line = lines[number] if number < len(lines) else None  # the hook's item in project.yml
        try:
            statements = parse_sql(sql, self.read_dialect, path, f"{name} hook {number + 1}", report_line=False)
        except CompileError as exc:
            raise CompileError(exc.message, path=path, line=line) from None
        return [dialects.float_division(s, self.read_dialect, self.dialect) for s in statements]

    # -- rendering ------------------------------------------------------------

    def relation(self, model: str) -> exp.Table:
        return exp.table_(model, db=self.schema)

    def _render(self, model: ModelFile) -> ModelContext:
        context = self._context(model.name, model.path, f"model {model.name!r}")
        context.rendered = self.macros.render(model.sql, context)
        return context

    def _context(self, name: str, path: Path, who: str) -> ModelContext:
        return rendering_context(self.project, name, path, who, self.project.models, self.schema, self.variables)

    def _config(self, model: ModelFile, context: ModelContext) -> ModelConfig:
        """YAML config under config() in the SQL; each validated where it was written."""
        merged: dict[str, Any] = {}
        if model.spec is not None:
            raw = model.spec_config if model.spec_config is not None else model.spec.config
            in_yaml = validate(ModelConfig, raw, model.spec_path, line=model.spec_line)
            merged.update(in_yaml.model_dump(exclude_unset=True))
            if model.spec.description:
                merged.setdefault("description", model.spec.description)
        in_sql = validate(ModelConfig, context.config, model.path, line=context.config_line)
        merged.update(in_sql.model_dump(exclude_unset=True))
        return ModelConfig.model_validate(merged)

    # -- compiling ----------------------------------------------------------------

    def _compile(self, model: ModelFile, context: ModelContext) -> CompiledModel:
        rendered = context.rendered
        query = self._parse(model, rendered)
        joins: list[AsOfJoin] = []
        for marker in find_markers(query):
            subquery, join = self._as_of_join(model, marker)
            marker.replace(subquery)
            joins.append(join)
        markers = [node for node in query.find_all(exp.Anonymous) if is_marker(node)]
        checked = self._check_columns(model, query)
        settings = self._settings(model, context, query, is_window=bool(markers))
        if checked is not None and settings.timestamp:
            check_timestamp_type(model, query, checked, settings.timestamp, self.read_dialect, window=bool(markers))
        if settings.online:
            self._check_online(model, query, checked, settings)
        base = CompiledModel(
            name=model.name,
            path=model.path,
            kind="snapshot",
            settings=settings,
            relation=self.relation(model.name),
            rendered_sql=rendered,
            query=query,
            columns=tuple(query.named_selects),
            refs=tuple(dict.fromkeys(context.refs)),
            sources=tuple(dict.fromkeys(context.sources)),
            as_of_joins=tuple(joins),
        )
        if not markers:
            self._check_snapshot(base)
            return base
        window = self._window(model, query, settings, None if checked is None else checked[1])
        columns = (*settings.keys, settings.timestamp or "", *(f.name for f in window.features))
        stream_rows = None
        if settings.stream is not None:
            sources = {key: self.project.sources[key] for key in base.sources}
            stream_rows = row_programs(model, window, sources, self.read_dialect)
        return replace(
            base, kind="window", window=window, query=window.events, columns=columns, stream_rows=stream_rows
        )

    def _as_of_join(self, model: ModelFile, marker: exp.Table) -> tuple[exp.Subquery, AsOfJoin]:
        try:
            return expand_as_of_join(
                marker, self.compiled, self._known_columns, self.read_dialect, self.dialect, self.state_project
            )
        except CompileError as exc:
            raise CompileError(
                f"model {model.name!r}: {exc.message}", path=model.path, line=node_line(marker)
            ) from None

    def _parse(self, model: ModelFile, sql: str) -> exp.Query:
        statements = parse_sql(sql, self.read_dialect, model.path, f"model {model.name!r}")
        if not statements:
            raise CompileError(f"model {model.name!r} is empty: write one SELECT statement", path=model.path)
        if len(statements) > 1:
            raise CompileError(
                f"model {model.name!r} must be exactly one SELECT statement, found {len(statements)}: remove the "
                "';' and what follows it (featuresql creates the table; a model never runs other statements)",
                path=model.path,
                line=node_line(statements[1]),
            )
        if not isinstance(statements[0], exp.Query):
            kind = statements[0].key.upper()
            raise CompileError(
                f"model {model.name!r} is a {kind} statement, not a SELECT: a model is one SELECT whose rows "
                "featuresql writes to its table",
                path=model.path,
                line=node_line(statements[0]),
            )
        query = dialects.float_division(statements[0], self.read_dialect, self.dialect)
        self._check_portable(model, query)
        return query

    def _check_portable(self, model: ModelFile, query: exp.Query) -> None:
        """A model written in one dialect must come out valid in the target's (see featuresql.compile.portability)."""
        if self.dialect == self.read_dialect or self.dialect not in INVALID:
            return
        try:
            sql = query.sql(self.dialect, unsupported_level=ErrorLevel.RAISE)
        except Exception as exc:  # sqlglot cannot write the construct for this engine at all
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CompileError(
                f"model {model.name!r} cannot be written for {self.dialect}: {problem}; "
                "rewrite that part, or dispatch it per engine with a macro",
                path=model.path,
            ) from None
        problems = unportable(sql, self.dialect)
        if problems:
            raise CompileError(
                f"model {model.name!r} does not transpile from {self.read_dialect} to {self.dialect}: "
                f"{problems[0]}; rewrite it portably, or dispatch it per engine with a macro",
                path=model.path,
            )

    def _known_columns(self, table: exp.Table) -> dict[str, str] | None:
        if table.db.lower() == STATE_SCHEMA and table.name.lower() == "intervals":  # an as_of_join reads its state
            return dict(STATE_COLUMNS)
        for source in self.project.sources.values():
            if source.identifier.lower() == table.name.lower() and (source.schema or "").lower() == table.db.lower():
                if source.columns:
                    return {name: (kind or "UNKNOWN") for name, kind in source.columns.items()}
                break
        if table.db.lower() == self.schema.lower() and table.name in self.compiled:
            columns = self.compiled[table.name].columns
            return None if "*" in columns else dict.fromkeys(columns, "UNKNOWN")
        return self.columns_of(table) if self.columns_of else None

    def _check_columns(self, model: ModelFile, query: exp.Query) -> tuple[exp.Query, Schema] | None:
        """Every column resolves against the known tables: the qualified query and their schema (None: unknown)."""
        ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
        schema: Schema = {}
        for table in query.find_all(exp.Table):
            if table.name.lower() in ctes and not table.db:
                continue
            columns = self._known_columns(table)
            if columns is None or table.catalog:
                return None  # cannot validate without every table's columns
            schema.setdefault(table.db, {})[table.name] = columns
        try:
            qualified = qualify(
                query.copy(),
                schema=dict(schema),
                dialect=self.read_dialect,
                validate_qualify_columns=True,
                quote_identifiers=False,
                identify=False,
            )
        except OptimizeError as exc:
            raise column_error(model, str(exc), schema) from None
        return qualified, schema

    # -- settings -------------------------------------------------------------

    def _settings(self, model: ModelFile, context: ModelContext, query: exp.Query, *, is_window: bool) -> ModelSettings:
        config = self._config(model, context)
        defaults = self.project.config.defaults
        keys: tuple[str, ...] = ()
        if config.entity is not None:
            entity = self.project.config.entities.get(config.entity)
            if entity is None:
                known = list(self.project.config.entities)
                raise CompileError(
                    f"model {model.name!r}: unknown entity {config.entity!r}{closest(config.entity, known)}; "
                    "declare it under 'entities:' in project.yml",
                    path=model.path,
                    line=context.config_line,
                )
            keys = tuple(k.lower() for k in entity.keys)
        elif is_window:
            raise CompileError(f"window model {model.name!r} needs config(entity=...)", path=model.path)
        timestamp = config.timestamp or self._default_timestamp(context)
        if is_window and timestamp is None:
            raise CompileError(
                f"window model {model.name!r} needs config(timestamp='<event time column>')", path=model.path
            )
        grain = config.grain if config.grain is not None else defaults.grain
        if grain <= 0 or grain % 60:
            raise CompileError(
                f"model {model.name!r}: grain must be a whole number of minutes, hours or days",
                path=model.path,
                line=context.config_line,
            )
        online = config.online
        stream = stream_settings(model, config, grain, is_window=is_window, online=online, line=context.config_line)
        return ModelSettings(
            entity=config.entity,
            keys=keys,
            timestamp=timestamp.lower() if timestamp else None,
            grain=grain,
            start=config.start,
            data_delay=self._data_delay(config, context),
            lookback=config.lookback if config.lookback is not None else defaults.lookback,
            batch_size=config.batch_size or defaults.batch_size,
            online=config.online,
            ttl=config.ttl,
            tie_break=config.tie_break,
            tags=tuple(config.tags),
            description=config.description,
            owner=config.owner,
            on_change=config.on_change,
            freshness=config.freshness,
            stream=stream,
        )

    def _default_timestamp(self, context: ModelContext) -> str | None:
        times = {self.project.sources[s].event_time for s in context.sources} - {None}
        return times.pop() if len(times) == 1 else None

    def _data_delay(self, config: ModelConfig, context: ModelContext) -> int:
        inherited = [self.project.sources[s].data_delay for s in context.sources]
        inherited += [self.compiled[r].settings.data_delay for r in context.refs]
        own = config.data_delay if config.data_delay is not None else self.project.config.defaults.data_delay
        return max([own, *inherited])

    def _check_online(
        self, model: ModelFile, query: exp.Query, checked: tuple[exp.Query, Schema] | None, settings: ModelSettings
    ) -> None:
        entity = self.project.config.entities.get(settings.entity or "")
        declared = {k.lower(): v for k, v in entity.keys.items()} if entity is not None else {}
        online = self.project.config.online
        ttl_attribute = online.get("ttl_attribute") if isinstance(online, dict) else None
        reserved = RESERVED | {DEFAULT_TTL_ATTRIBUTE, *([ttl_attribute] if ttl_attribute else [])}
        check_online_model(model, query, checked, declared, reserved, self.read_dialect)

    def _check_snapshot(self, model: CompiledModel) -> None:
        settings = model.settings
        if "*" in model.columns:
            return
        for column in (*settings.keys, *([settings.timestamp] if settings.timestamp else [])):
            if column not in model.columns:
                raise CompileError(
                    f"model {model.name!r} must select {column!r} (entity key or timestamp)"
                    f"{closest(column, list(model.columns))}",
                    path=model.path,
                )

    # -- window models ----------------------------------------------------------

    def _window(
        self, model: ModelFile, query: exp.Query, settings: ModelSettings, schema: Schema | None
    ) -> WindowModel:
        """The window model of ``query``; ``schema``: the column types of the tables it reads (None: unknown)."""
        if not isinstance(query, exp.Select):
            raise CompileError(f"window model {model.name!r} must be a single SELECT (no UNION)", path=model.path)
        if query.args.get("group") or query.args.get("distinct"):
            raise CompileError(
                f"window model {model.name!r} must select events row by row (no GROUP BY or DISTINCT): "
                "the window macros aggregate",
                path=model.path,
            )
        events = query.copy()
        kept: list[exp.Expr] = []
        features: list[WindowFeature] = []
        inputs: dict[str, str] = {}
        required = {*settings.keys, settings.timestamp}
        names: set[str | None] = set(required)
        for item in events.expressions:
            marker = item.this if isinstance(item, exp.Alias) else item
            if is_marker(marker):
                if isinstance(item, exp.Alias):
                    raise self._marker_error(model, marker, "name a window feature with name='...', not AS")
                for feature in self._expand(model, marker):
                    if feature.name in names:
                        raise self._marker_error(
                            model,
                            marker,
                            f"duplicate column name {feature.name!r}: set name= on one of the window macros",
                        )
                    names.add(feature.name)
                    features.append(self._bind(model, marker, feature, settings, inputs))
            elif item.alias_or_name.lower() in required:
                kept.append(item)
            else:
                raise CompileError(
                    f"window model {model.name!r}: column {item.alias_or_name!r} is neither an entity key "
                    f"({', '.join(settings.keys)}), the timestamp ({settings.timestamp}) nor a window feature; "
                    "remove it or compute it in a snapshot model",
                    path=model.path,
                    line=node_line(item),
                )
        present = {item.alias_or_name.lower() for item in kept}
        for column in required - present:
            raise CompileError(
                f"window model {model.name!r} must select {column!r} (its entity key or timestamp): add it to the "
                "SELECT list",
                path=model.path,
            )
        expressions = kept + [
            exp.alias_(sqlglot.parse_one(sql, read=self.read_dialect), alias) for sql, alias in inputs.items()
        ]
        events.set("expressions", expressions)
        exact = exact_inputs(events, schema, self.read_dialect) if schema is not None else set()
        features = [replace(f, exact_input=f.column in exact) for f in features]
        assert settings.timestamp is not None
        return WindowModel(settings.keys, settings.timestamp, settings.grain, events, tuple(features))

    def _expand(self, model: ModelFile, marker: exp.Anonymous) -> list[WindowFeature]:
        try:
            return features_of_marker(marker)
        except CompileError as exc:
            raise self._marker_error(model, marker, exc.message) from None

    def _bind(
        self,
        model: ModelFile,
        marker: exp.Anonymous,
        feature: WindowFeature,
        settings: ModelSettings,
        inputs: dict[str, str],
    ) -> WindowFeature:
        if feature.window % settings.grain:
            from featuresql.durations import format_duration

            grain = format_duration(settings.grain)
            raise self._marker_error(
                model,
                marker,
                f"window {feature.window_label} of {feature.name} is not a multiple of the grain "
                f"{grain}: use a multiple of {grain} or change the model's grain",
            )
        column = self._input(feature.input, inputs)
        tie_break = self._input(feature.tie_break, inputs)
        return replace(feature, column=column, tie_break_column=tie_break)

    def _input(self, expression: exp.Expr | None, inputs: dict[str, str]) -> str | None:
        if expression is None:
            return None
        sql = expression.sql(self.read_dialect)
        if sql not in inputs:
            base = expression.name.lower() if isinstance(expression, exp.Column) else str(len(inputs))
            alias = f"in_{base}"
            while alias in inputs.values():
                alias += "_"
            inputs[sql] = alias
        return inputs[sql]

    def _marker_error(self, model: ModelFile, marker: exp.Anonymous, message: str) -> CompileError:
        return CompileError(f"window model {model.name!r}: {message}", path=model.path, line=node_line(marker))


def rendering_context(
    project: Project, name: str, path: Path, who: str, models: Collection[str], schema: str, variables: dict[str, Any]
) -> ModelContext:
    """A rendering context whose ref() names ``models`` in ``schema`` and source() the declared sources.

    Errors name ``who`` (a model, a hook, a test). Models and tests render in the same way.
    """
    dialect = project.config.dialect

    def relation_of(model: str) -> str:
        if model not in models:
            raise CompileError(f"{who} refs unknown model {model!r}{closest(model, list(models))}")
        return exp.table_(model, db=schema).sql(dialect)

    def source_of(source_name: str, table_name: str) -> str:
        key = f"{source_name}.{table_name}"
        source = project.sources.get(key)
        if source is None:
            raise CompileError(
                f"{who} uses undeclared source {key!r}{closest(key, list(project.sources))}: "
                "declare it in a sources YAML file under features/"
            )
        return source.relation.sql(dialect)

    return ModelContext(name, path, relation_of, source_of, variables)


def parse_sql(sql: str, dialect: str, path: Path, what: str, *, report_line: bool = True) -> list[exp.Expr]:
    """Parse rendered SQL; a syntax error names ``what``, the file and the line, in words."""
    try:
        # a comment after the last ';' parses as a comment-only Semicolon: not a statement
        return [s for s in sqlglot.parse(sql, read=dialect) if s is not None and not isinstance(s, exp.Semicolon)]
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        description = str(error.get("description") or "invalid syntax")
        if description.startswith("Required keyword"):  # sqlglot internals, not the user's words
            description = "incomplete expression"
        near = str(error.get("highlight") or "").strip()
        detail = f"{description} near {near!r}" if near else description
        line = error.get("line") if report_line else None
        raise CompileError(f"cannot parse {what} as {dialect} SQL: {detail}", path=path, line=line) from None
    except TokenError as exc:
        context = str(exc).removeprefix("Error tokenizing '").removesuffix("'")
        position = sql.find(context)
        end = position + len(context) if position >= 0 else len(sql)
        line = _unclosed_quote_line(sql[:end]) if report_line else None
        raise CompileError(
            f"cannot parse {what} as {dialect} SQL: unterminated string or invalid token", path=path, line=line
        ) from None


def _unclosed_quote_line(sql: str) -> int:
    """The line where a string left open at the end of ``sql`` starts (else the last line)."""
    opened = None
    for position, char in enumerate(sql):
        if char == "'":
            opened = None if opened is not None else position
    return sql[: len(sql) if opened is None else opened].count("\n") + 1

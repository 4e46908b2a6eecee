"""A project opened against one target: what the CLI and the Python API work with."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from featuresql.adapters import adapter_class
from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.compiler import compile_project
from featuresql.compile.models import CompiledProject, Service
from featuresql.errors import ConfigError, ExecutionError, TargetBusyError
from featuresql.project.graph import Graph
from featuresql.project.loader import Project, Source, find_project_root, load_project
from featuresql.project.profiles import resolve_target
from featuresql.run import artifacts, changes, file_sources, locks, state
from featuresql.run.intervals import Interval
from featuresql.run.planning import BatchReporter, RunOptions, RunState, batched_plan, plan_for
from featuresql.run.results import RunResult
from featuresql.run.runner import Reporter, run_models
from featuresql.run.statements import batch_query, build_statements, create_table, replace_range
from featuresql.sql.types import sql_family

if TYPE_CHECKING:
    from featuresql.extracts.training_set import ExtractResult

# Families a warehouse may report for one declared family: Snowflake reports every NUMBER
# bare (integer or decimal), BigQuery's TIMESTAMP is an instant whatever sources.yml calls it.
_SAME_GROUP = {"decimal": "integer", "timestamptz": "timestamp"}
_GROUPS = {"integer", "float", "string", "timestamp", "date", "time", "boolean"}


@dataclass(frozen=True)
class PlannedModel:
    """What a run would do to one model (``featuresql run --dry-run``)."""

    name: str
    action: str  # "create" (first run or full refresh), "incremental" or "rebuild" (snapshot models)
    batches: list[Interval]
    statements: list[exp.Expr]


class Context:
    """Project + target: compile, run, and (lazily) the warehouse connection."""

    def __init__(
        self,
        project_dir: Path | str = ".",
        target: str | None = None,
        variables: dict[str, Any] | None = None,
        *,
        offline: bool = False,
    ):
        """``offline``: never connect (``compile``, ``ls``): unset secrets are allowed, and
        sources without declared columns are not introspected."""
        self.project: Project = load_project(find_project_root(Path(project_dir)))
        self.offline = offline
        self._missing_env: list[str] = []
        self.target_name, self.target_config = resolve_target(
            self.project.root, self.project.name, target, missing_env=self._missing_env if offline else None
        )
        self.adapter_class = adapter_class(self.target_config.type)
        self.variables = variables or {}
        self._adapter: WarehouseAdapter | None = None
        self._introspected: dict[str, dict[str, str] | None] = {}
        self._file_sources_registered: set[str] = set()
        self._scratch: Any = None  # Context.scratch: its temporary folder

    @classmethod
    def scratch(
        cls,
        models: dict[str, str],
        sources: dict[str, Any],
        entities: dict[str, str | dict[str, str]],
        *,
        grain: str = "1d",
        event_times: dict[str, str] | None = None,
        variables: dict[str, Any] | None = None,
    ) -> Context:
        """A context on a throwaway project, for a notebook: no project folder needed.

        ``models`` maps names to SQL (as a ``features/NAME.sql`` file); ``sources`` maps
        names to a file path, a pyarrow Table or a pandas DataFrame, read by the models as
        ``{{ source('scratch', 'NAME') }}``; ``entities`` maps names to a key column (its
        type read from the sources) or to ``{column: type}``. The project and its DuckDB
        database live in a temporary folder, deleted with the context object::

            context = Context.scratch(
                models={"spend": "{{ config(entity='user', timestamp='ts') }} select user_id, ts, "
                        "{{ window_sum('amount', windows=['7d']) }} from {{ source('scratch', 'events') }}"},
                sources={"events": events_dataframe},
                entities={"user": "user_id"},
            )
            context.run()
        """
        import tempfile

        from featuresql.project.scratch import write_scratch_project

        temporary = tempfile.TemporaryDirectory(prefix="featuresql_")
        folder = Path(temporary.name) / "scratch"
        write_scratch_project(folder, models, sources, entities, grain=grain, event_times=event_times)
        context = cls(folder, variables=variables)
        context._scratch = temporary  # the folder lives as long as the context
        return context

    @property
    def dialect(self) -> str:
        return str(self.adapter_class.dialect)

    @property
    def adapter(self) -> WarehouseAdapter:
        if self._adapter is None:
            if self.offline:
                raise ConfigError("this command works offline and cannot connect to the target")
            self._adapter = self.adapter_class(self.target_config, self.project.root)
        return self._adapter

    @cached_property
    def compiled(self) -> CompiledProject:
        """Every model compiled for this target (no connection needed when sources declare columns)."""
        return self._compile()

    def compiled_for(self, models: Sequence[str]) -> CompiledProject:
        """Just ``models`` and their ancestors compiled (everything, if already compiled)."""
        if "compiled" in self.__dict__:
            return self.compiled
        return self._compile({m.lower() for m in models})

    def service(self, reference: str) -> Service:
        """Feature service ``NAME`` or ``NAME@VERSION`` (``featuresql.compile.services``), resolved
        against just its models when the whole project is not compiled yet."""
        from featuresql.compile.services import find_service, resolve_service, service_models

        declared = find_service(self.project.services, reference)
        if "compiled" in self.__dict__:
            return self.compiled.services[declared.name]
        compiled = self.compiled_for(service_models(declared))
        entities = {name: entity.keys for name, entity in self.project.config.entities.items()}
        return resolve_service(compiled.models, declared, entities, compiled.on_demand)

    def _compile(self, only: set[str] | None = None) -> CompiledProject:
        return compile_project(
            self.project,
            target=self.target_name,
            target_type=self.target_config.type,
            dialect=self.dialect,
            schema=self.target_config.schema_,
            variables=self.variables,
            columns_of=None if self.offline else self._introspect,
            only=only,
        )

    def _introspect(self, table: exp.Table) -> dict[str, str] | None:
        """The column names of a table sources.yml does not describe, from the warehouse.

        Their types are left unknown: they are spelled in the target's dialect, and
        checking names is what compiling needs.
        """
        key = table.sql()
        if key not in self._introspected:
            self.register_file_sources()
            columns = None if table.catalog else self.adapter.table_columns(table)
            self._introspected[key] = None if columns is None else dict.fromkeys(columns, "UNKNOWN")
        return self._introspected[key]

    def graph(self) -> Graph:
        models = self.compiled.models
        return Graph({n: m.refs for n, m in models.items()}, {n: m.settings.tags for n, m in models.items()})

    def select(self, select: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[str]:
        for item in (*select, *exclude):
            for name in item.replace(",", " ").split():
                if name.strip("+").lower() in self.compiled.on_demand:
                    raise ConfigError(
                        f"{name.strip('+')!r} is an on-demand model: it has no table to run, test or sync; its "
                        "features are computed by extract and the reader (select the models it reads instead)"
                    )
        return self.graph().select(select, exclude)

    def write_compiled(self, selected: list[str], now: datetime | None = None) -> list[Path]:
        """Write every statement a run would execute to target/compiled/<target>/."""
        now = now or datetime.now(UTC)
        folder = self.project.target_dir / "compiled" / self.target_name
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name in selected:
            model = self.compiled.models[name]
            statements = build_statements(model, self.dialect, now)
            path = folder / f"{name}.sql"
            path.write_text(";\n\n".join(s.sql(self.dialect, pretty=True) for s in statements) + ";\n")
            written.append(path)
        return written

    def run(
        self,
        select: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        *,
        threads: int = 1,
        now: datetime | None = None,
        options: RunOptions | None = None,
        report: Reporter | None = None,
        on_batch: BatchReporter | None = None,
        lock_timeout: float = 0.0,
    ) -> RunResult:
        """Run the hooks and build the selected models: incrementally, from the state in the warehouse.

        One run at a time per target: another run waits up to ``lock_timeout`` seconds for
        the lock, then fails with ``TargetBusyError`` naming the holder.
        """
        selected = self.select(select, exclude)
        now = now or datetime.now(UTC)
        options = options or RunOptions()
        deadline = time.monotonic() + lock_timeout
        self.connect_waiting(deadline)
        state.ensure_tables(self.adapter)
        run_id = uuid.uuid4().hex[:12]
        remaining = max(0.0, deadline - time.monotonic())
        with locks.hold(self.adapter, self.project.name, run_id, timeout=remaining, waited=lock_timeout):
            # Hooks first: they may load or alter the sources, whose types are part of each definition.
            read = {
                s
                for name in selected
                for m in (name, *self.graph().ancestors(name))
                for s in self.compiled.models[m].sources
            }
            self.register_file_sources(sorted(read), load=True)
            self._run_hooks("on_run_start")
            run = self._run_state(selected, now, options, on_batch, run_id)
            run.heartbeat = locks.Heartbeat(self.project.name, run_id)
            result = run_models(self.compiled, self.adapter, selected, run=run, threads=threads, report=report)
            self._run_hooks("on_run_end")
            # Written before the lock is released: a release that fails (the warehouse gone) keeps the results.
            arguments = {
                "select": list(select),
                "exclude": list(exclude),
                "now": now.isoformat(),
                "full_refresh": options.full_refresh,
                "start": options.start,
                "end": options.end,
            }
            artifacts.write_run_results(self.project.target_dir, result, self.target_name, arguments)
            artifacts.write_manifest(self.project.target_dir, self.compiled, run.definitions)
        return result

    def plan(
        self,
        select: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        *,
        now: datetime | None = None,
        options: RunOptions | None = None,
    ) -> list[PlannedModel]:
        """What a run would do (``--dry-run``): each model's batches and statements; nothing is written."""
        selected = self.select(select, exclude)
        run = self._run_state(selected, now or datetime.now(UTC), options or RunOptions(), None)
        planned = []
        for name in selected:
            model = self.compiled.models[name]
            if model.window is None:
                planned.append(PlannedModel(name, "rebuild", [], [create_table(model, model.query)]))
                continue
            try:
                plan = batched_plan(model, self.adapter, run)
            except ExecutionError:  # its inputs do not exist yet (hooks or upstream models make them): plan as if
                plan = plan_for(model, run)
            statements: list[exp.Expr] = []
            for number, batch in enumerate(plan.batches):
                if plan.create and number == 0:
                    statements.append(create_table(model, batch_query(model, batch, self.dialect)))
                else:
                    statements.extend(replace_range(model, batch, self.dialect))
            planned.append(PlannedModel(name, "create" if plan.create else "incremental", plan.batches, statements))
        return planned

    def connect_waiting(self, deadline: float) -> None:
        """Open the target (creating the model schema), waiting while another process holds it."""
        began = time.monotonic()
        while True:
            try:
                self.adapter.ensure_schema(self.target_config.schema_)
                return
            except TargetBusyError as exc:
                if time.monotonic() < deadline:
                    time.sleep(locks.POLL_SECONDS)
                elif deadline > began:  # it waited for --lock-timeout: say so, not "pass --lock-timeout"
                    raise TargetBusyError(exc.holder, waited=round(time.monotonic() - began)) from None
                else:
                    raise

    def _run_state(
        self,
        selected: list[str],
        now: datetime,
        options: RunOptions,
        on_batch: BatchReporter | None,
        run_id: str = "dry-run",
    ) -> RunState:
        """Read the state of the selected models and all they read; refuse what a run would build wrong.

        Definitions cover upstream models and source column types (``featuresql.run.changes``),
        so the state of every model upstream of the selection is read too.
        """
        models = self.compiled.models
        graph = self.graph()
        upstream = {*selected, *(a for name in selected for a in graph.ancestors(name))}
        needed = [name for name in models if name in upstream]
        windows = [name for name in needed if models[name].window is not None]
        states = state.read_states(self.adapter, self.project.name, windows)
        existing = {name for name in windows if name in selected and self._built(name)}
        for name in windows:
            if name in selected and states[name].definitions and name not in existing:
                states[name] = state.ModelState([], frozenset())  # the table was dropped: build it anew
        sources, missing = self._source_columns(needed)
        definitions = state.definition_hashes(self.compiled, sources, needed)
        recorded = state.read_definitions(self.adapter, self.project.name)
        known = {name: d for name, d in definitions.items() if not self._reads_missing(name, missing, graph)}
        unrecorded = [n for n in known if models[n].window is None and n not in recorded and self._built(n)]
        changed = changes.changed_models(models, known, states, recorded, unrecorded)
        rebuild = changes.check_changes(graph, models, selected, changed, options.full_refresh)
        return RunState(
            project=self.project.name,
            run_id=run_id,
            dialect=self.dialect,
            now=now,
            options=options,
            states=states,
            existing=existing,
            definitions=definitions,
            rebuild=rebuild,
            on_batch=on_batch,
        )

    def _built(self, model: str) -> bool:
        return self.adapter.table_columns(self.compiled.models[model].relation) is not None

    def _source_columns(self, models: Sequence[str]) -> tuple[dict[str, state.SourceColumns], set[str]]:
        """The declared and warehouse column types of each source the ``models`` read (each table read
        once), and the sources whose table is missing; declared types must be of the warehouse's family.

        A source in another database (catalog) is not read, as compiling does not introspect it.
        """
        found: dict[str, state.SourceColumns] = {}
        missing: set[str] = set()
        tables: dict[str, dict[str, str] | None] = {}
        for key in sorted({s for name in models for s in self.compiled.models[name].sources}):
            source = self.project.sources[key]
            relation = source.relation
            if relation.catalog:
                found[key] = state.SourceColumns(source.columns)
                continue
            if relation.sql() not in tables:
                tables[relation.sql()] = self.adapter.table_columns(relation)
            actual = tables[relation.sql()]
            if actual is None:
                missing.add(key)
            found[key] = state.SourceColumns(source.columns, actual)
            self._check_declared_types(source, actual or {})
        return found, missing

    def _check_declared_types(self, source: Source, actual: dict[str, str]) -> None:
        """A declared type of another family than the table's would compile the model for the wrong type."""
        for column, declared in source.columns.items():
            kind = actual.get(column)
            groups = {_type_group(declared or "", self.project.config.dialect), _type_group(kind or "", self.dialect)}
            if None not in groups and len(groups) > 1:
                raise ConfigError(
                    f"source {source.key}: column {column!r} is declared {declared} in sources.yml, but table "
                    f"{source.relation.sql(self.dialect)} on target {self.target_name!r} has it as {kind}: update "
                    "its type in sources.yml",
                    path=source.path,
                    line=source.line,
                )

    def _reads_missing(self, model: str, missing: set[str], graph: Graph) -> bool:
        """Whether ``model`` or a model upstream of it reads a missing source: its definition is unknown.

        Such a model fails to build anyway, with the warehouse's error; it is not called changed.
        """
        names = {model, *graph.ancestors(model)}
        return any(s in missing for name in names for s in self.compiled.models[name].sources)

    def extract(
        self,
        spine: Any,
        features: str | Sequence[str] = (),
        *,
        out: str | Path | None = None,
        timestamp_column: str | None = None,
        strict: bool = False,
        service: str | None = None,
    ) -> ExtractResult:
        """A point-in-time training set; see ``featuresql.extract`` (the table is in ``.table`` without ``out``)."""
        from featuresql.extracts.training_set import run_extract

        return run_extract(
            self, spine, features, out=out, timestamp_column=timestamp_column, strict=strict, service=service
        )

    def register_file_sources(self, keys: Sequence[str] | None = None, *, load: bool = False) -> None:
        """Make file sources readable (``featuresql.run.file_sources``): those named by ``keys``
        (``bank.transactions``; None: all), each once per context on DuckDB; ``load``: a run,
        which also loads them into a remote warehouse's tables."""
        wanted = self.project.sources if keys is None else {k: self.project.sources[k] for k in keys}
        files = [
            source
            for key, source in wanted.items()
            if source.external is not None and (load or key not in self._file_sources_registered)
        ]
        if files:
            file_sources.register(self.adapter, files, self.project.root, self.project.config.dialect, load=load)
        self._file_sources_registered |= {source.key for source in files}

    def _run_hooks(self, name: str) -> None:
        for number, statements in enumerate(self.compiled.hooks.get(name, []), start=1):
            for statement in statements:
                try:
                    self.adapter.execute(statement)
                except ExecutionError as exc:
                    raise ExecutionError(
                        f"{name} hook {number} failed: {exc.message}", path=self.project.root / "project.yml"
                    ) from None

    def query(self, sql: str | exp.Expr) -> Any:
        """Run a query on the target and return an Arrow table."""
        return self.adapter.fetch_arrow(sql)

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _type_group(kind: str, dialect: str) -> str | None:
    """The group of families a type is compared in (None: a type no check knows, never a mismatch)."""
    family = sql_family(kind, dialect)
    group = _SAME_GROUP.get(family, family)
    return group if group in _GROUPS else None

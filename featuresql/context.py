"""A project opened against one target: what the CLI and the Python API work with."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from featuresql import state
from featuresql.adapters import adapter_class
from featuresql.adapters.base import WarehouseAdapter
from featuresql.compiler import compile_project
from featuresql.errors import ConfigError, ExecutionError
from featuresql.execution import BatchReporter, RunState
from featuresql.graph import Graph
from featuresql.models import CompiledProject
from featuresql.plan import RunOptions, build_statements
from featuresql.profiles import resolve_target
from featuresql.project import Project, find_project_root, load_project
from featuresql.runner import Reporter, RunResult, run_models

if TYPE_CHECKING:
    from featuresql.training import ExtractResult


class Context:
    """Project + target: compile, run, and (lazily) the warehouse connection."""

    def __init__(
        self, project_dir: Path | str = ".", target: str | None = None, variables: dict[str, Any] | None = None
    ):
        self.project: Project = load_project(find_project_root(Path(project_dir)))
        self.target_name, self.target_config = resolve_target(self.project.root, self.project.name, target)
        self.adapter_class = adapter_class(self.target_config.type)
        self.variables = variables or {}
        self._adapter: WarehouseAdapter | None = None

    @property
    def dialect(self) -> str:
        return str(self.adapter_class.dialect)

    @property
    def adapter(self) -> WarehouseAdapter:
        if self._adapter is None:
            self._adapter = self.adapter_class(self.target_config, self.project.root)
        return self._adapter

    @cached_property
    def compiled(self) -> CompiledProject:
        """Every model compiled for this target (no connection needed when sources declare columns)."""
        return compile_project(
            self.project,
            target=self.target_name,
            target_type=self.target_config.type,
            schema=self.target_config.schema_,
            variables=self.variables,
        )

    def graph(self) -> Graph:
        models = self.compiled.models
        return Graph({n: m.refs for n, m in models.items()}, {n: m.settings.tags for n, m in models.items()})

    def select(self, select: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[str]:
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
    ) -> RunResult:
        """Run the hooks and build the selected models: incrementally, from the state in the warehouse."""
        selected = self.select(select, exclude)
        now = now or datetime.now(UTC)
        options = options or RunOptions()
        self.adapter.ensure_schema(self.target_config.schema_)
        state.ensure_tables(self.adapter)
        run = self._run_state(selected, now, options, on_batch)
        self._run_hooks("on_run_start")
        result = run_models(self.compiled, self.adapter, selected, run=run, threads=threads, report=report)
        self._run_hooks("on_run_end")
        return result

    def _run_state(
        self, selected: list[str], now: datetime, options: RunOptions, on_batch: BatchReporter | None
    ) -> RunState:
        """Read the state of the selected models; refuse models whose definition changed."""
        models = self.compiled.models
        windows = [name for name in selected if models[name].window is not None]
        states = state.read_states(self.adapter, self.project.name, windows)
        definitions = {name: state.definition_hash(models[name], self.dialect) for name in windows}
        rebuild = set()
        for name in windows:
            stored = states[name].definitions
            if not stored or stored == {definitions[name]} or options.full_refresh:
                continue
            if models[name].settings.on_change == "rebuild":
                rebuild.add(name)
                continue
            raise ConfigError(
                f"model {name!r} changed since its table was computed (definition {', '.join(sorted(stored))} "
                f"-> {definitions[name]}): rebuild it with `featuresql run --full-refresh --select {name}`, "
                "or set config(on_change='rebuild') to rebuild it automatically",
                path=models[name].path,
            )
        existing = {name for name in windows if self.adapter.table_columns(models[name].relation) is not None}
        return RunState(
            project=self.project.name, run_id=uuid.uuid4().hex[:12], dialect=self.dialect, now=now,
            options=options, states=states, existing=existing, definitions=definitions, rebuild=rebuild,
            on_batch=on_batch,
        )  # fmt: skip

    def extract(
        self,
        spine: Any,
        features: str | Sequence[str],
        *,
        out: str | Path | None = None,
        timestamp_column: str | None = None,
    ) -> ExtractResult:
        """A point-in-time training set; see ``featuresql.extract`` (the table is in ``.table`` without ``out``)."""
        from featuresql.training import run_extract

        return run_extract(self, spine, features, out=out, timestamp_column=timestamp_column)

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

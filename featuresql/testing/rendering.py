"""Render test SQL (singular tests, custom generic test macros) as models are rendered.

``ref()`` resolves to a compiled model's table, ``source()`` to a declared
source; ``var()``, ``env_var()``, ``config()`` and every project macro work as
in models. The result is parsed in the project dialect and written for the
target's, like a model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlglot import exp

from featuresql.compile.compiler import parse_sql, rendering_context
from featuresql.compile.models import CompiledProject
from featuresql.errors import CompileError
from featuresql.project.jinja import MacroEnvironment, ModelContext
from featuresql.project.loader import Project
from featuresql.sql import dialects


class TestRenderer:
    """One Jinja environment for every test of a project on one target."""

    __test__ = False  # not a pytest test class

    def __init__(self, project: Project, compiled: CompiledProject, schema: str, variables: dict[str, Any]):
        self.project = project
        self.compiled = compiled
        self.read_dialect = project.config.dialect
        self.variables = {**project.config.vars, **variables}
        self.schema = schema
        info = {"name": compiled.target, "type": compiled.target_type, "schema": schema}
        self.macros = MacroEnvironment(project.macro_files, compiled.target_type, info, project.root)

    def context(self, name: str, path: Path, who: str) -> ModelContext:
        """A rendering context whose ref() and source() resolve on the target and name ``who`` in errors."""
        return rendering_context(self.project, name, path, who, self.compiled.models, self.schema, self.variables)

    def render(self, text: str, context: ModelContext) -> str:
        return self.macros.render(text, context)

    def call(self, macro: str, context: ModelContext, **arguments: Any) -> str:
        """Call a macro (a custom generic test) inside ``context``; its output is SQL text."""
        function: Callable[..., Any] = self.macros.namespace[macro]
        with self.macros.model(context):
            try:
                return str(function(**arguments))
            except CompileError:
                raise
            except Exception as exc:
                raise CompileError(f"macro {macro} failed: {exc}", path=context.path) from None

    def query(self, sql: str, path: Path, what: str, *, line: int | None = None) -> exp.Query:
        """Parse rendered test SQL: exactly one SELECT, in the project dialect."""
        statements = parse_sql(sql, self.read_dialect, path, what, report_line=line is None)
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            raise CompileError(f"{what} must be exactly one SELECT returning the failing rows", path=path, line=line)
        return dialects.float_division(statements[0], self.read_dialect, self.compiled.dialect)

    def condition(self, sql: str, path: Path | None, line: int | None, what: str) -> exp.Expr:
        """A SQL condition (``where:``, ``expression:``) in the project dialect."""
        import sqlglot
        from sqlglot.errors import ParseError, TokenError

        try:
            return sqlglot.parse_one(sql, read=self.read_dialect, into=exp.Condition)
        except (ParseError, TokenError):
            raise CompileError(
                f"{what}: cannot parse {sql!r} as a {self.read_dialect} SQL condition", path=path, line=line
            ) from None

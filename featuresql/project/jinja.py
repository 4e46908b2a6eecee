"""The Jinja environment models are rendered in.

Globals, as dbt users know them: ``ref``, ``source``, ``config``, ``var``,
``env_var``, ``this``, ``is_incremental``, ``target``, ``project_dir`` (the project
folder, absolute), plus every macro from the
built-in ``featuresql/macros/*.sql`` and the project's ``macros/`` (a project
macro overrides a built-in one of the same name). A macro written as
``<dialect>__name`` or ``default__name`` is called as ``name`` and dispatched on
the target's type. Output of every model is parsed in the project dialect.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from featuresql.errors import CompileError, FeaturesqlError, closest
from featuresql.project.profiles import env_var
from featuresql.project.yamlfile import read_text
from featuresql.sql.engines import ENGINES

BUILTIN_MACROS = Path(__file__).parents[1] / "macros"


@dataclass
class ModelContext:
    """What one model's rendering may resolve, and records what it used."""

    name: str
    path: Path
    relation_of: Callable[[str], str]
    source_of: Callable[[str, str], str]
    variables: dict[str, Any]
    is_incremental: bool = False
    refs: list[str] = field(default_factory=list)
    ref_lines: dict[str, int | None] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    config_line: int | None = None
    rendered: str = ""


_current: ContextVar[ModelContext] = ContextVar("featuresql_model")


def current_model() -> ModelContext:
    try:
        return _current.get()
    except LookupError:
        raise CompileError("ref(), source(), config() and var() can only be used inside a model") from None


def ref(name: str) -> str:
    """``ref()``: the relation of a model, recorded as a dependency of the model being rendered."""
    model = current_model()
    model.refs.append(name)
    model.ref_lines.setdefault(name, template_line(model.path))
    return model.relation_of(name)


def _source(source_name: str, table_name: str) -> str:
    model = current_model()
    model.sources.append(f"{source_name}.{table_name}")
    return model.source_of(source_name, table_name)


def _config(**settings: Any) -> str:
    model = current_model()
    model.config.update(settings)
    model.config_line = template_line(model.path)
    # The call renders to nothing; a call written over several lines keeps its line breaks, so the
    # SQL after it keeps its line numbers (errors name the line the author sees).
    return "\n" * _call_line_breaks(model.path, model.config_line, "config(")


def _call_line_breaks(path: Path, line: int | None, call: str) -> int:
    """How many line breaks the ``{{ call ... }}`` starting on ``line`` of ``path`` spans (0 if not found)."""
    if line is None:
        return 0
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return 0
    offset = sum(len(row) for row in text.splitlines(keepends=True)[: line - 1])
    start = text.find(call, offset)
    if start < 0:
        return 0
    depth, quote, position = 0, "", start + len(call) - 1
    while position < len(text):
        char = text[position]
        if quote:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                break
        position += 1
    end = text.find("}}", position)
    return text.count("\n", start, end) if end >= 0 else 0


def _var(name: str, default: Any = None) -> Any:
    variables = current_model().variables
    if name in variables:
        return variables[name]
    if default is not None:
        return default
    raise CompileError(
        f"var {name!r} is not defined{closest(name, list(variables))}: add it under 'vars:' in "
        "project.yml, pass --vars, or give a default with var('name', default)"
    )


def _is_incremental() -> bool:
    return current_model().is_incremental


class _This:
    def __str__(self) -> str:
        model = current_model()
        return model.relation_of(model.name)

    __html__ = __str__


class MacroEnvironment:
    """A Jinja environment with built-in and project macros loaded once."""

    def __init__(self, macro_files: tuple[Path, ...], target_type: str, target_info: dict[str, Any], project_dir: Path):
        # Sandboxed: a template reaches only what the namespace gives it, never Python internals
        # (``env_var.__globals__`` would read FEATURESQL_SECRET_* variables around env_var's check).
        self.env = SandboxedEnvironment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            extensions=["jinja2.ext.do"],
        )
        self.target_type = target_type
        self.namespace: dict[str, Any] = {
            "ref": ref,
            "source": _source,
            "config": _config,
            "var": _var,
            "env_var": env_var,
            "this": _This(),
            "is_incremental": _is_incremental,
            "target": types.MappingProxyType(target_info),
            "dispatch": self.dispatch,
            "project_dir": str(project_dir),  # for absolute paths: '{{ project_dir }}/data/x.parquet'
        }
        self.macro_names: set[str] = set()
        builtin = sorted(BUILTIN_MACROS.glob("*.sql"))
        for path in (*builtin, *macro_files):
            self._load(path)
        self._add_dispatchers()

    def _load(self, path: Path) -> None:
        template = self._compile(test_blocks_as_macros(read_text(path)), path)
        try:
            module = template.make_module(vars=self.namespace, shared=True)
        except FeaturesqlError:
            raise
        except RecursionError:
            raise CompileError(_RECURSION, path=path) from None
        except Exception as exc:
            raise CompileError(f"error in macro file: {exc}", path=path, line=template_line(path)) from None
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, jinja2.runtime.Macro):
                self.namespace[name] = value
                self.macro_names.add(name)

    def _add_dispatchers(self) -> None:
        for name in list(self.macro_names):
            prefix, sep, base = name.partition("__")
            if sep and base and base not in self.namespace and (prefix == "default" or prefix in ENGINES):
                self.namespace[base] = self.dispatch(base)

    def dispatch(self, name: str) -> Callable[..., Any]:
        """The ``<target type>__name`` macro if defined, else ``default__name``."""
        for candidate in (f"{self.target_type}__{name}", f"default__{name}"):
            if candidate in self.namespace:
                macro: Callable[..., Any] = self.namespace[candidate]
                return macro
        raise CompileError(f"macro {name!r} has neither {self.target_type}__{name} nor default__{name}")

    def _compile(self, text: str, path: Path) -> jinja2.Template:
        try:
            code = self.env.compile(text, name=path.name, filename=str(path))
        except jinja2.TemplateSyntaxError as exc:
            raise CompileError(f"Jinja syntax error: {exc.message}", path=path, line=exc.lineno) from None
        return self.env.template_class.from_code(self.env, code, self.env.make_globals(None))

    def render(self, text: str, model: ModelContext) -> str:
        """Render a model's SQL; errors name the model file and line."""
        template = self._compile(text, model.path)
        token = _current.set(model)
        try:
            return template.render(self.namespace)
        except FeaturesqlError as exc:
            if exc.path is None:
                raise CompileError(exc.message, path=model.path, line=_traceback_line(model.path)) from None
            raise
        except jinja2.UndefinedError as exc:
            name = str(exc.message or "").split("'")[1] if "'" in str(exc.message) else ""
            hint = closest(name, self.macro_names | set(self.namespace)) if name else ""
            raise CompileError(
                f"{exc.message}{hint}: define it as a macro in macros/ or fix the name",
                path=model.path,
                line=_traceback_line(model.path),
            ) from None
        except jinja2.TemplateError as exc:
            raise CompileError(f"Jinja error: {exc}", path=model.path, line=_traceback_line(model.path)) from None
        except (TypeError, ValueError) as exc:
            raise CompileError(
                f"error while rendering: {exc}", path=model.path, line=_traceback_line(model.path)
            ) from None
        except RecursionError:
            raise CompileError(_RECURSION, path=model.path, line=_traceback_line(model.path)) from None
        finally:
            _current.reset(token)

    @contextmanager
    def model(self, model: ModelContext) -> Iterator[ModelContext]:
        token = _current.set(model)
        try:
            yield model
        finally:
            _current.reset(token)


_RECURSION = "macros call each other too deeply while rendering (a macro that calls itself without end?)"
_TEST_BLOCK = re.compile(r"(\{%-?\s*)test(\s+)([A-Za-z_]\w*)(\s*\()")
_END_TEST_BLOCK = re.compile(r"(\{%-?\s*)endtest(\s*-?%\})")


def test_blocks_as_macros(text: str) -> str:
    """dbt's ``{% test name(model, column_name) %}...{% endtest %}`` as the macro ``test_name``.

    A custom generic test is a macro named ``test_<name>``; dbt users write it
    as a test block, so both spellings work. Lines are kept, so errors point at
    the same line.
    """
    text = _TEST_BLOCK.sub(lambda m: f"{m[1]}macro{m[2]}test_{m[3]}{m[4]}", text)
    return _END_TEST_BLOCK.sub(lambda m: f"{m[1]}endmacro{m[2]}", text)


def template_line(path: Path) -> int | None:
    """The line of ``path`` being rendered right now (for errors raised from Python helpers)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == str(path):
            return _jinja_line(frame)
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _traceback_line(path: Path) -> int | None:
    tb = sys.exc_info()[2]
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = _jinja_line(tb.tb_frame, tb.tb_lineno)
        tb = tb.tb_next
    return line


def _jinja_line(frame: types.FrameType, python_line: int | None = None) -> int | None:
    debug_info = frame.f_globals.get("__jinja_template__")
    lineno = python_line or frame.f_lineno
    if debug_info is not None:
        result: int = debug_info.get_corresponding_lineno(lineno)
        return result
    return lineno

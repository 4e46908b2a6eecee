"""Jinja in models: macros, per-target dispatch, overrides, var, env_var, this, target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from projects import write_project

from featuresql.compile.compiler import compile_project
from featuresql.errors import CompileError
from featuresql.project.loader import load_project


def _project(root: Path, model_sql: str, macros: str = "", variables: dict[str, Any] | None = None) -> Path:
    columns = {"user_id": "bigint", "ts": "timestamp", "amount": "double"}
    write_project(
        root,
        "jinja_demo",
        entities={"user": {"user_id": "bigint"}},
        tables={"events": {"columns": [{"name": name, "type": kind} for name, kind in columns.items()]}},
        models={"m": model_sql},
        dialect=None,
        settings={"vars": variables} if variables else None,
        source="app",
    )
    (root / "macros").mkdir()
    (root / "macros" / "helpers.sql").write_text(macros)
    return root


def _rendered(root: Path, target_type: str = "duckdb", **kwargs: object) -> str:
    compiled = compile_project(load_project(root), target_type=target_type, **kwargs)  # type: ignore[arg-type]
    return compiled.models["m"].rendered_sql


DISPATCHED = """
{% macro duckdb__money(x) %}round({{ x }}, 2){% endmacro %}
{% macro default__money(x) %}{{ x }}{% endmacro %}
{% macro default__only_default(x) %}{{ x }} * 100{% endmacro %}
"""


def test_dispatch_prefers_the_target_type_then_default(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        "select user_id, {{ money('amount') }} as a, {{ only_default('amount') }} as b"
        " from {{ source('app', 'events') }}",
        DISPATCHED,
    )
    assert "round(amount, 2) as a" in _rendered(root, "duckdb")
    assert "amount * 100 as b" in _rendered(root, "duckdb")
    assert "round(" not in _rendered(root, "snowflake")


def test_project_macro_overrides_a_builtin(tmp_path: Path) -> None:
    macros = "{% macro window_sum(column, windows=none, name=none) %}{{ column }} as overridden{% endmacro %}"
    root = _project(tmp_path, "select user_id, {{ window_sum('amount') }} from {{ source('app', 'events') }}", macros)
    assert "amount as overridden" in _rendered(root)


def test_var_project_value_cli_override_and_default(tmp_path: Path) -> None:
    sql = "select user_id from {{ source('app', 'events') }}"
    sql += " where amount > {{ var('floor') }} and {{ var('x', 7) }} = 7"
    root = _project(tmp_path, sql, variables={"floor": 10})
    assert "amount > 10 and 7 = 7" in _rendered(root)
    assert "amount > 99" in _rendered(root, variables={"floor": 99})


def test_undefined_var_is_an_error_naming_the_model_line(tmp_path: Path) -> None:
    root = _project(tmp_path, "select user_id\nfrom {{ source('app', 'events') }}\nwhere {{ var('nope') }}")
    with pytest.raises(CompileError) as caught:
        _rendered(root)
    assert caught.value.line == 3
    assert "var 'nope' is not defined" in caught.value.message


def test_env_var_this_target_and_is_incremental(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURESQL_TEST_REGION", "eu")
    sql = (
        "select user_id, '{{ env_var('FEATURESQL_TEST_REGION') }}' as region, '{{ this }}' as me,"
        " '{{ target.type }}' as t, {{ 'true' if is_incremental() else 'false' }} as inc"
        " from {{ source('app', 'events') }}"
    )
    rendered = _rendered(_project(tmp_path, sql), schema="features")
    assert "'eu' as region" in rendered
    assert "'features.m' as me" in rendered
    assert "'duckdb' as t" in rendered
    assert "false as inc" in rendered


def test_macro_without_dispatch_candidates_names_both(tmp_path: Path) -> None:
    root = _project(tmp_path, "select {{ dispatch('missing')() }} from {{ source('app', 'events') }}")
    with pytest.raises(CompileError, match="neither duckdb__missing nor default__missing"):
        _rendered(root)

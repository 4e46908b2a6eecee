"""The secret-variable rule: ``FEATURESQL_SECRET_*`` is readable in profiles.yml only.

A model's rendered SQL is written to ``target/compiled/`` and sent to the warehouse,
so no template may read such a variable: not through ``env_var()`` in any case, and
not around it (templates render in Jinja's sandbox). ``tests/test_secrets.py`` scans
every command's output and artifacts for the secrets themselves.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from projects import copy_example

from featuresql.context import Context
from featuresql.errors import CompileError, ConfigError
from featuresql.project.profiles import env_var, profile_env_var


def test_a_secret_variable_is_refused_outside_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURESQL_SECRET_PROBE", "probe-value")
    with pytest.raises(ConfigError, match=r"only in profiles\.yml") as raised:
        env_var("FEATURESQL_SECRET_PROBE")
    assert "probe-value" not in str(raised.value)
    assert profile_env_var("FEATURESQL_SECRET_PROBE") == "probe-value"


BYPASSES = [
    "env_var('featuresql_secret_probe')",  # environment names are case-insensitive on Windows
    "env_var.__globals__.os.environ.FEATURESQL_SECRET_PROBE",
    "lipsum.__globals__.os.environ.FEATURESQL_SECRET_PROBE",
    "env_var.__globals__.profile_env_var('FEATURESQL_SECRET_PROBE')",
    "cycler.__init__.__globals__.os.environ.FEATURESQL_SECRET_PROBE",
]


@pytest.mark.parametrize("expression", BYPASSES)
def test_a_model_cannot_reach_a_secret_variable_another_way(
    expression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule holds for the sandboxed template, not just for the literal env_var() spelling."""
    monkeypatch.setenv("FEATURESQL_SECRET_PROBE", "probe-value-7a1")
    project = copy_example(
        tmp_path / "p",
        [
            (
                "features/user_profile.sql",
                "select\n",
                f"select\n    '{{{{ {expression} }}}}' as leaked,\n",
            )
        ],
    )
    with Context(project) as context, pytest.raises((CompileError, ConfigError)) as raised:
        context.compiled_for(["user_profile"])
    assert "probe-value-7a1" not in str(raised.value)

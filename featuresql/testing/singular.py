"""Singular tests: ``<test_paths>/**/*.sql`` files, each a SELECT returning failing rows.

Written as models are (``ref()``, ``source()``, ``var()``, macros), in the
project dialect. ``{{ config(severity='warn', limit=20, tags=[...]) }}`` sets
the severity, the failing rows shown and tags. The test is named after its file
and attached, for ``--select``, to the models and sources it reads.
"""

from __future__ import annotations

from pathlib import Path

from featuresql.errors import ConfigError
from featuresql.project.config import IDENTIFIER, validate
from featuresql.project.yamlfile import read_text
from featuresql.testing.cases import TestCase
from featuresql.testing.failing import failing_rows_check
from featuresql.testing.generic import TestConfig
from featuresql.testing.rendering import TestRenderer


def singular_case(path: Path, renderer: TestRenderer) -> TestCase:
    name = path.stem
    if not IDENTIFIER.match(name):
        raise ConfigError("a test file name must be a SQL identifier (letters, digits, underscores)", path=path)
    context = renderer.context(name, path, f"test {name!r}")
    sql = renderer.render(read_text(path), context)
    query = renderer.query(sql, path, f"test {name!r}")
    config = validate(TestConfig, context.config, path, line=context.config_line)
    if config.where:
        raise ConfigError(
            "where applies to generic tests: filter in the test's own SELECT instead",
            path=path,
            line=context.config_line,
        )
    return TestCase(
        name=config.name or name,
        kind="singular",
        test_type="data",
        check=failing_rows_check(query, config.limit),
        models=tuple(dict.fromkeys(context.refs)),
        sources=tuple(dict.fromkeys(context.sources)),
        severity=config.severity,
        path=path,
        description=config.description,
        tags=tuple(config.tags),
    )

"""Every test of a project on one target, each kind from its own module.

Declared in YAML (generic tests on models, sources and their columns; unit
tests; freshness), written as files (singular tests), or built in (the
availability check of each window model; the null_keys check of each model with
entity keys; the online check with ``--online``).
Test names are unique: two tests of one name are an error naming both places.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featuresql.errors import ConfigError
from featuresql.project.yamlfile import line_of
from featuresql.testing.cases import Check, TestCase
from featuresql.testing.generic import GenericTests, declared_tests, parse_entry
from featuresql.testing.rendering import TestRenderer
from featuresql.testing.singular import singular_case

if TYPE_CHECKING:
    from featuresql.context import Context


def collect_tests(context: Context, *, online: bool = False, only: str | None = None) -> list[TestCase]:
    """All the project's tests (the online checks only with ``online``), in a stable order.

    ``only="freshness"`` builds just the freshness tests, so ``featuresql freshness``
    works whatever state the other tests are in.
    """
    from featuresql.testing.availability import availability_cases
    from featuresql.testing.freshness import freshness_cases
    from featuresql.testing.null_keys import null_keys_cases
    from featuresql.testing.online_check import online_cases
    from featuresql.testing.unit.cases import unit_test_cases

    project, compiled = context.project, context.compiled
    if only == "freshness":
        return freshness_cases(project, compiled)
    if only is not None:
        raise ValueError(f"collect_tests builds every kind, or only freshness: not {only!r}")
    renderer = TestRenderer(project, compiled, str(context.target_config.schema_), context.variables)
    generic = GenericTests(renderer, leakage=lambda model: _leakage(context, model))
    cases = [*_model_tests(context, generic), *_source_tests(context, generic)]
    cases.extend(singular_case(path, renderer) for path in project.test_files)
    cases.extend(unit_test_cases(project, context.variables))
    cases.extend(freshness_cases(project, compiled))
    cases.extend(availability_cases(compiled, project.name))
    cases.extend(null_keys_cases(compiled))
    if online:
        cases.extend(online_cases(compiled))
    _check_unique(cases)
    return cases


def _leakage(context: Context, model: str) -> Check:
    from featuresql.testing.leakage import leakage_check

    return leakage_check(context.compiled.models[model], context.compiled)


def _model_tests(context: Context, generic: GenericTests) -> list[TestCase]:
    cases = []
    for name, model in context.compiled.models.items():
        source = context.project.models[name]
        if source.spec is None or source.spec_path is None:
            continue
        where: tuple[str, bool, Any, str | None, tuple[str, ...] | None]
        where = (name, False, model.relation, None, model.columns)
        cases.extend(_declared(source.spec, source.spec_raw, source.spec_path, source.spec_line, where, generic))
    return cases


def _source_tests(context: Context, generic: GenericTests) -> list[TestCase]:
    cases = []
    for key, source in context.project.sources.items():
        if source.spec is None:
            continue
        columns = tuple(source.columns) or None
        where = (key, True, source.relation, None, columns)
        cases.extend(_declared(source.spec, source.raw, source.path, source.line, where, generic))
    return cases


def _declared(spec: Any, raw: Any, path: Any, line: int | None, where: Any, generic: GenericTests) -> list[TestCase]:
    """The tests under an entry (model or source table) and under each of its columns."""
    cases = []
    for entry, loc in declared_tests(spec, raw, ()):
        cases.append(generic.case(parse_entry(entry, where, path, line_of(raw, loc) or line)))
    for index, column in enumerate(spec.columns):
        on_column = (*where[:3], column.name.lower(), where[4])
        for entry, loc in declared_tests(column, raw, ("columns", index)):
            cases.append(generic.case(parse_entry(entry, on_column, path, line_of(raw, loc) or line)))
    return cases


def _check_unique(cases: list[TestCase]) -> None:
    seen: dict[str, TestCase] = {}
    for case in cases:
        other = seen.setdefault(case.name, case)
        if other is not case:
            where = f"{other.path.name}:{other.line}" if other.path else "a built-in test"
            raise ConfigError(
                f"two tests are named {case.name!r} (the other in {where}): give one a name: under config:",
                path=case.path,
                line=case.line,
            )

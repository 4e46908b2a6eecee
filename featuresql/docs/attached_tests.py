"""The tests attached to each model and source, with the result of their last run.

Tests are collected as ``featuresql test`` collects them (names, kinds, the models
and sources each tests or reads); results come from ``target/test_results.json``,
which every ``featuresql test`` writes and ``featuresql run`` leaves alone. A
generic test declared under a column is shown on that column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featuresql.project.loader import Project
from featuresql.project.yamlfile import line_of
from featuresql.testing.cases import TestCase
from featuresql.testing.generic import declared_tests

RESULTS_FILE = "test_results.json"

Place = tuple[Path, int]  # the YAML file and line of a test's entry


@dataclass
class TestIndex:
    """The project's tests by the model and source they belong to."""

    __test__ = False  # not a pytest test class

    cases: list[TestCase]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # test name -> its last result
    last_run: dict[str, Any] | None = None  # when the results were written, their status and counts
    columns: dict[Place, tuple[str, str]] = field(default_factory=dict)  # place -> (owner, column)

    @classmethod
    def load(cls, project: Project, cases: list[TestCase], target: str) -> TestIndex:
        """The index of ``cases`` with their last results on ``target`` (from the project's target folder)."""
        index = cls(cases, columns=_column_places(project))
        document = _read_results(project.target_dir / RESULTS_FILE)
        if document is not None and document.get("target") == target:
            index.results = {str(r.get("test")): r for r in document.get("results", []) if isinstance(r, dict)}
            index.last_run = {key: document.get(key) for key in ("generated_at", "status", "counts")}
        return index

    def for_model(self, name: str) -> list[dict[str, Any]]:
        return [self._entry(case, name) for case in self.cases if name in case.models]

    def for_source(self, key: str) -> list[dict[str, Any]]:
        return [self._entry(case, key) for case in self.cases if key in case.sources]

    def _entry(self, case: TestCase, owner: str) -> dict[str, Any]:
        place = self.columns.get((case.path, case.line)) if case.path and case.line else None
        result = self.results.get(case.name)
        return {
            "name": case.name,
            "kind": case.kind,
            "test_type": case.test_type,
            "severity": case.severity,
            "column": place[1] if place and place[0] == owner else None,
            "description": case.description,
            "models": list(case.models),
            "sources": list(case.sources),
            "last": None
            if result is None
            else {
                "status": result.get("status"),
                "failures": result.get("failures"),
                "message": result.get("message") or "",
                "seconds": result.get("seconds"),
                "at": result.get("at") or (self.last_run.get("generated_at") if self.last_run else None),
            },
        }


def _read_results(path: Path) -> dict[str, Any] | None:
    """The last test results, or None when there are none (or the file is not a results document)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and isinstance(document.get("results"), list) else None


def _column_places(project: Project) -> dict[Place, tuple[str, str]]:
    """Where each test declared under a column of a model or source table was written."""
    places: dict[Place, tuple[str, str]] = {}
    owners: list[tuple[str, Any, Any, Path | None]] = [
        (name, file.spec, file.spec_raw, file.spec_path) for name, file in project.models.items()
    ]
    owners += [(key, source.spec, source.raw, source.path) for key, source in project.sources.items()]
    for owner, spec, raw, path in owners:
        if spec is None or path is None:
            continue
        for index, column in enumerate(spec.columns):
            for _, loc in declared_tests(column, raw, ("columns", index)):
                found = line_of(raw, loc)  # no fallback: a guessed line could be another test's
                if found is not None:
                    places[(path, found)] = (owner, column.name.lower())
    return places

"""What a run or a test run produced: the records ``featuresql run`` and ``featuresql test`` return.

Plain data, below everything that makes or reads it: the executor and the test
runner fill them in, ``featuresql.run.artifacts`` writes them to
``target/run_results.json``, the CLI prints them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from featuresql.run.intervals import Interval

ModelStatus = Literal["success", "error", "skipped"]


@dataclass(frozen=True)
class ModelResult:
    model: str
    status: ModelStatus
    rows: int | None = None
    seconds: float = 0.0
    message: str = ""
    intervals: tuple[Interval, ...] = ()
    batches: int = 0


@dataclass
class RunResult:
    results: list[ModelResult] = field(default_factory=list)
    seconds: float = 0.0
    run_id: str = ""

    @property
    def ok(self) -> bool:
        return all(r.status == "success" for r in self.results)

    def count(self, status: ModelStatus) -> int:
        return sum(1 for r in self.results if r.status == status)


TestStatus = Literal["pass", "warn", "fail", "error", "skipped"]
TestType = Literal["data", "unit"]


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    name: str
    kind: str
    test_type: TestType
    status: TestStatus
    seconds: float
    failures: int = 0
    message: str = ""
    details: str = ""
    sql: str | None = None
    models: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass
class TestRun:
    __test__ = False  # not a pytest test class

    results: list[TestResult] = field(default_factory=list)
    seconds: float = 0.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def ok(self) -> bool:
        return not any(r.status in ("fail", "error") for r in self.results)

    def count(self, status: TestStatus) -> int:
        return sum(1 for r in self.results if r.status == status)

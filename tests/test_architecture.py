"""The shape of the package: no import cycles, and each stage imports only the stages below it.

Every import counts, at the top of a module, under ``TYPE_CHECKING`` or inside a
function: each is a dependency a reader has to hold in their head. The graph is
read from the source with ``ast`` (nothing is imported), with ``adapters/``
mapped to ``featuresql.adapters`` as pyproject.toml installs it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The stages, lowest first. A unit may import itself and any unit of a lower rank;
# units of one rank (extract and online) do not import each other.
STAGES: tuple[tuple[str, ...], ...] = (
    ("errors", "serving"),  # serving: the Lambda reader, standard library and boto3 only
    ("durations", "names", "files", "checkpoints", "times"),
    ("sql",),
    ("adapters",),
    ("project",),
    ("compile",),
    ("run",),
    ("extracts", "online"),
    ("context",),
    ("testing",),
    ("docs",),
    ("cli",),
    ("featuresql",),  # the package itself: the public API
)
RANK = {unit: rank for rank, units in enumerate(STAGES) for unit in units}
MAX_TOP_LEVEL_MODULES = 12


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "adapters":
        parts = ["featuresql", "adapters", *parts[1:]]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of featuresql/ and adapters/, and the package modules it imports."""
    paths = {module_name(p): p for d in ("featuresql", "adapters") for p in (ROOT / d).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                # A module's own ancestors (packages) are not dependencies: their __init__ runs anyway.
                if target and target != name and not name.startswith(target + "."):
                    imported.add(target)
        graph[name] = imported
    return graph


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """A negative control: the walk above must see a cycle where there is one."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_unit_has_a_stage() -> None:
    units = {unit_of(module) for module in import_graph()}
    assert units - set(RANK) == set(), "add the new package or top-level module to STAGES"


def stage_violations(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a module from its own stage's rank or above (another unit of it)."""
    wrong = []
    for module, imported in graph.items():
        for target in imported:
            unit, other = unit_of(module), unit_of(target)
            if unit != other and RANK[other] >= RANK[unit]:
                wrong.append(f"{module} imports {target}")
    return sorted(wrong)


def test_stages_import_only_stages_below() -> None:
    assert stage_violations(import_graph()) == []


def test_the_graph_sees_every_kind_of_import() -> None:
    """Positive controls: a top-level, a ``TYPE_CHECKING`` and a function-level import are all edges."""
    graph = import_graph()
    assert "featuresql.sql.windows" in graph["featuresql.compile.compiler"]  # top level
    assert "featuresql.adapters.base" in graph["featuresql.run.workspace"]  # under TYPE_CHECKING
    assert "featuresql.extracts.training_set" in graph["featuresql.context"]  # inside Context.extract
    assert "featuresql.adapters" in graph["featuresql.project.profiles"]  # adapters/ read as featuresql.adapters


def test_the_stage_check_finds_an_upward_import() -> None:
    """A negative control: a lower stage importing a higher one, or a sibling, is reported."""
    graph = {
        "featuresql.sql.types": {"featuresql.run.state"},
        "featuresql.online.sync": {"featuresql.extracts.spine"},
        "featuresql.run.state": {"featuresql.sql.types"},
    }
    assert stage_violations(graph) == [
        "featuresql.online.sync imports featuresql.extracts.spine",
        "featuresql.sql.types imports featuresql.run.state",
    ]


def test_serving_imports_nothing_of_featuresql_but_itself() -> None:
    """The Lambda reader ships alone: the standard library and boto3 (tests/test_imports.py runs it)."""
    outside = {
        f"{module} imports {target}"
        for module, imported in import_graph().items()
        if unit_of(module) == "serving"
        for target in imported
        if unit_of(target) != "serving"
    }
    assert outside == set()


def test_at_most_twelve_modules_at_the_top_level() -> None:
    top = sorted(p.name for p in (ROOT / "featuresql").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


@pytest.mark.parametrize(
    "package", [*sorted(p.parent.name for p in (ROOT / "featuresql").glob("*/__init__.py")), "adapters"]
)
def test_every_package_says_what_it_owns_and_may_import(package: str) -> None:
    init = ROOT / ("adapters" if package == "adapters" else f"featuresql/{package}") / "__init__.py"
    docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "May import" in docstring, f"{init}: say what the package owns and which stages it may import"


def test_the_public_api_survives_importing_every_module() -> None:
    """``featuresql.extract`` is a function: a subpackage of that name would replace it when imported."""
    import importlib
    import inspect

    import featuresql

    for module in sorted(import_graph()):
        importlib.import_module(module)
    assert inspect.isfunction(featuresql.extract)
    assert inspect.isclass(featuresql.Context)

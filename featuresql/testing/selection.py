"""``featuresql test --select/--exclude``: which tests run.

Selectors, space or comma separated, as for ``run``:

- model selectors (``name``, ``name+``, ``+name``, ``tag:x``) pick every test
  attached to a selected model (a relationships test belongs to both models);
- ``source:bank`` or ``source:bank.transactions`` picks the tests of sources;
- a test's own name picks that test (a model of the same name wins); ``tag:x``
  also picks tests tagged x;
- ``test_type:T`` narrows to one family: ``unit``, ``data`` (every test of the
  warehouse's tables), ``generic``, ``singular``, ``freshness``,
  ``point_in_time`` (availability and leakage) or ``online``.

Without model, source or name selectors every test is a candidate; the
``test_type`` selectors then intersect (``-s user_transactions test_type:unit``
is the unit tests of user_transactions). ``--exclude`` removes what each of
its selectors picks.
"""

from __future__ import annotations

from collections.abc import Iterable

from featuresql.errors import CompileError, ConfigError, closest
from featuresql.project.graph import Graph
from featuresql.testing.cases import TestCase

FAMILIES = ("unit", "data", "generic", "singular", "freshness", "point_in_time", "online")
_SPECIAL = {
    "singular": "singular",
    "unit": "unit",
    "freshness": "freshness",
    "availability": "point_in_time",
    "leakage": "point_in_time",
    "online": "online",
}


def families(case: TestCase) -> set[str]:
    """The ``test_type:`` values that pick ``case``."""
    family = _SPECIAL.get(case.kind, "generic")
    found = {case.test_type, family}
    if case.kind == "leakage":
        found.add("generic")
    return found


def select_tests(
    cases: list[TestCase], graph: Graph, select: Iterable[str] = (), exclude: Iterable[str] = ()
) -> list[TestCase]:
    """The selected tests, in the order of ``cases``."""
    chosen = _pick(cases, graph, _split(select))
    dropped: set[str] = set()
    for selector in _split(exclude):
        dropped |= _pick(cases, graph, [selector])
    return [case for case in cases if case.name in chosen and case.name not in dropped]


def _pick(cases: list[TestCase], graph: Graph, selectors: list[str]) -> set[str]:
    types = [s.removeprefix("test_type:") for s in selectors if s.startswith("test_type:")]
    others = [s for s in selectors if not s.startswith("test_type:")]
    for family in types:
        if family not in FAMILIES:
            raise ConfigError(f"unknown test_type {family!r}{closest(family, FAMILIES)}: one of {', '.join(FAMILIES)}")
    picked = {case.name for case in cases} if not others else set()
    for selector in others:
        picked |= _match(cases, graph, selector)
    if types:
        picked = {case.name for case in cases if case.name in picked and families(case) & set(types)}
    return picked


def _match(cases: list[TestCase], graph: Graph, selector: str) -> set[str]:
    if selector.startswith("source:"):
        wanted = selector.removeprefix("source:")
        found = {c.name for c in cases for s in c.sources if s == wanted or s.split(".")[0] == wanted}
        if not found:
            known = sorted({s for c in cases for s in c.sources} | {s.split(".")[0] for c in cases for s in c.sources})
            raise ConfigError(f"no test of source {wanted!r}{closest(wanted, known)}")
        return found
    names = {c.name for c in cases}
    tagged = {c.name for c in cases if selector.startswith("tag:") and selector[4:] in c.tags}
    try:
        models = set(graph.select([selector]))
    except CompileError as exc:
        if selector in names:  # a test's own name (a model of that name wins)
            return {selector}
        if tagged:
            return tagged
        if not exc.message.startswith("no model named"):
            raise ConfigError(exc.message) from None
        hint = closest(selector.strip("+"), names | set(graph.parents))
        raise ConfigError(
            f"no model or test named {selector.strip('+')!r}{hint}: select a model, source:NAME, "
            "tag:NAME, test_type:TYPE or a test by its name"
        ) from None
    return tagged | {c.name for c in cases if set(c.models) & models}


def _split(selectors: Iterable[str]) -> list[str]:
    return [part for item in selectors for part in item.replace(",", " ").split() if part]

"""``featuresql test --select/--exclude``: which tests a selection picks (pure, no warehouse)."""

from __future__ import annotations

import pytest

from featuresql.errors import ConfigError
from featuresql.project.graph import Graph
from featuresql.testing.cases import Outcome, TestCase
from featuresql.testing.selection import families, select_tests

GRAPH = Graph(
    {"events": (), "windows": ("events",), "ratios": ("windows",), "profile": ()},
    {"windows": ("spend",), "ratios": ("spend",), "profile": ("profile",)},
)


def make(
    name: str,
    kind: str = "not_null",
    models: tuple[str, ...] = (),
    sources: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
) -> TestCase:
    test_type = "unit" if kind == "unit" else "data"
    return TestCase(name, kind, test_type, lambda env: Outcome(0), models, sources, tags=tags)


CASES = [
    make("not_null_windows_user_id", models=("windows",)),
    make("unit_windows", "unit", models=("windows",)),
    make("relationships_ratios_user_id", "relationships", models=("ratios", "profile")),
    make("unit_ratios", "unit", models=("ratios",)),
    make("availability_windows", "availability", models=("windows",)),
    make("leakage_training", "leakage", models=("training",)),
    make("freshness_bank_transactions", "freshness", sources=("bank.transactions",)),
    make("source_unique_bank_users_user_id", "unique", sources=("bank.users",)),
    make("spend_check", "singular", models=("ratios", "windows"), tags=("nightly",)),
    make("online_windows", "online", models=("windows",)),
]


def names(select: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[str]:
    return [case.name for case in select_tests(CASES, GRAPH, select, exclude)]


def test_everything_by_default_in_declaration_order() -> None:
    assert names() == [case.name for case in CASES]


def test_model_selectors_pick_the_tests_attached_to_the_models() -> None:
    assert names(("windows",)) == [
        "not_null_windows_user_id",
        "unit_windows",
        "availability_windows",
        "spend_check",
        "online_windows",
    ]
    assert names(("profile",)) == ["relationships_ratios_user_id"]  # a relationship belongs to both ends
    assert set(names(("windows+",))) == set(names(("windows",))) | {"relationships_ratios_user_id", "unit_ratios"}
    assert names(("tag:profile",)) == ["relationships_ratios_user_id"]


def test_test_type_narrows_and_combines_with_models() -> None:
    assert names(("test_type:unit",)) == ["unit_windows", "unit_ratios"]
    assert names(("windows", "test_type:unit")) == ["unit_windows"]
    assert names(("windows,test_type:unit",)) == ["unit_windows"]
    assert names(("test_type:point_in_time",)) == ["availability_windows", "leakage_training"]
    assert names(("test_type:singular",)) == ["spend_check"]
    assert names(("test_type:freshness",)) == ["freshness_bank_transactions"]
    assert "leakage_training" in names(("test_type:generic",))
    data = names(("test_type:data",))
    assert "unit_windows" not in data and "freshness_bank_transactions" in data and "spend_check" in data


def test_sources_names_and_tags_of_tests() -> None:
    assert names(("source:bank",)) == ["freshness_bank_transactions", "source_unique_bank_users_user_id"]
    assert names(("source:bank.users",)) == ["source_unique_bank_users_user_id"]
    assert names(("unit_ratios",)) == ["unit_ratios"]
    assert names(("tag:nightly",)) == ["spend_check"]


def test_exclude_removes_what_its_selectors_pick() -> None:
    assert "unit_windows" not in names(exclude=("test_type:unit",))
    assert names(("windows",), ("test_type:unit", "online_windows")) == [
        "not_null_windows_user_id",
        "availability_windows",
        "spend_check",
    ]


def test_families() -> None:
    assert families(CASES[5]) == {"data", "generic", "point_in_time"}
    assert families(CASES[1]) == {"unit"}


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("test_type:units", r"unknown test_type 'units' \(did you mean unit\?\)"),
        ("source:bnak", r"no test of source 'bnak' \(did you mean bank\?\)"),
        ("windowz", r"no model or test named 'windowz' \(did you mean windows\?\)"),
        ("unit_ratio", r"no model or test named 'unit_ratio' \(did you mean unit_ratios\?\)"),
    ],
)
def test_unknown_selectors_suggest_the_closest_name(selector: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        names((selector,))

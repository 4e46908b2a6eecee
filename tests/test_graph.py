"""The model DAG and --select/--exclude selection (featuresql.project.graph), as dbt users know it."""

from __future__ import annotations

import pytest

from featuresql.errors import CompileError
from featuresql.project.graph import Graph

# raw_a -> base -> mid -> top, and base -> side; lonely stands alone
#
#   raw_a ─► base ─► mid ─► top
#              └───► side
#   lonely
PARENTS = {
    "raw_a": [],
    "base": ["raw_a"],
    "mid": ["base"],
    "top": ["mid"],
    "side": ["base"],
    "lonely": [],
}
TAGS = {"base": ["core"], "mid": ["core", "daily"], "side": ["daily"], "lonely": ["misc"]}


@pytest.fixture
def graph() -> Graph:
    return Graph(PARENTS, TAGS)


def test_order_puts_every_model_after_its_parents(graph):
    order = graph.order()

    assert sorted(order) == sorted(PARENTS)
    for name, parents in PARENTS.items():
        for parent in parents:
            assert order.index(parent) < order.index(name)


def test_order_is_deterministic():
    shuffled = dict(reversed(list(PARENTS.items())))
    assert Graph(PARENTS).order() == Graph(shuffled).order()


def test_select_everything_by_default(graph):
    assert graph.select() == graph.order()


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["mid"], {"mid"}),
        (["mid+"], {"mid", "top"}),
        (["+mid"], {"raw_a", "base", "mid"}),
        (["+mid+"], {"raw_a", "base", "mid", "top"}),
        (["base+"], {"base", "mid", "top", "side"}),
        (["+top"], {"raw_a", "base", "mid", "top"}),
        (["lonely+"], {"lonely"}),
        (["+lonely"], {"lonely"}),
        (["tag:core"], {"base", "mid"}),
        (["tag:daily"], {"mid", "side"}),
        (["tag:daily+"], {"mid", "top", "side"}),
        (["+tag:misc"], {"lonely"}),
        (["mid", "lonely"], {"mid", "lonely"}),  # repeated --select: a union
        (["mid lonely"], {"mid", "lonely"}),  # space separated
        (["mid,lonely"], {"mid", "lonely"}),  # comma separated
        (["top", "+top"], {"raw_a", "base", "mid", "top"}),  # overlapping selectors
        (["tag:core", "side"], {"base", "mid", "side"}),
    ],
)
def test_select(graph, selectors, expected):
    selected = graph.select(selectors)

    assert set(selected) == expected
    assert selected == [name for name in graph.order() if name in expected], "selection keeps DAG order"


@pytest.mark.parametrize(
    ("selectors", "excluded", "expected"),
    [
        ([], ["lonely"], {"raw_a", "base", "mid", "top", "side"}),
        ([], ["base+"], {"raw_a", "lonely"}),
        (["base+"], ["mid+"], {"base", "side"}),
        (["+top"], ["tag:core"], {"raw_a", "top"}),
        (["tag:daily"], ["side", "mid"], set()),
        ([], ["+mid", "lonely"], {"top", "side"}),
    ],
)
def test_exclude(graph, selectors, excluded, expected):
    assert set(graph.select(selectors, excluded)) == expected


def test_ancestors_and_descendants(graph):
    assert graph.ancestors("top") == {"raw_a", "base", "mid"}
    assert graph.descendants("raw_a") == {"base", "mid", "top", "side"}
    assert graph.ancestors("raw_a") == set()
    assert graph.descendants("top") == set()


def test_diamond_is_selected_once():
    diamond = Graph({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})

    assert diamond.select(["a+"]) in (["a", "b", "c", "d"], ["a", "c", "b", "d"])
    assert diamond.select(["+d"])[0] == "a" and diamond.select(["+d"])[-1] == "d"


def test_repeated_parent_is_one_edge():
    graph = Graph({"a": [], "b": ["a", "a"]})  # a model may ref() the same model twice

    assert graph.parents["b"] == ("a",)
    assert graph.children["a"] == ["b"]
    assert graph.order() == ["a", "b"]


@pytest.mark.parametrize(
    ("selector", "suggestion"),
    [
        ("mdi", "mid"),
        ("+mdi+", "mid"),
        ("lonley", "lonely"),
        ("tag:dialy", "daily"),
        ("side_", "side"),
    ],
)
def test_unknown_selector_suggests_the_closest_name(graph, selector, suggestion):
    with pytest.raises(CompileError) as raised:
        graph.select([selector])

    message = raised.value.one_line()
    assert selector.strip("+").removeprefix("tag:") in message
    assert f"did you mean {suggestion}?" in message


def test_unknown_selector_without_a_close_match(graph):
    with pytest.raises(CompileError) as raised:
        graph.select(["zzzzzz"])

    assert "'zzzzzz'" in raised.value.one_line()
    assert "did you mean" not in raised.value.one_line()


def test_unknown_exclude_is_an_error(graph):
    with pytest.raises(CompileError, match="did you mean lonely"):
        graph.select([], ["lonley"])


def test_cycle_names_its_models():
    graph = Graph({"a": ["c"], "b": ["a"], "c": ["b"], "d": []})

    with pytest.raises(CompileError) as raised:
        graph.order()

    message = raised.value.one_line()
    assert "cycle" in message
    cycle = message.split("cycle: ")[1].split(";")[0].split(" -> ")
    assert set(cycle) == {"a", "b", "c"}
    assert cycle[0] == cycle[-1], "the cycle is written as a closed path"
    assert "d" not in cycle


def test_self_reference_is_a_cycle():
    with pytest.raises(CompileError, match="a -> a"):
        Graph({"a": ["a"]}).order()


def test_cycle_is_reported_by_select():
    with pytest.raises(CompileError, match="cycle"):
        Graph({"a": ["b"], "b": ["a"]}).select(["a"])


def test_graph_of_the_example_project(example_project):
    from featuresql.context import Context

    context = Context(example_project)
    assert context.select(("user_transactions+",)) == ["user_transactions", "advance_training", "user_spend_ratios"]
    assert set(context.select(("+advance_training",))) == {
        "advance_labels",
        "user_transactions",
        "user_balances",
        "user_profile",
        "advance_training",
    }
    assert context.select(("+user_spend_ratios",)) == ["user_transactions", "user_spend_ratios"]
    assert context.select(("tag:merchant",)) == ["merchant_transactions"]
    assert set(context.select((), ("tag:spend", "tag:training"))) == {
        "merchant_transactions",
        "user_balances",
        "user_profile",
    }
    order = context.select()
    assert order.index("user_transactions") < order.index("user_spend_ratios")
    assert order.index("advance_labels") < order.index("advance_training")

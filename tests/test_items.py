"""The item encoding shared by sync and the reader: keys never collide, values round-trip exactly."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from featuresql.serving.items import (
    ItemError,
    entity_key,
    from_attribute,
    parse_entity_key,
    partition_key,
    split_partition_key,
    to_attribute,
)

key_values = st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text(max_size=30))
keys = st.lists(key_values, min_size=1, max_size=3).map(tuple)


@given(keys)
def test_entity_keys_round_trip(values):
    assert parse_entity_key(entity_key(values)) == values
    assert split_partition_key(partition_key("user_transactions", values)) == ("user_transactions", values)


@given(keys, keys)
def test_different_keys_never_share_an_encoding(first, second):
    same_values = len(first) == len(second) and all(
        type(a) is type(b) and a == b for a, b in zip(first, second, strict=True)
    )
    assert (entity_key(first) == entity_key(second)) == same_values


model_names = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)


@given(model_names, keys, model_names, keys)
def test_partition_keys_never_collide_across_models_or_key_types(model_a, first, model_b, second):
    """One DynamoDB table holds every model: (model, typed key values) must map to distinct keys."""
    same = model_a == model_b and entity_key(first) == entity_key(second)
    assert (partition_key(model_a, first) == partition_key(model_b, second)) == same
    assert split_partition_key(partition_key(model_a, first)) == (model_a, first)


def test_the_integer_7_and_the_string_7_are_different_entities():
    assert entity_key((7,)) == "[7]" and entity_key(("7",)) == '["7"]'
    assert entity_key((7, "DE")) == '[7,"DE"]'
    assert entity_key(('a"#|,b',)) != entity_key(("a", "b"))


@pytest.mark.parametrize("value", [True, 1.5, None, Decimal("7")])
def test_keys_are_integers_or_strings(value):
    with pytest.raises(ItemError, match="integers or strings"):
        entity_key((value,))


def test_a_key_over_dynamodb_s_limit_is_refused():
    with pytest.raises(ItemError, match="2048 bytes"):
        partition_key("m", ("x" * 2100,))


doubles = st.floats(allow_nan=False, allow_infinity=False)


@given(doubles)
def test_doubles_round_trip_exactly(value):
    assert from_attribute(to_attribute(value), "float") == value


@given(st.integers(min_value=-(10**37), max_value=10**37))
def test_integers_round_trip_exactly(value):
    assert from_attribute(to_attribute(value), "integer") == value


@given(st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**12), max_value=10**12))
def test_decimals_round_trip_exactly(value):
    assert from_attribute(to_attribute(value), "decimal") == value


def test_non_finite_doubles_and_other_values():
    assert math.isnan(from_attribute(to_attribute(math.nan), "float"))
    assert from_attribute(to_attribute(-math.inf), "float") == -math.inf
    assert from_attribute(to_attribute("NaN"), "string") == "NaN"  # a string feature stays a string
    assert from_attribute(to_attribute(None)) is None and from_attribute(to_attribute(False)) is False
    assert from_attribute({"N": "2"}, "float") == 2.0 and isinstance(from_attribute({"N": "2"}, "float"), float)
    assert from_attribute({"N": "2"}) == 2 and from_attribute({"N": "2.5"}) == 2.5

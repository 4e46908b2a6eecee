"""The online reader (featuresql/serving): requests, answers, Lambda events and `featuresql serve`.

* Request parsing and every client mistake, on a manifest built in code: 400 or
  404 with a message a caller can act on, never an exception (hypothesis fuzz).
* Reading semantics on the local store written by the real `featuresql sync` of
  the example project: requested features only, ``<model>__<feature>`` names,
  feature timestamps, defaults, TTL expiry, values equal to the warehouse rows.
* Type-stable keys and exact decimals on a store written by the real local-store
  writer (hand-made items: int 7 and string "7" side by side, 20-digit decimals).
* The recorded API Gateway v1/v2 and function URL events through ``handler``.
* `featuresql serve` as a subprocess, over real HTTP.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cli_process
import duckdb
import pytest
from awslambdaric.lambda_runtime_marshaller import to_json as lambda_to_json
from cli_process import serving
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lambda_runtime import EVENTS_DIR, load_event
from projects import SMALL_VARS_ARG, copy_example

from featuresql.serving import handler as handler_module
from featuresql.serving.handler import reader_for
from featuresql.serving.items import (
    FEATURE_TS,
    MARKER_KEY,
    MARKER_MODELS,
    RUN,
    SCHEMA_VERSION,
    VERSION,
    partition_key,
    to_attribute,
)
from featuresql.serving.manifest import Manifest, OnlineFeature, OnlineModel
from featuresql.serving.reader import Reader
from featuresql.serving.request import FeatureRequest, RequestError, parse_query, parse_request
from featuresql.serving.tables import SQLiteTable

JUNE_30 = datetime(2026, 6, 30, tzinfo=UTC)
SYNC_NOW = "2026-06-30"
READ_CLOCK = JUNE_30.timestamp() + 12 * 3600  # noon of the day the sync served
USER_TRANSACTION_COUNTS = ("count_1d", "count_7d", "count_30d", "merchant_category_count_distinct_30d")
ABSENT_USER = 10**9


def loads(body: str) -> Any:
    """A response body, decimals kept exact."""
    return json.loads(body, parse_float=Decimal)


def error_of(answer: tuple[int, str]) -> tuple[int, str]:
    status, body = answer
    error = json.loads(body)["error"]
    assert error["status"] == status
    return status, error["message"]


# ---------------------------------------------------------------------------
# A manifest in code, and a table in memory
# ---------------------------------------------------------------------------


def _model(name: str, keys: tuple[tuple[str, str], ...], *features: OnlineFeature) -> OnlineModel:
    return OnlineModel(name, keys, {feature.name: feature for feature in features})


USER = (("user_id", "integer"),)
MANIFEST = Manifest(
    project="shop",
    target="test",
    store={"type": "local", "path": ":memory:"},
    models={
        "user_transactions": _model(
            "user_transactions",
            USER,
            OnlineFeature("count_7d", "integer", 0),
            OnlineFeature("amount_sum_7d", "decimal"),
            OnlineFeature("amount_avg_7d", "float"),
        ),
        "user_spend_ratios": _model("user_spend_ratios", USER, OnlineFeature("spend_ratio", "float")),
        "user_merchant_visits": _model(
            "user_merchant_visits",
            (("user_id", "integer"), ("merchant_id", "integer")),
            OnlineFeature("visits_30d", "integer", 0),
        ),
        "account_flags": _model(
            "account_flags",
            (("account_id", "string"),),
            OnlineFeature("flagged", "boolean"),
            OnlineFeature("plan", "string"),
            OnlineFeature("credit_limit", "decimal"),
            OnlineFeature("score", "float"),
            OnlineFeature("opened_on", "date"),
            OnlineFeature("updated_at", "timestamp"),
        ),
    },
    max_entities=5,
)


def marker(manifest: Manifest | None = None) -> dict[str, Any]:
    """The sync marker of a store holding every model of ``manifest`` (``MANIFEST``) under its schema."""
    held = {name: model.schema for name, model in (manifest or MANIFEST).models.items()}
    return {
        "pk": {"S": MARKER_KEY},
        FEATURE_TS: {"N": "1"},
        VERSION: {"N": "1"},
        MARKER_MODELS: {"S": json.dumps(held)},
    }


class MemoryTable:
    """An online table in a dict (a synced store: its marker is there), recording what it was asked for."""

    def __init__(self, items: dict[str, dict[str, Any]] | None = None):
        self.items = {MARKER_KEY: marker(), **(items or {})}
        self.calls: list[tuple[list[str], list[str]]] = []

    def get_many(self, keys: list[str], attributes: list[str]) -> dict[str, dict[str, Any]]:
        self.calls.append((list(keys), list(attributes)))
        wanted = {"pk", *attributes}
        return {
            key: {name: value for name, value in self.items[key].items() if name in wanted}
            for key in keys
            if key in self.items
        }


def make_item(
    model: str, key: list[Any], ts: datetime, ttl: int | None = None, *, manifest: Manifest | None = None, **values: Any
) -> dict[str, Any]:
    """An item as the sync writes it (items.py's layout), of the schema ``manifest`` serves (``MANIFEST``)."""
    micros = int(ts.timestamp()) * 1_000_000
    item = {"pk": {"S": partition_key(model, key)}, FEATURE_TS: {"N": str(micros)}, VERSION: {"N": "1"}}
    item[RUN] = {"S": "test"}
    item[SCHEMA_VERSION] = {"S": (manifest or MANIFEST).models[model].schema}
    item.update({name: to_attribute(value) for name, value in values.items()})
    if ttl is not None:
        item["_ttl"] = {"N": str(ttl)}
    return item


@pytest.fixture
def memory_reader() -> Reader:
    return Reader(MANIFEST, MemoryTable(), clock=lambda: READ_CLOCK)


# ---------------------------------------------------------------------------
# 1. Request parsing and client mistakes
# ---------------------------------------------------------------------------


def test_columnar_and_list_of_objects_entities_are_the_same_request():
    columns = {"entities": {"user_id": [1, 2, 3]}, "features": ["user_transactions"]}
    objects = {"entities": [{"user_id": 1}, {"user_id": 2}, {"user_id": 3}], "features": ["user_transactions"]}
    assert parse_request(columns, MANIFEST) == parse_request(objects, MANIFEST)
    request = parse_request(columns, MANIFEST)
    assert request.entities == ({"user_id": 1}, {"user_id": 2}, {"user_id": 3})
    composite = {"entities": {"user_id": [1, 1], "merchant_id": [5, 6]}, "features": ["user_merchant_visits"]}
    assert parse_request(composite, MANIFEST).entities == (
        {"user_id": 1, "merchant_id": 5},
        {"user_id": 1, "merchant_id": 6},
    )
    single = {"entities": {"user_id": 7}, "features": ["user_transactions"]}
    assert parse_request(single, MANIFEST).entities == ({"user_id": 7},)


def test_features_as_a_list_or_a_comma_string_model_or_model_feature():
    entities = {"user_id": [1]}
    as_list = parse_request(
        {"entities": entities, "features": ["user_transactions.count_7d", "user_spend_ratios"]}, MANIFEST
    )
    as_text = parse_request(
        {"entities": entities, "features": "user_transactions.count_7d, user_spend_ratios"}, MANIFEST
    )
    assert as_list == as_text
    assert as_list.features == {"user_transactions": ("count_7d",), "user_spend_ratios": ("spend_ratio",)}
    whole = parse_request({"entities": entities, "features": ["user_transactions"]}, MANIFEST)
    assert whole.features == {"user_transactions": ("count_7d", "amount_sum_7d", "amount_avg_7d")}
    # request order, each feature once, a model's remaining features after the named one
    mixed = parse_request(
        {"entities": entities, "features": ["user_transactions.amount_avg_7d", "user_transactions"]}, MANIFEST
    )
    assert mixed.features == {"user_transactions": ("amount_avg_7d", "count_7d", "amount_sum_7d")}


def test_a_get_query_string_parses_keys_by_their_kind():
    request = parse_query({"user_id": ["1,2"], "features": ["user_transactions.count_7d"]}, MANIFEST)
    assert request == FeatureRequest(({"user_id": 1}, {"user_id": 2}), {"user_transactions": ("count_7d",)})
    text = parse_query({"account_id": ["7"], "features": ["account_flags.plan"]}, MANIFEST)
    assert text.entities == ({"account_id": "7"},)  # a string key stays a string
    with pytest.raises(RequestError) as error:
        parse_query({"user_id": ["seven"], "features": ["user_transactions"]}, MANIFEST)
    assert (error.value.status, error.value.message) == (400, "user_id is an integer key: 'seven' is not an integer")
    with pytest.raises(RequestError) as error:
        parse_query({"user_id": ["1"]}, MANIFEST)
    assert error.value.status == 400 and "no features requested" in error.value.message


OBJECT_REQUIRED = 'the request must be a JSON object such as {"entities": {...}, "features": [...]}'
ONE_USER = {"user_id": [1]}
CLIENT_MISTAKES = {
    "array body": ([{"entities": ONE_USER}], 400, OBJECT_REQUIRED),
    "string body": ("user_transactions", 400, OBJECT_REQUIRED),
    "null body": (None, 400, OBJECT_REQUIRED),
    "unknown top-level key": (
        {"entites": ONE_USER, "features": ["user_transactions"]},
        400,
        "unknown key 'entites' (did you mean entities?); a request has 'entities' and 'features'",
    ),
    "unknown top-level key, singular": (
        {"entities": ONE_USER, "feature": ["user_transactions"]},
        400,
        "unknown key 'feature' (did you mean features?); a request has 'entities' and 'features'",
    ),
    "features missing": (
        {"entities": ONE_USER},
        400,
        "no features requested: give 'features' as a list of model or model.feature",
    ),
    "features empty": ({"entities": ONE_USER, "features": []}, 400, "no features requested"),
    "features an empty string": ({"entities": ONE_USER, "features": ""}, 400, "empty feature name"),
    "features with an empty item": (
        {"entities": ONE_USER, "features": ["user_transactions", " "]},
        400,
        "empty feature name",
    ),
    "features not strings": ({"entities": ONE_USER, "features": [1]}, 400, "'features' must be a list of strings"),
    "features an object": ({"entities": ONE_USER, "features": {"a": 1}}, 400, "'features' must be a list"),
    "entities missing": ({"features": ["user_transactions"]}, 400, "no entities given: add 'entities'"),
    "entities an empty object": ({"entities": {}, "features": ["user_transactions"]}, 400, "'entities' is empty"),
    "entities an empty list": ({"entities": [], "features": ["user_transactions"]}, 400, "'entities' is empty"),
    "entities empty columns": (
        {"entities": {"user_id": []}, "features": ["user_transactions"]},
        400,
        "'entities' is empty",
    ),
    "entities a string": (
        {"entities": "1", "features": ["user_transactions"]},
        400,
        "'entities' must be an object of key columns or a list of objects",
    ),
    "entities a list of numbers": (
        {"entities": [1, 2], "features": ["user_transactions"]},
        400,
        "each entity in the 'entities' list must be an object",
    ),
    "mismatched column lengths": (
        {"entities": {"user_id": [1, 2], "merchant_id": [5]}, "features": ["user_merchant_visits"]},
        400,
        "the key columns in 'entities' have different lengths (user_id: 2, merchant_id: 1)",
    ),
    "too many entities": (
        {"entities": {"user_id": [1, 2, 3, 4, 5, 6]}, "features": ["user_transactions"]},
        400,
        "too many entities: 6 (at most 5 per request)",
    ),
    "integer key given a string": (
        {"entities": {"user_id": ["7"]}, "features": ["user_transactions"]},
        400,
        "user_id is an integer key: entity 0 has '7' (a string)",
    ),
    "integer key given a float": (
        {"entities": {"user_id": [1, 7.0]}, "features": ["user_transactions"]},
        400,
        "user_id is an integer key: entity 1 has 7.0 (a number)",
    ),
    "integer key given a boolean": (
        {"entities": [{"user_id": True}], "features": ["user_transactions"]},
        400,
        "user_id is an integer key: entity 0 has True (a boolean)",
    ),
    "integer key given null": (
        {"entities": {"user_id": [None]}, "features": ["user_transactions"]},
        400,
        "user_id is an integer key: entity 0 has None (null)",
    ),
    "string key given a number": (
        {"entities": {"account_id": [7]}, "features": ["account_flags"]},
        400,
        "account_id is a string key: entity 0 has 7 (a number)",
    ),
    "string key given a boolean": (
        {"entities": [{"account_id": False}], "features": ["account_flags"]},
        400,
        "account_id is a string key: entity 0 has False (a boolean)",
    ),
    "a key column missing for a requested model": (
        {"entities": {"user_id": [1]}, "features": ["user_transactions", "user_merchant_visits"]},
        400,
        "entity 0 has no 'merchant_id', the key of user_merchant_visits",
    ),
    "a key column missing in one object": (
        {"entities": [{"user_id": 1}, {"account_id": "a"}], "features": ["user_transactions"]},
        400,
        "entity 1 has no 'user_id', the key of user_transactions",
    ),
    "unknown entity key column": (
        {"entities": {"usr_id": [1]}, "features": ["user_transactions"]},
        400,
        "unknown entity key 'usr_id' (did you mean user_id?); entity keys: account_id, merchant_id, user_id",
    ),
    "a key over DynamoDB's 2048 bytes": (
        {"entities": {"account_id": ["x" * 3000]}, "features": ["account_flags"]},
        400,
        "over DynamoDB's 2048 bytes",
    ),
    "a key that is not Unicode text (lone surrogate)": (
        {"entities": {"account_id": ["\ud800"]}, "features": ["account_flags"]},
        400,
        "account_id of entity 0 is not valid Unicode text",
    ),
    "unknown model": (
        {"entities": ONE_USER, "features": ["user_transaction"]},
        404,
        "unknown online model 'user_transaction' (did you mean user_transactions?); online models: "
        "account_flags, user_merchant_visits, user_spend_ratios, user_transactions",
    ),
    "unknown model, nothing close": (
        {"entities": ONE_USER, "features": ["zzz"]},
        404,
        "unknown online model 'zzz'; online models:",
    ),
    "unknown feature": (
        {"entities": ONE_USER, "features": "user_transactions.count7d"},
        404,
        "model 'user_transactions' has no feature 'count7d' (did you mean count_7d?); "
        "its features: count_7d, amount_sum_7d, amount_avg_7d",
    ),
}


@pytest.mark.parametrize(("payload", "status", "message"), CLIENT_MISTAKES.values(), ids=CLIENT_MISTAKES.keys())
def test_client_mistakes_get_a_4xx_with_a_clear_message(memory_reader, payload, status, message):
    got_status, got_message = error_of(memory_reader.answer(payload))
    assert got_status == status
    assert message in got_message, got_message
    assert memory_reader.table.calls == []  # a bad request reads nothing


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{", "the request body is not valid JSON: Expecting property name"),
        (b"\xff\xfe\x00", "the request body is not valid JSON"),
        ("[" * 100_000, "the request body is not valid JSON"),  # nesting deeper than the parser's recursion
        ('{"entities": {"user_id": [1]}, "features": ["user_transactions"]} x', "not valid JSON: Extra data"),
        ("", OBJECT_REQUIRED),
        ("NaN", OBJECT_REQUIRED),
    ],
    ids=["truncated", "not utf-8", "too deep", "trailing text", "empty", "NaN"],
)
def test_a_body_that_is_not_a_json_object_is_400(memory_reader, body, message):
    status, got = error_of(memory_reader.answer_body(body))
    assert status == 400 and message in got, got


def test_the_entity_limit_is_inclusive(memory_reader):
    status, body = memory_reader.answer({"entities": {"user_id": [1, 2, 3, 4, 5]}, "features": ["user_spend_ratios"]})
    assert status == 200 and len(json.loads(body)["results"]) == 5


# JSON values, with the request's own names mixed in so the fuzz reaches past the first checks, and a
# lone surrogate (JSON can carry one, UTF-8 cannot).
NAMES = st.sampled_from(
    [
        "entities",
        "features",
        "user_id",
        "merchant_id",
        "account_id",
        "user_transactions",
        "user_transactions.count_7d",
        "account_flags",
        "user_merchant_visits",
        "nope",
        "",
        "\ud800",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | NAMES
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=7) | st.dictionaries(NAMES | st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=30,
)
ENTITY_VALUES = st.lists(SCALARS, max_size=8) | SCALARS
NEAR_MISSES = st.fixed_dictionaries(
    {},
    optional={
        "entities": st.dictionaries(NAMES, ENTITY_VALUES, max_size=3)
        | st.lists(st.dictionaries(NAMES, SCALARS, max_size=3), max_size=7)
        | JSON_VALUES,
        "features": st.lists(NAMES, max_size=4) | NAMES | JSON_VALUES,
    },
)


def assert_well_formed(status: int, body: str, allowed: tuple[int, ...] = (200, 400, 404)) -> None:
    assert status in allowed, (status, body)
    parsed = loads(body)
    if status == 200:
        assert set(parsed) == {"results"}
    else:
        assert parsed["error"]["status"] == status and parsed["error"]["message"]
    body.encode("utf-8")  # sendable as it is


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=JSON_VALUES | NEAR_MISSES)
def test_fuzz_any_json_payload_gets_200_400_or_404(payload):
    reader = Reader(MANIFEST, MemoryTable(), clock=lambda: READ_CLOCK)
    status, body = reader.answer(payload)
    assert_well_formed(status, body)
    if status == 200:
        assert len(loads(body)["results"]) == len(parse_request(payload, MANIFEST).entities)
    # the same request as a POST body
    text = json.dumps(payload)
    assert reader.answer_body(text) == (status, body)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64) | st.text(max_size=64))
def test_fuzz_any_body_gets_an_answer(body):
    status, text = Reader(MANIFEST, MemoryTable()).answer_body(body)
    assert_well_formed(status, text)


@settings(max_examples=300, deadline=None)
@given(parameters=st.dictionaries(NAMES | st.text(max_size=5), st.lists(NAMES | st.text(max_size=8), max_size=3)))
def test_fuzz_any_query_string_gets_200_400_or_404(parameters):
    status, body = Reader(MANIFEST, MemoryTable()).answer_query(parameters)
    assert_well_formed(status, body)


HTTP_EVENT_KEYS = st.sampled_from(
    [
        "httpMethod",
        "requestContext",
        "body",
        "isBase64Encoded",
        "rawQueryString",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "version",
        "entities",
        "features",
    ]
)
METHODS = st.sampled_from(["GET", "POST", "PUT"])
HTTP_LIKE_EVENTS = st.dictionaries(
    HTTP_EVENT_KEYS,
    JSON_VALUES | METHODS | st.fixed_dictionaries({"http": st.fixed_dictionaries({"method": METHODS}) | JSON_VALUES}),
    max_size=5,
)


FUZZ_READER = Reader(MANIFEST, MemoryTable(), clock=lambda: READ_CLOCK)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=HTTP_LIKE_EVENTS | JSON_VALUES)
def test_fuzz_any_direct_invocation_or_event_never_raises(event):
    """A direct invocation is whatever JSON a caller sends: a mistake is an error object, not a crash."""
    saved, handler_module._reader = handler_module._reader, FUZZ_READER
    try:
        response = handler_module.handler(event, None)
    finally:
        handler_module._reader = saved
    assert isinstance(response, dict)
    if "statusCode" in response:  # answered as an HTTP event
        assert_well_formed(response["statusCode"], response["body"], allowed=(200, 400, 404, 405))
    else:
        assert set(response) == {"results"} or response["error"]["status"] in (400, 404), response


# ---------------------------------------------------------------------------
# 2. Reading semantics on the store the real sync wrote
# ---------------------------------------------------------------------------


def featuresql(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the CLI in a subprocess in ``project``; its stdout (fails the test on a non-zero exit)."""
    result = cli_process.run(project, *args, timeout=120, variables=None, **(env or {}))
    assert result.exit_code == 0, f"featuresql {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project, run with small data and synced to the local store as of 2026-06-30."""
    project = copy_example(tmp_path_factory.mktemp("reader") / "cash_advance")
    featuresql(project, "--vars", SMALL_VARS_ARG, "run")
    featuresql(project, "sync", "--now", SYNC_NOW)
    return project


@pytest.fixture(scope="module")
def manifest_path(synced: Path) -> Path:
    return synced / "target" / "online" / "dev" / "manifest.json"


@pytest.fixture(scope="module")
def manifest(manifest_path: Path) -> Manifest:
    return Manifest.load(manifest_path)


class RecordingTable:
    """Wraps a table to record the attributes each read asked for."""

    def __init__(self, table: Any):
        self.table = table
        self.attributes: list[list[str]] = []

    def get_many(self, keys: list[str], attributes: list[str]) -> dict[str, dict[str, Any]]:
        self.attributes.append(list(attributes))
        return self.table.get_many(keys, attributes)  # type: ignore[no-any-return]


def reader_at(manifest: Manifest, clock: float = READ_CLOCK) -> Reader:
    reader = reader_for(manifest)
    reader.table = RecordingTable(reader.table)
    reader.clock = lambda: clock
    return reader


@pytest.fixture(scope="module")
def warehouse(synced: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """The two online models' rows at the synced time, by user: what the store must serve."""
    connection = duckdb.connect(str(synced / "target" / "cash_advance.duckdb"), read_only=True)
    try:
        rows = {}
        for model in ("user_transactions", "user_spend_ratios"):
            cursor = connection.execute(f"select * from main.{model} where ts = ?", [JUNE_30.replace(tzinfo=None)])
            names = [column[0] for column in cursor.description]
            rows[model] = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
        return rows
    finally:
        connection.close()


def test_the_manifest_records_kinds_and_defaults(manifest):
    assert set(manifest.models) == {"user_transactions", "user_spend_ratios"}
    transactions = manifest.models["user_transactions"]
    assert transactions.keys == (("user_id", "integer"),)
    defaults = {name: feature.default for name, feature in transactions.features.items()}
    assert {name for name, value in defaults.items() if value == 0} == set(USER_TRANSACTION_COUNTS)
    assert {name for name, value in defaults.items() if value is None} == set(defaults) - set(USER_TRANSACTION_COUNTS)
    assert transactions.features["amount_sum_30d"].kind == "decimal"
    assert transactions.features["amount_avg_30d"].kind == "float"
    assert transactions.features["count_7d"].kind == "integer"


def test_only_the_requested_features_named_model__feature(manifest):
    reader = reader_at(manifest)
    status, body = reader.answer(
        {
            "entities": {"user_id": [42]},
            "features": ["user_transactions.count_7d", "user_spend_ratios.max_to_avg_amount"],
        }
    )
    assert status == 200
    [result] = loads(body)["results"]
    assert result["entity"] == {"user_id": 42}
    assert set(result["features"]) == {"user_transactions__count_7d", "user_spend_ratios__max_to_avg_amount"}
    assert result["feature_timestamps"] == {
        "user_transactions": "2026-06-30T00:00:00Z",
        "user_spend_ratios": "2026-06-30T00:00:00Z",
    }
    # the store is asked for those features only (plus the time, expiry, schema and the sync marker's
    # models and time), not whole items
    wanted = ["_ts", "_exp", "_sv", "_ttl", "count_7d", "max_to_avg_amount", "models", "synced_at"]
    assert reader.table.attributes == [sorted(wanted)]


def test_values_equal_the_warehouse_rows_exactly(manifest, warehouse):
    users = sorted(warehouse["user_transactions"])[::25]
    status, body = reader_at(manifest).answer(
        {"entities": {"user_id": users}, "features": ["user_transactions", "user_spend_ratios"]}
    )
    assert status == 200
    results = loads(body)["results"]
    assert [result["entity"]["user_id"] for result in results] == users
    checked_decimals = 0
    for result in results:
        user = result["entity"]["user_id"]
        for model in ("user_transactions", "user_spend_ratios"):
            row = warehouse[model][user]
            for name, feature in manifest.models[model].features.items():
                served, expected = result["features"][f"{model}__{name}"], row[name]
                if expected is None:
                    assert served is None, (user, name)
                elif feature.kind == "decimal":
                    assert isinstance(expected, Decimal) and served == expected, (user, name)
                    checked_decimals += 1
                elif feature.kind == "float":
                    assert float(served) == expected, (user, name)  # the shortest repr reads back as the double
                else:
                    assert served == expected and type(served) is int, (user, name)
    assert checked_decimals > 20


def test_an_entity_without_an_item_reads_as_the_defaults(manifest):
    status, body = reader_at(manifest).answer(
        {
            "entities": [{"user_id": ABSENT_USER}, {"user_id": 42}],
            "features": ["user_transactions", "user_spend_ratios"],
        }
    )
    assert status == 200
    absent, present = loads(body)["results"]
    assert absent["feature_timestamps"] == {"user_transactions": None, "user_spend_ratios": None}
    for name, value in absent["features"].items():
        feature = name.split("__", 1)[1]
        assert value == (0 if feature in USER_TRANSACTION_COUNTS else None), name
    assert present["features"]["user_transactions__count_30d"] > 0


def test_an_expired_item_reads_as_the_defaults(manifest, synced):
    expires = SQLiteTable(manifest.store["path"]).get_many(["user_transactions#[42]"], ["_ttl"])
    ttl = int(expires["user_transactions#[42]"]["_ttl"]["N"])
    assert ttl == int(JUNE_30.timestamp()) + 30 * 86400  # the widest window (30 days) after the row's time
    request = {"entities": {"user_id": [42]}, "features": ["user_transactions", "user_spend_ratios"]}

    def read_at(clock: float) -> dict[str, Any]:
        status, body = reader_at(manifest, clock).answer(request)
        assert status == 200
        result: dict[str, Any] = loads(body)["results"][0]
        return result

    # the window is empty from the expiry on, inclusive: the last live instant is a microsecond before
    live, expired = read_at(ttl - 1e-6), read_at(ttl)
    assert live["feature_timestamps"]["user_transactions"] == "2026-06-30T00:00:00Z"
    assert live["features"]["user_transactions__count_30d"] > 0
    assert expired["feature_timestamps"]["user_transactions"] is None
    for name, value in expired["features"].items():
        if name.startswith("user_transactions__"):
            assert value == (0 if name.split("__")[1] in USER_TRANSACTION_COUNTS else None), name
    # user_spend_ratios has no TTL: it is served as it was
    assert expired["feature_timestamps"]["user_spend_ratios"] == "2026-06-30T00:00:00Z"
    ratios = {name: value for name, value in live["features"].items() if name.startswith("user_spend_ratios")}
    assert {name: expired["features"][name] for name in ratios} == ratios


def test_duplicate_entities_are_answered_in_request_order(manifest):
    status, body = reader_at(manifest).answer(
        {"entities": {"user_id": [42, 7, 42]}, "features": ["user_transactions.count_30d"]}
    )
    assert status == 200
    first, second, third = loads(body)["results"]
    assert first == third and second["entity"] == {"user_id": 7}


# ---------------------------------------------------------------------------
# Type-stable keys and exact values, on a store written by the local store's writer
# ---------------------------------------------------------------------------

BIG = Decimal("12345678901234567.89")  # 19 significant digits: a double would round it


@pytest.fixture(scope="module")
def handmade_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from featuresql.adapters.local_store import LocalStore, LocalStoreConfig

    path = tmp_path_factory.mktemp("handmade") / "store.sqlite"
    store = LocalStore(LocalStoreConfig(), str(path), path.parent)
    store.ensure_table()
    june = JUNE_30
    items = [
        make_item("user_transactions", [7], june, count_7d=7, amount_sum_7d=BIG, amount_avg_7d=0.1),
        make_item("user_transactions", ["7"], june, count_7d=-1, amount_sum_7d=Decimal("-1"), amount_avg_7d=-1.0),
        make_item(
            "account_flags",
            ["7"],
            june,
            flagged=True,
            plan="pro",
            credit_limit=Decimal("0.10"),
            score=float("nan"),
            opened_on=datetime(2024, 2, 29).date(),
            updated_at=june,
        ),
        make_item("account_flags", [7], june, flagged=False, plan="int key", credit_limit=Decimal(1), score=1.0),
        make_item("account_flags", ['7"]#x'], june, plan="quotes and separators", score=float("-inf")),
        make_item("account_flags", ["ключ"], june, plan="unicode", score=float("inf")),
        marker(),
    ]
    assert store.write_batch(items).written == len(items)
    return path


@pytest.fixture
def handmade_reader(handmade_store: Path) -> Reader:
    return Reader(MANIFEST, SQLiteTable(str(handmade_store)), clock=lambda: READ_CLOCK)


def test_int_and_string_keys_never_collide(handmade_reader):
    status, body = handmade_reader.answer({"entities": {"user_id": [7]}, "features": ["user_transactions.count_7d"]})
    assert status == 200 and loads(body)["results"][0]["features"] == {"user_transactions__count_7d": 7}
    status, body = handmade_reader.answer_query({"user_id": ["7"], "features": ["user_transactions.count_7d"]})
    assert status == 200 and loads(body)["results"][0]["features"] == {"user_transactions__count_7d": 7}
    for answer in (
        handmade_reader.answer({"entities": {"account_id": ["7"]}, "features": ["account_flags.plan"]}),
        handmade_reader.answer_query({"account_id": ["7"], "features": ["account_flags.plan"]}),
    ):
        assert answer[0] == 200
        [result] = loads(answer[1])["results"]
        assert result == {
            "entity": {"account_id": "7"},
            "features": {"account_flags__plan": "pro"},
            "feature_timestamps": {"account_flags": "2026-06-30T00:00:00Z"},
        }
    status, body = handmade_reader.answer(
        {"entities": {"account_id": ['7"]#x', "ключ", "7 "]}, "features": ["account_flags.plan"]}
    )
    plans = [result["features"]["account_flags__plan"] for result in loads(body)["results"]]
    assert plans == ["quotes and separators", "unicode", None]


def test_decimals_are_exact_and_every_kind_reads_back(handmade_reader):
    status, body = handmade_reader.answer(
        {
            "entities": {"user_id": [7]},
            "features": ["user_transactions.amount_sum_7d", "user_transactions.amount_avg_7d"],
        }
    )
    assert status == 200
    assert f'"user_transactions__amount_sum_7d":{BIG}' in body.replace(" ", "")  # the digits, not a double's
    features = loads(body)["results"][0]["features"]
    assert features["user_transactions__amount_sum_7d"] == BIG
    assert json.loads(body)["results"][0]["features"]["user_transactions__amount_avg_7d"] == 0.1
    status, body = handmade_reader.answer(
        {"entities": {"account_id": ["7", "ключ", "7"]}, "features": ["account_flags"]}
    )
    assert status == 200
    flags = [result["features"] for result in loads(body)["results"]]
    assert flags[0] == {
        "account_flags__flagged": True,
        "account_flags__plan": "pro",
        "account_flags__credit_limit": Decimal("0.10"),
        "account_flags__score": "NaN",  # JSON has no NaN: the string, as DynamoDB stores it
        "account_flags__opened_on": "2024-02-29",
        "account_flags__updated_at": "2026-06-30T00:00:00Z",
    }
    assert '"account_flags__credit_limit":0.10' in body.replace(" ", "")
    assert flags[1]["account_flags__score"] == "Infinity" and flags[1]["account_flags__flagged"] is None
    assert flags[2] == flags[0]


def test_a_direct_invocation_keeps_decimals_exact_through_the_lambda_marshaller(handmade_reader, monkeypatch):
    """awslambdaric writes the handler's return value with its own encoder (Decimals as raw JSON numbers)."""
    monkeypatch.setattr(handler_module, "_reader", handmade_reader)
    response = handler_module.handler({"entities": {"user_id": [7]}, "features": ["user_transactions.amount_sum_7d"]})
    text = lambda_to_json(response)
    assert json.loads(text, parse_float=Decimal)["results"][0]["features"]["user_transactions__amount_sum_7d"] == BIG


def test_featuresql_read_prints_decimals_exactly(synced, manifest):
    from featuresql.adapters.local_store import LocalStore, LocalStoreConfig

    store = LocalStore(LocalStoreConfig(), manifest.store["path"], synced)
    item = make_item("user_transactions", [10**6], JUNE_30, manifest=manifest, count_30d=1, amount_sum_30d=BIG)
    store.write_batch([{**item, VERSION: {"N": str(10**9)}}])
    printed = featuresql(synced, "read", "user_id=1000000", "-f", "user_transactions.amount_sum_30d", "--now", SYNC_NOW)
    assert loads(printed)["results"][0]["features"] == {"user_transactions__amount_sum_30d": BIG}


# ---------------------------------------------------------------------------
# 3. The recorded event shapes through the Lambda handler
# ---------------------------------------------------------------------------

EVENT_NAMES = sorted(  # the HTTP events (kinesis and sqs are the push Lambda's: tests/test_push_paths.py)
    path.stem for path in EVENTS_DIR.glob("*.json") if path.stem.startswith(("apigw_", "function_url"))
)
POST_EVENTS = [name for name in EVENT_NAMES if not name.endswith("_get")]
GET_EVENTS = [name for name in EVENT_NAMES if name.endswith("_get")]
RECORDED_REQUEST = {"entities": [{"user_id": 1}], "features": ["user_transactions"]}


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, manifest_path: Path) -> None:
    """The handler as a fresh container sees it: the manifest named by FEATURESQL_MANIFEST, no reader yet."""
    monkeypatch.setenv("FEATURESQL_MANIFEST", str(manifest_path))
    monkeypatch.setattr(handler_module, "_reader", None)


def pin_clock() -> None:
    """The container's reader (built at the first request) judged as at the sync's day."""
    assert handler_module._reader is not None
    handler_module._reader.clock = lambda: READ_CLOCK


def http_answer(response: dict[str, Any]) -> tuple[int, Any]:
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["headers"] == {"content-type": "application/json"} and response["isBase64Encoded"] is False
    return response["statusCode"], loads(response["body"])


def test_the_container_reads_the_manifest_named_by_the_environment_once(lambda_env, manifest):
    handler_module.handler(RECORDED_REQUEST)
    reader = handler_module._reader
    assert reader is not None and reader.manifest == manifest
    handler_module.handler(RECORDED_REQUEST)
    assert handler_module._reader is reader  # one reader (and one client) per container


@pytest.mark.parametrize("name", POST_EVENTS)
def test_recorded_post_events_are_answered(lambda_env, manifest, warehouse, name):
    event = load_event(name)
    handler_module.handler(RECORDED_REQUEST)
    pin_clock()
    status, body = http_answer(handler_module.handler(event, None))
    assert status == 200
    assert body == loads(reader_at(manifest).answer(RECORDED_REQUEST)[1])
    [result] = body["results"]
    assert result["entity"] == {"user_id": 1}
    assert len(result["features"]) == len(manifest.models["user_transactions"].features)
    assert result["features"]["user_transactions__count_30d"] == warehouse["user_transactions"][1]["count_30d"]
    assert result["feature_timestamps"] == {"user_transactions": "2026-06-30T00:00:00Z"}


@pytest.mark.parametrize("name", GET_EVENTS)
def test_recorded_get_events_ask_for_a_model_that_is_not_online(lambda_env, name):
    """The recordings ask for user_balance, which the example does not serve (user_balances is offline)."""
    status, body = http_answer(handler_module.handler(load_event(name), None))
    assert status == 404
    assert body["error"]["message"] == (
        "unknown online model 'user_balance'; online models: advance_request, user_spend_ratios, user_transactions"
    )


def _served_get_event(name: str) -> dict[str, Any]:
    """A recorded GET event asking for two online models (``user_balance`` replaced)."""
    event = copy.deepcopy(load_event(name))
    if "rawQueryString" in event:
        event["rawQueryString"] = event["rawQueryString"].replace("user_balance", "user_spend_ratios")
    for parameters in ("queryStringParameters", "multiValueQueryStringParameters"):
        if event.get(parameters):
            event[parameters] = json.loads(json.dumps(event[parameters]).replace("user_balance", "user_spend_ratios"))
    return event


@pytest.mark.parametrize("name", GET_EVENTS)
def test_get_events_read_the_query_string(lambda_env, manifest, name):
    handler_module.handler(RECORDED_REQUEST)
    pin_clock()
    status, body = http_answer(handler_module.handler(_served_get_event(name), None))
    assert status == 200
    expected = reader_at(manifest).answer(
        {"entities": {"user_id": [1]}, "features": ["user_transactions", "user_spend_ratios"]}
    )
    assert body == loads(expected[1])


def test_a_rest_api_get_without_multi_value_parameters_uses_the_single_ones(lambda_env):
    event = _served_get_event("apigw_v1_get")
    event["multiValueQueryStringParameters"] = None
    event["queryStringParameters"] = {"user_id": "1,2", "features": "user_spend_ratios.max_to_avg_amount"}
    status, body = http_answer(handler_module.handler(event, None))
    assert status == 200
    assert [result["entity"] for result in body["results"]] == [{"user_id": 1}, {"user_id": 2}]
    assert set(body["results"][0]["features"]) == {"user_spend_ratios__max_to_avg_amount"}


@pytest.mark.parametrize("name", ["apigw_v1", "apigw_v2", "function_url"])
def test_base64_bodies_answer_as_the_plain_ones(lambda_env, name):
    plain = handler_module.handler(load_event(name), None)
    encoded = handler_module.handler(load_event(f"{name}_base64"), None)
    assert encoded == plain and plain["statusCode"] == 200


@pytest.mark.parametrize(
    ("body", "base64_encoded", "status", "message"),
    [
        ("{", False, 400, "the request body is not valid JSON"),
        (
            base64.b64encode(b'{"entities": {"user_id": ["1"]}, "features": "user_transactions"}').decode(),
            True,
            400,
            "user_id is an integer key: entity 0 has '1' (a string)",
        ),
        ("%%%not base64", True, 400, "the request body is not valid"),
        ("/w==", True, 400, "the request body is not valid"),  # base64 of a byte that is not UTF-8
        (
            json.dumps({"entities": {"user_id": [1]}, "features": ["user_balance"]}),
            False,
            404,
            "unknown online model 'user_balance'",
        ),
        (None, False, 400, OBJECT_REQUIRED),
    ],
)
def test_bad_http_requests_get_their_status(lambda_env, body, base64_encoded, status, message):
    for name in ("apigw_v1", "apigw_v2", "function_url"):
        event = copy.deepcopy(load_event(name))
        event["body"], event["isBase64Encoded"] = body, base64_encoded
        got_status, got = http_answer(handler_module.handler(event, None))
        assert (got_status, got["error"]["status"]) == (status, status)
        assert got["error"]["message"].startswith(message), got


@pytest.mark.parametrize("name", ["apigw_v1", "apigw_v2"])
def test_other_methods_get_405(lambda_env, name):
    event = copy.deepcopy(load_event(name))
    if "httpMethod" in event:
        event["httpMethod"] = "DELETE"
    else:
        event["requestContext"]["http"]["method"] = "DELETE"
    status, body = http_answer(handler_module.handler(event, None))
    assert status == 405 and "DELETE" in body["error"]["message"]


def test_a_direct_invocation_gets_the_response_object(lambda_env, manifest):
    handler_module.handler(RECORDED_REQUEST)
    pin_clock()
    response = handler_module.handler(RECORDED_REQUEST, None)
    assert response == loads(reader_at(manifest).answer(RECORDED_REQUEST)[1])
    assert handler_module.handler({"entities": {"user_id": [1]}, "features": ["user_balance"]}) == {
        "error": {
            "status": 404,
            "message": (
                "unknown online model 'user_balance'; online models: advance_request, user_spend_ratios, "
                "user_transactions"
            ),
        }
    }
    assert handler_module.handler([1, 2])["error"]["status"] == 400
    assert handler_module.handler({"httpMethod": "POST", "body": 5})["statusCode"] == 400
    assert handler_module.handler({"requestContext": "http"})["error"]["status"] == 400


# ---------------------------------------------------------------------------
# 5. `featuresql serve` over HTTP
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(synced: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """``featuresql serve --port 0`` on the synced project: (host, port)."""
    with serving(synced, tmp_path_factory.mktemp("serve") / "stderr.log") as (address, line):
        assert line.startswith("Serving user_transactions, user_spend_ratios from the local store")
        yield address


def request(
    address: tuple[str, int], method: str, path: str, body: bytes | str | None = None, **headers: str
) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), loads(response.read())
    finally:
        connection.close()


def test_serve_answers_post_features_as_the_reader_does(served, manifest):
    payload = {"entities": {"user_id": [1, 42, ABSENT_USER]}, "features": ["user_transactions", "user_spend_ratios"]}
    status, headers, body = request(
        served, "POST", "/features", json.dumps(payload), **{"Content-Type": "application/json"}
    )
    assert status == 200 and headers["Content-Type"] == "application/json"
    # the server's clock is the real one: compare with a reader on the same clock
    assert body == loads(reader_for(manifest).answer(payload)[1])
    assert [result["entity"]["user_id"] for result in body["results"]] == [1, 42, ABSENT_USER]


def test_serve_answers_get_features_from_the_query_string(served, manifest):
    status, _, body = request(served, "GET", "/features?user_id=42&features=user_transactions")
    assert status == 200
    assert body == loads(
        reader_for(manifest).answer({"entities": {"user_id": [42]}, "features": ["user_transactions"]})[1]
    )
    status, _, body = request(
        served, "GET", f"/features?user_id=1,2&features={quote('user_spend_ratios.max_to_avg_amount')}"
    )
    assert status == 200 and [result["entity"] for result in body["results"]] == [{"user_id": 1}, {"user_id": 2}]


def test_serve_health_unknown_paths_and_bad_requests(served):
    assert request(served, "GET", "/health")[::2] == (200, {"status": "ok"})
    for method in ("GET", "POST"):
        status, _, body = request(served, method, "/nope", "{}" if method == "POST" else None)
        assert status == 404 and body["error"]["status"] == 404 and "/features" in body["error"]["message"]
    status, _, body = request(served, "POST", "/features", "{not json")
    assert status == 400 and body["error"]["message"].startswith("the request body is not valid JSON")
    status, _, body = request(served, "GET", "/features?user_id=abc&features=user_transactions")
    assert (status, body["error"]["message"]) == (400, "user_id is an integer key: 'abc' is not an integer")
    status, _, body = request(served, "GET", "/features?user_id=1&features=user_balance")
    assert status == 404 and body["error"]["message"].startswith("unknown online model 'user_balance'")


def test_serve_keeps_a_connection_usable_after_an_error(served):
    """HTTP/1.1 keep-alive: an answer that ignores the request body must not leave it to be read as a request."""
    connection = http.client.HTTPConnection(*served, timeout=10)
    try:
        connection.request("POST", "/nope", body=json.dumps(RECORDED_REQUEST))
        first = connection.getresponse()
        assert first.status == 404
        first.read()
        connection.request("POST", "/features", body=json.dumps(RECORDED_REQUEST))
        second = connection.getresponse()
        assert second.status == 200, second.read()
        assert loads(second.read())["results"][0]["entity"] == {"user_id": 1}
    finally:
        connection.close()


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_serve_answers_a_bad_content_length_with_400(served, length):
    with socket.create_connection(served, timeout=10) as sock:
        sock.sendall(f"POST /features HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}".encode())
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), response
    assert json.loads(body)["error"]["status"] == 400


def test_serve_answers_many_concurrent_requests(served, manifest):
    from concurrent.futures import ThreadPoolExecutor

    payloads = [{"entities": {"user_id": [user]}, "features": ["user_spend_ratios"]} for user in range(1, 41)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: request(served, "POST", "/features", json.dumps(p)), payloads))
    reader = reader_for(manifest)
    assert [(status, body) for status, _, body in answers] == [(200, loads(reader.answer(p)[1])) for p in payloads]


def test_a_store_without_its_marker_or_the_model_answers_503_and_another_schema_409() -> None:
    request = {"entities": {"user_id": [7]}, "features": ["user_transactions.count_7d"]}
    item = make_item("user_transactions", [7], JUNE_30, count_7d=7)
    table = MemoryTable({item["pk"]["S"]: item})
    del table.items[MARKER_KEY]  # wiped, or never synced
    status, message = error_of(Reader(MANIFEST, table, clock=lambda: READ_CLOCK).answer(request))
    assert status == 503 and "no sync marker" in message
    table.items[MARKER_KEY] = {**marker(), MARKER_MODELS: {"S": json.dumps({"user_spend_ratios": "x"})}}
    status, message = error_of(Reader(MANIFEST, table, clock=lambda: READ_CLOCK).answer(request))
    assert status == 503 and "does not hold user_transactions yet" in message
    table.items[MARKER_KEY] = {**marker(), MARKER_MODELS: {"S": json.dumps({"user_transactions": "other"})}}
    status, message = error_of(Reader(MANIFEST, table, clock=lambda: READ_CLOCK).answer(request))
    assert status == 409 and "package-lambda" in message
    table.items[MARKER_KEY] = marker()
    assert Reader(MANIFEST, table, clock=lambda: READ_CLOCK).answer(request)[0] == 200


def test_a_strict_read_before_the_last_sync_is_refused() -> None:
    """``featuresql read --now`` earlier than the sync: the store holds the present, even for a deleted item."""
    table = MemoryTable()
    table.items[MARKER_KEY] = {**marker(), "synced_at": {"N": str(int(READ_CLOCK * 1_000_000) + 1)}}
    reader = Reader(MANIFEST, table, clock=lambda: READ_CLOCK, strict_time=True)
    status, message = error_of(reader.answer({"entities": {"user_id": [7]}, "features": ["user_transactions"]}))
    assert status == 409 and "not the past" in message
    reader.strict_time = False  # a service's clock: answered
    assert reader.answer({"entities": {"user_id": [7]}, "features": ["user_transactions"]})[0] == 200

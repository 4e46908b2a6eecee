"""``featuresql docs generate``: the catalog of the example project, with and without a built warehouse.

The browser side (the page itself in headless Chromium) is tests/test_docs_browser.py.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CliResult
from projects import DATABASE, SMALL_VARS_ARG, copy_example

from featuresql.cli.main import cli as featuresql_cli
from featuresql.context import Context
from featuresql.docs.docs_blocks import parse_doc_blocks
from featuresql.docs.site import embedded_json, render_page
from featuresql.errors import ConfigError

NOW = "2026-06-30"  # the demo data ends that day

DOCS_MD = """\
# Docs blocks of the example (text outside blocks is ignored)

{% docs user_spend_ratios %}
Ratios of the **user spend windows**: chained from `user_transactions`.

- spend share of the day in the month
- transactions per day
{% enddocs %}

{% docs spend_share %}
Share of the last 30 days' spend made in the last day.
{% enddocs %}

{% docs __overview__ %}
The cash-advance **feature catalog**.
{% enddocs %}
"""

# The example, plus docs blocks used from YAML and a description set in config().
EDITS = [
    ("features/docs.md", None, DOCS_MD),
    (
        "features/models.yml",
        "    description: Ratios of the user spend windows (feature chaining).",
        "    description: '{{ doc(\"user_spend_ratios\") }}'",
    ),
    (
        "features/models.yml",
        "      - name: spend_share_1d_of_30d\n",
        "      - name: spend_share_1d_of_30d\n        description: \"{{ doc('spend_share') }}\"\n",
    ),
    (
        "features/user_profile.sql",
        "tags=['profile']",
        "tags=['profile'], description='Profile of each customer, from config()'",
    ),
]


def invoke(project: Path, *args: str) -> CliResult:
    result = CliRunner().invoke(featuresql_cli, ["--project-dir", str(project), "--vars", SMALL_VARS_ARG, *args])
    return CliResult(result.exit_code, result.stdout, result.stderr, result.exception)


def read_catalog(project: Path) -> dict[str, Any]:
    return json.loads((project / "target" / "docs" / "catalog.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example with docs blocks, run, tested and synced on 2026-06-30, then documented."""
    project = copy_example(tmp_path_factory.mktemp("docs") / "project", EDITS)
    for command in (["run", "--now", NOW], ["test", "--now", NOW], ["sync", "--now", NOW], ["docs", "generate"]):
        result = invoke(project, *command)
        assert result.exit_code == 0, (command, result.stdout, result.stderr, result.exception)
    return project


@pytest.fixture(scope="module")
def catalog(built: Path) -> dict[str, Any]:
    return read_catalog(built)


def column(catalog: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    entry = catalog["models"].get(model) or catalog["on_demand"][model]
    return next(c for c in entry["columns"] if c["name"] == name)


def test_every_model_and_feature_is_in_the_catalog(built: Path, catalog: dict[str, Any]) -> None:
    with Context(built, offline=True) as context:
        compiled = context.compiled
        dialect = context.project.config.dialect
    assert list(catalog["models"]) == list(compiled.models)
    for name, model in compiled.models.items():
        entry = catalog["models"][name]
        assert entry["kind"] == model.kind
        for feature in model.features:
            shown = column(catalog, name, feature.name)
            assert (shown["function"], shown["window"]) == (feature.function, feature.window_label)
            assert shown["role"] == "feature"
            assert shown["input"] == (feature.input.sql(dialect) if feature.input is not None else "*")
        assert all(c["type"] for c in entry["columns"]), f"{name}: types come from the built table"
    amount = column(catalog, "user_transactions", "amount_sum_7d")
    shown = (amount["function"], amount["input"], amount["window"], amount["type"])
    assert shown == ("sum", "amount", "7d", "DECIMAL(38,2)")
    declined = column(catalog, "merchant_transactions", "declined_count_7d")
    assert declined["input"] == "CASE WHEN status = 'declined' THEN 1 ELSE 0 END"
    ratio = column(catalog, "user_spend_ratios", "spend_share_1d_of_30d")
    assert ratio["expression"] == "amount_sum_1d / NULLIF(amount_sum_30d, 0)" and ratio["function"] is None
    training = [c["name"] for c in catalog["models"]["advance_training"]["columns"]]  # select *: from the table
    assert "user_transactions__count_7d" in training and "repaid_14d" in training
    transactions = catalog["models"]["user_transactions"]
    assert (transactions["owner"], transactions["tags"], transactions["entity"], transactions["grain"]) == (
        "risk-analytics",
        ["spend"],
        "user",
        "1d",
    )
    assert transactions["keys"] == [{"name": "user_id", "type": "bigint"}]
    assert transactions["windows"] == ["1d", "7d", "30d"]
    assert catalog["models"]["user_balances"]["ttl"] == "30d"
    assert set(catalog["sources"]) == {"bank.users", "bank.transactions", "bank.balance_events"}
    category = next(c for c in catalog["sources"]["bank.transactions"]["columns"] if c["name"] == "merchant_category")
    assert category == {"name": "merchant_category", "type": "varchar", "description": "MCC group; NULL when unknown"}
    assert catalog["sources"]["bank.transactions"]["freshness"]["error_after"] == "3d"


def test_descriptions_come_from_yaml_config_and_docs_blocks(catalog: dict[str, Any]) -> None:
    models = catalog["models"]
    assert models["user_transactions"]["description"].startswith("Card spend per user")  # YAML
    assert models["user_profile"]["description"] == "Profile of each customer, from config()"  # config() wins
    assert models["user_spend_ratios"]["description"] == (
        "Ratios of the **user spend windows**: chained from `user_transactions`.\n\n"
        "- spend share of the day in the month\n- transactions per day"
    )  # a {% docs %} block
    ratio = column(catalog, "user_spend_ratios", "spend_share_1d_of_30d")
    assert ratio["description"] == "Share of the last 30 days' spend made in the last day."
    assert column(catalog, "user_transactions", "user_id")["description"] == "The customer."
    assert catalog["overview"] == "The cash-advance **feature catalog**."
    assert catalog["entities"]["user"] == {"keys": {"user_id": "bigint"}, "description": "A customer of the app."}


def test_results_of_partial_test_runs_merge_and_belong_to_their_target(tmp_path: Path) -> None:
    from featuresql.run.artifacts import write_test_results
    from featuresql.run.results import TestResult, TestRun

    def run_of(*results: tuple[str, str]) -> TestRun:
        return TestRun([TestResult(name, "not_null", "data", status, 0.1) for name, status in results])  # type: ignore[arg-type]

    write_test_results(tmp_path, run_of(("a", "pass"), ("b", "fail")), "dev", {})
    write_test_results(tmp_path, run_of(("b", "pass"), ("c", "skipped")), "dev", {})  # a selection: only b ran
    merged = json.loads((tmp_path / "test_results.json").read_text())
    assert {r["test"]: r["status"] for r in merged["results"]} == {"a": "pass", "b": "pass"}
    assert merged["status"] == "success" and merged["target"] == "dev"
    assert json.loads((tmp_path / "run_results.json").read_text())["counts"]["skipped"] == 1
    write_test_results(tmp_path, run_of(("a", "fail")), "prod", {})  # another target starts over
    other = json.loads((tmp_path / "test_results.json").read_text())
    assert (other["target"], [r["test"] for r in other["results"]], other["status"]) == ("prod", ["a"], "error")


def test_tests_are_attached_with_their_last_results(built: Path, catalog: dict[str, Any]) -> None:
    results = json.loads((built / "target" / "test_results.json").read_text())
    tests = {t["name"]: t for t in catalog["models"]["user_transactions"]["tests"]}
    not_null = tests["not_null_user_transactions_user_id"]
    assert (not_null["kind"], not_null["column"], not_null["last"]["status"]) == ("not_null", "user_id", "pass")
    assert tests["user_transactions_windows_nest"]["column"] is None  # a model-level test
    assert tests["freshness_user_transactions"]["last"]["status"] == "pass"
    assert tests["availability_user_transactions"]["kind"] == "availability"
    assert any(t["kind"] == "unit" and t["last"]["status"] == "pass" for t in tests.values())
    assert {t["last"]["at"] for t in tests.values()} == {results["generated_at"]}
    shown = {t["name"] for m in catalog["models"].values() for t in m["tests"]}
    shown |= {t["name"] for s in catalog["sources"].values() for t in s["tests"]}
    assert shown == {r["test"] for r in results["results"]}, "every test of the last run is on the site"
    source_tests = {t["name"]: t for t in catalog["sources"]["bank.transactions"]["tests"]}
    assert source_tests["source_accepted_values_bank_transactions_status"]["column"] == "status"
    assert catalog["metadata"]["tests"]["counts"]["pass"] == len(results["results"])


def test_last_run_history_and_freshness(catalog: dict[str, Any]) -> None:
    for name, model in catalog["models"].items():
        run = model["last_run"]
        assert run is not None and run["status"] == "success", name
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", run["finished_at"]), run
        assert model["runs"][0] == run and model["built"]
    transactions = catalog["models"]["user_transactions"]
    assert transactions["last_run"]["rows"] > 0 and transactions["last_run"]["interval"][1].startswith("2026-07-01")
    freshness = transactions["freshness"]
    assert freshness["computed_through"] == "2026-06-30T00:00:00Z"  # the newest boundary computed
    assert freshness["newest"].startswith("2026-06-29T")  # the demo data's last event is before it
    assert transactions["freshness"]["limits"] == {
        "warn_after": "2d",
        "error_after": "4d",
        "loaded_at_field": None,
        "filter": None,
    }
    profile = catalog["models"]["user_profile"]["freshness"]
    assert profile["measured_by"] == "max(ts)" and profile["newest"].startswith("2026-")
    assert profile["table_rows"] == 500
    assert catalog["metadata"]["warehouse"] == {"read": True, "note": ""}


# Transactions loaded before the first run (the example then generates only what is missing).
TRANSACTIONS = """
create schema raw;
create table raw.transactions (
    transaction_id bigint, user_id bigint, merchant_id bigint, merchant_category varchar,
    amount decimal(12, 2), status varchar, ts timestamp
);
insert into raw.transactions values
    (1, 1, 1, 'grocery', 12.50, 'settled', '2026-06-28 09:15:00'),
    (2, 2, 2, 'fuel', 40.00, 'settled', '2026-06-30 17:45:12'),
    (3, 1, 2, 'dining', 8.00, 'declined', '2026-06-30 22:05:00');
"""


def test_newest_data_is_the_newest_event_seen_not_the_computed_boundary(tmp_path: Path) -> None:
    """Data ending 2026-06-30, computed through 2026-08-15: newest data is the last event each model includes."""
    import duckdb

    project = copy_example(tmp_path / "project")
    (project / DATABASE).parent.mkdir()
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute(TRANSACTIONS)
    assert invoke(project, "run", "--now", "2026-08-15").exit_code == 0
    late = "insert into raw.transactions values (4, 2, 1, 'fuel', 5.00, 'settled', '2026-08-15 06:30:00')"
    with duckdb.connect(str(project / DATABASE)) as connection:  # arrived after the run: in no value yet
        connection.execute(late)
    assert invoke(project, "docs", "generate").exit_code == 0
    models = read_catalog(project)["models"]
    spend, merchants = models["user_transactions"]["freshness"], models["merchant_transactions"]["freshness"]
    assert spend["newest"] == "2026-06-30T17:45:12Z"  # the last settled transaction: the model drops declined ones
    assert merchants["newest"] == "2026-06-30T22:05:00Z"  # this model counts the declined one too
    assert spend["computed_through"] == merchants["computed_through"] == "2026-08-15T00:00:00Z"
    assert spend["measured_by"] == "max(ts) of its input before the computed boundary"
    assert models["user_profile"]["freshness"]["computed_through"] is None  # a snapshot model: no boundaries


def test_a_second_run_is_the_newest_in_the_history(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "project")
    for command in (["run", "--now", "2026-06-29"], ["run", "--now", NOW], ["docs", "generate"]):
        assert invoke(project, *command).exit_code == 0
    runs = read_catalog(project)["models"]["user_transactions"]["runs"]
    assert len(runs) == 2 and runs[0]["interval"][1].startswith("2026-07-01") and runs[0]["rows"] > 0
    assert runs[0]["finished_at"] >= runs[1]["finished_at"]


def test_online_models_say_how_to_read_them(built: Path, catalog: dict[str, Any]) -> None:
    from featuresql.online.stores import read_manifest
    from featuresql.serving.request import parse_request

    read = catalog["models"]["user_transactions"]["online_read"]
    assert read["request"] == {"entities": [{"user_id": 42}], "features": ["user_transactions"]}
    assert read["read_command"] == "featuresql read user_id=42 -f user_transactions"
    assert {"name": "user_transactions__count_7d", "missing_value": 0} in read["response_features"]
    assert catalog["models"]["user_profile"]["online_read"] is None
    with Context(built, offline=True) as context:
        request = parse_request(read["request"], read_manifest(context))  # the reader accepts it as is
    assert request.features == {
        "user_transactions": tuple(catalog["models"]["user_transactions"]["columns"][i]["name"] for i in range(2, 14))
    }
    command = shlex.split(read["read_command"])[1:]
    answer = invoke(built, *command, "--now", NOW)
    assert answer.exit_code == 0, answer.stderr
    assert json.loads(answer.stdout)["results"][0]["entity"] == {"user_id": 42}


def reader_answers(project: Path, read: dict[str, Any]) -> list[dict[str, Any]]:
    """What the reader answers to the example's JSON body and to its GET URL, sent verbatim (they must agree)."""
    from urllib.parse import parse_qs, urlsplit

    from featuresql.online.stores import read_manifest
    from featuresql.serving.handler import reader_for

    with Context(project, offline=True) as context:
        reader = reader_for(read_manifest(context))
    moment = datetime.fromisoformat(NOW).replace(tzinfo=UTC).timestamp()
    reader.clock = lambda: moment
    answers = [reader.answer_body(read["request_body"]), reader.answer_query(parse_qs(urlsplit(read["get_url"]).query))]
    assert [status for status, _ in answers] == [200, 200], answers
    results = [json.loads(text)["results"] for _, text in answers]
    assert results[0] == results[1]
    return results[0]  # type: ignore[no-any-return]


ADVANCE_RISK_OUTPUTS = [
    "user_transactions__count_7d",
    "user_transactions__amount_sum_30d",
    "avg_spend_30d",  # user_transactions.amount_avg_30d as avg_spend_30d
    "user_spend_ratios__spend_share_1d_of_30d",  # user_spend_ratios: all its features
    "user_spend_ratios__transactions_per_day_7d",
    "user_spend_ratios__max_to_avg_amount",
    "advance_request__amount_vs_avg_spend_30d",  # advance_request: on demand, all its features
    "advance_request__above_max_spend_7d",
]


def test_a_feature_service_is_documented_with_its_features(catalog: dict[str, Any]) -> None:
    service = catalog["services"]["advance_risk"]
    assert (service["version"], service["pinned"], service["owner"], service["tags"]) == (
        1,
        "advance_risk@1",
        "risk-team",
        ["lending"],
    )
    assert (service["path"], service["line"]) == ("features/services.yml", 3)
    assert service["description"].startswith("What the cash-advance approval model reads")
    assert service["models"] == ["user_transactions", "user_spend_ratios", "advance_request"]
    assert service["offline_models"] == []
    assert service["keys"] == [{"name": "user_id", "type": "bigint"}]  # advance_request's: user_transactions' keys
    assert service["request_columns"] == [{"name": "advance_amount", "type": "DECIMAL(12, 2)"}]
    features = {f["output"]: f for f in service["features"]}
    assert list(features) == ADVANCE_RISK_OUTPUTS
    alias = features["avg_spend_30d"]
    assert (alias["model"], alias["feature"], alias["type"]) == ("user_transactions", "amount_avg_30d", "DOUBLE")
    assert features["user_transactions__amount_sum_30d"] == {
        "output": "user_transactions__amount_sum_30d",
        "model": "user_transactions",
        "feature": "amount_sum_30d",
        "type": "DECIMAL(38,2)",
        "description": "Settled spend over the last 30 days.",  # as the model's entry says
        "source_columns": ["bank.transactions.amount"],
        "missing_value": None,
        "on_demand": False,
    }
    assert features["user_transactions__count_7d"]["missing_value"] == 0  # an empty window counts 0
    ratio = features["advance_request__amount_vs_avg_spend_30d"]
    assert (ratio["type"], ratio["on_demand"], ratio["source_columns"]) == (
        "DOUBLE",
        True,
        ["bank.transactions.amount"],
    )
    share = features["user_spend_ratios__spend_share_1d_of_30d"]
    assert share["description"] == "Share of the last 30 days' spend made in the last day."  # a docs block


def test_a_feature_service_says_how_to_call_it(built: Path, catalog: dict[str, Any], tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from featuresql.online.stores import read_manifest
    from featuresql.serving.request import parse_request

    service = catalog["services"]["advance_risk"]
    extract, read = service["extract"], service["online_read"]
    assert extract["extract_command"] == (
        "featuresql extract --spine labels.parquet --service advance_risk --out training.parquet"
    )
    assert extract["python"].endswith('featuresql.extract("labels.parquet", service="advance_risk")')
    assert extract["request_columns"] == [{"name": "advance_amount", "type": "DECIMAL(12, 2)"}]  # the spine carries it
    assert read["request"] == {"service": "advance_risk", "entities": [{"user_id": 42, "advance_amount": 150.0}]}
    assert read["read_command"] == "featuresql read user_id=42 advance_amount=150.00 --service advance_risk"
    body = (
        '{"service": "advance_risk", "entities": [{"user_id": 42, "advance_amount": 150.00}]}'  # the decimal's digits
    )
    assert read["request_body"] == body and f"-d '{body}'" in read["curl_post"]
    assert read["get_url"].endswith("/features?user_id=42&advance_amount=150.00&service=advance_risk")
    assert read["package_command"] == "featuresql package-lambda --service advance_risk"
    with Context(built, offline=True) as context:
        request = parse_request(read["request"], read_manifest(context))  # the reader accepts it as is
    assert [str(values["advance_amount"]) for values in request.requests] == ["150.00"]
    answer = invoke(built, *shlex.split(read["read_command"])[1:], "--now", NOW)
    assert answer.exit_code == 0, answer.stderr
    assert json.loads(answer.stdout)["results"] == reader_answers(built, read)
    assert list(json.loads(answer.stdout)["results"][0]["features"]) == ADVANCE_RISK_OUTPUTS
    # the training set of the extract command, on a spine of our own: the same names as online
    spine, out = tmp_path / extract["spine"], tmp_path / "training.parquet"
    rows = {"user_id": [1, 2], "ts": [datetime(2026, 6, 20), datetime(2026, 6, 25)], "advance_amount": [150.0, 20.0]}
    pq.write_table(pa.table(rows), spine)
    paths = {"labels.parquet": str(spine), "training.parquet": str(out)}
    command = [paths.get(arg, arg) for arg in shlex.split(extract["extract_command"])[1:]]
    result = invoke(built, *command)
    assert result.exit_code == 0, result.stderr
    assert pq.read_table(out).column_names == ["user_id", "ts", "advance_amount", *ADVANCE_RISK_OUTPUTS]


def test_an_on_demand_model_is_documented_with_its_request_and_expressions(
    built: Path, catalog: dict[str, Any]
) -> None:
    with Context(built, offline=True) as context:
        compiled = context.compiled.on_demand["advance_request"]
        dialect = context.project.config.dialect
    assert "advance_request" not in catalog["models"]  # no table: not among the models that have one
    entry = catalog["on_demand"]["advance_request"]
    assert (entry["kind"], entry["path"], entry["tags"], entry["owner"]) == (
        "on_demand",
        "features/advance_request.sql",
        ["lending"],
        None,
    )
    assert entry["description"].startswith("The advance being requested")
    assert entry["request"] == [{"name": "advance_amount", "type": "DECIMAL(12, 2)"}]
    assert entry["keys"] == [{"name": "user_id", "type": "bigint"}] and entry["entity"] == "user"
    assert entry["depends_on"] == ["user_transactions"] and entry["services"] == ["advance_risk"]
    assert [(i["model"], i["feature"]) for i in entry["inputs"]] == list(compiled.inputs)
    assert [c["name"] for c in entry["columns"]] == ["amount_vs_avg_spend_30d", "above_max_spend_7d"]
    for feature in compiled.features:  # as the project's dialect writes it
        assert column(catalog, "advance_request", feature.name)["expression"] == feature.expression.sql(dialect)
    ratio = column(catalog, "advance_request", "amount_vs_avg_spend_30d")
    assert ratio["expression"] == "request.advance_amount / NULLIF(user_transactions.amount_avg_30d, 0)"
    assert ratio["reads"] == [{"model": "user_transactions", "feature": "amount_avg_30d"}]
    assert (ratio["request_columns"], ratio["role"], ratio["type"]) == (["advance_amount"], "feature", "DOUBLE")
    assert column(catalog, "advance_request", "above_max_spend_7d")["type"] == "BOOLEAN"  # as the reader computes it
    assert (
        entry["sql"]["rendered"].startswith("-- On-demand features")
        and "from main.user_transactions" in (entry["sql"]["rendered"])
    )
    assert "{{ ref('user_transactions') }}" in entry["sql"]["source"]
    assert "the spine's columns are the request (it must carry advance_amount)" in entry["computed"]["offline"]
    assert entry["computed"]["online"].startswith("In the reader, per request: from the request's advance_amount")
    assert "advance_request" in catalog["models"]["user_transactions"]["used_by"]


def test_on_demand_features_have_lineage_to_the_features_and_request_they_read(catalog: dict[str, Any]) -> None:
    edges = catalog["lineage"]["edges"]
    assert edges["model:advance_request.amount_vs_avg_spend_30d"] == [
        "model:user_transactions.amount_avg_30d",
        "request:advance_request.advance_amount",
    ]
    assert edges["request:advance_request.advance_amount"] == []  # the request is where it starts
    ratio = column(catalog, "advance_request", "amount_vs_avg_spend_30d")
    assert ratio["upstream"] == edges["model:advance_request.amount_vs_avg_spend_30d"]
    assert ratio["source_columns"] == ["bank.transactions.amount"]  # through user_transactions


def test_an_on_demand_model_says_how_to_read_it(built: Path, catalog: dict[str, Any]) -> None:
    entry = catalog["on_demand"]["advance_request"]
    read = entry["online_read"]
    assert entry["online"] and read["request"] == {
        "entities": [{"user_id": 42, "advance_amount": 150.0}],
        "features": ["advance_request"],
    }
    assert read["read_command"] == "featuresql read user_id=42 advance_amount=150.00 -f advance_request"
    assert read["get_url"].endswith("/features?user_id=42&advance_amount=150.00&features=advance_request")
    assert [f["name"] for f in read["response_features"]] == [
        "advance_request__amount_vs_avg_spend_30d",
        "advance_request__above_max_spend_7d",
    ]
    assert entry["computed"]["extract_command"] == (
        "featuresql extract --spine labels.parquet -f advance_request --out training.parquet"
    )
    answer = invoke(built, *shlex.split(read["read_command"])[1:], "--now", NOW)
    assert answer.exit_code == 0, answer.stderr
    results = json.loads(answer.stdout)["results"]
    assert results == reader_answers(built, read)
    assert list(results[0]["features"]) == [f["name"] for f in read["response_features"]]


def test_an_on_demand_model_reading_an_offline_model_is_not_read_online(tmp_path: Path) -> None:
    offline = [("features/user_transactions.sql", "online=true", "online=false")]
    project = copy_example(tmp_path / "project", offline)
    assert invoke(project, "docs", "generate").exit_code == 0
    catalog = read_catalog(project)
    entry = catalog["on_demand"]["advance_request"]
    assert not entry["online"] and entry["online_read"] is None
    assert entry["computed"]["online"] == "Not online: user_transactions is not online."
    service = catalog["services"]["advance_risk"]
    assert service["offline_models"] == ["user_transactions"] and service["online_read"] is None
    assert service["extract"]["request_columns"] == [{"name": "advance_amount", "type": "DECIMAL(12, 2)"}]


def test_compiled_sql_is_what_compile_writes(built: Path, catalog: dict[str, Any]) -> None:
    assert invoke(built, "compile").exit_code == 0
    for name in ("user_profile", "user_spend_ratios", "advance_labels"):  # snapshot models: independent of the time
        written = (built / "target" / "compiled" / "dev" / f"{name}.sql").read_text()
        assert catalog["models"][name]["sql"]["compiled"] == written
    transactions = catalog["models"]["user_transactions"]["sql"]
    assert transactions["compiled"].startswith("CREATE OR REPLACE TABLE main.user_transactions AS")
    assert transactions["source"] == (built / "features" / "user_transactions.sql").read_text()
    assert transactions["compiled_path"] == "target/compiled/dev/user_transactions.sql"


def test_column_lineage_reaches_the_source_columns(catalog: dict[str, Any]) -> None:
    ratio = column(catalog, "user_spend_ratios", "spend_share_1d_of_30d")
    assert ratio["source_columns"] == ["bank.transactions.amount"]
    assert ratio["upstream"] == ["model:user_transactions.amount_sum_1d", "model:user_transactions.amount_sum_30d"]
    assert column(catalog, "user_transactions", "amount_last_7d")["source_columns"] == [
        "bank.transactions.amount",
        "bank.transactions.transaction_id",
        "bank.transactions.ts",
    ]
    edges = catalog["lineage"]["edges"]
    assert edges["model:user_transactions.amount_sum_1d"] == ["source:bank.transactions.amount"]
    assert edges["source:bank.transactions.amount"] == []


def test_the_page_embeds_everything(built: Path, catalog: dict[str, Any]) -> None:
    page = (built / "target" / "docs" / "index.html").read_text()
    assert (
        "<script src" not in page
        and '<link rel="stylesheet"' not in page
        and "http://" not in page.split('<script type="application/json"')[0]
    )
    embedded = re.search(r'<script type="application/json" id="catalog-data">(.*?)</script>', page, re.DOTALL)
    assert embedded is not None and json.loads(embedded.group(1)) == catalog


def test_generate_without_a_built_warehouse(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    project = copy_example(tmp_path / "project")
    result = cli(project, "docs", "generate")
    assert result.exit_code == 0, result.stderr
    assert "does not exist yet: run `featuresql run`" in result.stdout
    assert "Wrote target/docs/index.html and catalog.json: 8 models, 51 features, 3 source tables." in result.stdout
    assert not list((project / "target").glob("*.duckdb")), "reading never creates the database"
    catalog = read_catalog(project)
    assert catalog["metadata"]["warehouse"]["read"] is False
    for model in catalog["models"].values():
        assert model["last_run"] is None and model["runs"] == [] and not model["built"]
        assert {c["type"] for c in model["columns"]} == {None}
        assert model["freshness"]["newest"] is None
        assert all(t["last"] is None for t in model["tests"])
    assert catalog["metadata"]["tests"] is None
    assert column(catalog, "user_transactions", "amount_sum_7d")["source_columns"] == ["bank.transactions.amount"]
    on_demand = catalog["on_demand"]["advance_request"]  # documented from the SQL alone
    assert [(c["name"], c["type"]) for c in on_demand["columns"]] == [
        ("amount_vs_avg_spend_30d", None),  # typed once the models it reads are built
        ("above_max_spend_7d", None),
    ]


def test_generate_with_an_empty_database(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    """A database that exists but holds no featuresql tables: every model 'never run'."""
    import duckdb

    project = copy_example(tmp_path / "project")
    (project / "target").mkdir()
    duckdb.connect(str(project / "target" / "cash_advance.duckdb")).close()
    assert cli(project, "docs", "generate").exit_code == 0
    catalog = read_catalog(project)
    assert catalog["metadata"]["warehouse"] == {"read": True, "note": "no run recorded on this target yet"}
    assert all(m["last_run"] is None and not m["built"] for m in catalog["models"].values())


def test_no_secret_of_the_profile_reaches_the_site(tmp_path: Path, cli_process: Callable[..., CliResult]) -> None:
    secret, password = "duckdb-agent-sekrit-4d1f", "snowflake-pw-sekrit-97ab"
    profile = (
        "target: dev\n"
        "targets:\n"
        "  dev:\n"
        "    type: duckdb\n"
        "    path: target/cash_advance.duckdb\n"
        "    settings: {custom_user_agent: \"{{ env_var('DOCS_TEST_AGENT') }}\"}\n"
        "  prod_snowflake:\n"
        "    type: snowflake\n"
        "    account: \"{{ env_var('DOCS_TEST_ACCOUNT') }}\"\n"
        "    user: docs\n"
        "    password: \"{{ env_var('DOCS_TEST_PASSWORD') }}\"\n"
        "    database: ANALYTICS\n"
        "    schema: features\n"
    )
    project = copy_example(tmp_path / "project", [("profiles.yml", None, profile)])
    env = {"DOCS_TEST_AGENT": secret, "DOCS_TEST_PASSWORD": password}
    for command in (["run", "--now", NOW], ["docs", "generate"]):
        result = cli_process(project, "--vars", SMALL_VARS_ARG, *command, env=env)
        assert result.exit_code == 0, result.stderr
    # prod_snowflake's account is unset: its docs are written offline, without connecting
    result = cli_process(project, "docs", "generate", "--target", "prod_snowflake", env=env)
    assert result.exit_code == 0, result.stderr
    assert "warehouse not read" in result.stdout and "DOCS_TEST_ACCOUNT" in result.stdout
    for path in (project / "target" / "docs").rglob("*"):
        text = path.read_text()
        assert secret not in text and password not in text, path
    catalog = read_catalog(project)
    assert catalog["metadata"]["target_type"] == "snowflake" and "password" not in json.dumps(catalog["metadata"])
    compiled = catalog["models"]["user_profile"]["sql"]["compiled"]
    assert compiled.startswith("CREATE OR REPLACE TABLE features.user_profile")  # Snowflake SQL, in its schema


def test_docs_block_errors_name_the_file_and_line(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    with pytest.raises(ConfigError, match=r"docs block is not closed") as error:
        parse_doc_blocks("intro\n\n{% docs open %}\nnever closed\n", tmp_path / "x.md")
    assert error.value.line == 3
    duplicate = "{% docs user_spend_ratios %}again{% enddocs %}\n"
    project = copy_example(tmp_path / "dup", [*EDITS, ("macros/more.md", None, duplicate)])
    result = cli(project, "docs", "generate")
    assert result.exit_code == 2
    assert "docs block 'user_spend_ratios' is defined twice (also in docs.md:3)" in result.stderr
    typo = [
        (
            "features/models.yml",
            "    description: Merchant activity over 1 and 7 day windows.",
            "    description: '{{ doc(\"user_spend_ratio\") }}'",
        )
    ]
    project = copy_example(tmp_path / "typo", [*EDITS, *typo])
    result = cli(project, "docs", "generate")
    assert result.exit_code == 2
    assert (
        "model merchant_transactions: description: doc('user_spend_ratio') names no docs block "
        "(did you mean user_spend_ratios?)" in result.stderr
    )


def test_the_catalog_cannot_break_out_of_its_script_element() -> None:
    nasty = {"metadata": {"project": "p</title><b>"}, "text": "</script><script>alert(1)</script> & <!--"}
    text = embedded_json(nasty)
    assert "<" not in text and ">" not in text and json.loads(text) == nasty
    page = render_page({"metadata": {"project": "p</title><b>"}, "models": {}})
    assert "<title>p&lt;/title&gt;&lt;b&gt; · featuresql docs</title>" in page


def test_serve_without_generated_docs_says_what_to_do(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    project = copy_example(tmp_path / "project")
    result = cli(project, "docs", "serve", "--port", "0")
    assert result.exit_code == 2
    assert "no docs in" in result.stderr and "run `featuresql docs generate` first" in result.stderr


def test_uncollectable_tests_leave_the_rest_documented(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    broken = [("features/models.yml", "        tests: [unique, not_null]\n", "        tests: [unique, not_a_test]\n")]
    project = copy_example(tmp_path / "project", broken)
    result = cli(project, "docs", "generate")
    assert result.exit_code == 0, result.stderr
    assert "tests not shown:" in result.stdout and "not_a_test" in result.stdout
    catalog = read_catalog(project)
    assert catalog["metadata"]["notes"][0].startswith("tests not shown:")
    assert all(model["tests"] == [] for model in catalog["models"].values()) and len(catalog["models"]) == 7

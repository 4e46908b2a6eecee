"""Feature services: one named feature set, the same columns and values offline and online.

The example's ``advance_risk`` (an alias, a whole model, single features) is extracted
with ``--service`` and read through the reader (CLI, HTTP, the Lambda handler of a
``package-lambda --service`` zip) at the same time for the same users: same names,
same values. A ``--service`` zip answers that service only.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CliResult

from featuresql.serving.manifest import Manifest
from featuresql.serving.reader import Reader
from featuresql.serving.tables import open_table

NOW = "2026-06-30"
AT = datetime(2026, 6, 30)
USERS = (3, 42, 77, 150)
AMOUNTS = ("150.00", "0.01", "9999999999.99", "null")  # the advance each asks for (advance_amount, decimal(12,2))
OUTPUTS = [
    "user_transactions__count_7d",
    "user_transactions__amount_sum_30d",
    "avg_spend_30d",
    "user_spend_ratios__spend_share_1d_of_30d",
    "user_spend_ratios__transactions_per_day_7d",
    "user_spend_ratios__max_to_avg_amount",
    "advance_request__amount_vs_avg_spend_30d",
    "advance_request__above_max_spend_7d",
]
Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory, copy_example_to: Any, small_vars: str) -> Path:
    from click.testing import CliRunner

    from featuresql.cli.main import cli as command

    project = copy_example_to(tmp_path_factory.mktemp("services") / "cash_advance")
    runner = CliRunner()
    for args in (["run", "--now", NOW], ["sync", "--now", NOW]):
        result = runner.invoke(command, ["--project-dir", str(project), "--vars", small_vars, *args])
        assert result.exit_code == 0, result.output
    return project


def ok(result: CliResult) -> str:
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def extracted(project: Path, cli: Cli, service: str = "advance_risk") -> list[dict[str, Any]]:
    amounts = [None if text == "null" else Decimal(text) for text in AMOUNTS]
    spine = pa.table(
        {
            "user_id": pa.array(USERS, pa.int64()),
            "ts": pa.array([AT] * len(USERS), pa.timestamp("us")),
            "advance_amount": pa.array(amounts, pa.decimal128(12, 2)),
        }
    )
    pq.write_table(spine, project / "spine.parquet")
    ok(cli(project, "extract", "--spine", "spine.parquet", "--service", service, "--out", "out.parquet"))
    return pq.read_table(project / "out.parquet").to_pylist()


def same(offline: Any, online: Any) -> bool:
    if isinstance(offline, Decimal) or isinstance(online, Decimal):
        return Decimal(str(offline)) == Decimal(str(online))
    return bool(offline == online)


@pytest.mark.duckdb
def test_extract_and_read_of_a_service_agree(synced: Path, cli: Cli) -> None:
    offline = extracted(synced, cli)
    assert list(offline[0]) == ["user_id", "ts", "advance_amount", *OUTPUTS]
    keys = ",".join(str(user) for user in USERS)
    request = f"advance_amount={','.join(AMOUNTS)}"
    online = json.loads(ok(cli(synced, "read", f"user_id={keys}", request, "--service", "advance_risk", "--now", NOW)))
    assert [list(result["features"]) for result in online["results"]] == [OUTPUTS] * len(USERS)
    for row, result in zip(offline, online["results"], strict=True):
        assert result["entity"] == {"user_id": row["user_id"]}
        problems = [name for name in OUTPUTS if not same(row[name], result["features"][name])]
        assert not problems, (row, result)
    assert any(row["user_transactions__count_7d"] for row in offline)  # real values, not empty windows
    assert {row["advance_request__above_max_spend_7d"] for row in offline} == {True, False, None}
    # The features one by one, without the service: the same values under the default names.
    plain = json.loads(
        ok(cli(synced, "read", f"user_id={keys}", "-f", "user_transactions.amount_avg_30d", "--now", NOW))
    )
    for result, by_service in zip(plain["results"], online["results"], strict=True):
        assert result["features"]["user_transactions__amount_avg_30d"] == by_service["features"]["avg_spend_30d"]


@pytest.mark.duckdb
def test_a_pinned_version_is_served_and_another_refused(synced: Path, cli: Cli) -> None:
    assert list(extracted(synced, cli, "advance_risk@1")[0])[3:] == OUTPUTS
    refused = cli(synced, "read", "user_id=42", "advance_amount=1", "--service", "advance_risk@2", "--now", NOW)
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "Error: service 'advance_risk' is at version 1 here, not 2: deploy the reader of the version you need"
    )


@pytest.mark.duckdb
def test_the_python_api_takes_a_service(synced: Path) -> None:
    import featuresql

    spine = pa.table(
        {"user_id": pa.array([42], pa.int64()), "ts": pa.array([AT], pa.timestamp("us")), "advance_amount": [1.5]}
    )
    table = featuresql.extract(spine, service="advance_risk", project_dir=synced)
    assert table.column_names == ["user_id", "ts", "advance_amount", *OUTPUTS]
    with pytest.raises(ValueError, match="give either features or service"):
        featuresql.extract(spine, ["user_transactions"], service="advance_risk", project_dir=synced)


@pytest.mark.duckdb
def test_a_service_zip_answers_its_service_only(synced: Path, cli: Cli, tmp_path: Path) -> None:
    """The manifest of ``package-lambda --service`` (its store made local here: the zip's is DynamoDB)."""
    with_dynamodb = synced / "profiles.yml"
    text = with_dynamodb.read_text()
    profile = text.replace(
        "  dev:\n", "  dev:\n    online: {store: dynamodb, table: featuresql_test, region: us-east-1}\n", 1
    )
    assert profile != text
    with_dynamodb.write_text(profile)
    try:
        ok(cli(synced, "package-lambda", "--service", "advance_risk", "--out", str(tmp_path / "reader.zip")))
        with zipfile.ZipFile(tmp_path / "reader.zip") as archive:
            manifest = json.loads(archive.read("online_manifest.json"))
    finally:
        with_dynamodb.write_text(text)
    assert manifest["only_service"] == "advance_risk"
    assert set(manifest["models"]) == {"user_transactions", "user_spend_ratios"}
    assert [feature[2] for feature in manifest["services"]["advance_risk"]["features"]] == OUTPUTS
    local = json.loads((synced / "target" / "online" / "dev" / "manifest.json").read_text())
    manifest["store"] = local["store"]  # read the same items from the local store the sync filled
    reader = Reader(
        Manifest.from_json(manifest), open_table(manifest["store"]), clock=lambda: AT.replace(tzinfo=UTC).timestamp()
    )
    status, body = reader.answer({"service": "advance_risk", "entities": {"user_id": [42], "advance_amount": [2.5]}})
    assert status == 200 and list(json.loads(body)["results"][0]["features"]) == OUTPUTS
    status, body = reader.answer({"features": ["user_transactions"], "entities": {"user_id": [42]}})
    assert status == 400
    assert json.loads(body)["error"]["message"] == (
        "this reader serves the feature service 'advance_risk' only: request "
        '{"service": "advance_risk", "entities": ...}'
    )


@pytest.mark.duckdb
def test_reading_a_service_whose_models_are_not_online_says_so(synced: Path, cli: Cli) -> None:
    services = synced / "features" / "services.yml"
    text = services.read_text()
    services.write_text(text + "  - name: profile\n    features: [user_profile.plan]\n")
    try:
        refused = cli(synced, "read", "user_id=42", "--service", "profile", "--now", NOW)
    finally:
        services.write_text(text)
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "Error: service 'profile' is not served online: its models user_profile are not in the online store; "
        "set config(online=true) on them and run `featuresql sync`"
    )

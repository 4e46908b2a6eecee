"""The Lambda reader as Lambda runs it, reading DynamoDB Local: the real runtime, and the packaged zip alone.

The example project runs with its demo data ending today and syncs (at the real
time, so items are live for the reader's real clock) to a DynamoDB Local table.
Then:

* ``awslambdaric`` runs ``featuresql.serving.handler.handler`` against the
  Runtime API emulator: API Gateway v2 events and direct invocations answer the
  values `featuresql read` prints and the warehouse holds; a bad request is a 4xx
  answer, not a function error; the cold start is measured.
* ``featuresql package-lambda`` builds the zip: exactly the reader's modules and
  the manifest, no secrets, a policy allowing BatchGetItem on the one table; the
  zip extracted, alone on the path (as a Lambda task root), answers a request.

Run through ``bash ci/in_private_network.sh python -m pytest ...`` (DynamoDB Local).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dynamodb_server import ACCESS_KEY_ID, DynamoEndpoint, dynamodb_client, running_dynamodb_local
from lambda_function import LambdaFunction, running_lambda
from lambda_runtime import InvokeResult, load_event
from projects import SMALL_VARS, copy_example

pytestmark = pytest.mark.dynamodb

TABLE = "featuresql_reader_test"
SECRET = "featuresql-reader-test-secret-never-packaged"
TODAY = datetime.now(UTC).date()
LATEST = datetime.combine(TODAY, time(), tzinfo=UTC)  # the newest daily row: the windows ending today
MODELS = ["user_transactions", "user_spend_ratios"]
USERS = [1, 42, 77, 250, 499, 10**9]  # the last has no item
AMOUNTS = [150.0, "0.01", 12.5, None, "99.99", 20]  # advance_amount, decimal(12,2): numbers, text and NULL
BIG = Decimal("12345678901234567.89")
BIG_USER = 10**6
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
READER_FILES = [
    "featuresql/__init__.py",
    "featuresql/serving/__init__.py",
    "featuresql/serving/expression_errors.py",
    "featuresql/serving/expression_strings.py",
    "featuresql/serving/expression_times.py",
    "featuresql/serving/expressions.py",
    "featuresql/serving/handler.py",
    "featuresql/serving/items.py",
    "featuresql/serving/manifest.py",
    "featuresql/serving/partials.py",
    "featuresql/serving/push_records.py",
    "featuresql/serving/reader.py",
    "featuresql/serving/request.py",
    "featuresql/serving/request_columns.py",
    "featuresql/serving/stream_items.py",
    "featuresql/serving/stream_reads.py",
    "featuresql/serving/stream_state.py",
    "featuresql/serving/tables.py",
    "online_manifest.json",
]


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def featuresql(project: Path, *args: str) -> str:
    """Run the CLI in a subprocess in ``project`` (dummy AWS credentials); its stdout."""
    completed = subprocess.run(
        [sys.executable, "-c", "from featuresql.cli.main import main; main()", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", **AWS_ENV},
    )
    assert completed.returncode == 0, f"featuresql {' '.join(args)}:\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoEndpoint]:
    with running_dynamodb_local(tmp_path_factory.mktemp("dynamodb")) as running:
        yield running


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, endpoint: DynamoEndpoint) -> Path:
    """The example, its online store DynamoDB Local, run and synced now; one extra item with a 19-digit decimal."""
    profiles = f"""
target: dev
targets:
  dev:
    type: duckdb
    path: target/cash_advance.duckdb
    schema: main
    online:
      store: dynamodb
      endpoint_url: {endpoint.endpoint_url}
      region: {endpoint.region}
      table: {TABLE}
"""
    root = copy_example(tmp_path_factory.mktemp("lambda") / "cash_advance", [("profiles.yml", None, profiles)])
    variables = {**SMALL_VARS, "demo_end": TODAY.isoformat()}
    featuresql(root, "--vars", json.dumps(variables), "run")
    output = featuresql(root, "sync")
    assert f"Synced 2 models to {TABLE}: " in output, output
    latest = int(LATEST.timestamp()) * 1_000_000
    schema = json.loads((root / "target" / "online" / "dev" / "manifest.json").read_text())
    schema = schema["models"]["user_transactions"]["schema"]
    dynamodb_client(endpoint).put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"user_transactions#[{BIG_USER}]"},
            "_ts": {"N": str(latest)},
            "_v": {"N": "1"},
            "_run": {"S": "test"},
            "_sv": {"S": schema},
            "count_30d": {"N": "3"},
            "amount_sum_30d": {"N": str(BIG)},
        },
    )
    return root


@pytest.fixture(scope="module")
def manifest_path(project: Path) -> Path:
    return project / "target" / "online" / "dev" / "manifest.json"


@pytest.fixture(scope="module")
def warehouse(project: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """Each user's latest row of each online model (rows are written when values change, so not all are today's)."""
    connection = duckdb.connect(str(project / "target" / "cash_advance.duckdb"), read_only=True)
    try:
        rows = {}
        for model in MODELS:
            cursor = connection.execute(
                f"select * from main.{model} where ts <= ? "
                "qualify row_number() over (partition by user_id order by ts desc) = 1",
                [datetime.now(UTC).replace(tzinfo=None)],
            )
            names = [column[0] for column in cursor.description]
            rows[model] = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
        return rows
    finally:
        connection.close()


@pytest.fixture(scope="module")
def function(project: Path, manifest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaFunction]:
    """The repository's handler under the real runtime, its manifest named by FEATURESQL_MANIFEST."""
    task_root = tmp_path_factory.mktemp("task")
    with running_lambda(
        "featuresql.serving.handler.handler",
        cwd=task_root,
        env={"FEATURESQL_MANIFEST": str(manifest_path)},
        function_name="featuresql-reader",
    ) as running:
        yield running


def v2_event(body: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("apigw_v2"))
    event["body"] = body
    return event


def http_body(result: InvokeResult, status: int = 200) -> Any:
    assert result.ok, result.payload
    assert result.payload["statusCode"] == status, result.payload
    assert result.payload["headers"] == {"content-type": "application/json"}
    return loads(result.payload["body"])


REQUEST = {"entities": {"user_id": USERS}, "features": MODELS}


def test_a_v2_event_answers_what_featuresql_read_prints(function, project):
    body = http_body(function.invoke(v2_event(json.dumps(REQUEST))))
    arguments = [f"user_id={user}" for user in USERS]
    printed = loads(featuresql(project, "read", *arguments, "-f", "user_transactions", "-f", "user_spend_ratios"))
    assert body == printed
    assert [result["entity"] for result in body["results"]] == [{"user_id": user} for user in USERS]


def test_the_values_are_the_warehouse_rows(function, manifest_path, warehouse):
    """Online equals offline: each user's latest row, or the defaults where it is an empty window (expired)."""
    manifest = json.loads(manifest_path.read_text())
    results = http_body(function.invoke(v2_event(json.dumps(REQUEST))))["results"]
    stamps = {warehouse["user_transactions"][user]["ts"] for user in USERS[:-1]}
    assert LATEST.replace(tzinfo=None) in stamps and len(stamps) > 1  # some users' latest rows are older
    served = 0
    for result in results:
        user = result["entity"]["user_id"]
        for model in MODELS:
            features = manifest["models"][model]["features"]
            defaults = {name: spec["default"] for name, spec in features.items()}
            row = warehouse[model].get(user)
            values = {name: row[name] for name in features} if row else defaults
            live = row is not None and (values != defaults or model == "user_spend_ratios")  # no TTL on the ratios
            expected_stamp = row["ts"].strftime("%Y-%m-%dT%H:%M:%SZ") if live else None
            assert result["feature_timestamps"][model] == expected_stamp, (user, model)
            for name, spec in features.items():
                value, expected = result["features"][f"{model}__{name}"], values[name] if live else defaults[name]
                if spec["kind"] == "float" and expected is not None:
                    assert float(value) == expected, (user, name)
                else:
                    assert value == expected, (user, name)  # decimals exact, as DynamoDB numbers
            served += live
    assert served >= 6


def test_a_direct_invocation_answers_the_same_with_exact_decimals(function):
    direct = function.invoke(REQUEST)
    assert direct.ok and direct.content_type == "application/json"
    assert loads(direct.raw) == http_body(function.invoke(v2_event(json.dumps(REQUEST))))
    big = function.invoke({"entities": {"user_id": [BIG_USER]}, "features": ["user_transactions.amount_sum_30d"]})
    assert big.ok
    assert str(BIG) in big.raw.decode()  # the digits, not a double's 1.2345678901234568e+16
    assert loads(big.raw)["results"][0]["features"] == {"user_transactions__amount_sum_30d": BIG}
    via_http = http_body(
        function.invoke(v2_event(json.dumps({"entities": {"user_id": [BIG_USER]}, "features": ["user_transactions"]})))
    )
    assert via_http["results"][0]["features"]["user_transactions__amount_sum_30d"] == BIG
    assert via_http["results"][0]["features"]["user_transactions__count_7d"] == 0  # absent attribute: the default


@pytest.mark.parametrize(
    ("event", "status", "message"),
    [
        (v2_event("{"), 400, "the request body is not valid JSON"),
        (v2_event(json.dumps({"entities": {"user_id": ["1"]}, "features": MODELS})), 400, "user_id is an integer key"),
        (
            v2_event(json.dumps({"entities": {"user_id": list(range(101))}, "features": MODELS})),
            400,
            "too many entities: 101",
        ),
        (
            v2_event(json.dumps({"entities": {"user_id": [1]}, "features": ["user_balance"]})),
            404,
            "unknown online model",
        ),
        (load_event("apigw_v2_get"), 404, "unknown online model 'user_balance'"),
    ],
    ids=["bad json", "string key", "too many", "unknown model", "recorded get"],
)
def test_a_bad_http_request_is_an_answer_not_a_function_error(function, event, status, message):
    body = http_body(function.invoke(event), status)
    assert body["error"]["status"] == status and body["error"]["message"].startswith(message)


def test_a_bad_direct_invocation_is_an_error_object_not_a_function_error(function):
    for event, status in (
        (["user_transactions"], 400),
        ({"features": MODELS}, 400),
        ({"entities": {"user_id": [1]}, "features": ["x"]}, 404),
    ):
        result = function.invoke(event)
        assert result.ok, result.payload
        assert result.payload["error"]["status"] == status


def test_the_cold_start_is_reported(function):
    function.invoke(REQUEST)
    assert function.init_duration_s is not None and function.init_duration_s > 0
    assert function.cold_start_s is not None and function.cold_start_s >= function.init_duration_s
    assert len(function.cold_starts) == 1  # every invoke so far served by the one container
    print(f"\nreader cold start {function.cold_start_s * 1000:.1f} ms (init {function.init_duration_s * 1000:.1f} ms)")


# ---------------------------------------------------------------------------
# 6. featuresql package-lambda
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package(project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(zip, policy, the zip extracted)."""
    output = featuresql(project, "package-lambda", "--out", "dist/reader.zip")
    archive, policy = project / "dist" / "reader.zip", project / "dist" / "reader-iam-policy.json"
    assert "handler featuresql.serving.handler.handler" in output and archive.is_file() and policy.is_file()
    extracted = tmp_path_factory.mktemp("zip") / "task"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(extracted)
    return archive, policy, extracted


def test_the_zip_holds_the_reader_and_its_manifest_only(package, manifest_path):
    archive, _, _ = package
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == READER_FILES
        contents = b"".join(opened.read(name) for name in opened.namelist())
        manifest = json.loads(opened.read("online_manifest.json"))
        for name in READER_FILES[1:-1]:
            assert opened.read(name) == (Path(__file__).parent.parent / name).read_bytes(), name
    synced = json.loads(manifest_path.read_text())
    assert "endpoint_url" in synced["store"]  # the development endpoint (DynamoDB Local) does not ship
    synced["store"].pop("endpoint_url")
    assert manifest == synced
    assert set(manifest["store"]) == {"type", "table", "region"}
    assert manifest["store"]["table"] == TABLE
    for secret in (SECRET, ACCESS_KEY_ID, "aws_secret_access_key", "profiles.yml", "password"):
        assert secret.encode() not in contents, secret


def test_the_iam_policy_allows_only_batch_get_item_on_the_table(package):
    _, policy, _ = package
    assert json.loads(policy.read_text()) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadOnlineFeatures",
                "Effect": "Allow",
                "Action": ["dynamodb:BatchGetItem"],
                "Resource": f"arn:aws:dynamodb:us-east-1:${{aws:PrincipalAccount}}:table/{TABLE}",
            }
        ],
    }


SERVE_ONE = """
import json, sys
before = set(sys.modules)
import featuresql
from featuresql.serving.handler import handler
event = json.loads(sys.stdin.read())
response = handler(event, None)
loaded = sorted(set(sys.modules) - before)
print(json.dumps({"featuresql": featuresql.__file__, "response": response, "loaded": loaded}))
"""


def serve_with_only_the_zip(zip_dir: Path, event: dict[str, Any], **env: str) -> dict[str, Any]:
    """``handler(event)`` in a fresh interpreter whose only import root for featuresql is ``zip_dir``."""
    completed = subprocess.run(
        [sys.executable, "-c", SERVE_ONE],
        input=json.dumps(event),
        cwd=zip_dir.parent,  # not the repository: `python -c` puts the working directory on the path
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(zip_dir), **AWS_ENV, **env},
    )
    assert completed.returncode == 0, completed.stderr
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer


# A feature service with on-demand features: the zip evaluates them with the standard library.
SERVICE_REQUEST = {"service": "advance_risk", "entities": {"user_id": USERS, "advance_amount": AMOUNTS}}


def test_the_extracted_zip_alone_answers_a_request(package, function, endpoint):
    _, _, zip_dir = package
    answer = serve_with_only_the_zip(
        zip_dir, v2_event(json.dumps(SERVICE_REQUEST)), FEATURESQL_DYNAMODB_ENDPOINT=endpoint.endpoint_url
    )
    assert Path(answer["featuresql"]).resolve() == (zip_dir / "featuresql" / "__init__.py").resolve()
    response = answer["response"]
    assert response["statusCode"] == 200, response
    body = loads(response["body"])
    assert body == http_body(function.invoke(v2_event(json.dumps(SERVICE_REQUEST))))
    ratios = [result["features"]["advance_request__amount_vs_avg_spend_30d"] for result in body["results"]]
    assert any(ratio is not None for ratio in ratios) and None in ratios  # computed, and NULL without spend
    ours = {name for name in answer["loaded"] if name.startswith("featuresql")}
    modules = ("handler", "items", "manifest", "reader", "request", "request_columns", "tables")
    modules += ("expressions", "expression_strings", "expression_times", "expression_errors")
    modules += ("partials", "push_records", "stream_items", "stream_reads", "stream_state")
    assert ours == {"featuresql", *(f"featuresql.serving.{m}" for m in modules), "featuresql.serving"}
    tops = {name.split(".")[0] for name in answer["loaded"]}
    assert {"boto3", "botocore"} <= tops
    assert tops & {"sqlglot", "pydantic", "pyarrow", "duckdb", "jinja2", "yaml", "click"} == set()


def test_the_endpoint_override_and_an_unreachable_store(package, endpoint):
    """FEATURESQL_DYNAMODB_ENDPOINT wins over the manifest's; a store that does not answer is a 503."""
    _, _, zip_dir = package
    manifest = json.loads((zip_dir / "online_manifest.json").read_text())
    manifest["store"]["endpoint_url"] = "http://127.0.0.1:9"  # nothing listens there
    elsewhere = zip_dir.parent / "unreachable_manifest.json"
    elsewhere.write_text(json.dumps(manifest))
    event = v2_event(json.dumps(REQUEST))
    answer = serve_with_only_the_zip(
        zip_dir, event, FEATURESQL_MANIFEST=str(elsewhere), FEATURESQL_DYNAMODB_ENDPOINT=endpoint.endpoint_url
    )
    assert answer["response"]["statusCode"] == 200
    answer = serve_with_only_the_zip(zip_dir, event, FEATURESQL_MANIFEST=str(elsewhere))
    assert answer["response"]["statusCode"] == 503
    assert loads(answer["response"]["body"])["error"]["message"].startswith(f"DynamoDB table {TABLE}")


def test_the_packaged_zip_runs_as_a_lambda_task_root(package, endpoint):
    _, _, zip_dir = package
    env = {"FEATURESQL_DYNAMODB_ENDPOINT": endpoint.endpoint_url}
    with running_lambda("featuresql.serving.handler.handler", cwd=zip_dir, env=env) as packaged:
        body = http_body(packaged.invoke(v2_event(json.dumps(REQUEST))))
        assert packaged.cold_start_s is not None
    assert [result["entity"]["user_id"] for result in body["results"]] == USERS
    assert body["results"][0]["feature_timestamps"]["user_transactions"] == LATEST.strftime("%Y-%m-%dT%H:%M:%SZ")

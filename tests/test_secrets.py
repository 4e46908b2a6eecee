"""No secret leaves the process: every command runs with secrets in the profile and the environment.

One module-scoped session runs every CLI command (``featuresql --help`` lists
them) as a separate process on a copy of the example project, on the engines
where the secrets are really used: a Snowflake target through the real
connector to fakesnow (password from a ``FEATURESQL_SECRET_`` variable, key pair
with a passphrase, OAuth token, a literal password in profiles.yml) and the
DynamoDB online store through boto3 to DynamoDB Local (``AWS_SECRET_ACCESS_KEY``
and ``AWS_SESSION_TOKEN``), plus a BigQuery target whose service-account key
comes from the environment. Successful runs and failing ones: a failing model,
a Snowflake key with the wrong passphrase, unreachable servers, ``--debug``
tracebacks, a model asking for a secret variable.

Everything the session produced is scanned: stdout and stderr of every command,
every file under the project (target/: logs, run_results.json, manifest.json,
test_results.json, compiled SQL, the docs site and catalog.json, the online
manifest, extract outputs, the DuckDB and SQLite files' rows), the Lambda zip's
members and its IAM policy, the HTTP answers of ``serve`` and ``docs serve``,
and featuresql's own tables in the Snowflake warehouse. A secret is looked for
as written and in common encodings (base64 at any alignment, URL, JSON, hex).

    bash ci/in_private_network.sh python -m pytest -q tests/test_secrets.py -s   # prints the counts
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import duckdb
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import CliResult
from dynamodb_server import REGION, running_dynamodb_local
from projects import copy_example
from snowflake_server import running_fakesnow

pytestmark = [pytest.mark.snowflake, pytest.mark.dynamodb, pytest.mark.duckdb]

NOW = "2026-06-30"
TINY_VARS = json.dumps(
    {"demo_users": 60, "demo_merchants": 20, "demo_transactions": 1500, "demo_balance_events": 200, "demo_days": 40}
)
AWS_KEY_PATTERN = re.compile(rb"(?:AKIA|ASIA)[A-Z0-9]{16}")
DYNAMODB_TABLE = "featuresql_secrets_dev"
SNOWFLAKE_TABLE = "featuresql_secrets_sf"


def _token(label: str, special: str = "") -> str:
    """A value found nowhere else: a label, 24 random hex digits and characters that encodings change."""
    return f"{label}-{secrets.token_hex(12)}{special}"


# Each value is a secret: none may appear anywhere featuresql writes.
SECRETS = {
    "FEATURESQL_SECRET_SNOWFLAKE_PASSWORD": _token("sfpw", '/+ "%&=\\'),
    "SNOWFLAKE_PASSWORD": _token("sfpw2", "/+%&="),
    "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": _token("sfkeypass", "/+%"),
    "SNOWFLAKE_TOKEN": _token("sfoauth", "/+="),
    "AWS_SECRET_ACCESS_KEY": _token("awssecret", "/+"),
    "AWS_SESSION_TOKEN": _token("awssession", "/+="),
}
LITERAL_PASSWORD = _token("literalpw", "/+%&=")  # written into profiles.yml itself
BIGQUERY_KEY_ID = _token("bqkeyid")
ACCESS_KEY_ID = "AKIA" + secrets.token_hex(8).upper()  # an identifier, not a secret: AWS prints it in errors


def _rsa_key(passphrase: str) -> tuple[bytes, str]:
    """A PEM private key (encrypted with ``passphrase``) and one line of its body (secret material)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = serialization.BestAvailableEncryption(passphrase.encode())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return pem, pem.decode().splitlines()[3]


@dataclass
class Artifact:
    label: str
    data: bytes


@dataclass
class Session:
    """What one run of every command produced."""

    artifacts: list[Artifact] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    zip_members: dict[str, bytes] = field(default_factory=dict)
    files: int = 0

    def add(self, label: str, data: bytes | str) -> None:
        self.artifacts.append(Artifact(label, data.encode() if isinstance(data, str) else data))

    def output(self, label: str, result: CliResult) -> None:
        self.commands.append(label)
        self.add(f"{label}: stdout", result.stdout)
        self.add(f"{label}: stderr", result.stderr)


def encodings(secret: str) -> set[bytes]:
    """The secret as written and as common encodings would carry it inside a longer text."""
    raw = secret.encode()
    forms = {
        raw,
        quote(secret, safe="").encode(),
        quote_plus(secret).encode(),
        json.dumps(secret)[1:-1].encode(),
        json.dumps(json.dumps(secret)[1:-1])[1:-1].encode(),
        binascii.hexlify(raw),
        binascii.hexlify(raw).upper(),
    }
    for shift in range(3):  # base64 of the secret wherever it starts in the encoded text
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw)
            first, last = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6
            forms.add(encoded[first:last])
    return forms


def leaks(session: Session) -> list[str]:
    """Every (artifact, secret) pair where the secret appears in some encoding."""
    found = []
    patterns = {name: encodings(value) for name, value in session.secrets.items()}
    for artifact in session.artifacts:
        for name, forms in patterns.items():
            if any(form in artifact.data for form in forms):
                found.append(f"{name} in {artifact.label}")
    return found


# -- running the CLI ---------------------------------------------------------------------


def environment() -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SNOWFLAKE_", "FEATURESQL_SECRET"))}
    return {
        **inherited,
        **SECRETS,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_DEFAULT_REGION": REGION,
        "BIGQUERY_KEYFILE_JSON": BIGQUERY_KEYFILE_JSON,
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from featuresql.cli.main import main; main()", *args]


def run_cli(folder: Path, *args: str) -> CliResult:
    done = subprocess.run(command(*args), cwd=folder, capture_output=True, text=True, timeout=300, env=environment())
    return CliResult(done.returncode, done.stdout, done.stderr)


def spawn_cli(folder: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args), cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment()
    )


def http(url: str, body: bytes | None = None) -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} ".encode() + error.read()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the project -------------------------------------------------------------------------

_SF_PEM, SNOWFLAKE_KEY_LINE = _rsa_key(SECRETS["SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"])
# A key google-auth cannot load: the adapter fails at once. (A valid key with an unreachable token
# endpoint is tests/test_bigquery_errors.py's.)
BIGQUERY_KEY_LINE = _token("bqprivatekey")
BIGQUERY_KEYFILE_JSON = json.dumps(
    {
        "type": "service_account",
        "project_id": "secret-test",
        "private_key_id": BIGQUERY_KEY_ID,
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{BIGQUERY_KEY_LINE}\n-----END PRIVATE KEY-----\n",
        "client_email": "reader@secret-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"http://127.0.0.1:{closed_port()}/token",
    }
)


def profile(project: Path, snowflake: Any, dynamodb: Any) -> str:
    """profiles.yml: dev (DuckDB) and sf (fakesnow) sync to DynamoDB Local; more targets that only log in."""

    def sf(database: str, **login: Any) -> dict[str, Any]:
        return {
            "type": "snowflake",
            "account": "featuresql",
            "user": "tester",
            "host": snowflake.host,
            "port": snowflake.port,
            "protocol": "http",
            "database": database,
            "schema": "features",
            "login_timeout": 10,
            "connect_args": {
                "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
                "network_timeout": 1,
            },
            **login,
        }

    def online(table: str) -> dict[str, Any]:
        return {"store": "dynamodb", "table": table, "endpoint_url": dynamodb.endpoint_url, "region": REGION}

    key_path = project / "snowflake_key.p8"
    key_path.write_bytes(_SF_PEM)
    secret_password = "{{ env_var('FEATURESQL_SECRET_SNOWFLAKE_PASSWORD') }}"
    targets = {
        "dev": {"type": "duckdb", "path": "target/cash_advance.duckdb", "online": online(DYNAMODB_TABLE)},
        "sf": sf("SECRETS", password=secret_password, online=online(SNOWFLAKE_TABLE)),
        "sf_plain": sf("SECRETS", password="{{ env_var('SNOWFLAKE_PASSWORD') }}"),
        "sf_keypair": sf(
            "SECRETS",
            private_key_path=str(key_path),
            private_key_passphrase="{{ env_var('SNOWFLAKE_PRIVATE_KEY_PASSPHRASE') }}",
        ),
        "sf_bad_passphrase": sf(
            "SECRETS", private_key_path=str(key_path), private_key_passphrase="{{ env_var('SNOWFLAKE_PASSWORD') }}"
        ),
        "sf_oauth": sf("SECRETS", authenticator="oauth", token="{{ env_var('SNOWFLAKE_TOKEN') }}"),
        "sf_literal": sf("SECRETS", password=LITERAL_PASSWORD),
        "sf_down": {**sf("SECRETS", password=secret_password), "port": closed_port(), "login_timeout": 2},
        "bq": {
            "type": "bigquery",
            "project": "secret-test",
            "dataset": "features",
            "method": "service-account-json",
            "keyfile_json": "{{ env_var('BIGQUERY_KEYFILE_JSON') }}",
            "api_endpoint": f"http://127.0.0.1:{closed_port()}",
            "job_timeout_seconds": 5,
        },
        "dynamo_down": {
            "type": "duckdb",
            "path": "target/cash_advance.duckdb",
            "online": {**online("down"), "endpoint_url": f"http://127.0.0.1:{closed_port()}"},
        },
    }
    return yaml.safe_dump({"target": "dev", "targets": targets}, sort_keys=False, width=200)


BROKEN_MODEL = (
    "features/broken_model.sql",
    None,
    "{{ config(entity='user', timestamp='ts') }}\n"
    "select user_id, ts, cast(status as integer) as status_number from {{ source('bank', 'transactions') }}\n",
)
SECRET_IN_MODEL = (
    "features/secret_model.sql",
    None,
    "{{ config(entity='user', timestamp='ts') }}\n"
    "select user_id, ts, '{{ env_var(\"FEATURESQL_SECRET_SNOWFLAKE_PASSWORD\") }}' as leaked\n"
    "from {{ source('bank', 'transactions') }}\n",
)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    base = tmp_path_factory.mktemp("secrets")
    with running_fakesnow(base / "fakesnow") as snowflake, running_dynamodb_local(base / "dynamodb") as dynamodb:
        project = copy_example(base / "project")
        (project / "profiles.yml").write_text(profile(project, snowflake, dynamodb), encoding="utf-8")
        (project / "spine.csv").write_text("user_id,ts\n1,2026-06-01\n2,2026-06-15 12:00:00\n3,2026-06-30\n")
        (project / "swipes.jsonl").write_text('{"transaction_id": 1, "user_id": 1, "ts": "2026-06-30T00:00:00Z"}\n')
        done = Session(
            secrets={
                **SECRETS,
                "literal password": LITERAL_PASSWORD,
                "bigquery key id": BIGQUERY_KEY_ID,
                "bigquery private key": BIGQUERY_KEY_LINE,
                "snowflake private key": SNOWFLAKE_KEY_LINE,
            }
        )
        run_every_command(done, base, project)
        scan_servers(done, project)
        scan_tree(done, project, skip={"profiles.yml", "snowflake_key.p8"})
        scan_tree(done, base / "newproject", skip=set())
        dump_snowflake_state(done, project, snowflake)
        yield done


def expect(session: Session, folder: Path, code: int | tuple[int, ...], *args: str) -> CliResult:
    """Run one command, record its output, and check its exit code (one of ``code``)."""
    result = run_cli(folder, *args)
    session.output(" ".join(args), result)
    codes = code if isinstance(code, tuple) else (code,)
    assert result.exit_code in codes, f"{' '.join(args)}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def run_every_command(s: Session, base: Path, project: Path) -> None:
    vars_ = ("--vars", TINY_VARS)
    expect(s, base, 0, "init", "newproject")
    expect(s, base / "newproject", 0, "run")
    for target in ("dev", "sf"):
        t = ("--target", target)
        expect(s, project, 0, *vars_, "debug", *t)
        expect(s, project, 0, *vars_, "ls", *t)
        expect(s, project, 0, *vars_, "ls", "--output", "json", *t)
        expect(s, project, 0, *vars_, "compile", *t)
        expect(s, project, 0, *vars_, "run", "--dry-run", "--now", NOW, *t)
        expect(s, project, 0, *vars_, "run", "--now", NOW, "--log-format", "json", *t)
        expect(s, project, 0, *vars_, "--debug", "run", "--now", NOW, *t)
        expect(s, project, 0, *vars_, "test", "--now", NOW, *t)
        expect(s, project, 0, *vars_, "freshness", "--now", NOW, *t)
        expect(s, project, 0, *vars_, "sync", "--now", NOW, *t)
        # the online check's verdict is not this test's business (it may report items out of date)
        expect(s, project, (0, 1), *vars_, "test", "--online", "--now", NOW, "-s", "test_type:online", *t)
        expect(s, project, 0, *vars_, "read", "user_id=1", "user_id=2", "-f", "user_transactions", "--now", NOW, *t)
        expect(s, project, 2, *vars_, "read", "user_id=1", "-f", "no_such_model", *t)
        # the example has no stream model online: the push is refused
        expect(s, project, 2, *vars_, "push", "bank.transactions", "swipes.jsonl", *t)
        out = f"training_{target}.parquet"
        expect(s, project, 0, *vars_, "extract", "--spine", "spine.csv", "-f", "user_transactions", "--out", out, *t)
        expect(
            s,
            project,
            0,
            *vars_,
            "extract",
            "--spine",
            "spine.csv",
            "-f",
            "user_profile",
            "--out",
            f"training_{target}.csv",
            *t,
        )
        expect(s, project, 0, *vars_, "docs", "generate", *t)
        expect(s, project, 0, *vars_, "package-lambda", "--out", f"dist/{target}.zip", *t)
    # logging in every way, and failing to
    for target in ("sf_plain", "sf_keypair", "sf_oauth", "sf_literal"):
        expect(s, project, 0, *vars_, "debug", "--target", target)
    # exit 1: the login failed; exit 2: bq's key cannot be used at all, a profile error
    for target, code in (("sf_bad_passphrase", 1), ("sf_down", 1), ("bq", 2)):
        expect(s, project, code, *vars_, "debug", "--target", target)
        expect(s, project, code, *vars_, "--debug", "run", "--now", NOW, "--target", target)
        expect(s, project, 0, *vars_, "compile", "--target", target)
    expect(s, project, 1, *vars_, "--debug", "sync", "--now", NOW, "--target", "dynamo_down")
    # a failing model, with and without --debug, on Snowflake
    model = project / BROKEN_MODEL[0]
    model.write_text(BROKEN_MODEL[2], encoding="utf-8")
    expect(s, project, 1, *vars_, "run", "--now", NOW, "--target", "sf", "-s", "broken_model")
    expect(s, project, 1, *vars_, "--debug", "run", "--now", NOW, "--target", "sf", "-s", "broken_model")
    model.unlink()
    # a model asking for a secret variable is refused, naming the variable only
    model = project / SECRET_IN_MODEL[0]
    model.write_text(SECRET_IN_MODEL[2], encoding="utf-8")
    refused = expect(s, project, 2, *vars_, "compile", "--target", "sf")
    assert "FEATURESQL_SECRET_SNOWFLAKE_PASSWORD" in refused.stderr and "profiles.yml" in refused.stderr
    expect(s, project, 2, *vars_, "--debug", "run", "--now", NOW, "--target", "sf")
    model.unlink()
    expect(s, project, 0, *vars_, "compile", "--target", "sf")  # the compiled SQL on disk is the clean one


def scan_servers(s: Session, project: Path) -> None:
    """``serve`` and ``docs serve``: start, make requests (good and bad), stop with Ctrl-C."""
    for target in ("dev", "sf"):
        process = spawn_cli(project, "serve", "--port", "0", "--target", target)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            url = re.search(r"http://\S+/features", line)
            assert url, line + (process.stderr.read() if process.stderr else "")
            root = url.group(0).removesuffix("/features")
            s.add(f"serve {target}: /health", http(root + "/health"))
            s.add(f"serve {target}: GET", http(root + "/features?user_id=1,2&features=user_transactions"))
            s.add(
                f"serve {target}: POST",
                http(root + "/features", b'{"entities": {"user_id": [1]}, "features": ["user_spend_ratios"]}'),
            )
            s.add(f"serve {target}: bad POST", http(root + "/features", b'{"entities": '))
            s.add(f"serve {target}: unknown", http(root + "/features?user_id=1&features=nope"))
        finally:
            stop(s, process, f"serve --target {target}", line)
    process = spawn_cli(project, "docs", "serve", "--port", "0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"http://\S+?/", line)
        assert url, line
        for page in ("", "catalog.json", "index.html", "missing"):
            s.add(f"docs serve: /{page}", http(url.group(0) + page))
    finally:
        stop(s, process, "docs serve", line)


def stop(s: Session, process: subprocess.Popen[str], label: str, first_line: str) -> None:
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    s.output(label, CliResult(process.returncode, first_line + out, err))


def scan_tree(s: Session, root: Path, skip: set[str]) -> None:
    """Every file under ``root`` as bytes, and the rows inside the formats that compress them."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name in skip or path.name.endswith(".wal"):
            continue
        s.files += 1
        label = str(path.relative_to(root))
        s.add(label, path.read_bytes())
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    s.zip_members[f"{label}!{name}"] = archive.read(name)
                    s.add(f"{label}!{name}", archive.read(name))
        elif path.suffix == ".parquet":
            s.add(f"{label} (rows)", json.dumps(pq.read_table(path).to_pylist(), default=str))
        elif path.suffix == ".csv":
            s.add(f"{label} (rows)", json.dumps(pa_csv.read_csv(path).to_pylist(), default=str))
        elif path.suffix == ".duckdb":
            s.add(f"{label} (rows)", duckdb_rows(path))
        elif path.name.endswith("-iam-policy.json") and label.startswith("dist/dev"):
            s.policy = json.loads(path.read_text(encoding="utf-8"))


def duckdb_rows(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = connection.execute("select schema_name, table_name from duckdb_tables()").fetchall()
        return json.dumps(
            {
                f"{schema}.{table}": connection.execute(f'select * from "{schema}"."{table}"').fetchall()
                for schema, table in tables
            },
            default=str,
        )


def dump_snowflake_state(s: Session, project: Path, endpoint: Any) -> None:
    """featuresql's own tables in the Snowflake warehouse (run log, intervals, locks, online mirrors)."""
    import snowflake.connector

    connection = snowflake.connector.connect(**endpoint.connect_kwargs(database="SECRETS", schema="FEATURESQL"))
    try:
        cursor = connection.cursor()
        cursor.execute("select table_name from information_schema.tables where table_schema = 'FEATURESQL'")
        for (table,) in cursor.fetchall():
            cursor.execute(f"select * from featuresql.{table}")
            s.add(f"snowflake featuresql.{table}", json.dumps(cursor.fetchall(), default=str))
            s.files += 1
    finally:
        connection.close()


# -- the checks --------------------------------------------------------------------------


def test_no_secret_appears_in_any_output_or_artifact(session: Session) -> None:
    found = leaks(session)
    print(
        f"\nsecrets: {len(session.secrets)} values x encodings; commands run: {len(session.commands)}; "
        f"files scanned: {session.files}; artifacts scanned: {len(session.artifacts)}; "
        f"secrets found: {len(found)}"
    )
    assert found == []


def test_the_scan_would_find_a_leak() -> None:
    """The detector itself: each encoding of a secret inside a longer text is found."""
    secret = SECRETS["FEATURESQL_SECRET_SNOWFLAKE_PASSWORD"]
    encoded = [base64.b64encode(prefix + secret.encode() + b"tail").decode() for prefix in (b"", b"a", b"ab")]
    texts = [f"x{secret}y", quote(secret, safe=""), json.dumps({"p": secret}), *encoded]
    for text in texts:
        probe = Session(secrets={"s": secret})
        probe.add("probe", text)
        assert leaks(probe) == ["s in probe"], text


def test_every_command_was_run(session: Session) -> None:
    listed = subprocess.run(command("--help"), capture_output=True, text=True, check=True).stdout
    names = re.findall(r"^  ([a-z-]+) ", listed.split("Commands:")[1], re.MULTILINE)
    words = [label.split() for label in session.commands]
    missing = [name for name in names if not any(name in label for label in words)]
    assert len(names) >= 13 and not missing, f"commands not run: {missing}"
    assert any("generate" in label for label in words) and any("serve" in label for label in words)


def test_the_lambda_zip_holds_no_credentials(session: Session) -> None:
    members = session.zip_members
    assert members, "package-lambda wrote no zip"
    names = {name.split("!", 1)[1] for name in members}
    assert names == {
        "featuresql/__init__.py",
        "online_manifest.json",
        *(
            f"featuresql/serving/{m}.py"
            for m in ("__init__", "items", "manifest", "request", "request_columns", "reader", "tables", "handler")
        ),
        *(f"featuresql/serving/{m}.py" for m in ("expressions", "expression_strings", "expression_times")),
        "featuresql/serving/expression_errors.py",
        *(f"featuresql/serving/{m}.py" for m in ("partials", "push_records", "stream_items", "stream_reads")),
        "featuresql/serving/stream_state.py",
    }
    for name, data in members.items():
        assert not AWS_KEY_PATTERN.search(data), name
        assert b"aws_secret_access_key" not in data.lower() and ACCESS_KEY_ID.encode() not in data, name
    for name in (name for name in members if name.endswith("!online_manifest.json")):
        store = json.loads(members[name])["store"]
        assert "endpoint_url" not in store, name  # DynamoDB Local's address stays out of a deployed reader
    assert not any(name.endswith(("profiles.yml", ".env", ".p8", ".pem")) for name in names)


def test_the_iam_policy_grants_only_batch_get_item_on_the_one_table(session: Session) -> None:
    policy = session.policy
    assert policy["Version"] == "2012-10-17"
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow" and set(statement) == {"Sid", "Effect", "Action", "Resource"}
    # featuresql/serving/tables.py calls batch_get_item only (tested below)
    assert statement["Action"] == ["dynamodb:BatchGetItem"]
    assert statement["Resource"] == f"arn:aws:dynamodb:{REGION}:${{aws:PrincipalAccount}}:table/{DYNAMODB_TABLE}"
    assert "*" not in json.dumps(policy)


def test_the_reader_calls_only_batch_get_item() -> None:
    """The reader reads; only push (``tables.set_attributes``, which the reader never calls) writes."""
    serving = Path(__file__).resolve().parent.parent / "featuresql" / "serving"
    calls: dict[str, set[str]] = {}
    for path in serving.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        calls[path.name] = set(re.findall(r"client\.([a-z_]+)\(", text))
        if path.name in ("reader.py", "handler.py", "stream_reads.py"):
            assert "set_attributes" not in text and "featuresql.serving.push" not in text, path.name
    assert set().union(*calls.values()) == {"batch_get_item", "update_item"}
    assert [name for name, found in calls.items() if "update_item" in found] == ["tables.py"]

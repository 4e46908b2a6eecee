"""BigQuery that cannot be reached or signed in to: one line, the right cause, a bounded wait.

google-cloud-bigquery retries an unanswered request for ten minutes by default, and
google-auth a token request with it; a scheduled run must instead fail within the
target's ``job_retry_deadline_seconds``, saying what is wrong and how to fix it,
without a secret of the key. A job that merely runs long is waited for (the
deadline bounds requests, not jobs). Each case runs ``featuresql`` as a process,
as a scheduler does, except the ones that look at a single call of the adapter.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CliResult
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from featuresql.adapters.bigquery import BigQueryAdapter, BigQueryTarget
from projects import copy_example

from featuresql.errors import ExecutionError

pytestmark = pytest.mark.bigquery

KEY_ID = "0f3c9a1be2d84c55a7e61b2f9d08c4e3a1b5c7d9"
PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)
SECRET_LINES = [line for line in PEM.splitlines() if not line.startswith("-----")]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_account_key(token_uri: str, **changes: Any) -> dict[str, Any]:
    key = {
        "type": "service_account",
        "project_id": "acme-data",
        "private_key_id": KEY_ID,
        "private_key": PEM,
        "client_email": "runner@acme-data.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    return {name: value for name, value in {**key, **changes}.items() if value is not None}


@pytest.fixture
def debug(tmp_path: Path, cli_process: Callable[..., CliResult]) -> Callable[..., tuple[CliResult, float]]:
    """``featuresql debug --target bq`` on the example project with ``settings`` for target bq; and its seconds."""
    project = copy_example(tmp_path / "project")

    def run(settings: dict[str, Any], key_json: str = "") -> tuple[CliResult, float]:
        target = {"type": "bigquery", "project": "acme-data", "dataset": "features", **settings}
        profile = {"target": "bq", "targets": {"bq": target}}
        (project / "profiles.yml").write_text(yaml.safe_dump(profile), encoding="utf-8")
        began = time.monotonic()
        result = cli_process(project, "debug", "--target", "bq", env={"BQ_KEY": key_json})
        return result, time.monotonic() - began

    return run


def one_error_line(result: CliResult) -> str:
    """The command's single ``Error:`` line, after checking nothing else (a traceback, a secret) was said."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    for secret in (KEY_ID, *SECRET_LINES):
        assert secret not in output, f"a secret of the key was shown:\n{output}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and len(result.stderr_lines) == 1, result.stderr
    assert "rejected a statement" not in errors[0] and "'...'" not in errors[0], errors[0]
    return errors[0]


FROM_ENV = "{{ env_var('BQ_KEY') }}"
GOOGLE = "https://oauth2.googleapis.com/token"
NOT_A_KEY = f"-----BEGIN PRIVATE KEY-----\n{SECRET_LINES[1]}\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(
            service_account_key(GOOGLE, private_key=NOT_A_KEY),
            "keyfile_json could not be used as a service-account key (its private_key cannot be loaded)",
            id="private key",
        ),
        pytest.param(
            service_account_key(GOOGLE, client_email=None),
            "keyfile_json could not be used as a service-account key (missing fields client_email)",
            id="missing field",
        ),
        pytest.param(
            {"type": "authorized_user", "client_id": "x", "client_secret": KEY_ID, "refresh_token": KEY_ID},
            "keyfile_json is a key of type authorized_user, not a service-account key",
            id="user credentials",
        ),
        pytest.param(f"not json {KEY_ID}", "keyfile_json is not a JSON object", id="not json"),
    ],
)
def test_a_key_that_cannot_be_used_is_a_config_error_naming_where_it_came_from(debug, key, expected):
    text = key if isinstance(key, str) else json.dumps(key)
    result, seconds = debug({"method": "service-account-json", "keyfile_json": FROM_ENV}, text)
    assert result.exit_code == 2, result.stderr
    assert f"Error: BigQuery {expected}" in one_error_line(result)
    assert seconds < 30


def test_a_key_file_that_cannot_be_used_names_the_file(debug, tmp_path):
    keyfile = tmp_path / "key.json"
    keyfile.write_text(json.dumps(service_account_key(GOOGLE, private_key=NOT_A_KEY)))
    result, _ = debug({"method": "service-account", "keyfile": str(keyfile)})
    assert result.exit_code == 2, result.stderr
    assert f"Error: BigQuery keyfile {keyfile} could not be used as a service-account key" in one_error_line(result)


def test_an_unreachable_token_endpoint_fails_within_the_deadline(debug):
    token_uri = f"http://127.0.0.1:{closed_port()}/token"
    settings = {"method": "service-account-json", "keyfile_json": FROM_ENV, "job_retry_deadline_seconds": 2}
    result, seconds = debug(settings, json.dumps(service_account_key(token_uri)))
    assert result.exit_code == 1, result.stderr
    line = one_error_line(result)
    assert (
        f"cannot sign in to BigQuery with keyfile_json: Google's token endpoint {token_uri} did not answer "
        "(Connection refused; retried for up to 2 s)" in line
    )
    assert seconds < 30  # google-auth and the client's defaults: well past 300 s


class _RefusingTokenEndpoint(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_token_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RefusingTokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


def test_a_key_google_refuses_is_a_config_error(debug, refusing_token_endpoint):
    settings = {"method": "service-account-json", "keyfile_json": FROM_ENV}
    result, seconds = debug(settings, json.dumps(service_account_key(refusing_token_endpoint)))
    assert result.exit_code == 2, result.stderr
    assert (
        "Error: Google refused the BigQuery credentials of keyfile_json (invalid_grant: Invalid JWT Signature.)"
        in one_error_line(result)
    )
    assert seconds < 30


def test_an_endpoint_that_is_gone_fails_within_the_deadline(debug):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result, seconds = debug({"method": "anonymous", "api_endpoint": endpoint, "job_retry_deadline_seconds": 2})
    assert result.exit_code == 1, result.stderr
    line = one_error_line(result)
    assert (
        f"Error: BigQuery at {endpoint} (project acme-data) did not answer (Connection refused; retried for "
        "up to 2 s): check that it is up and reachable, or raise job_retry_deadline_seconds" in line
    )
    assert seconds < 30


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A server that accepts connections and never answers (a proxy or a network path that hangs)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the server closed
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for connection in accepted:
            connection.close()


def test_an_endpoint_that_never_answers_fails_within_the_deadline(silent_endpoint, tmp_path):
    settings = {
        "project": "p",
        "dataset": "d",
        "method": "anonymous",
        "api_endpoint": silent_endpoint,
        "job_retry_deadline_seconds": 2,
    }
    config = BigQueryTarget.model_validate(settings)
    adapter = BigQueryAdapter(config, tmp_path)
    began = time.monotonic()
    with pytest.raises(ExecutionError, match=r"did not answer \(timed out; retried for up to 2 s\)"):
        adapter.execute("select 1")
    assert time.monotonic() - began < 15
    began = time.monotonic()  # the clean-up that follows a failure does not wait once more
    with pytest.raises(ExecutionError, match="did not answer"):
        adapter.execute("ROLLBACK TRANSACTION")
    assert time.monotonic() - began < 1
    adapter.close()


# -- against the emulator: the deadline bounds requests, not jobs ---------------------------------

PAIRS = 40_000  # the query counts pairs of 1..PAIRS summing to a multiple of 7: some ten seconds of work
LONG_QUERY = (
    f"select count(*) as n from unnest(generate_array(1, {PAIRS})) as a, "
    f"unnest(generate_array(1, {PAIRS})) as b where mod(a + b, 7) = 0"
)


def _pairs() -> int:
    residues = [sum(1 for a in range(1, PAIRS + 1) if a % 7 == r) for r in range(7)]
    return sum(residues[r] * residues[(7 - r) % 7] for r in range(7))


def _emulator_adapter(endpoint: Any, tmp_path: Path, **settings: Any) -> BigQueryAdapter:
    config = BigQueryTarget.model_validate(
        {
            "project": endpoint.project,
            "dataset": "features",
            "method": "anonymous",
            "api_endpoint": endpoint.api_endpoint,
            **settings,
        }
    )
    return BigQueryAdapter(config, tmp_path)


def test_a_job_running_longer_than_the_deadline_is_waited_for(bigquery_server, tmp_path):
    adapter = _emulator_adapter(bigquery_server, tmp_path, job_retry_deadline_seconds=3)
    began = time.monotonic()
    rows = adapter.fetch_arrow(LONG_QUERY).to_pylist()
    seconds = time.monotonic() - began
    adapter.close()
    assert rows == [{"n": _pairs()}]
    assert seconds > 2 * 3, f"the query took {seconds:.1f} s: too short to show anything (raise PAIRS)"


def test_a_job_past_job_timeout_seconds_is_one_line(bigquery_server, tmp_path):
    adapter = _emulator_adapter(bigquery_server, tmp_path, job_timeout_seconds=2, job_retry_deadline_seconds=3)
    began = time.monotonic()
    with pytest.raises(ExecutionError) as raised:
        adapter.fetch_arrow(LONG_QUERY)
    adapter.close()
    message = raised.value.one_line()
    assert message.startswith("BigQuery job ran longer than job_timeout_seconds (2 s), so featuresql cancelled it")
    assert time.monotonic() - began < 2 + 3 + 10

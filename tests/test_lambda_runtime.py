"""The Lambda Runtime API emulator, driven by the real runtime interface client (awslambdaric)."""

from __future__ import annotations

import base64
import json
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lambda_function import LambdaFunction, running_lambda
from lambda_runtime import EVENTS_DIR, load_event

ECHO_HANDLER = """
import os
import time


def handler(event, context):
    if event.get("raise"):
        raise ValueError(f"bad request: {event['raise']}")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(int(event["exit"]))
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "client_context": context.client_context.custom if context.client_context else None,
        "cognito_identity_id": context.identity.cognito_identity_id,
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        "region": os.environ.get("AWS_REGION"),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
    }
"""

EVENT_NAMES = sorted(path.stem for path in EVENTS_DIR.glob("*.json"))


@pytest.fixture(scope="module")
def task_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("task")
    (root / "echo.py").write_text(ECHO_HANDLER)
    return root


@pytest.fixture(scope="module")
def echo(task_root: Path) -> Iterator[LambdaFunction]:
    with running_lambda("echo.handler", cwd=task_root, function_name="echo", memory_mb=256) as function:
        yield function


def test_round_trip_returns_the_handler_payload(echo: LambdaFunction) -> None:
    result = echo.invoke({"entities": [{"user_id": 1}], "features": ["user_transactions"]})
    assert result.ok, result.payload
    assert result.payload["event"] == {"entities": [{"user_id": 1}], "features": ["user_transactions"]}
    assert result.content_type == "application/json"
    assert result.payload["region"] == "us-east-1"
    assert result.payload["task_root"] == str(echo.task_root)
    assert result.duration_s > 0


def test_raising_handler_returns_the_error_shape(echo: LambdaFunction) -> None:
    result = echo.invoke({"raise": "no entities"})
    assert not result.ok
    assert result.function_error == "Unhandled"
    assert result.error_type == "ValueError"
    assert result.error_message == "bad request: no entities"
    assert result.payload["requestId"] == result.request_id
    assert any("echo.py" in frame for frame in result.payload["stackTrace"])
    # The runtime keeps serving after a handler error.
    assert echo.invoke({"after": "error"}).ok


def test_context_carries_request_id_deadline_and_identity(echo: LambdaFunction) -> None:
    result = echo.invoke(
        {"ping": 1},
        client_context={"custom": {"caller": "tests"}},
        cognito_identity={"cognitoIdentityId": "us-east-1:abc", "cognitoIdentityPoolId": "us-east-1:pool"},
    )
    assert result.ok, result.payload
    payload = result.payload
    assert payload["request_id"] == result.request_id
    assert 25_000 < payload["remaining_ms"] <= 30_000  # default function timeout: 30 s
    assert payload["function_name"] == "echo"
    assert payload["memory_limit_in_mb"] == "256"
    assert payload["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:echo"
    assert payload["client_context"] == {"caller": "tests"}
    assert payload["cognito_identity_id"] == "us-east-1:abc"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", payload["trace_id"])


def test_cold_start_is_reported(echo: LambdaFunction) -> None:
    echo.invoke({})
    assert echo.init_duration_s is not None and echo.init_duration_s > 0
    assert echo.cold_start_s is not None and echo.cold_start_s >= echo.init_duration_s
    print(f"\ncold start {echo.cold_start_s * 1000:.1f} ms (init {echo.init_duration_s * 1000:.1f} ms)")


def test_sequential_invokes_are_fast(echo: LambdaFunction) -> None:
    echo.invoke({"warm": True})
    durations = []
    for i in range(50):
        started = time.perf_counter()
        result = echo.invoke({"i": i})
        durations.append(time.perf_counter() - started)
        assert result.ok and result.payload["event"] == {"i": i}
    median_ms = statistics.median(durations) * 1000
    print(f"\n50 invokes: median {median_ms:.2f} ms, max {max(durations) * 1000:.2f} ms")
    # Nagle + delayed ACK would put every invoke at 40 ms or more; a loaded machine stays far below.
    assert median_ms < 20


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_recorded_events_round_trip(echo: LambdaFunction, name: str) -> None:
    event = load_event(name)
    result = echo.invoke(event)
    assert result.ok, result.payload
    assert result.payload["event"] == event


def test_import_error_comes_back_as_init_error(task_root: Path) -> None:
    with running_lambda("missing_module.handler", cwd=task_root) as function:
        result = function.invoke({}, timeout=10)
    assert result.function_error == "Unhandled"
    assert result.error_type == "Runtime.ImportModuleError"
    assert "missing_module" in (result.error_message or "")


def test_timeout_and_crash_are_reported_and_the_runtime_replaced(task_root: Path) -> None:
    with running_lambda("echo.handler", cwd=task_root, function_timeout_s=0.5) as function:
        started = time.perf_counter()
        result = function.invoke({"sleep": 5})
        assert result.error_type == "Sandbox.Timedout"
        assert time.perf_counter() - started < 3
        crashed = function.invoke({"exit": 3})
        assert crashed.error_type == "Runtime.ExitError"
        assert "exit status 3" in (crashed.error_message or "")
        assert function.invoke({"after": "crash"}).ok
        assert len(function.cold_starts) == 3


def test_event_fixtures_are_consistent() -> None:
    body = {"entities": [{"user_id": 1}], "features": ["user_transactions"]}
    for kind in ("apigw_v1", "apigw_v2", "function_url"):
        plain, encoded, get = load_event(kind), load_event(f"{kind}_base64"), load_event(f"{kind}_get")
        assert json.loads(plain["body"]) == body and plain["isBase64Encoded"] is False
        assert encoded["isBase64Encoded"] is True
        assert json.loads(base64.b64decode(encoded["body"])) == body
        assert get.get("body") is None and get["isBase64Encoded"] is False
        assert get["queryStringParameters"]["user_id"] == "1"
    assert load_event("apigw_v1")["httpMethod"] == "POST"
    assert load_event("apigw_v1_get")["multiValueQueryStringParameters"]["features"] == [
        "user_transactions",
        "user_balance",
    ]
    for kind in ("apigw_v2", "function_url"):
        assert load_event(kind)["version"] == "2.0"
        assert load_event(f"{kind}_get")["queryStringParameters"]["features"] == "user_transactions,user_balance"
    url = load_event("function_url")["requestContext"]
    assert re.fullmatch(r"[a-z0-9]{32}\.lambda-url\.[a-z0-9-]+\.on\.aws", url["domainName"])
    assert url["domainPrefix"] == url["apiId"] == url["domainName"].split(".")[0]

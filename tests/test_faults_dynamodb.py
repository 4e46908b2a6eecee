"""`featuresql sync` to DynamoDB through faults on the wire, a killed sync and a restarted server.

The example project is built once and synced once without faults (the
baseline). Each test syncs a copy of it with the CLI, as a scheduler does, to a
table of its own on DynamoDB Local, through ``fault_proxy`` (throttling, 500s,
cancelled transactions, timeouts, dropped connections, writes that arrive late)
or straight to a server that is stopped and restarted mid-sync. Either the sync
rides the fault out, or it fails with one clear line and exit code 1 and the
next sync finishes; the table then holds the baseline's items (live ones: DynamoDB
Local deletes expired items by the wall clock), never an older value over a newer one.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import cli_process
import fault_proxy as faults
import pytest
from conftest import CliResult
from dynamodb_server import DynamoEndpoint, dynamodb_local_with_credentials
from fault_proxy import FaultProxy
from online_stores import NOW, VARS, assert_same_items, scan, use_dynamodb
from projects import built_example

from featuresql.serving.items import MARKER_KEY

pytestmark = pytest.mark.dynamodb

VARS_ARG = json.dumps(VARS)
SYNC_NOW = NOW.strftime("%Y-%m-%dT%H:%M:%S")
WRITE = "TransactWriteItems"
TTL = "_ttl"
LIVE_MARGIN = 600  # seconds: an item expiring sooner may be swept between two scans


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoEndpoint]:
    with dynamodb_local_with_credentials(tmp_path_factory.mktemp("dynamodb")) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def proxy(server: DynamoEndpoint) -> Iterator[FaultProxy]:
    with FaultProxy(server.port, seed=9) as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults_left(proxy: FaultProxy) -> Iterator[None]:
    yield
    proxy.clear()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_example(tmp_path_factory.mktemp("built") / "p", variables=VARS, now=NOW)


@pytest.fixture(scope="module")
def baseline(built: Path, server: DynamoEndpoint, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The items of an uninterrupted sync, without faults."""
    project = project_for(built, tmp_path_factory.mktemp("baseline"), server.endpoint_url, "baseline")
    assert_synced(sync(project))
    return scan(server, "baseline")


def project_for(built: Path, folder: Path, endpoint_url: str, table: str, workers: int = 3) -> Path:
    """A copy of the built project whose dev target syncs to ``table`` at ``endpoint_url``."""
    project = Path(shutil.copytree(built, folder / "p"))
    use_dynamodb(project, endpoint_url, table, workers)
    return project


def sync(project: Path, now: str = SYNC_NOW) -> CliResult:
    return cli_process.run(project, "sync", "--now", now, variables=VARS_ARG)


def assert_synced(result: CliResult) -> None:
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def assert_failed_clearly(result: CliResult, *phrases: str) -> None:
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr_lines if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


def assert_same_online(endpoint: DynamoEndpoint, table: str, baseline: dict[str, Any]) -> None:
    """The table's live items equal the baseline's (but for the sync's version and run id)."""
    cutoff = time.time() + LIVE_MARGIN

    def live(items: dict[str, Any]) -> dict[str, Any]:
        return {
            pk: item
            for pk, item in items.items()
            if pk != MARKER_KEY and (TTL not in item or int(item[TTL]["N"]) > cutoff)
        }

    expected = live(baseline)
    assert len(expected) > 500  # most items live long: the comparison means something
    assert_same_items(live(scan(endpoint, table)), expected, rel_tol=1e-9)


def assert_nothing_left_to_sync(project: Path) -> None:
    """A further sync finds nothing changed: the mirror agrees with what the store holds."""
    result = sync(project)
    assert_synced(result)
    assert result.stdout.count(" 0 changed") == 2, result.stdout


# -- faults the sync rides out ------------------------------------------------------------

RIDDEN_OUT = {
    # botocore retries 3 times, then the store's own loop (with backoff) takes over
    "throttled": [(faults.throttle(), range(1, 5))],
    "throughput_exceeded": [(faults.throttle("ProvisionedThroughputExceededException"), range(2, 7))],
    "internal_errors": [(faults.internal_error(), (1, 2, 3, 5))],
    "cancelled_for_throttling_and_conflicts": [
        (faults.cancel("None", "ThrottlingError"), (1,)),
        (faults.cancel("TransactionConflict"), (2, 3)),
    ],
    "connections_dropped": [(faults.drop(), (1, 2)), (faults.drop(after_forwarding=True), (4, 5))],
    "answers_later_than_the_read_timeout": [(faults.delay(7), (2,))],  # the client reads for 5 s
}


@pytest.mark.parametrize("case", RIDDEN_OUT)
def test_the_sync_rides_out(
    case: str, built: Path, server: DynamoEndpoint, proxy: FaultProxy, baseline: dict[str, Any], tmp_path: Path
) -> None:
    table = f"t_{case}"
    project = project_for(built, tmp_path, proxy.url, table)
    rules = [proxy.add(WRITE, fault, nth=nth) for fault, nth in RIDDEN_OUT[case]]
    assert_synced(sync(project))
    assert all(rule.applied == len(rule.nth) for rule in rules), [(r.applied, r.nth) for r in rules]
    proxy.clear()
    assert_same_online(server, table, baseline)
    assert_nothing_left_to_sync(project)


def test_the_sync_rides_out_random_faults(
    built: Path, server: DynamoEndpoint, proxy: FaultProxy, baseline: dict[str, Any], tmp_path: Path
) -> None:
    """A seeded fifth of the writes meets one fault or another."""
    project = project_for(built, tmp_path, proxy.url, "t_random")
    chosen = [
        faults.throttle(),
        faults.internal_error(),
        faults.drop(),
        faults.drop(after_forwarding=True),
        faults.cancel("None", "TransactionConflict"),
    ]
    rules = [proxy.add(WRITE, fault, rate=0.05) for fault in chosen]
    assert_synced(sync(project))
    assert sum(rule.applied for rule in rules) > 0
    proxy.clear()
    assert_same_online(server, "t_random", baseline)
    assert_nothing_left_to_sync(project)


# -- faults that outlast the retries: a clear failure, then the next sync finishes ---------

# (Throttling that outlasts the retries: test_online_dynamodb; it takes 20 s and more to give up.)
OUTLASTING = {
    "connections_dropped": (faults.drop(), "cannot reach DynamoDB to write to t_outlasting_connections_dropped"),
}


@pytest.mark.parametrize("case", OUTLASTING)
def test_a_fault_that_outlasts_the_retries_fails_the_sync_clearly_and_the_next_sync_finishes(
    case: str, built: Path, server: DynamoEndpoint, proxy: FaultProxy, baseline: dict[str, Any], tmp_path: Path
) -> None:
    table = f"t_outlasting_{case}"
    project = project_for(built, tmp_path, proxy.url, table, workers=1)  # one batch retried at a time: quicker
    fault, phrase = OUTLASTING[case]
    proxy.add(WRITE, fault, rate=1.0)
    assert_failed_clearly(sync(project), phrase, "sync again")
    proxy.clear()
    assert_synced(sync(project))
    assert_same_online(server, table, baseline)
    assert_nothing_left_to_sync(project)


# -- late writes, killed syncs, reads --------------------------------------------------------


def test_a_write_of_an_older_sync_that_arrives_late_never_replaces_a_newer_value(
    built: Path, server: DynamoEndpoint, proxy: FaultProxy, baseline: dict[str, Any], tmp_path: Path
) -> None:
    """An older sync's first transaction is held in the proxy past the client's timeout (the client sends it
    again, and goes on); a newer sync runs; then the held request reaches the server."""
    project = project_for(built, tmp_path, proxy.url, "t_late")
    release, forwarded = threading.Event(), threading.Event()
    held = proxy.add(WRITE, faults.hold(release, forwarded), nth=(1,))
    assert_synced(sync(project, (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")))
    assert_synced(sync(project))
    release.set()
    assert forwarded.wait(60)
    late = held.hits[0]
    assert late.upstream is not None and late.upstream[0] in (200, 400)  # refused, or a replay DynamoDB ignores
    assert_same_online(server, "t_late", baseline)


def test_a_sync_killed_mid_stream_is_finished_by_the_next(
    built: Path, server: DynamoEndpoint, baseline: dict[str, Any], tmp_path: Path
) -> None:
    project = project_for(built, tmp_path, server.endpoint_url, "t_killed")
    cli_process.kill(cli_process.pause_at(project, "sync_written:2", "sync", "--now", SYNC_NOW, variables=VARS_ARG))
    assert_synced(sync(project))
    assert_same_online(server, "t_killed", baseline)
    assert_nothing_left_to_sync(project)


def test_the_reader_reads_unprocessed_keys_again(
    built: Path, server: DynamoEndpoint, proxy: FaultProxy, tmp_path: Path
) -> None:
    project = project_for(built, tmp_path, proxy.url, "t_read")
    assert_synced(sync(project))
    read = ("read", *(f"user_id={user}" for user in range(1, 41)), "-f", "user_transactions", "--now", SYNC_NOW)
    clean = cli_process.run(project, *read, variables=VARS_ARG)
    assert clean.exit_code == 0, clean.stderr
    rule = proxy.add("BatchGetItem", faults.unprocessed(0.5), nth=(1, 2, 3))
    faulty = cli_process.run(project, *read, variables=VARS_ARG)
    assert rule.applied == 3
    assert faulty.exit_code == 0 and faulty.stdout == clean.stdout, faulty.stderr


# -- the server restarted mid-sync -----------------------------------------------------------


def test_a_server_restarted_mid_sync(built: Path, baseline: dict[str, Any], tmp_path: Path) -> None:
    """DynamoDB Local (its tables in a folder) stopped while a sync waits between two batches, then:
    restarted on the same port before the sync goes on (it finishes), or after (it fails clearly, and
    the next sync finishes)."""
    storage, logs = tmp_path / "db", tmp_path / "logs"
    with dynamodb_local_with_credentials(logs, db_dir=storage) as first:
        restarted = project_for(built, tmp_path / "restarted", first.endpoint_url, "t_restarted")
        down = project_for(built, tmp_path / "down", first.endpoint_url, "t_down")
        waiting = {name: tmp_path / f"resume-{name}" for name in ("restarted", "down")}
        paused = {
            name: cli_process.pause_at(
                project, "sync_written:1", "sync", "--now", SYNC_NOW, resume_file=waiting[name], variables=VARS_ARG
            )
            for name, project in (("restarted", restarted), ("down", down))
        }
    failed = cli_process.resume(paused["down"], waiting["down"])
    assert_failed_clearly(failed, "cannot reach DynamoDB", "t_down", "sync again")
    with dynamodb_local_with_credentials(logs, db_dir=storage, port=first.port) as second:
        assert_synced(cli_process.resume(paused["restarted"], waiting["restarted"]))
        assert_synced(sync(down))
        for table, project in (("t_restarted", restarted), ("t_down", down)):
            assert_same_online(second, table, baseline)
            assert_nothing_left_to_sync(project)

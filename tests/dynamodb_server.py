"""Start AWS's DynamoDB Local (``ci/dynamodb_local.sh``) for tests.

Stdlib only; boto3 is imported lazily by :func:`dynamodb_client` and
:func:`dynamodb_resource`.

    with running_dynamodb_local(tmp_path / "ddb") as endpoint:
        client = dynamodb_client(endpoint)
        client.list_tables()

DynamoDB Local has no bind-address option: it listens on every interface. It is
therefore only started when this process runs in a network namespace of its
own that has nothing but loopback, as ``bash ci/in_private_network.sh python -m
pytest ...`` arranges (the server, a child of this process, shares it). On a
shared network :func:`running_dynamodb_local` refuses, naming that command.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import server_process

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "ci" / "dynamodb_local.sh"
WRAPPER = REPO_ROOT / "ci" / "in_private_network.sh"
HOST = "127.0.0.1"
REGION = "us-east-1"
# DynamoDB Local accepts any credentials; these only have to be well-formed.
ACCESS_KEY_ID = "AKIAFEATURESQLTEST00"
SECRET_ACCESS_KEY = "featuresql-dynamodb-local-not-a-secret"
_SIOCGIFFLAGS = 0x8913
_IFF_UP = 0x1


@dataclass(frozen=True)
class DynamoEndpoint:
    """A running DynamoDB Local: pass ``endpoint_url`` and ``region`` to boto3."""

    endpoint_url: str  # e.g. "http://127.0.0.1:40123"
    region: str
    port: int
    log_path: Path


def install_dir() -> Path:
    """Where ``ci/dynamodb_local.sh install`` puts DynamoDB Local (same default as the script)."""
    default = Path.home() / ".cache" / "featuresql" / "dynamodb-local"
    return Path(os.environ.get("FEATURESQL_DYNAMODB_DIR") or default)


def dynamodb_local_installed() -> bool:
    """Whether the install step has completed (its marker file exists)."""
    return (install_dir() / ".featuresql-installed").is_file()


def _interface_names() -> list[str]:
    """This process's network interfaces (netlink: the namespace's own, unlike /sys/class/net)."""
    try:
        return [name for _, name in socket.if_nameindex()]
    except OSError:
        # /proc/self/net/dev is per network namespace as well
        lines = Path("/proc/self/net/dev").read_text(encoding="ascii").splitlines()[2:]
        return [line.split(":", 1)[0].strip() for line in lines]


def _interface_up(name: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", name.encode(), 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
    return bool(flags & _IFF_UP)


def private_network_problem() -> str | None:
    """None when this process's network namespace has loopback (up) and nothing else; else why not.

    Neither /sys/class/net (sysfs shows the namespace it was mounted in, the
    host's) nor comparing /proc/self/ns/net with /proc/1/ns/net (unreadable in
    some sandboxes, and a different namespace may still have interfaces) tells
    this reliably; the interface list from netlink does.
    """
    names = _interface_names()
    others = sorted(name for name in names if name != "lo")
    if others:
        return f"this process's network has interfaces besides loopback: {', '.join(others)}"
    if "lo" not in names:
        return "this process's network namespace has no loopback interface"
    if not _interface_up("lo"):
        return "loopback is down in this process's network namespace (run 'ip link set lo up')"
    return None


def _answers(port: int) -> bool:
    """Whether DynamoDB Local answers a ListTables (raw HTTP: boto3 is not needed here)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request(
            "POST",
            "/",
            body=b"{}",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                # any well-formed SigV4 header will do; DynamoDB Local does not check signatures
                "Authorization": (
                    f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20240101/{REGION}/dynamodb/aws4_request, "
                    "SignedHeaders=host;x-amz-date, Signature=0"
                ),
                "X-Amz-Date": "20240101T000000Z",
            },
        )
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    if response.status != 200:
        return False
    with suppress(ValueError):
        return "TableNames" in json.loads(body)
    return False


@contextmanager
def running_dynamodb_local(
    data_dir: Path, *, db_dir: Path | None = None, port: int | None = None
) -> Iterator[DynamoEndpoint]:
    """Run DynamoDB Local (one shared database) for the duration of the block.

    ``data_dir`` receives the server's log (``dynamodb-local.log``). The tables live in
    memory, or with ``db_dir`` in a file there that a later server on the same
    ``db_dir`` (and ``port``: clients keep their endpoint) finds again: a restart.
    """
    if not dynamodb_local_installed():
        raise RuntimeError(
            f"DynamoDB Local is not installed in {install_dir()}: run 'bash ci/dynamodb_local.sh install'"
        )
    problem = private_network_problem()
    if problem is not None:
        raise RuntimeError(
            "DynamoDB Local listens on every network interface, so the tests start it only in a "
            f"private network namespace with nothing but loopback, and {problem}. Run the tests "
            f"through the wrapper: 'bash ci/in_private_network.sh python -m pytest ...' "
            f"({WRAPPER.relative_to(REPO_ROOT)}; needs root or user namespaces)."
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "dynamodb-local.log"
    storage = [str(db_dir)] if db_dir is not None else []
    process, port = server_process.start(
        "DynamoDB Local", lambda port: ["bash", str(SCRIPT), "serve", str(port), *storage], log_path, _answers, port
    )
    try:
        yield DynamoEndpoint(endpoint_url=f"http://{HOST}:{port}", region=REGION, port=port, log_path=log_path)
    finally:
        server_process.stop(process)


@contextmanager
def dynamodb_local_with_credentials(data_dir: Path, **options: Any) -> Iterator[DynamoEndpoint]:
    """DynamoDB Local (``running_dynamodb_local(data_dir, **options)``), with its fake credentials in the
    environment (as featuresql's boto3 reads them)."""
    credentials = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }
    saved = {name: os.environ.get(name) for name in credentials}
    os.environ.update(credentials)
    try:
        with running_dynamodb_local(data_dir, **options) as running:
            yield running
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _isolated_boto3_session(region: str) -> Any:
    """A boto3 session that reads nothing of the user's AWS setup.

    Every botocore setting (profile, config and credentials files, retry mode,
    endpoint URLs, CA bundle, ...) gets its built-in default instead of an
    AWS_* variable or a ~/.aws file; the config and credentials files are
    /dev/null, so an AWS_PROFILE naming a missing profile cannot fail either.
    """
    import boto3.session
    import botocore.session
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES, ConstantProvider

    core = botocore.session.Session()
    store = core.get_component("config_store")
    for name, (_config_key, _env_vars, default, _convert) in BOTOCORE_DEFAUT_SESSION_VARIABLES.items():
        store.set_config_provider(name, ConstantProvider(default))
    for name, value in (("config_file", os.devnull), ("credentials_file", os.devnull), ("region", region)):
        store.set_config_provider(name, ConstantProvider(value))
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        aws_session_token=None,
        region_name=region,
        botocore_session=core,
    )


def _client_config(**overrides: Any) -> Any:
    from botocore.config import Config

    settings: dict[str, Any] = {
        "proxies": {},  # an empty dict (not None) keeps HTTP(S)_PROXY from the environment out
        "retries": {"mode": "standard", "max_attempts": 3},
        "connect_timeout": 5,
        "read_timeout": 60,
        "max_pool_connections": 16,
    }
    settings.update(overrides)
    return Config(**settings)


def dynamodb_client(endpoint: DynamoEndpoint, **config: Any) -> Any:
    """A boto3 DynamoDB client for ``endpoint``, with dummy credentials set explicitly.

    Keyword arguments override the botocore ``Config`` settings.
    """
    return _isolated_boto3_session(endpoint.region).client("dynamodb", **_connection(endpoint, config))


def dynamodb_resource(endpoint: DynamoEndpoint, **config: Any) -> Any:
    """A boto3 DynamoDB service resource (``Table.batch_writer`` etc.), set up as :func:`dynamodb_client`."""
    return _isolated_boto3_session(endpoint.region).resource("dynamodb", **_connection(endpoint, config))


def _connection(endpoint: DynamoEndpoint, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint.endpoint_url,
        "region_name": endpoint.region,
        "aws_access_key_id": ACCESS_KEY_ID,
        "aws_secret_access_key": SECRET_ACCESS_KEY,
        "aws_session_token": None,
        "config": _client_config(**config),
    }


__all__ = [
    "DynamoEndpoint",
    "dynamodb_client",
    "dynamodb_local_installed",
    "dynamodb_resource",
    "private_network_problem",
    "running_dynamodb_local",
]

"""Start and stop the local servers the tests use: fakesnow, the BigQuery emulator, DynamoDB Local.

Each runs as ``bash ci/<script> serve PORT ...`` in a process group of its own
(stopped as a whole: the scripts exec interpreters that start children), with
its output in a log file that start-up errors quote. Stdlib only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
ATTEMPTS = 3  # another process may take a free port between choosing and binding it


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on the loopback port."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group: SIGTERM (a clean shutdown), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start(
    name: str,
    command: Callable[[int], list[str]],
    log_path: Path,
    answers: Callable[[int], bool],
    port: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``command(port)`` on ``port`` (default: a free one) and wait until ``answers(port)``.

    Return the process and the port. A given port is tried once: a server restarted
    on the port it had, which its clients know.
    """
    fixed = port
    for attempt in range(1 if fixed else ATTEMPTS):
        port = fixed or free_port()
        arguments = command(port)
        with log_path.open("ab") as log:
            log.write(f"== {' '.join(arguments)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if answers(port):
                return process, port
            time.sleep(0.1)
        exited = process.poll()
        stop(process)
        tail = log_tail(log_path)
        if exited is not None and "address already in use" in tail.lower() and not fixed and attempt < ATTEMPTS - 1:
            continue
        state = f"exited with {exited}" if exited is not None else "timed out"
        raise RuntimeError(
            f"{name} on {HOST}:{port} did not start ({state}; limit {START_TIMEOUT:.0f} s). Log {log_path}:\n{tail}"
        )
    raise AssertionError("unreachable")

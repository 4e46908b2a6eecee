"""The CLI as a separate process, as a scheduler runs it: started, paused at a named point, killed or resumed.

``featuresql.checkpoints`` pauses a process at a named point when
``FEATURESQL_PAUSE_AT`` asks for it; these helpers start the process, wait for
the pause, and SIGKILL it there, or let it go on (``FEATURESQL_RESUME_FILE``)
after the test has changed the world around it (stopped a server, ...).
"""

from __future__ import annotations

import os
import re
import select
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import CliResult
from projects import SMALL_VARS_ARG

PAUSE_TIMEOUT = 120.0


def command(*args: str, variables: str | None = SMALL_VARS_ARG) -> list[str]:
    """``featuresql --vars <variables: the small demo data> *args`` (``variables`` None: no ``--vars``)."""
    options = ["--vars", variables] if variables is not None else []
    return [sys.executable, "-c", "from featuresql.cli.main import main; main()", *options, *args]


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", **extra}


def run(
    project: Path, *args: str, timeout: float = 300, variables: str | None = SMALL_VARS_ARG, **env: str
) -> CliResult:
    """``featuresql *args`` in ``project``, to the end."""
    done = subprocess.run(
        command(*args, variables=variables),
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(**env),
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def spawn(project: Path, *args: str, variables: str = SMALL_VARS_ARG, **env: str) -> subprocess.Popen[str]:
    """``featuresql *args`` started in the background (stdout and stderr piped)."""
    return subprocess.Popen(
        command(*args, variables=variables),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(**env),
    )


def pause_at(
    project: Path, point: str, *args: str, resume_file: Path | None = None, variables: str = SMALL_VARS_ARG, **env: str
) -> subprocess.Popen[str]:
    """``featuresql *args`` started and waited for until it pauses at ``point`` (``name`` or ``name:n``).

    With ``resume_file`` it goes on once that file exists (``resume``); else it waits to be killed.
    """
    if resume_file is not None:
        env["FEATURESQL_RESUME_FILE"] = str(resume_file)
    process = spawn(project, *args, variables=variables, FEATURESQL_PAUSE_AT=point, **env)
    wait_for_pause(process, point.partition(":")[0])
    return process


def wait_for_pause(process: subprocess.Popen[str], name: str) -> None:
    """Read the process's stderr until it says it paused at ``name``; fail if it ends or takes too long.

    Unbuffered reads (``os.read``), so nothing the process writes later is left in a
    buffer that ``communicate`` (which reads the descriptor) would not see.
    """
    assert process.stderr is not None
    descriptor = process.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + PAUSE_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=1.0):
                continue
            chunk = os.read(descriptor, 65536)
            if not chunk:  # the process ended without pausing
                break
            seen += chunk
            if f"featuresql paused at {name}\n".encode() in seen:
                return
    kill(process)
    raise AssertionError(f"the process did not pause at {name} (exit {process.returncode}):\n{seen.decode()}")


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL: no clean-up of any kind runs."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def resume(process: subprocess.Popen[str], resume_file: Path, timeout: float = 300) -> CliResult:
    """Let a process paused with ``resume_file`` go on, and wait for its end."""
    resume_file.touch()
    stdout, stderr = process.communicate(timeout=timeout)
    return CliResult(process.returncode, stdout, stderr)


@contextmanager
def serving(project: Path, log: Path) -> Iterator[tuple[tuple[str, int], str]]:
    """``featuresql serve --port 0`` in ``project``: ((host, port), its first line); stderr goes to ``log``."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", "from featuresql.cli.main import main; main()", "serve", "--port", "0"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=environment(),
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline().decode() if ready else ""
        found = re.search(r"on http://([\d.]+):(\d+)/features", line)
        assert found, f"no address in {line!r}; stderr: {log.read_text()}"
        yield (found[1], int(found[2])), line
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

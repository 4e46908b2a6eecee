"""Every command the README shows runs: its bash and python code blocks, in document order,
on a copy of the example project, each exiting 0, so the README cannot drift from the CLI.

What is not run is named in ``NOT_RUN`` with the reason (installing, the test suite
itself), and each entry must still be in the README. The "your own data" section's
files (``data/events.parquet``, ``data/labels.parquet``) are the reader's own: the
test writes small ones at those paths first. A comment saying ``N tests`` must match
the count the command prints.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from projects import REPO_ROOT, copy_example

README = REPO_ROOT / "README.md"
NOT_RUN = {
    "python3 -m venv .venv": "the test runs in the environment it installs",
    ". .venv/bin/activate": "the test runs in the environment it installs",
    "pip install -e .": "installing is what ci/test.sh does before the tests",
    "bash ci/test.sh": "the test suite itself",
}
SERVERS = {"featuresql docs serve": 8080}  # long-running: started, asked over HTTP, stopped
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Snippet:
    language: str
    code: str
    comment: str = ""

    def __str__(self) -> str:
        return self.code


def readme_snippets(text: str) -> list[Snippet]:
    """The README's commands (bash lines split at ``&&``) and python blocks, in order."""
    snippets = []
    for match in BLOCK.finditer(text):
        language, body = match.group(1), match.group(2)
        if language == "python":
            snippets.append(Snippet("python", body))
            continue
        for line in body.replace("\\\n", " ").splitlines():
            command, _, comment = line.partition("  #")
            if command.strip().startswith("#") or not command.strip():
                continue
            for part in command.split(" && "):
                snippets.append(Snippet("bash", " ".join(part.split()), comment.strip()))
    return snippets


def test_the_readme_has_commands_to_run() -> None:
    snippets = readme_snippets(README.read_text(encoding="utf-8"))
    commands = [s.code for s in snippets if s.language == "bash"]
    assert len(commands) >= 15, commands
    assert sum(s.language == "python" for s in snippets) >= 2
    for command in NOT_RUN:
        assert command in commands, f"NOT_RUN lists {command!r}, which the README no longer shows"


def write_own_data(folder: Path) -> None:
    """The "your own data" files: events with NULLs, a decimal and a zoned time; labels."""
    (folder / "data").mkdir(exist_ok=True)
    connection = duckdb.connect()
    connection.execute(f"""
        copy (
            select 1 + i % 40 as user_id,
                   timestamp '2026-05-01' + to_seconds(i * 1789) as ts,
                   case when i % 9 = 0 then null else (i % 200)::decimal(10, 2) / 4 end as amount,
                   (i % 5)::integer as items,
                   'shop_' || (i % 7) as shop_id
            from range(4000) t(i)
        ) to '{folder / "data" / "events.parquet"}' (format parquet)""")
    connection.execute(f"""
        copy (
            select 1 + i % 40 as user_id, timestamp '2026-05-20' + to_seconds(i * 3600) as ts, i % 2 as label
            from range(200) t(i)
        ) to '{folder / "data" / "labels.parquet"}' (format parquet)""")
    connection.close()


def run_server(command: str, port: int, cwd: Path, env: dict[str, str]) -> None:
    process = subprocess.Popen(  # no shell: terminate() must reach the server itself
        shlex.split(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{command} exited: {process.stdout.read() if process.stdout else ''}"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(f"{command} did not listen on port {port} within 60 s")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read(4096).lower()
        assert process.poll() is None, f"{command} exited: another server holds port {port}?"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.duckdb
def test_every_readme_command_runs(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "example")
    write_own_data(project)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ran = 0
    for snippet in readme_snippets(README.read_text(encoding="utf-8")):
        if snippet.code in NOT_RUN:
            continue
        if snippet.code in SERVERS:
            run_server(snippet.code, SERVERS[snippet.code], project, env)
            ran += 1
            continue
        if snippet.language == "python":
            argv: list[str] | str = [sys.executable, "-c", snippet.code]
        else:
            argv = snippet.code
        done = subprocess.run(
            argv, shell=isinstance(argv, str), cwd=project, env=env, capture_output=True, text=True, timeout=600
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"README command failed ({done.returncode}): {snippet}\n{output[-3000:]}"
        said = re.search(r"(\d+) tests", snippet.comment)
        if said:
            assert f"Finished {said.group(1)} tests" in output, f"README says {said.group(0)}: {snippet}\n{output}"
        ran += 1
    assert ran >= 15

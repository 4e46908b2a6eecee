"""The templates in ci/templates/ for users' feature repositories, checked and run.

- ``github-actions.yml``: its structure (triggers, jobs, concurrency, secrets,
  the commands and their order), and the pull-request job's ``run:`` lines
  executed on a copy of the example project;
- ``cron.sh``: run against a copy of the example project: success, a broken
  model (not retried), a busy target (retried until free, or out of retries),
  and a second job while one runs (flock);
- ``airflow_dag.py``: compiled, and its tasks, commands, retries and exit-code
  handling read from its syntax tree (Airflow itself is not a test dependency;
  the DAG was loaded and run by hand with Airflow 2.10.5: see ci/templates/README.md).
"""

from __future__ import annotations

import ast
import fcntl
import os
import py_compile
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from projects import SMALL_VARS_ARG, copy_example

from featuresql.errors import EXIT_BUSY, EXIT_MODEL_FAILURE
from featuresql.testing.selection import FAMILIES

pytestmark = pytest.mark.duckdb

TEMPLATES = Path(__file__).resolve().parent.parent / "ci" / "templates"
WORKFLOW = TEMPLATES / "github-actions.yml"
CRON = TEMPLATES / "cron.sh"
DAG = TEMPLATES / "airflow_dag.py"
NOW = "2026-06-30"
ENV_VAR = re.compile(r"env_var\('([A-Z0-9_]+)'")


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def triggers(document: dict[str, Any]) -> dict[str, Any]:
    return document.get("on", document.get(True))  # YAML 1.1 reads the key `on` as true


def run_lines(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def featuresql_commands(job: dict[str, Any]) -> list[list[str]]:
    return [shlex.split(line)[:2] for line in run_lines(job) if line.startswith("featuresql ")]


# -- GitHub Actions ----------------------------------------------------------------------


def test_the_workflow_runs_on_pull_requests_main_and_a_schedule() -> None:
    on = triggers(workflow())
    assert set(on) >= {"pull_request", "push", "schedule"}
    assert on["push"]["branches"] == ["main"]
    (schedule,) = on["schedule"]
    assert len(schedule["cron"].split()) == 5


def test_the_pull_request_job_compiles_and_runs_unit_tests_without_secrets() -> None:
    document = workflow()
    job = document["jobs"]["pull-request"]
    assert "pull_request" in job["if"]
    assert featuresql_commands(job) == [["featuresql", "compile"]] * 2 + [["featuresql", "test"]]
    assert "featuresql test --select test_type:unit" in run_lines(job)
    assert "unit" in FAMILIES
    assert "secrets." not in yaml.safe_dump(job) and "env" not in job
    assert job["concurrency"]["cancel-in-progress"] is True


def test_the_production_job_runs_tests_then_syncs_one_at_a_time_with_the_profiles_secrets() -> None:
    document = workflow()
    job = document["jobs"]["production"]
    assert "refs/heads/main" in job["if"] and "pull_request" in job["if"]
    commands = [" ".join(command) for command in featuresql_commands(job)]
    assert commands == ["featuresql debug", "featuresql run", "featuresql test", "featuresql sync"]
    for line in run_lines(job):
        if line.startswith("featuresql "):
            assert '--target "$FEATURESQL_TARGET"' in line, line
    assert document["env"]["FEATURESQL_TARGET"] == "prod"
    assert job["concurrency"] == {"group": "features-production", "cancel-in-progress": False}
    # every variable the example's Snowflake target reads comes from a secret of the same name
    profiles = (Path(__file__).resolve().parent.parent / "profiles.yml").read_text(encoding="utf-8")
    snowflake = profiles.split("prod_snowflake:")[1].split("prod_bigquery:")[0]
    names = set(ENV_VAR.findall(snowflake))
    assert names == {"SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD"}
    assert job["env"] == {name: f"${{{{ secrets.{name} }}}}" for name in names}
    uploads = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "always()" and "target/run_results.json" in uploads[0]["with"]["path"]


def test_the_pull_request_job_passes_on_the_example_project(tmp_path: Path) -> None:
    """Every ``run:`` line after the install step, as GitHub runs it (bash -e), in a copy of the example."""
    project = copy_example(tmp_path / "repo", [("profiles.yml", "  prod_snowflake:", "  prod:")])
    document = workflow()
    job = document["jobs"]["pull-request"]
    steps = [step for step in job["steps"] if "run" in step and step.get("name") != "Install featuresql"]
    shim = fake_featuresql(tmp_path)
    secrets_free = {k: v for k, v in os.environ.items() if not k.startswith(("SNOWFLAKE_", "BIGQUERY_", "AWS_"))}
    env = {
        **secrets_free,
        **{k: str(v) for k, v in document["env"].items()},
        "PATH": f"{shim.parent}:{os.environ['PATH']}",
    }
    for step in steps:
        done = subprocess.run(
            ["bash", "-e", "-c", step["run"]], cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{step['name']}: {step['run']}\n{done.stdout}\n{done.stderr}"
    assert (project / "target" / "compiled" / "prod").is_dir() and (project / "target" / "compiled" / "dev").is_dir()
    assert " 0 failed" in done.stdout, done.stdout


def fake_featuresql(folder: Path, *, now: str | None = None) -> Path:
    """A ``featuresql`` command on PATH: this interpreter's featuresql, with small demo data (and ``--now``)."""
    shim = folder / "bin" / "featuresql"
    shim.parent.mkdir(parents=True, exist_ok=True)
    after = f" --now {now}" if now else ""
    shim.write_text(
        "#!/usr/bin/env bash\n"
        f"exec {shlex.quote(sys.executable)} -c 'from featuresql.cli.main import main; main()' "
        f'--vars {shlex.quote(SMALL_VARS_ARG)} "$@"{after}\n',
        encoding="utf-8",
    )
    shim.chmod(0o755)
    return shim


# -- cron.sh -----------------------------------------------------------------------------


def cron_env(tmp_path: Path, project: Path, **settings: str) -> dict[str, str]:
    shim = fake_featuresql(tmp_path, now=NOW)
    return {
        **os.environ,
        "NO_COLOR": "1",
        "FEATURESQL": str(shim),
        "FEATURESQL_PROJECT_DIR": str(project),
        "FEATURESQL_TARGET": "dev",
        "FEATURESQL_LOCK_FILE": str(tmp_path / "cron.lock"),
        "FEATURESQL_BACKOFF": "1",
        **settings,
    }


def run_cron(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CRON)], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Any]:
    """Start ``featuresql run`` paused inside its first batch: it holds the target (DuckDB's file lock)."""
    started: list[subprocess.Popen[str]] = []

    def start(project: Path) -> subprocess.Popen[str]:
        shim = fake_featuresql(tmp_path, now=NOW)
        process = subprocess.Popen(
            [str(shim), "run", "--full-refresh"],
            cwd=project,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "FEATURESQL_PAUSE_AT": "before_batch:1"},
        )
        started.append(process)
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "paused at before_batch" in line, line
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)


def test_cron_runs_tests_and_syncs(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "repo")
    done = run_cron(cron_env(tmp_path, project))
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("run", "test", "sync"):
        assert f"{step}: attempt 1" in done.stderr and f"{step}: done" in done.stderr
    assert "Synced 2 models" in done.stdout


def test_cron_does_not_retry_a_failing_model_nor_test_or_sync_after_it(tmp_path: Path) -> None:
    broken = (
        "features/user_profile.sql",
        None,
        "{{ config(entity='user', timestamp='ts') }}\nselect user_id, ts, cast(status as integer) as s\n"
        "from {{ source('bank', 'transactions') }}\n",
    )
    project = copy_example(tmp_path / "repo", [broken])
    done = run_cron(cron_env(tmp_path, project))
    assert done.returncode == EXIT_MODEL_FAILURE, done.stdout + done.stderr
    assert "run: attempt 1" in done.stderr and "run: attempt 2" not in done.stderr
    assert "failed with exit code 1" in done.stderr and "test:" not in done.stderr and "sync:" not in done.stderr


def test_cron_retries_a_busy_target_until_it_is_free(tmp_path: Path, holder: Any) -> None:
    project = copy_example(tmp_path / "repo")
    first = holder(project)
    cron = subprocess.Popen(
        ["bash", str(CRON)],
        env=cron_env(tmp_path, project, FEATURESQL_RETRIES="6"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert cron.stderr is not None
    seen = []
    for line in cron.stderr:
        seen.append(line)
        if "exit code 3 is retryable" in line:
            break
    assert any("is open in another process" in line for line in seen), "".join(seen)
    first.send_signal(signal.SIGKILL)  # the other run dies: its lock goes with it
    first.wait(timeout=30)
    out, err = cron.communicate(timeout=600)
    log = "".join(seen) + err
    assert cron.returncode == 0, out + log
    assert "run: attempt 2" in log and "sync: done" in log


def test_cron_gives_up_on_a_busy_target_with_its_exit_code(tmp_path: Path, holder: Any) -> None:
    project = copy_example(tmp_path / "repo")
    holder(project)
    done = run_cron(cron_env(tmp_path, project, FEATURESQL_RETRIES="1"))
    assert done.returncode == EXIT_BUSY, done.stdout + done.stderr
    assert "run: attempt 2" in done.stderr and "run: attempt 3" not in done.stderr
    assert "failed with exit code 3 (attempt 2, not retried)" in done.stderr


def test_cron_never_overlaps_itself(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "repo")
    env = cron_env(tmp_path, project)
    with open(env["FEATURESQL_LOCK_FILE"], "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a running cron.sh holds it
        done = run_cron(env)
    assert done.returncode == EXIT_BUSY, done.stdout + done.stderr
    assert "another job holds" in done.stderr and "attempt" not in done.stderr
    assert not (project / "target").exists()


def test_the_crontab_line_calls_the_wrapper() -> None:
    lines = [
        line
        for line in (TEMPLATES / "crontab").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    (entry,) = lines
    fields = entry.split(None, 5)
    assert all(re.fullmatch(r"[0-9*/,-]+", field) for field in fields[:5])
    assert "ci/templates/cron.sh" in fields[5] and "FEATURESQL_TARGET=prod" in fields[5]


def test_cron_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(CRON)], check=True)
    text = CRON.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text and "flock" in text
    assert f"EXIT_BUSY={EXIT_BUSY}" in text and os.access(CRON, os.X_OK)


# -- Airflow -----------------------------------------------------------------------------


def operator_calls(tree: ast.Module) -> dict[str, dict[str, ast.expr]]:
    calls = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "BashOperator":
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            calls[ast.literal_eval(keywords["task_id"])] = keywords
    return calls


def constants(tree: ast.Module) -> dict[str, Any]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def test_the_airflow_dag_compiles_and_chains_run_test_sync(tmp_path: Path) -> None:
    py_compile.compile(str(DAG), cfile=str(tmp_path / "dag.pyc"), doraise=True)
    tree = ast.parse(DAG.read_text(encoding="utf-8"))
    values = constants(tree)
    tasks = operator_calls(tree)
    assert list(tasks) == ["featuresql_run", "featuresql_test", "featuresql_sync"]
    for task_id, keywords in tasks.items():
        command = ast.unparse(keywords["bash_command"])
        assert f"featuresql {task_id.removeprefix('featuresql_')} --target " in command, command
        assert ast.literal_eval(keywords["append_env"]) is True
        assert ast.unparse(keywords["env"]) == "SECRETS" and ast.unparse(keywords["cwd"]) == "FEATURE_REPO"
    for task_id in ("featuresql_run", "featuresql_sync"):
        assert ast.unparse(tasks[task_id]["skip_on_exit_code"]) == "EXIT_BUSY"
        assert "--lock-timeout" in ast.unparse(tasks[task_id]["bash_command"])
    assert ast.literal_eval(tasks["featuresql_test"]["skip_on_exit_code"]) is None
    assert values["EXIT_BUSY"] == EXIT_BUSY
    default_args = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "default_args"
    )
    assert isinstance(default_args, ast.Dict)
    retry = {
        ast.literal_eval(k): ast.unparse(v)
        for k, v in zip(default_args.keys, default_args.values, strict=True)
        if k is not None
    }
    assert int(retry["retries"]) >= 1 and retry["retry_exponential_backoff"] == "True"
    assert retry["retry_delay"].startswith("timedelta(")
    # secrets are templated from a connection at run time, never written in the file
    assert all("{{ conn." in value for name, value in values["SECRETS"].items() if name.startswith("SNOWFLAKE_"))
    assert "run >> test >> sync" in ast.unparse(tree)
    dag_call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call) and ast.unparse(node.func) == "DAG")
    settings = {k.arg: k.value for k in dag_call.keywords}
    assert ast.literal_eval(settings["max_active_runs"]) == 1 and ast.literal_eval(settings["catchup"]) is False

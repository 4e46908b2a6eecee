"""The runtime process: ``python -m awslambdaric`` against :class:`lambda_runtime.RuntimeApi`.

:func:`running_lambda` starts the emulator plus a real runtime process (the AWS
runtime interface client from PyPI, the same code the managed Python runtimes
run) with the usual Lambda environment variables, and yields a
:class:`LambdaFunction` to invoke. Like the Lambda service, an invoke the runtime
does not answer by its deadline kills the process and fails with
``Sandbox.Timedout``; a runtime that dies during an invoke fails it with
``Runtime.ExitError``; a dead runtime is replaced by a fresh process (a new cold
start) at the next invoke. Standard library only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambda_runtime import InvokeResult, PendingInvoke, RuntimeApi

# The runtime process
# ---------------------------------------------------------------------------


@dataclass
class ColdStart:
    """Timings of one runtime process, from spawning it to its first answer."""

    spawned_at: float
    ready_at: float | None = None
    first_submit_at: float | None = None
    first_result_at: float | None = None

    @property
    def init_s(self) -> float | None:
        """Process start until the runtime first polls ``next`` (interpreter start + handler import)."""
        return None if self.ready_at is None else self.ready_at - self.spawned_at

    @property
    def total_s(self) -> float | None:
        """Process start to first response, as a caller arriving at process start would see it.

        Equals the measured wall time when the first invoke was queued before the
        runtime was ready; otherwise ``init_s`` plus the first invoke's own time.
        """
        if self.first_result_at is None or self.first_submit_at is None:
            return None
        ready = self.ready_at if self.ready_at is not None else self.first_submit_at
        init = ready - self.spawned_at
        return init + (self.first_result_at - max(self.first_submit_at, ready))


def _awslambdaric_dir() -> str:
    spec = importlib.util.find_spec("awslambdaric")
    if spec is None or spec.origin is None:
        raise RuntimeError("awslambdaric is not installed (pip install awslambdaric)")
    return str(Path(spec.origin).resolve().parent.parent)


def lambda_environment(
    *,
    handler: str,
    runtime_api: str,
    task_root: Path,
    pythonpath: Sequence[Path] = (),
    function_name: str = "featuresql-serving",
    region: str = "us-east-1",
    memory_mb: int = 512,
    inherit_env: bool = False,
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a managed Python runtime gives the process, plus ``env``.

    Credentials default to dummy values and the EC2 metadata lookup is disabled, so
    boto3 inside the handler never reaches for a real account or the network.
    """
    base = dict(os.environ) if inherit_env else {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{secrets.token_hex(16)}"
    base.update(
        {
            "_HANDLER": handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEEXAMPLE00",
            "AWS_SECRET_ACCESS_KEY": "example-secret-access-key",
            "AWS_SESSION_TOKEN": "example-session-token",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": _awslambdaric_dir(),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join(str(p) for p in (task_root, *pythonpath)),
        }
    )
    base.update(env or {})
    return base


class LambdaFunction:
    """A handler running under ``awslambdaric`` against a :class:`RuntimeApi`."""

    def __init__(
        self,
        api: RuntimeApi,
        handler: str,
        *,
        task_root: Path,
        environment: Mapping[str, str],
        python: str = sys.executable,
        restart_on_exit: bool = True,
        echo_logs: bool = False,
    ) -> None:
        self.api = api
        self.handler = handler
        self.task_root = task_root
        self.environment = dict(environment)
        self.python = python
        self.restart_on_exit = restart_on_exit
        self.echo_logs = echo_logs
        self.cold_starts: list[ColdStart] = []
        self.process: subprocess.Popen[bytes] | None = None
        self._log_lines: list[str] = []
        self._log_lock = threading.Lock()
        self._log_threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- process management --------------------------------------------------

    def start(self) -> None:
        self.api.reset_runtime_state()
        spawned = time.perf_counter()
        self.process = subprocess.Popen(
            [self.python, "-m", "awslambdaric", self.handler],
            cwd=self.task_root,
            env=self.environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, so stop() reaches any children too
        )
        self.cold_starts.append(ColdStart(spawned_at=spawned))
        reader = threading.Thread(target=self._pump_logs, args=(self.process,), name="lambda-logs", daemon=True)
        reader.start()
        self._log_threads.append(reader)

    def _pump_logs(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            text = line.decode("utf-8", errors="replace")
            with self._log_lock:
                self._log_lines.append(text)
            if self.echo_logs:
                sys.stderr.write(text)

    @property
    def logs(self) -> str:
        """Everything the runtime processes wrote to stdout/stderr so far."""
        with self._log_lock:
            return "".join(self._log_lines)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until the runtime polls for work; False if its init failed or it exited first."""
        limit = time.perf_counter() + timeout
        while time.perf_counter() < limit:
            with self.api._cond:
                if self.api.ready_at is not None:
                    self._note_ready()
                    return True
                if self.api.init_error is not None:
                    return False
                self.api._cond.wait(0.02)
            if not self.alive:
                return False
        raise TimeoutError(f"runtime not ready within {timeout:.1f}s; logs:\n{self.logs}")

    def _note_ready(self) -> None:
        current = self.cold_starts[-1] if self.cold_starts else None
        if current is not None and current.ready_at is None and self.api.ready_at is not None:
            current.ready_at = max(self.api.ready_at, current.spawned_at)

    def stop(self, grace_s: float = 2.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for reader in self._log_threads:
            reader.join(timeout=2)
        self._log_threads = [t for t in self._log_threads if t.is_alive()]
        if process.stdout is not None:
            process.stdout.close()

    # -- invoking ------------------------------------------------------------

    @property
    def cold_start_s(self) -> float | None:
        """Cold start of the first runtime process: process start to first response."""
        return self.cold_starts[0].total_s if self.cold_starts else None

    @property
    def init_duration_s(self) -> float | None:
        return self.cold_starts[0].init_s if self.cold_starts else None

    def invoke(
        self,
        event: Any,
        *,
        timeout: float | None = None,
        client_context: Mapping[str, Any] | None = None,
        cognito_identity: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> InvokeResult:
        """Invoke synchronously (RequestResponse) and return the result.

        ``timeout`` bounds the caller's wait (default: the function timeout plus
        init time); the function's own timeout is enforced as Lambda does.
        """
        with self._lock:
            if not self.alive and self.restart_on_exit and self.api.init_error is None:
                self.stop()
                self.start()
            generation = self.cold_starts[-1] if self.cold_starts else None
        pending = self.api.submit(
            event, client_context=client_context, cognito_identity=cognito_identity, tenant_id=tenant_id
        )
        if generation is not None and generation.first_submit_at is None:
            generation.first_submit_at = pending.submitted_at
        wait_s = self.api.function_timeout_s + 15.0 if timeout is None else timeout
        result = self.api.wait(pending, wait_s, check=self._check)
        if generation is not None and generation.first_result_at is None:
            self._note_ready()
            generation.first_result_at = time.perf_counter()
        return result

    def _check(self, pending: PendingInvoke) -> InvokeResult | None:
        """Lambda-side outcomes for an invoke the runtime cannot answer."""
        self._note_ready()
        process = self.process
        exit_code = None if process is None else process.poll()
        if process is None or exit_code is not None:
            ready_before = bool(self.cold_starts) and self.cold_starts[-1].ready_at is not None
            if pending.dispatched_at is None and ready_before and self.restart_on_exit:
                # The runtime died between invokes: a fresh environment takes this one, as in Lambda.
                with self._lock:
                    if self.process is process:
                        self.stop()
                        self.start()
                return None
            if exit_code is None:
                status = "runtime stopped"
            elif exit_code < 0:
                status = f"signal: {signal.Signals(-exit_code).name.lower()}"
            else:
                status = f"exit status {exit_code}"
            return self.api.error_result(
                pending,
                "Runtime.ExitError",
                f"RequestId: {pending.request_id} Error: Runtime exited with error: {status}",
            )
        deadline_ms = pending.deadline_epoch_ms
        if pending.dispatched_at is not None and deadline_ms is not None and time.time() * 1000 > deadline_ms + 50:
            timed_out = self.api.error_result(
                pending,
                "Sandbox.Timedout",
                f"RequestId: {pending.request_id} Error: Task timed out after {pending.function_timeout_s:.2f} seconds",
            )
            self.api.complete(pending, timed_out)  # before the kill, so the process exit is not reported instead
            with self._lock:
                if self.process is process:
                    self.stop(grace_s=0.5)
            return timed_out
        return None


@contextlib.contextmanager
def running_lambda(
    handler: str,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    pythonpath: Sequence[Path] | Path = (),
    function_name: str = "featuresql-serving",
    region: str = "us-east-1",
    memory_mb: int = 512,
    function_timeout_s: float = 30.0,
    wait_ready: bool = True,
    init_timeout_s: float = 10.0,
    restart_on_exit: bool = True,
    inherit_env: bool = False,
    echo_logs: bool = False,
    python: str = sys.executable,
) -> Iterator[LambdaFunction]:
    """Start the Runtime API emulator and ``python -m awslambdaric <handler>`` in ``cwd``.

    ``cwd`` is the task root (``LAMBDA_TASK_ROOT``, first on ``PYTHONPATH``);
    ``pythonpath`` adds more import roots (e.g. the repository, for ``featuresql``).
    With ``wait_ready`` the runtime has finished its init before the function is
    yielded, unless the init failed, in which case every invoke returns the init
    error (``Runtime.ImportModuleError`` and the like).
    """
    extra_paths = [pythonpath] if isinstance(pythonpath, Path) else list(pythonpath)
    task_root = Path(cwd).resolve()
    with RuntimeApi(function_name=function_name, region=region, function_timeout_s=function_timeout_s) as api:
        environment = lambda_environment(
            handler=handler,
            runtime_api=api.address,
            task_root=task_root,
            pythonpath=[Path(p).resolve() for p in extra_paths],
            function_name=function_name,
            region=region,
            memory_mb=memory_mb,
            inherit_env=inherit_env,
            env=env,
        )
        function = LambdaFunction(
            api,
            handler,
            task_root=task_root,
            environment=environment,
            python=python,
            restart_on_exit=restart_on_exit,
            echo_logs=echo_logs,
        )
        function.start()
        try:
            if wait_ready:
                function.wait_ready(init_timeout_s)
            yield function
        finally:
            function.stop()

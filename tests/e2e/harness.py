"""The real `jobfallback` CLI in subprocesses against an in-process sandbox and a test database.

The sandbox runs in the test process, so hooks act while a subprocess sweeps and assertions read
its state directly. Every captured stdout/stderr is checked for the registered secrets (the sandbox
token, the database password) before a test sees it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from jobfallback.models import FallbackConfig, FallbackConfigSpec, MoveRecord, RunStatus
from jobfallback.sandbox import SandboxServer, SandboxState
from jobfallback.sandbox.state import Obj
from jobfallback.store import open_store
from jobfallback.store.lock import sweep_lock
from tests.fixtures.copies import copies_of
from tests.fixtures.secrets import assert_no_secrets, register_secret

CLI = (sys.executable, "-m", "jobfallback")
EnvOverrides = Mapping[str, str | None]  # None removes the variable
WRITES = ("put_app", "trigger", "terminate")
# The demo scenario: the three runs its configs make stuck, and where they go.
STUCK = ("run-train-1", "run-eval-1", "run-embed-1")
NOT_STUCK = ("run-train-2", "run-eval-2", "run-report-1")  # RUNNING, FINISHED, fresh
DESTINATION_WS = "ws-west-fallback"


def with_password(url: str, password: str) -> str:
    """`url` with a password: the test servers trust local users, so it is accepted and unused."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}:{password}@{host}"))


@dataclass
class Result:
    command: str  # the jobfallback arguments
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:  # pytest shows it when an assertion on a result fails
        head = f"$ jobfallback {self.command} -> exit {self.returncode}"
        return f"{head}\n{self.stdout}\n{self.stderr[-3000:]}"


@dataclass
class Jobfallback:
    """One test's CLI: env pointing at `sandbox` and `database_url`."""

    sandbox: SandboxServer
    database_url: str = field(repr=False)  # it holds a password

    def env(self, overrides: EnvOverrides | None) -> dict[str, str]:
        env = {
            **os.environ,
            "TFY_HOST": self.sandbox.url,
            "TF_SERVICE_API_TOKEN": self.sandbox.token,
            "DATABASE_URL": self.database_url,
            "JOB_FALLBACK_ENABLED": "true",
        }
        for name, value in (overrides or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def start(self, *args: str, env: EnvOverrides | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, *args],
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, process: subprocess.Popen[str], timeout: float = 60) -> Result:
        command = " ".join(map(str, process.args[len(CLI) :]))  # type: ignore[index]
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            pytest.fail(f"{command} did not finish in {timeout}s; stderr: {stderr[-2000:]}")
        result = Result(command, process.returncode, stdout, stderr)
        assert_no_secrets(stdout, f"the stdout of `jobfallback {command}`")
        assert_no_secrets(stderr, f"the stderr of `jobfallback {command}`")
        assert "Traceback" not in stderr, result
        return result

    def run(self, *args: str, env: EnvOverrides | None = None) -> Result:
        return self.finish(self.start(*args, env=env))

    def sweep(self, *args: str, env: EnvOverrides | None = None) -> Result:
        """A sweep with JSON output and JSON logs."""
        return self.run("sweep", "--output", "json", "--log-format", "json", *args, env=env)

    # ------------------------------------------------------------ the database, read directly

    def load_configs(self, configs: Sequence[Mapping[str, Any]]) -> list[FallbackConfig]:
        """Store configs (camelCase dicts) in order, so the first has the lowest id."""
        with open_store(self.database_url) as store:
            return [store.configs.add(FallbackConfigSpec.model_validate(c)) for c in configs]

    def journal(self) -> dict[str, MoveRecord]:
        with open_store(self.database_url) as store:
            return {r.source_run_id: r for r in store.journal.history(limit=1000)}

    def wait_for_lock_release(self, timeout: float = 30) -> None:
        """A killed sweep's lock goes when the server notices its session closed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with sweep_lock(self.database_url) as held:
                if held:
                    return
            time.sleep(0.05)
        pytest.fail(f"the sweep lock was still held {timeout}s after the sweep died")

    # ------------------------------------------------------------ the sandbox, read directly

    def writes(self) -> dict[str, int]:
        return {name: self.sandbox.request_counts[name] for name in WRITES}

    def status(self, run_id: str) -> str:
        run = self.sandbox.state.run(run_id)
        assert run is not None, f"no run {run_id} in the sandbox"
        return str(run["status"])

    def copies(self, source_run_id: str) -> list[Obj]:
        """The destination runs of a source run (on a version labelled with it)."""
        return copies_of(self.sandbox.state, source_run_id)

    def assert_moved_once(self, source_run_ids: Sequence[str] = STUCK) -> None:
        """Each source terminated, with exactly one copy in the destination, journal `done`."""
        journal = self.journal()
        for run_id in source_run_ids:
            assert self.status(run_id) == RunStatus.TERMINATION_REQUESTED, run_id
            assert len(self.copies(run_id)) == 1, (run_id, self.copies(run_id))
            assert journal[run_id].state == "done", journal[run_id]


@pytest.fixture
def bare_jf(sandbox: SandboxServer, database_url: str) -> Jobfallback:
    """The CLI on the demo sandbox, no config stored yet."""
    # A password the output must never show (the sandbox token is registered already).
    password = f"pw-{uuid.uuid4().hex}"
    register_secret(password)
    return Jobfallback(sandbox, with_password(database_url, password))


@pytest.fixture
def jf(bare_jf: Jobfallback, sandbox_state: SandboxState) -> Jobfallback:
    """The CLI on the demo sandbox with the demo's configs stored."""
    bare_jf.load_configs(sandbox_state.configs)
    return bare_jf

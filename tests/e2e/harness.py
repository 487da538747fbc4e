"""The real `jobfallback` CLI in subprocesses against an in-process sandbox and a test database.

The sandbox runs in the test process, so hooks act while a subprocess sweeps and assertions read
its state directly. Every captured stdout/stderr is checked for the registered secrets (the sandbox
token, the database password) before a test sees it.

Every terminate the sandbox applies is audited (`Jobfallback.terminated`: the run and the status
it had the moment the server acted), and `Jobfallback.assert_safe` checks the promises of the
move against the sandbox's own state and the journal, whatever path a test drove.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from jobfallback.models import FallbackConfig, FallbackConfigSpec, MoveRecord, RunStatus
from jobfallback.move import LABEL_SOURCE_JOB, LABEL_SOURCE_RUN
from jobfallback.store import open_store, parse_import
from jobfallback.store.lock import SWEEP_LOCK_KEY, sweep_lock
from jobfallback_sandbox import SandboxServer, SandboxState
from jobfallback_sandbox.state import Obj
from tests.fixtures import cli
from tests.fixtures.cli import CLI as CLI  # re-exported: tests/cli uses it
from tests.fixtures.copies import copies_by_source, copies_of
from tests.fixtures.guard_rails import NO_GUARD_RAILS
from tests.fixtures.secrets import assert_no_secrets, register_secret

EnvOverrides = Mapping[str, str | None]  # None removes the variable
WRITES = ("put_app", "trigger", "terminate")
# The demo scenario: the three runs its configs make stuck, and where they go.
STUCK = ("run-train-1", "run-eval-1", "run-embed-1")
NOT_STUCK = ("run-train-2", "run-eval-2", "run-report-1")  # RUNNING, FINISHED, fresh
DESTINATION_WS = "ws-west-fallback"
TERMINATED = frozenset(
    {RunStatus.TERMINATION_REQUESTED, RunStatus.TERMINATING, RunStatus.TERMINATED}
)
# A source in one of these ran (or is about to) on its own: then its copy is what must stop.
STARTED = frozenset({RunStatus.SCHEDULED, RunStatus.RUNNING, RunStatus.FINISHED})
_LIVE = frozenset({RunStatus.CREATED, RunStatus.SCHEDULED, RunStatus.RUNNING})
# The sweep lock's session, found by its advisory key in this database only (tests run in
# parallel, each on its own database, all with the same key).
_LOCK_HOLDER = """
SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()
  AND l.classid = %s AND l.objid = %s AND l.objsubid = 1
"""


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


@dataclass(frozen=True)
class Terminated:
    """A terminate the sandbox applied: the run, and its status the moment the server acted."""

    run_id: str
    run_name: str
    application_id: str
    status_before: str


def audit_terminates(state: SandboxState) -> list[Terminated]:
    """Record every terminate `state` applies (wraps its `terminate`; once per state). The
    status is read inside the call, after every hook ran, so it is the one the server saw."""
    existing: list[Terminated] | None = getattr(state, "_terminated_audit", None)
    if existing is not None:
        return existing
    audit: list[Terminated] = []
    apply = state.terminate

    def audited(deployment_id: str, run_name: str) -> Obj:
        statuses = {(r["applicationId"], r["name"]): r["status"] for r in state.runs()}
        run = apply(deployment_id, run_name)  # a SandboxError (404, 417) applied nothing
        key = (run["applicationId"], run["name"])
        audit.append(Terminated(run["id"], run["name"], run["applicationId"], statuses[key]))
        return run

    state.terminate = audited  # type: ignore[method-assign]
    state._terminated_audit = audit  # type: ignore[attr-defined]
    return audit


@dataclass
class Jobfallback:
    """One test's CLI: env pointing at `sandbox` and `database_url`."""

    sandbox: SandboxServer
    database_url: str = field(repr=False)  # it holds a password
    terminated: list[Terminated] = field(init=False, repr=False)
    # Every command's environment below the test's own overrides: the guard rails off, unless
    # a test of the rails sets it to {} (the settings' defaults then apply).
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(NO_GUARD_RAILS))

    def __post_init__(self) -> None:
        self.terminated = audit_terminates(self.sandbox.state)

    def env(self, overrides: EnvOverrides | None) -> dict[str, str]:
        env = {
            **os.environ,
            "TFY_HOST": self.sandbox.url,
            "TF_SERVICE_API_TOKEN": self.sandbox.token,
            "DATABASE_URL": self.database_url,
            "JOB_FALLBACK_ENABLED": "true",
            **self.base_env,
        }
        for name, value in (overrides or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def start(
        self, *args: str, env: EnvOverrides | None = None, stdin: int | IO[Any] | None = None
    ) -> cli.Running:
        """The CLI started (tests/fixtures/cli.py): its `pid` for signals, `poll()`."""
        return cli.start(*args, env=self.env(env), stdin=stdin)

    def finish(self, process: cli.Running | subprocess.Popen[str], timeout: float = 60) -> Result:
        """Wait for a process `start` started (or one a test started with `CLI` itself)."""
        if isinstance(process, subprocess.Popen):
            process = cli.Running.of(process)
        done = process.finish(timeout)
        command, stdout, stderr = done.command, done.stdout, done.stderr
        if done.timed_out:
            pytest.fail(f"{command} did not finish in {timeout}s; stderr: {stderr[-2000:]}")
        result = Result(command, done.returncode, stdout, stderr)
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

    def import_configs(self, configs: Sequence[Mapping[str, Any]]) -> None:
        """Store many configs in one transaction, as `configs import` does (fleets)."""
        with open_store(self.database_url) as store:
            store.configs.apply_import(parse_import(list(configs)), prune=False, dry_run=False)

    def insert_configs_unchecked(self, configs: Sequence[Mapping[str, Any]]) -> None:
        """Write configs straight into the table, past every check the store makes (a config
        set written by an older version, or by hand)."""
        specs = [FallbackConfigSpec.model_validate(c).model_dump() for c in configs]
        with self.sql() as conn:
            for spec in specs:
                columns = ", ".join(spec)
                values = ", ".join(f"%({name})s" for name in spec)
                conn.execute(f"INSERT INTO fallback_configs ({columns}) VALUES ({values})", spec)

    def sql(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the test database (close it: use `with`)."""
        return psycopg.connect(self.database_url, autocommit=True)

    def delete_journal(self) -> None:
        """Every journal row gone: a restored backup, or another database on the same fleet."""
        with self.sql() as conn:
            conn.execute("DELETE FROM moves")

    def kill_lock_holder(self, timeout: float = 10) -> int:
        """Terminate the database session holding the sweep lock (its sweep lives on without
        it) and wait until the lock is free; returns the session's pid."""
        with self.sql() as conn:
            row = conn.execute(
                _LOCK_HOLDER, (SWEEP_LOCK_KEY >> 32, SWEEP_LOCK_KEY & 0xFFFF_FFFF)
            ).fetchone()
            assert row is not None, "nobody holds the sweep lock"
            conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        self.wait_for_lock_release(timeout)
        return int(row[0])

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

    def snapshot(self) -> Obj:
        """The sandbox's objects now: what `assert_safe` compares against."""
        return self.sandbox.state.snapshot()

    def assert_safe(
        self,
        before: Obj,
        *,
        covered: Iterable[str] = STUCK,
        moved: Iterable[str] = (),
        killed_while_running: Iterable[str] = (),
    ) -> None:
        """The promises of the move, read from the sandbox's state and the journal, against
        the snapshot `before` the first sweep of the test:

        - only covered stuck runs (`covered`) have copies or journal rows, and none has more
          than one copy;
        - no source was terminated without exactly one live copy;
        - a copy was stopped only where its source ran on its own (one of the two is alive);
        - no source run was terminated while it ran (except `killed_while_running`, where the
          path allows no better);
        - runs that are not covered kept their status;
        - no application was changed but our own copies: an application that was not a copy
          got no new version, a copy only versions of the same source job, and every new
          application is a copy;
        - each of `moved`: terminated, exactly one live copy, journal `done`.
        """
        covered, excused = set(covered), set(killed_while_running)
        after = self.snapshot()
        copies = copies_by_source(self.sandbox.state)
        copy_ids = {c["id"] for found in copies.values() for c in found}
        runs_now = {r["id"]: r for r in after["runs"]}
        runs_before = {r["id"]: r for r in before["runs"]}

        for source_id, found in copies.items():
            assert source_id in covered, f"{source_id} is not a covered stuck run, yet was copied"
            assert len(found) == 1, f"{source_id} has {len(found)} copies: {found}"
            (copy,) = found
            if copy["status"] in TERMINATED:
                source = runs_now[source_id]["status"]
                assert source in STARTED, f"copy of {source_id} stopped, source {source}"
        for run_id, was in runs_before.items():
            now = runs_now[run_id]["status"]
            if run_id not in covered:
                assert now == was["status"], f"{run_id} is not covered, yet went {was} -> {now}"
            elif now in TERMINATED and was["status"] not in TERMINATED:
                found = copies.get(run_id, [])
                alive = [c for c in found if c["status"] not in TERMINATED]
                assert len(alive) == 1, f"{run_id} terminated with live copies {found}"
        for entry in self.terminated:
            if entry.run_id in copy_ids or entry.run_id in excused:
                continue
            assert entry.status_before not in (RunStatus.RUNNING, RunStatus.SCHEDULED), (
                f"source {entry.run_name} was terminated while {entry.status_before}"
            )
        rows = self.journal()
        assert set(rows) <= covered, f"journal rows for runs not covered: {set(rows) - covered}"
        self._assert_applications(before, after)
        self.assert_moved_once(list(moved))
        for run_id in moved:
            (copy,) = copies[run_id]
            assert copy["status"] in _LIVE, f"the copy of {run_id} is {copy['status']}"

    @staticmethod
    def _assert_applications(before: Obj, after: Obj) -> None:
        old = {app["id"]: app for app in before["applications"]}
        for app in after["applications"]:
            versions = app["deployments"]
            labels = [d["manifest"].get("labels") or {} for d in versions]
            was = old.get(app["id"])
            if was is None:
                assert all(LABEL_SOURCE_RUN in label for label in labels), (
                    f"new application {app['name']} ({app['id']}) is not a fallback copy"
                )
                start = 0
            else:
                start = len(was["deployments"])
                assert versions[:start] == was["deployments"], f"{app['id']} versions changed"
                if start == len(versions):
                    continue
                latest = was["deployments"][-1]["manifest"].get("labels") or {}
                assert LABEL_SOURCE_JOB in latest, (
                    f"application {app['name']} ({app['id']}) is not a fallback copy, yet got "
                    f"{len(versions) - start} new version(s)"
                )
            jobs = {label.get(LABEL_SOURCE_JOB) for label in labels[start:]}
            first = labels[0].get(LABEL_SOURCE_JOB)
            assert jobs <= {first}, (
                f"copy application {app['name']} ({app['id']}) holds versions of jobs "
                f"{sorted(map(str, {first, *jobs}))}"
            )

    def log_events(self, result: Result) -> list[dict[str, Any]]:
        """The JSON log lines of a command run with `--log-format json`."""
        events = []
        for line in result.stderr.splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events


def secret_url(database_url: str) -> str:
    """`database_url` with a password the output must never show (the sandbox token is
    registered already)."""
    password = f"pw-{uuid.uuid4().hex}"
    register_secret(password)
    return with_password(database_url, password)


@pytest.fixture
def bare_jf(sandbox: SandboxServer, database_url: str) -> Jobfallback:
    """The CLI on the demo sandbox, no config stored yet."""
    return Jobfallback(sandbox, secret_url(database_url))


@pytest.fixture
def jf_for(database_url: str) -> Callable[[SandboxServer], Jobfallback]:
    """The CLI on any started sandbox server (a fleet, a scenario of the test's own), on this
    test's database, no config stored yet."""
    url = secret_url(database_url)
    return lambda server: Jobfallback(server, url)


@pytest.fixture
def jf(bare_jf: Jobfallback, sandbox_state: SandboxState) -> Jobfallback:
    """The CLI on the demo sandbox with the demo's configs stored."""
    bare_jf.load_configs(sandbox_state.configs)
    return bare_jf

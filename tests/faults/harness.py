"""Real sweeps in subprocesses against an in-process SandboxServer on a generated fleet, and the
invariants a finished fleet must satisfy, read from the sandbox state and the move journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from jobfallback.models import MoveState, RunStatus
from jobfallback.sandbox import SandboxServer, SandboxState, generate_fleet
from jobfallback.store import open_store, parse_import
from tests.fixtures.copies import copies_by_source
from tests.fixtures.secrets import assert_no_secrets

SWEEP_TIMEOUT = 120
STUCK_THRESHOLD_MINUTES = 60  # fleet runs are stuck (2-6 h old) or fresh (0-10 min)
_TERMINATED = {RunStatus.TERMINATION_REQUESTED, RunStatus.TERMINATING, RunStatus.TERMINATED}


def fleet(seed: int, *, workspaces: int = 3, uncovered: int = 1) -> SandboxState:
    """A generated fleet whose last `uncovered` source workspaces keep no config."""
    state = generate_fleet(
        workspaces=workspaces, jobs_per_workspace=4, stuck_fraction=0.3, seed=seed
    )
    state.configs = state.configs[: len(state.configs) - uncovered]
    return state


def import_configs(database_url: str, state: SandboxState) -> None:
    with open_store(database_url) as store:
        store.configs.apply_import(parse_import(state.configs), prune=False, dry_run=False)


def covered_workspaces(state: SandboxState) -> set[str]:
    return {str(c["sourceWorkspaceId"]) for c in state.configs}


def stuck_run_ids(state: SandboxState) -> dict[str, str]:
    """Stuck CREATED source runs at fleet build time: id -> workspace id."""
    cutoff = state.now_ms - STUCK_THRESHOLD_MINUTES * 60_000
    apps = {a["id"]: a["workspaceId"] for a in state.applications()}
    return {
        r["id"]: apps[r["applicationId"]]
        for r in state.runs(status=RunStatus.CREATED)
        if r["createdAt"] <= cutoff
    }


@dataclass
class SweepRun:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)["report"]
        return data


def sweep_env(server: SandboxServer, database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TFY_HOST": server.url,
        "TF_SERVICE_API_TOKEN": server.token,
        "DATABASE_URL": database_url,
        "JOB_FALLBACK_ENABLED": "true",
        "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": str(STUCK_THRESHOLD_MINUTES),
        # Back-to-back sweeps stand for sweeps minutes apart: no backoff, and the sandbox's
        # listings are immediate, so an empty look-up is proof at once.
        "JOB_FALLBACK_RETRY_BACKOFF_SECONDS": "0",
        "JOB_FALLBACK_SETTLE_SECONDS": "0",
        **extra,
    }


def start_sweep(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobfallback", "sweep", "--output", "json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> SweepRun:
    stdout, stderr = process.communicate(timeout=SWEEP_TIMEOUT)
    assert_no_secrets(stdout + stderr, "the sweep's output")
    assert "Traceback" not in stderr, stderr[-3000:]
    return SweepRun(process.returncode, stdout, stderr)


def sweep(env: dict[str, str], *args: str) -> SweepRun:
    return finish(start_sweep(env, *args))


def journal_states(database_url: str) -> Counter[MoveState]:
    with open_store(database_url) as store:
        return Counter(r.state for r in store.journal.history(limit=100_000))


@dataclass
class Outcome:
    """Where each stuck source run ended up, from the sandbox's own state."""

    copies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # source id -> runs
    status: dict[str, str] = field(default_factory=dict)  # source id -> status now


def outcome(state: SandboxState, sources: dict[str, str]) -> Outcome:
    runs = state.runs()
    copies = copies_by_source(state)
    result = Outcome()
    for source_id in sources:
        result.copies[source_id] = copies.get(source_id, [])
        result.status[source_id] = str(next(r["status"] for r in runs if r["id"] == source_id))
    return result


def converged(state: SandboxState, database_url: str) -> bool:
    """No covered stuck run left in CREATED, and every journal row done or skipped."""
    sources = stuck_run_ids_now(state)
    states = journal_states(database_url)
    settled = {MoveState.DONE, MoveState.SKIPPED}
    return not sources and all(s in settled for s in states)


def stuck_run_ids_now(state: SandboxState) -> dict[str, str]:
    covered = covered_workspaces(state)
    return {k: ws for k, ws in stuck_run_ids(state).items() if ws in covered}


def assert_invariants(state: SandboxState, stuck: dict[str, str]) -> None:
    """`stuck`: the fleet's stuck runs at build time (id -> workspace)."""
    covered = covered_workspaces(state)
    result = outcome(state, stuck)
    for source_id, workspace in stuck.items():
        copies, status = result.copies[source_id], result.status[source_id]
        if workspace in covered:
            assert len(copies) == 1, f"{source_id}: {len(copies)} destination runs, wanted 1"
            assert status in _TERMINATED, f"{source_id} moved but is {status}"
        else:
            assert not copies, f"{source_id} moved though no config covers {workspace}"
            assert status == RunStatus.CREATED, f"{source_id} (uncovered) is {status}"
    # No source terminated without its destination run, anywhere in the fleet.
    for run in state.runs():
        if run["status"] in _TERMINATED and not str(run["name"]).startswith("fb-"):
            assert result.copies.get(run["id"]), f"{run['id']} terminated without a destination"

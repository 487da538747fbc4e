"""Real sweeps in subprocesses against an in-process SandboxServer on a generated fleet, and the
invariants a finished fleet must satisfy, read from the sandbox state and the move journal."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from jobfallback.models import MoveState, RunStatus
from jobfallback.store import open_store, parse_import
from jobfallback.truefoundry import TrueFoundryClient
from jobfallback_sandbox import SandboxServer, SandboxState, ServerProfile, generate_fleet
from jobfallback_sandbox.scenarios import DESTINATION_CLUSTER
from tests.fixtures import cli
from tests.fixtures.copies import copies_by_source
from tests.fixtures.guard_rails import NO_GUARD_RAILS
from tests.fixtures.secrets import assert_no_secrets

SWEEP_TIMEOUT = 120
STUCK_THRESHOLD_MINUTES = 60  # fleet runs are stuck (2-6 h old) or fresh (0-10 min)
_TERMINATED = {RunStatus.TERMINATION_REQUESTED, RunStatus.TERMINATING, RunStatus.TERMINATED}
_MINUTE_MS = 60_000

# The page size a sweep lists with (the CLI keeps the client's default).
PAGE_SIZE: int = inspect.signature(TrueFoundryClient).parameters["page_size"].default
# Profiles that only show when a listing has a second page: a fleet served under one of them
# gets a long job (more CREATED runs than a page holds), else they would change nothing.
PAGING_PROFILES = frozenset({"page-shift", "ignore-offset"})
LONG_JOB_FRESH_RUNS = PAGE_SIZE + 5


def fleet(
    seed: int, *, workspaces: int = 3, uncovered: int = 1, profile: str = "alias-name"
) -> SandboxState:
    """A generated fleet served under `profile` (profile names joined by "+") whose last
    `uncovered` source workspaces keep no config; an uncovered workspace holds at least one
    stuck run, so "nothing uncovered moved" is tested, not vacuous. Under a paging profile
    the covered job with the most stuck runs also gets LONG_JOB_FRESH_RUNS fresh runs."""
    names = profile_names(profile)
    state = generate_fleet(
        workspaces=workspaces,
        jobs_per_workspace=4,
        stuck_fraction=0.3,
        seed=seed,
        profiles=names,
    )
    state.configs = state.configs[: len(state.configs) - uncovered]
    if uncovered:
        _ensure_uncovered_stuck_run(state)
    if PAGING_PROFILES & names:
        _add_long_job(state)
    return state


def profile_names(profile: str) -> frozenset[str]:
    """The names in force for a profile label ("generated-names+search-lag"); checked."""
    return ServerProfile.of(profile.split("+")).names


def _ensure_uncovered_stuck_run(state: SandboxState) -> None:
    covered = covered_workspaces(state)
    uncovered_apps = sorted(
        app["id"]
        for app in state.applications()
        if app["workspaceId"] not in covered | destination_workspaces(state)
    )
    if uncovered_apps and set(stuck_run_ids(state).values()) <= covered:
        state.add_run(
            application_id=uncovered_apps[0],
            created_at=state.now_ms - 180 * _MINUTE_MS,
            command="python main.py --uncovered",
        )


def _add_long_job(state: SandboxState) -> None:
    """More CREATED runs on one covered job than a page holds, all fresh, so its listing pages
    (page-shift adds a run while it does; ignore-offset answers the first page twice).

    Under ignore-offset a listing only ever sees its first page. The sweep lists a job's runs
    oldest first and every stuck run (2-6 h old) is older than every fresh one (0-10 min), so
    the first page holds all of the job's stuck runs and the invariants stay as they are: every
    covered stuck run moved exactly once, nothing else touched. `first_page_misses` checks that
    premise on every fleet built here."""
    stuck = stuck_run_ids(state)
    covered = covered_workspaces(state)
    per_app = Counter(
        r["applicationId"] for r in state.runs() if r["id"] in stuck and stuck[r["id"]] in covered
    )
    app_id = min(per_app, key=lambda a: (-per_app[a], a))
    for index in range(LONG_JOB_FRESH_RUNS):
        state.add_run(
            application_id=app_id,
            created_at=state.now_ms - (1 + index % 9) * _MINUTE_MS - index,
            command=f"python main.py --long {index}",
        )
    assert not first_page_misses(state), "a stuck run of the long job is beyond its first page"


def first_page_misses(state: SandboxState) -> set[str]:
    """Stuck CREATED runs that a listing seeing only each job's first page (oldest first, as
    the sweep asks) would never see."""
    stuck = stuck_run_ids(state)
    by_app: dict[str, list[dict[str, Any]]] = {}
    for run in state.runs(status=RunStatus.CREATED):
        by_app.setdefault(run["applicationId"], []).append(run)
    missed: set[str] = set()
    for runs in by_app.values():
        runs.sort(key=lambda r: (r["createdAt"], r["id"]))
        missed |= {r["id"] for r in runs[PAGE_SIZE:] if r["id"] in stuck}
    return missed


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
        **NO_GUARD_RAILS,
        **extra,
    }


def start_sweep(env: dict[str, str], *args: str) -> cli.Running:
    return cli.start("sweep", "--output", "json", *args, env=env)


def finish(process: cli.Running) -> SweepRun:
    done = process.finish(SWEEP_TIMEOUT)
    if done.timed_out:
        raise subprocess.TimeoutExpired(cli.command(done.args), SWEEP_TIMEOUT)
    stdout, stderr = done.stdout, done.stderr
    assert_no_secrets(stdout + stderr, "the sweep's output")
    assert "Traceback" not in stderr, stderr[-3000:]
    return SweepRun(done.returncode, stdout, stderr)


def sweep(env: dict[str, str], *args: str) -> SweepRun:
    return finish(start_sweep(env, *args))


def journal_states(database_url: str) -> Counter[MoveState]:
    with open_store(database_url) as store:
        return Counter(r.state for r in store.journal.history(limit=100_000))


def journal_rows(database_url: str, source_run_ids: set[str] | None = None) -> list[str]:
    """One line per journal row (of these source runs, or unsettled when None), for messages."""
    settled = {MoveState.DONE, MoveState.SKIPPED}
    with open_store(database_url) as store:
        rows = store.journal.history(limit=100_000)
    return [
        f"  {r.source_run_id}: {r.state} attempts={r.attempts} "
        f"destination={r.destination_application_id}@{r.destination_version} "
        f"run={r.destination_run_name} trigger_sent={r.trigger_sent_at is not None} "
        f"terminate_sent={r.terminate_sent_at is not None} error={r.error!r}"
        for r in sorted(rows, key=lambda r: r.source_run_id)
        if (r.state not in settled if source_run_ids is None else r.source_run_id in source_run_ids)
    ]


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


def destination_workspaces(state: SandboxState) -> set[str]:
    return {str(w["id"]) for w in state.workspaces() if w["clusterId"] == DESTINATION_CLUSTER}


@dataclass
class Verdict:
    """The fleet judged run by run. `duplicates`: destination runs beyond one per covered stuck
    run; `lost`: source runs terminated with no live copy; `unmoved`: covered stuck runs still
    CREATED with no copy; `two_alive`: covered stuck runs still CREATED beside a live copy (the
    job runs twice once the source is scheduled). `problems` says what is wrong with which run
    (empty when every invariant holds)."""

    duplicates: int = 0
    lost: int = 0
    unmoved: int = 0
    two_alive: int = 0
    problems: list[str] = field(default_factory=list)
    runs: set[str] = field(default_factory=set)  # the source runs the problems name
    copy_ids: set[str] = field(default_factory=set)  # every destination run of some move

    def problem(self, run_id: str, text: str) -> None:
        self.problems.append(f"{run_id}: {text}")
        self.runs.add(run_id)


def judge(state: SandboxState, stuck: dict[str, str]) -> Verdict:
    """`stuck`: the fleet's stuck runs at build time (id -> workspace). Every run in the fleet
    is judged: a covered stuck run has exactly one copy, alive, and is terminated; any other
    source run (uncovered, fresh, or added by the server while paging) has no copy and is
    still CREATED; every run in a destination workspace is a labelled copy of some move."""
    covered = covered_workspaces(state)
    destinations = destination_workspaces(state)
    workspace_of = {a["id"]: a["workspaceId"] for a in state.applications()}
    copies = copies_by_source(state)
    copy_ids = {run["id"] for runs in copies.values() for run in runs}
    verdict = Verdict(copy_ids=copy_ids)
    for run in state.runs():
        run_id, status = str(run["id"]), str(run["status"])
        if run_id in copy_ids:
            continue
        if workspace_of[run["applicationId"]] in destinations:
            verdict.problem(run_id, f"destination run {run['name']} is no move's labelled copy")
            continue
        mine = copies.get(run_id, [])
        live = [c for c in mine if c["status"] not in _TERMINATED]
        if stuck.get(run_id) in covered:
            if len(mine) > 1:
                verdict.duplicates += len(mine) - 1
                names = ", ".join(str(c["name"]) for c in mine)
                verdict.problem(run_id, f"{len(mine)} destination runs, wanted 1 ({names})")
            elif not mine:
                verdict.unmoved += status == RunStatus.CREATED
                verdict.problem(run_id, f"covered stuck run not moved (it is {status})")
            if mine and not live:
                verdict.problem(run_id, "every destination run of it was terminated")
            if mine and status not in _TERMINATED:
                verdict.two_alive += bool(live) and status == RunStatus.CREATED
                verdict.problem(run_id, f"moved but the source is {status}")
        else:
            why = "not covered" if run_id in stuck else "not stuck"
            if mine:
                verdict.problem(run_id, f"moved though {why} ({len(mine)} destination runs)")
            if status != RunStatus.CREATED:
                verdict.problem(run_id, f"touched though {why}: it is {status}")
        if status in _TERMINATED and not live:
            verdict.lost += 1
            verdict.problem(run_id, f"source {status} without a live destination run")
    return verdict


def assert_invariants(
    state: SandboxState, stuck: dict[str, str], database_url: str | None = None
) -> None:
    """Every invariant of `judge`; with `database_url`, a failure quotes the journal rows of
    the runs it names."""
    verdict = judge(state, stuck)
    if verdict.problems:
        rows = journal_rows(database_url, verdict.runs) if database_url else []
        raise AssertionError("\n".join([*verdict.problems, "journal:", *rows]))

"""Sweeps racing each other, and someone else changing a source run while it is being moved."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from jobfallback.models import MoveState, RunStatus
from jobfallback_sandbox import HookContext, SandboxError, SandboxServer, SandboxState
from tests.faults.harness import (
    SweepRun,
    assert_invariants,
    converged,
    finish,
    fleet,
    import_configs,
    journal_states,
    outcome,
    start_sweep,
    stuck_run_ids,
    stuck_run_ids_now,
    sweep,
    sweep_env,
)
from tests.fixtures.copies import copies_by_source

LOCKED = "another sweep holds the lock"
SWEEPS = 5
WAIT = 60.0  # seconds; only a broken lock makes the test wait this long, then fail


def test_five_sweeps_at_once_one_moves_the_others_exit_0(database_url: str) -> None:
    state = fleet(seed=21)
    stuck = stuck_run_ids(state)
    covered = stuck_run_ids_now(state)
    import_configs(database_url, state)
    others_done = threading.Event()

    def hold_until_the_others_gave_up(ctx: HookContext) -> None:
        # The lock holder's first request waits until the other sweeps have exited, so they
        # all meet the held lock however slowly the processes start.
        if ctx.call_index == 0:
            others_done.wait(WAIT)

    with SandboxServer(state, latency_ms=100) as server:
        server.add_hook("list_apps", hold_until_the_others_gave_up)
        env = sweep_env(server, database_url)
        processes = [start_sweep(env) for _ in range(SWEEPS)]
        deadline = time.monotonic() + WAIT
        while sum(p.poll() is not None for p in processes) < SWEEPS - 1:
            assert time.monotonic() < deadline, "the sweeps did not meet the lock"
            time.sleep(0.05)
        others_done.set()
        runs = [finish(p) for p in processes]
    assert [r.code for r in runs] == [0] * SWEEPS
    movers = [r for r in runs if "report" in json.loads(r.stdout)]
    assert len(movers) == 1
    assert movers[0].report["moved"] == len(covered)
    assert sum(LOCKED in r.stderr for r in runs) == SWEEPS - 1
    assert_invariants(state, stuck)
    assert converged(state, database_url)


def end_sources_after_put(
    state: SandboxState, sources: dict[str, str], status: str
) -> Callable[[HookContext], None]:
    """A hook: after the first PUT of a move, every source still CREATED ends `status`."""

    def hook(ctx: HookContext) -> None:
        if ctx.call_index == 0:
            for run_id in sources:
                if (state.run(run_id) or {}).get("status") == RunStatus.CREATED:
                    state.set_run_status(run_id, status)

    return hook


def race(database_url: str, seed: int, status: str) -> tuple[SandboxState, dict[str, str]]:
    state = fleet(seed=seed)
    covered = stuck_run_ids_now(state)
    import_configs(database_url, state)
    with SandboxServer(state) as server:
        server.add_hook("put_app", end_sources_after_put(state, covered, status), when="after")
        env = sweep_env(server, database_url)
        assert sweep(env).code in (0, 1)
        assert sweep(env).code == 0
    assert set(journal_states(database_url)) <= {MoveState.DONE, MoveState.SKIPPED}
    return state, covered


def assert_no_job_runs_twice(state: SandboxState, covered: dict[str, str]) -> None:
    """A destination copy still alive means its source was terminated (not ended on its own)."""
    result = outcome(state, covered)
    for source_id, copies in result.copies.items():
        assert len(copies) <= 1, f"{source_id}: {len(copies)} destination runs"
        alive = [c for c in copies if c["status"] in (RunStatus.CREATED, RunStatus.RUNNING)]
        if alive:
            assert result.status[source_id] in (
                RunStatus.TERMINATION_REQUESTED,
                RunStatus.TERMINATED,
            ), f"{source_id} is {result.status[source_id]} and its copy {alive[0]['name']} runs"


def test_source_terminated_by_someone_else_mid_move(database_url: str) -> None:
    state, covered = race(database_url, seed=22, status=RunStatus.TERMINATED)
    assert_no_job_runs_twice(state, covered)


def test_source_finishing_on_its_own_mid_move(database_url: str) -> None:
    state, covered = race(database_url, seed=23, status=RunStatus.FINISHED)
    assert_no_job_runs_twice(state, covered)


def break_terminate_then_start_sources(
    database_url: str, seed: int, failure: Exception
) -> tuple[SandboxState, dict[str, str], SweepRun]:
    """Every terminate fails with `failure`; then the sources start on their own, next to the
    copies already triggered, and a second sweep runs."""
    state = fleet(seed=seed)
    covered = stuck_run_ids_now(state)
    import_configs(database_url, state)
    terminate_broken = threading.Event()
    terminate_broken.set()

    def break_terminate(ctx: HookContext) -> None:
        if terminate_broken.is_set():
            raise failure

    with SandboxServer(state) as server:
        server.add_hook("terminate", break_terminate)
        env = sweep_env(server, database_url)
        assert sweep(env).code == 1
        assert set(journal_states(database_url)) == {MoveState.FAILED}
        for run_id in covered:
            state.set_run_status(run_id, RunStatus.RUNNING)
        terminate_broken.clear()
        second = sweep(env)
    return state, covered, second


def test_a_refused_terminate_then_a_started_source_stops_the_copy(database_url: str) -> None:
    # A 429 says the terminate did nothing: the source runs on its own, so the copy must stop.
    failure = SandboxError(429, "injected: too many requests", "TOO_MANY_REQUESTS")
    state, covered, second = break_terminate_then_start_sources(database_url, 24, failure)
    assert second.code == 0, second.stderr[-2000:]
    assert_no_job_runs_twice(state, covered)
    assert set(journal_states(database_url)) == {MoveState.SKIPPED}


def test_a_terminate_that_may_have_applied_then_a_started_source_is_parked(
    database_url: str,
) -> None:
    # A 500 may have applied: the copy is never killed (that could kill the job twice over);
    # both runs are left for a person, the move parked and the sweep exits 1.
    failure = RuntimeError("injected: terminate fails every attempt")
    state, covered, second = break_terminate_then_start_sources(database_url, 25, failure)
    assert second.code == 1, second.stderr[-2000:]
    assert set(journal_states(database_url)) == {MoveState.PARKED}
    copies = copies_by_source(state)
    for run_id in covered:
        (copy,) = copies[run_id]
        assert copy["status"] not in (RunStatus.TERMINATION_REQUESTED, RunStatus.TERMINATED)

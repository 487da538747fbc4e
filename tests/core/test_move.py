"""The move state machine with a real client against an in-process sandbox and a real journal.

Each resume path starts from a journal row an earlier pass left behind, built here by doing what
that pass did (through the same client) and recording it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from jobfallback.models import (
    FallbackConfig,
    FallbackConfigSpec,
    MoveRecord,
    MoveState,
    PlannedMove,
    RunStatus,
)
from jobfallback.move import MoveOutcome, Mover, destination_manifest
from jobfallback.sandbox import HookContext, SandboxServer, SandboxState
from jobfallback.store import Store
from jobfallback.truefoundry import TrueFoundryClient, run_alias

pytestmark = pytest.mark.anyio

SOURCE_ID, SOURCE_NAME, JOB = "run-train-1", "train-llm-0412", "app-train-llm"
DESTINATION_WS, DESTINATION_FQN = "ws-west-fallback", "gpu-west:fallback"
ALIAS = run_alias(SOURCE_ID)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def config(store: Store, sandbox_state: SandboxState) -> FallbackConfig:
    return store.configs.add(FallbackConfigSpec.model_validate(sandbox_state.configs[0]))


@asynccontextmanager
async def connected(sandbox: SandboxServer) -> AsyncIterator[TrueFoundryClient]:
    async with TrueFoundryClient(sandbox.url, sandbox.token) as client:
        yield client


async def plan(client: TrueFoundryClient, config: FallbackConfig) -> PlannedMove:
    """The planned move of the demo's stuck train-llm run, as the sweep builds it."""
    application = await client.get_application(JOB)
    run = await client.get_job_run(JOB, SOURCE_NAME)
    return PlannedMove(
        run=run,
        application=application,
        config=config,
        age_minutes=185,
        threshold_minutes=60,
        reason="test",
    )


def left_behind(store: Store, planned: PlannedMove, state: MoveState, **fields: Any) -> MoveRecord:
    """The journal row an earlier pass left at `state` with the destination ids it recorded."""
    now = datetime.now(tz=UTC)
    store.journal.begin(
        MoveRecord(
            source_run_id=planned.run.id,
            source_run_name=planned.run.name,
            source_application_id=planned.application.id,
            source_application_name=planned.application.name,
            source_deployment_id=planned.run.deployment_id,
            config_id=planned.config.id,
            destination_workspace_fqn=planned.destination_workspace_fqn,
            state=MoveState.PLANNED,
            created_at=now,
            updated_at=now,
        )
    )
    return store.journal.update(planned.run.id, state=state, **fields)


async def put_copy(client: TrueFoundryClient, planned: PlannedMove) -> dict[str, str]:
    """What a pass that got as far as `created` did: the destination application."""
    assert planned.application.deployment is not None
    manifest = destination_manifest(planned.application.deployment.manifest, DESTINATION_FQN)
    deployment = await client.put_application(manifest)
    return {
        "destination_application_id": deployment.application_id,
        "destination_deployment_id": deployment.id,
    }


def copies(state: SandboxState) -> list[dict[str, Any]]:
    return [r for r in state.runs(workspace_id=DESTINATION_WS) if r["name"].startswith(ALIAS)]


def source_status(state: SandboxState) -> str:
    run = state.run(SOURCE_ID)
    assert run is not None
    return str(run["status"])


def assert_done(outcome: MoveOutcome, store: Store, state: SandboxState) -> None:
    assert outcome.state == MoveState.DONE, outcome
    record = store.journal.get(SOURCE_ID)
    assert record is not None
    assert (record.state, record.error, record.destination_run_name) == (
        MoveState.DONE,
        None,
        ALIAS,
    )
    assert source_status(state) == RunStatus.TERMINATION_REQUESTED
    assert [c["name"] for c in copies(state)] == [ALIAS]


async def test_a_fresh_move_copies_triggers_and_terminates(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        outcome = await Mover(client, store.journal).move(planned)
    assert_done(outcome, store, sandbox.state)
    source = sandbox.state.run(SOURCE_ID)
    (copy,) = copies(sandbox.state)
    assert source is not None
    assert (copy["command"], copy["params"]) == (source["command"], source["params"])
    # The destination job is the source's manifest, redeployed in the destination workspace.
    destination = sandbox.state.application_by_name(DESTINATION_WS, "train-llm")
    assert destination is not None
    assert planned.application.deployment is not None
    assert destination["deployment"]["manifest"] == {
        **planned.application.deployment.manifest,
        "workspace_fqn": DESTINATION_FQN,
    }
    assert sandbox.request_counts["trigger"] == 1
    assert sandbox.request_counts["list_runs"] == 0  # a fresh move needs no alias look-up


async def test_a_planned_row_is_resumed_from_the_put(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        left_behind(store, planned, MoveState.PLANNED)
        outcome = await Mover(client, store.journal).move(planned)
    assert_done(outcome, store, sandbox.state)
    assert sandbox.request_counts["put_app"] == 1


async def test_a_created_row_is_triggered_once(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        left_behind(store, planned, MoveState.CREATED, **await put_copy(client, planned))
        outcome = await Mover(client, store.journal).move(planned)
    assert_done(outcome, store, sandbox.state)
    assert (sandbox.request_counts["put_app"], sandbox.request_counts["trigger"]) == (1, 1)


async def test_a_created_row_whose_trigger_went_through_is_found_by_its_alias(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        ids = await put_copy(client, planned)
        # The previous pass triggered, then died before recording it.
        await client.trigger_job(
            ids["destination_application_id"], command="x", params=None, alias=ALIAS
        )
        left_behind(store, planned, MoveState.FAILED, error="read timeout", **ids)
        outcome = await Mover(client, store.journal).move(planned)
    assert_done(outcome, store, sandbox.state)
    assert sandbox.request_counts["trigger"] == 1  # only the previous pass's


async def resume_triggered_row(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, source_now: RunStatus
) -> MoveOutcome:
    """Resume a row left at `triggered` (copy recorded, source not yet terminated) after the
    source moved on to `source_now`."""
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        ids = await put_copy(client, planned)
        run = await client.trigger_job(
            ids["destination_application_id"], command=None, params=None, alias=ALIAS
        )
        record = left_behind(
            store, planned, MoveState.TRIGGERED, destination_run_name=run.name, **ids
        )
        sandbox.state.set_run_status(SOURCE_ID, source_now)
        return await Mover(client, store.journal).resume(record)


async def test_a_triggered_row_whose_source_is_terminated_is_done(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    outcome = await resume_triggered_row(sandbox, store, config, RunStatus.TERMINATION_REQUESTED)
    assert_done(outcome, store, sandbox.state)
    assert sandbox.request_counts["terminate"] == 0


async def test_a_source_that_started_after_our_trigger_stops_our_copy(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    outcome = await resume_triggered_row(sandbox, store, config, RunStatus.RUNNING)
    assert outcome.state == MoveState.SKIPPED
    assert "destination copy was terminated" in outcome.detail
    assert source_status(sandbox.state) == RunStatus.RUNNING
    assert [c["status"] for c in copies(sandbox.state)] == [RunStatus.TERMINATION_REQUESTED]
    skipped = store.journal.get(SOURCE_ID)
    assert skipped is not None
    assert skipped.state == MoveState.SKIPPED


async def test_a_source_that_is_gone_is_skipped(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        gone = planned.model_copy(update={"run": planned.run.model_copy(update={"name": "gone"})})
        outcome = await Mover(client, store.journal).move(gone)
    assert (outcome.state, outcome.detail) == (MoveState.SKIPPED, "source run no longer exists")
    assert sandbox.request_counts["put_app"] == 0


async def test_a_source_that_finished_just_before_terminate_stops_the_copy(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def finish_first(ctx: HookContext) -> None:
        if ctx.query.get("jobRunName") == SOURCE_NAME:
            ctx.state.set_run_status(SOURCE_ID, RunStatus.FINISHED)

    sandbox.add_hook("terminate", finish_first)
    async with connected(sandbox) as client:
        outcome = await Mover(client, store.journal).move(await plan(client, config))
    # The server answered 417: the source ran on its own, so our copy must not run too.
    assert outcome.state == MoveState.SKIPPED
    assert source_status(sandbox.state) == RunStatus.FINISHED
    assert [(c["name"], c["status"]) for c in copies(sandbox.state)] == [
        (ALIAS, RunStatus.TERMINATION_REQUESTED)
    ]


async def test_a_failed_step_is_recorded_and_the_next_attempt_finishes(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    async with connected(sandbox) as client:
        mover = Mover(client, store.journal)
        planned = await plan(client, config)
        failed = await mover.move(planned)
        record = store.journal.get(SOURCE_ID)
        assert record is not None
        assert (failed.state, record.state) == (MoveState.FAILED, MoveState.FAILED)
        assert record.attempts == 1
        assert "500" in str(record.error)
        assert source_status(sandbox.state) == RunStatus.CREATED

        sandbox.set_faults(rate=0.0, kinds=[])
        outcome = await mover.move(planned)
    assert_done(outcome, store, sandbox.state)


async def test_a_done_move_is_not_touched_again(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        left_behind(store, planned, MoveState.DONE)
        calls = sum(sandbox.request_counts.values())
        outcome = await Mover(client, store.journal).move(planned)
    assert outcome.state == MoveState.DONE
    assert sum(sandbox.request_counts.values()) == calls


def test_destination_manifest_changes_only_the_workspace() -> None:
    manifest = {"name": "j", "workspace_fqn": "a:b", "env": {"K": "v"}, "resources": {"cpu": 1}}
    moved = destination_manifest(manifest, "c:d")
    assert moved == {**manifest, "workspace_fqn": "c:d"}
    moved["env"]["K"] = "changed"
    assert manifest["env"] == {"K": "v"}  # a deep copy: the source manifest is untouched
    assert manifest["workspace_fqn"] == "a:b"

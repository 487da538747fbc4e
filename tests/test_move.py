"""The move state machine with a real client against an in-process sandbox and a real journal.

Each resume path starts from a journal row an earlier pass left behind, built here by doing what
that pass did (through the same client) and recording it. What a test asserts is read from the
sandbox's state and the journal: how many copies exist, which runs were terminated, what the
journal says, and which calls were made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from jobfallback.models import (
    FallbackConfig,
    MoveRecord,
    MoveState,
    PlannedMove,
    RunStatus,
)
from jobfallback.move import (
    LABEL_SOURCE_JOB,
    LABEL_SOURCE_RUN,
    MovePolicy,
    Mover,
    Outcome,
    Step,
    destination_manifest,
    next_step,
)
from jobfallback.provenance import LABEL_ORIGIN_JOB
from jobfallback.store import Store
from jobfallback.store.lock import LockLost
from jobfallback.truefoundry import TrueFoundryClient, run_alias
from jobfallback_sandbox import HookContext, SandboxError, SandboxServer, SandboxState

pytestmark = pytest.mark.anyio

SOURCE_ID, SOURCE_NAME, JOB, JOB_NAME = (
    "run-train-1",
    "train-llm-0412",
    "app-train-llm",
    "train-llm",
)
DESTINATION_WS, DESTINATION_FQN = "ws-west-fallback", "gpu-west:fallback"
OWNER = "pass-under-test"
Obj = dict[str, Any]


@asynccontextmanager
async def connected(sandbox: SandboxServer) -> AsyncIterator[TrueFoundryClient]:
    async with TrueFoundryClient(sandbox.url, sandbox.token) as client:
        yield client


def mover(client: TrueFoundryClient, store: Store, **options: Any) -> Mover:
    return Mover(client, store.journal, owner=OWNER, **options)


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
    """The journal row an earlier pass left at `state` with the fields it recorded."""
    now = datetime.now(tz=UTC)
    store.journal.claim(
        MoveRecord(
            source_run_id=planned.run.id,
            source_run_name=planned.run.name,
            source_application_id=planned.application.id,
            source_application_name=planned.application.name,
            source_deployment_id=planned.run.deployment_id,
            config_id=planned.config.id,
            destination_workspace_fqn=planned.destination_workspace_fqn,
            state=MoveState.CLAIMED,
            owner="pass-earlier",
            created_at=now,
            updated_at=now,
        )
    )
    return store.journal.update(planned.run.id, owner=None, state=state, **fields)


async def deploy_copy(client: TrueFoundryClient, record: MoveRecord, manifest: Obj) -> Obj:
    """What a pass that got as far as the PUT did: this move's version in the destination."""
    deployment = await client.put_application(
        destination_manifest(manifest, DESTINATION_FQN, record)
    )
    return {
        "destination_application_id": deployment.application_id,
        "destination_deployment_id": deployment.id,
        "destination_version": deployment.version,
    }


def source_manifest(planned: PlannedMove) -> Obj:
    assert planned.application.deployment is not None
    return planned.application.deployment.manifest


def copies(state: SandboxState) -> list[Obj]:
    app = state.application_by_name(DESTINATION_WS, JOB_NAME)
    return [] if app is None else state.runs(application_id=app["id"])


def source_status(state: SandboxState) -> str:
    run = state.run(SOURCE_ID)
    assert run is not None
    return str(run["status"])


def journal(store: Store) -> MoveRecord:
    record = store.journal.get(SOURCE_ID)
    assert record is not None
    return record


def assert_moved_once(outcome: Any, store: Store, state: SandboxState) -> None:
    assert outcome.outcome == Outcome.MOVED, outcome
    record = journal(store)
    (copy,) = copies(state)
    assert (record.state, record.error, record.destination_run_name) == (
        MoveState.DONE,
        None,
        copy["name"],
    )
    assert source_status(state) == RunStatus.TERMINATION_REQUESTED
    assert copy["status"] not in (RunStatus.TERMINATION_REQUESTED, RunStatus.TERMINATED)


# ------------------------------------------------------------------ a fresh move


async def test_a_fresh_move_deploys_its_own_version_triggers_it_and_terminates_the_source(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        before = dict(sandbox.request_counts)
        outcome = await mover(client, store).move(planned)
    assert_moved_once(outcome, store, sandbox.state)
    (copy,) = copies(sandbox.state)
    source = sandbox.state.run(SOURCE_ID)
    assert source is not None
    assert (copy["command"], copy["params"]) == (source["command"], source["params"])
    destination = sandbox.state.application_by_name(DESTINATION_WS, JOB_NAME)
    assert destination is not None
    # The copy runs on the version this move deployed, and that version says whose copy it is.
    record = journal(store)
    assert copy["deploymentId"] == record.destination_deployment_id
    manifest = destination["deployment"]["manifest"]
    assert manifest == {
        **source_manifest(planned),
        "workspace_fqn": DESTINATION_FQN,
        "trigger": {"type": "manual"},
        "trigger_on_deploy": False,
        "labels": {
            LABEL_SOURCE_RUN: SOURCE_ID,
            LABEL_SOURCE_JOB: JOB,
            LABEL_ORIGIN_JOB: JOB,  # an original job is its own origin
            "jobfallback.io/hop-1": source_manifest(planned)["workspace_fqn"].replace(":", "."),
        },
    }
    calls = {k: v - before.get(k, 0) for k, v in sandbox.request_counts.items()}
    # The budget of a fresh move: look for the destination job, PUT, trigger, re-read, terminate.
    assert {k: v for k, v in calls.items() if v} == {
        "list_apps": 1,
        "put_app": 1,
        "trigger": 1,
        "get_run": 1,
        "terminate": 1,
    }


async def test_the_copy_of_a_scheduled_job_is_manual(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        scheduled = {
            **source_manifest(planned),
            "trigger": {"type": "scheduled", "schedule": "0 * * * *"},
        }
        assert planned.application.deployment is not None
        planned.application.deployment.manifest = scheduled
        outcome = await mover(client, store).move(planned)
    assert outcome.outcome == Outcome.MOVED
    destination = sandbox.state.application_by_name(DESTINATION_WS, JOB_NAME)
    assert destination is not None
    assert destination["deployment"]["manifest"]["trigger"] == {"type": "manual"}


def a_record(**fields: Any) -> MoveRecord:
    now = datetime.now(tz=UTC)
    values: dict[str, Any] = {
        "source_run_id": "r",
        "source_run_name": "n",
        "source_application_id": "app-1",
        "source_application_name": "j",
        "destination_workspace_fqn": "c:d",
        "state": MoveState.CLAIMED,
        "created_at": now,
        "updated_at": now,
    }
    return MoveRecord(**{**values, **fields})


def test_destination_manifest_keeps_the_job_and_labels_the_copy() -> None:
    manifest = {
        "name": "j",
        "workspace_fqn": "a:b",
        "env": {"K": "v"},
        "labels": {"team": "ml"},
        "trigger": {"type": "scheduled", "schedule": "* * * * *"},
        "trigger_on_deploy": True,
    }
    moved = destination_manifest(manifest, "c:d", a_record(source_run_id="r1"))
    assert moved == {
        **manifest,
        "workspace_fqn": "c:d",
        "labels": {
            "team": "ml",
            LABEL_SOURCE_RUN: "r1",
            LABEL_SOURCE_JOB: "app-1",
            LABEL_ORIGIN_JOB: "app-1",
            "jobfallback.io/hop-1": "a.b",  # the workspace it left
        },
        "trigger": {"type": "manual"},
        "trigger_on_deploy": False,
    }
    moved["env"]["K"] = "changed"
    assert manifest["env"] == {"K": "v"}  # a deep copy: the source manifest is untouched
    assert manifest["labels"] == {"team": "ml"}


# ------------------------------------------------------------------ where a resumed move starts


def test_the_resume_step_is_read_off_the_row() -> None:
    now = datetime.now(tz=UTC)
    base = a_record(state=MoveState.FAILED)
    deployed = base.model_copy(update={"destination_deployment_id": "dep"})
    sent = deployed.model_copy(update={"trigger_sent_at": now})
    known = sent.model_copy(update={"destination_run_name": "copy"})
    assert [next_step(r) for r in (base, deployed, sent, known)] == [
        Step.DEPLOY,
        Step.TRIGGER,
        Step.FIND_TRIGGERED,
        Step.TERMINATE,
    ]
    # A copy recorded without a trigger mark (an adopted run) still resumes at terminate.
    assert next_step(deployed.model_copy(update={"destination_run_name": "copy"})) == Step.TERMINATE


async def test_a_deployed_row_without_a_trigger_mark_triggers_without_a_look_up(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.CLAIMED)
        ids = await deploy_copy(client, record, source_manifest(planned))
        record = left_behind(store, planned, MoveState.FAILED, **ids)
        outcome = await mover(client, store).resume(record, config)
    assert_moved_once(outcome, store, sandbox.state)
    assert sandbox.request_counts["list_runs"] == 0  # no mark: provably never triggered
    assert sandbox.request_counts["put_app"] == 1


async def test_a_claimed_row_whose_source_started_is_skipped_without_a_copy(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.CLAIMED)
        sandbox.state.set_run_status(SOURCE_ID, RunStatus.RUNNING)
        outcome = await mover(client, store).resume(record, config)
    assert outcome.outcome == Outcome.SKIPPED
    assert journal(store).state == MoveState.SKIPPED
    assert copies(sandbox.state) == []
    assert sandbox.request_counts["put_app"] == 0


async def test_a_row_that_created_nothing_is_dropped_when_its_config_is_gone(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.FAILED, error="500")
        calls = sum(sandbox.request_counts.values())
        outcome = await mover(client, store).resume(record, None)
    assert outcome.outcome == Outcome.SKIPPED
    assert outcome.detail == (
        f"its config {config.id} was removed or disabled before anything was created; dropped"
    )
    assert journal(store).state == MoveState.SKIPPED
    assert sum(sandbox.request_counts.values()) == calls


@pytest.mark.parametrize(
    ("now_names", "goes_to", "workspace"),
    [
        ("gpu-west:elsewhere", "gpu-west:elsewhere", "ws-elsewhere"),
        (None, DESTINATION_FQN, DESTINATION_WS),  # a config naming no FQN: where it was going
    ],
)
async def test_a_row_that_created_nothing_follows_its_changed_config(
    sandbox: SandboxServer,
    store: Store,
    config: FallbackConfig,
    now_names: str | None,
    goes_to: str,
    workspace: str,
) -> None:
    sandbox.state.add_workspace(name="elsewhere", cluster_id="gpu-west", id="ws-elsewhere")
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.FAILED, error="500")
        moved_config = config.model_copy(update={"destination_workspace_fqn": now_names})
        outcome = await mover(client, store).resume(record, moved_config)
    assert outcome.outcome == Outcome.MOVED
    assert journal(store).destination_workspace_fqn == goes_to
    assert sandbox.state.application_by_name(workspace, JOB_NAME) is not None
    assert len(copies(sandbox.state)) == (workspace == DESTINATION_WS)


# ------------------------------------------------------------------ a trigger whose answer was lost


async def left_with_trigger_sent(
    client: TrueFoundryClient,
    store: Store,
    planned: PlannedMove,
    *,
    sent_ago: timedelta,
    triggered: bool,
) -> MoveRecord:
    """A row whose pass recorded the trigger mark and died; `triggered`: the POST got there."""
    record = left_behind(store, planned, MoveState.CLAIMED)
    ids = await deploy_copy(client, record, source_manifest(planned))
    if triggered:
        await client.trigger_job(
            ids["destination_deployment_id"], command="x", params=None, alias="not-ours"
        )
    return left_behind(
        store, planned, MoveState.FAILED, error="read timeout", trigger_sent_at=-sent_ago, **ids
    )


async def test_a_sent_trigger_is_found_on_the_moves_version_and_adopted(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = await left_with_trigger_sent(
            client, store, planned, sent_ago=timedelta(0), triggered=True
        )
        outcome = await mover(client, store).resume(record, config)
    assert_moved_once(outcome, store, sandbox.state)
    assert sandbox.request_counts["trigger"] == 1  # only the earlier pass's


async def test_a_run_on_another_version_is_never_adopted(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    """A server that ignores versionNumbers must not hand this move another move's run."""

    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.CLAIMED)
        older = await deploy_copy(client, record, source_manifest(planned))
        other = await client.trigger_job(
            older["destination_deployment_id"], command="x", params=None, alias="a"
        )
        record = await left_with_trigger_sent(
            client, store, planned, sent_ago=timedelta(minutes=1), triggered=False
        )

        def ignore_version_filter(ctx: HookContext) -> None:
            ctx.response["data"].append(other.model_dump(by_alias=True))

        sandbox.add_hook("list_runs", ignore_version_filter, when="after")
        outcome = await mover(client, store).resume(record, config)
    assert outcome.outcome == Outcome.WAITING, outcome
    assert journal(store).destination_run_name is None
    assert sandbox.request_counts["trigger"] == 1


async def test_an_unproven_trigger_waits_for_the_settle_window_then_triggers_once(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = await left_with_trigger_sent(
            client, store, planned, sent_ago=timedelta(minutes=1), triggered=False
        )
        waiting = await mover(client, store).resume(record, config)
        assert waiting.outcome == Outcome.WAITING, waiting
        row = journal(store)
        assert (row.state, row.attempts) == (MoveState.WAITING, 0)  # settling is not a failure
        assert row.next_attempt_at is not None
        assert row.trigger_sent_at is not None
        assert row.next_attempt_at - row.trigger_sent_at == pytest.approx(
            MovePolicy().settle, abs=timedelta(seconds=5)
        )
        assert sandbox.request_counts["trigger"] == 0

        later = datetime.now(tz=UTC) + MovePolicy().settle
        outcome = await mover(client, store, clock=lambda: later).resume(row, config)
    assert_moved_once(outcome, store, sandbox.state)
    assert sandbox.request_counts["trigger"] == 1


async def test_an_unreadable_item_in_the_look_up_fails_closed(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def garble(ctx: HookContext) -> None:
        for item in ctx.response["data"]:
            item["createdAt"] = "yesterday"

    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = await left_with_trigger_sent(
            client, store, planned, sent_ago=timedelta(hours=1), triggered=True
        )
        sandbox.add_hook("list_runs", garble, when="after")
        policy = MovePolicy(max_attempts=2)
        first = await mover(client, store, policy=policy).resume(record, config)
        assert first.outcome in (Outcome.FAILED, Outcome.WAITING), first
        store.journal.retry_now(SOURCE_ID)
        store.journal.update(SOURCE_ID, owner=None, state=MoveState.FAILED, attempts=1)
        second = await mover(client, store, policy=policy).resume(journal(store), config)
    assert second.outcome == Outcome.PARKED
    assert journal(store).state == MoveState.PARKED
    assert len(copies(sandbox.state)) == 1  # the earlier pass's run; never a second one
    assert source_status(sandbox.state) == RunStatus.CREATED


async def test_a_refused_trigger_clears_its_mark(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["429"], endpoints=["trigger"])
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        outcome = await mover(client, store).move(planned)
    assert outcome.outcome == Outcome.FAILED
    row = journal(store)
    assert row.trigger_sent_at is None  # a 429 did nothing: the next attempt triggers directly
    assert next_step(row) == Step.TRIGGER


async def test_a_trigger_that_timed_out_keeps_its_mark(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        outcome = await mover(client, store).move(planned)
    assert outcome.outcome == Outcome.FAILED
    row = journal(store)
    assert row.trigger_sent_at is not None  # a 500 may have had its effect
    assert (row.attempts, next_step(row)) == (1, Step.FIND_TRIGGERED)
    assert row.next_attempt_at is not None
    assert row.next_attempt_at > datetime.now(tz=UTC)


# ------------------------------------------------------------------ the destination


def reset_journal(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM moves")


async def test_a_reset_journal_adopts_the_earlier_moves_version_and_run(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, database_url: str
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.CLAIMED)
        ids = await deploy_copy(client, record, source_manifest(planned))
        await client.trigger_job(
            ids["destination_deployment_id"], command="x", params=None, alias="z"
        )
        reset_journal(database_url)  # a restored backup, or another database
        outcome = await mover(client, store).move(planned)
    assert_moved_once(outcome, store, sandbox.state)
    assert (sandbox.request_counts["put_app"], sandbox.request_counts["trigger"]) == (1, 1)


async def test_another_jobs_application_in_the_destination_is_never_overwritten(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    theirs = sandbox.state.add_application(
        workspace_id=DESTINATION_WS, name=JOB_NAME, manifest={"image": {"type": "image"}}
    )
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    assert outcome.outcome == Outcome.PARKED
    assert JOB in outcome.detail
    assert theirs["id"] in outcome.detail
    after = sandbox.state.application_by_name(DESTINATION_WS, JOB_NAME)
    assert after is not None
    assert after["deployment"]["id"] == theirs["deployment"]["id"]  # no new version
    assert sandbox.request_counts["put_app"] == sandbox.request_counts["trigger"] == 0
    assert journal(store).state == MoveState.PARKED
    assert source_status(sandbox.state) == RunStatus.CREATED


async def test_a_copy_of_the_same_job_gets_a_new_version_for_this_move(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, database_url: str
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        earlier = left_behind(store, planned, MoveState.CLAIMED).model_copy(
            update={"source_run_id": "run-earlier"}
        )
        ids = await deploy_copy(client, earlier, source_manifest(planned))
        reset_journal(database_url)
        outcome = await mover(client, store).move(planned)
    assert outcome.outcome == Outcome.MOVED
    assert journal(store).destination_deployment_id != ids["destination_deployment_id"]
    assert sandbox.request_counts["put_app"] == 2


# ------------------------------------------------------------------ the source


async def resumed_with_copy(
    sandbox: SandboxServer,
    store: Store,
    config: FallbackConfig,
    client: TrueFoundryClient,
    *,
    terminate_sent: bool = False,
    **fields: Any,
) -> tuple[MoveRecord, Obj]:
    """A row whose copy is recorded (and maybe a terminate of ours sent), with `fields` set
    on it too: (row, the copy)."""
    planned = await plan(client, config)
    record = left_behind(store, planned, MoveState.CLAIMED)
    ids = await deploy_copy(client, record, source_manifest(planned))
    run = await client.trigger_job(
        ids["destination_deployment_id"], command=None, params=None, alias="x"
    )
    marks = {"terminate_sent_at": timedelta(0)} if terminate_sent else {}
    record = left_behind(
        store,
        planned,
        MoveState.TRIGGERED,
        destination_run_name=run.name,
        **ids,
        **marks,
        **fields,
    )
    (copy,) = copies(sandbox.state)
    return record, copy


async def resume_with_copy(
    sandbox: SandboxServer,
    store: Store,
    config: FallbackConfig,
    source_now: str,
    *,
    terminate_sent: bool = False,
) -> Any:
    """Resume a row whose copy is recorded, after the source moved on to `source_now`."""
    async with connected(sandbox) as client:
        record, _ = await resumed_with_copy(
            sandbox, store, config, client, terminate_sent=terminate_sent
        )
        sandbox.state.set_run_status(SOURCE_ID, source_now)
        return await mover(client, store).resume(record, config)


async def test_a_source_terminated_by_anyone_after_our_trigger_is_done(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    outcome = await resume_with_copy(sandbox, store, config, RunStatus.TERMINATED)
    assert outcome.outcome == Outcome.MOVED
    assert RunStatus.TERMINATED in outcome.detail
    assert (journal(store).state, journal(store).error) == (MoveState.DONE, None)
    assert sandbox.request_counts["terminate"] == 0
    assert [c["status"] for c in copies(sandbox.state)] == [RunStatus.RUNNING]


@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.SCHEDULED])
async def test_a_source_that_started_on_its_own_stops_our_copy(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, status: str
) -> None:
    outcome = await resume_with_copy(sandbox, store, config, status)
    assert (outcome.source_run_id, outcome.outcome) == (SOURCE_ID, Outcome.SKIPPED)
    assert outcome.detail == (
        f"source run is {status} on its own; the destination copy was terminated"
    )
    assert source_status(sandbox.state) == status
    assert [c["status"] for c in copies(sandbox.state)] == [RunStatus.TERMINATION_REQUESTED]
    assert (journal(store).state, journal(store).error) == (MoveState.SKIPPED, outcome.detail)


@pytest.mark.parametrize("status", [RunStatus.UNKNOWN, RunStatus.FAILED, "CANCELLED"])
async def test_after_our_terminate_any_ended_source_counts_as_terminated_and_the_copy_lives(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, status: str
) -> None:
    outcome = await resume_with_copy(sandbox, store, config, status, terminate_sent=True)
    assert outcome.outcome == Outcome.MOVED, outcome
    (copy,) = copies(sandbox.state)
    assert copy["status"] != RunStatus.TERMINATION_REQUESTED


async def test_a_running_source_after_our_terminate_is_parked_with_both_alive(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    outcome = await resume_with_copy(sandbox, store, config, RunStatus.RUNNING, terminate_sent=True)
    assert outcome.outcome == Outcome.PARKED
    assert "moves abandon" in outcome.detail
    assert (journal(store).state, journal(store).error) == (MoveState.PARKED, outcome.detail)
    (copy,) = copies(sandbox.state)
    assert copy["status"] == RunStatus.RUNNING
    assert source_status(sandbox.state) == RunStatus.RUNNING


@pytest.mark.parametrize("status", [RunStatus.UNKNOWN, "SOMETHING_NEW"])
async def test_an_unclear_source_without_our_terminate_waits(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, status: str
) -> None:
    outcome = await resume_with_copy(sandbox, store, config, status)
    assert outcome.outcome == Outcome.WAITING
    assert outcome.detail == (
        f"source run reads {status}, which says neither that it ran nor that it ended; "
        "waiting for a status that does"
    )
    assert journal(store).attempts == 1
    assert (journal(store).state, journal(store).error) == (MoveState.WAITING, outcome.detail)
    (copy,) = copies(sandbox.state)
    assert copy["status"] == RunStatus.RUNNING


async def test_a_404_on_the_source_while_a_copy_exists_is_retried_not_final(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def not_found_once(ctx: HookContext) -> None:
        if ctx.call_index == 1:  # the re-read before terminate (0 was the test's own read)
            raise SandboxError(404, "run not found (one-off)", "NOT_FOUND")

    sandbox.add_hook("get_run", not_found_once)
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
        assert outcome.outcome == Outcome.FAILED, outcome
        assert "copy exists" in outcome.detail
        assert (journal(store).state, journal(store).error) == (MoveState.FAILED, outcome.detail)
        assert journal(store).destination_run_name is not None
        store.journal.retry_now(SOURCE_ID)
        again = await mover(client, store).resume(journal(store), config)
    assert_moved_once(again, store, sandbox.state)


async def test_terminate_417_while_the_source_reads_created_is_retried(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def refuse(ctx: HookContext) -> None:
        if ctx.query.get("jobRunName") == SOURCE_NAME:
            raise SandboxError(417, "cannot terminate now", "FAILED")

    sandbox.add_hook("terminate", refuse)
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    assert outcome.outcome == Outcome.FAILED
    assert outcome.detail == (
        "terminate answered 417 while the source still reads CREATED; trying again later"
    )
    row = journal(store)
    assert (row.state, row.error, row.attempts) == (MoveState.FAILED, outcome.detail, 1)
    assert row.terminate_sent_at is None  # the refusal proves our only terminate did nothing
    (copy,) = copies(sandbox.state)
    assert copy["status"] != RunStatus.TERMINATION_REQUESTED  # the copy is never killed here
    assert source_status(sandbox.state) == RunStatus.CREATED


async def test_a_source_that_finished_just_before_terminate_stops_the_copy(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def finish_first(ctx: HookContext) -> None:
        if ctx.query.get("jobRunName") == SOURCE_NAME:
            ctx.state.set_run_status(SOURCE_ID, RunStatus.FINISHED)

    sandbox.add_hook("terminate", finish_first)
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    assert outcome.outcome == Outcome.SKIPPED
    assert source_status(sandbox.state) == RunStatus.FINISHED
    assert [c["status"] for c in copies(sandbox.state)] == [RunStatus.TERMINATION_REQUESTED]


# ------------------------------------------------------------------ the journal's word


async def test_a_done_move_listed_again_is_flagged_and_not_touched(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        left_behind(store, planned, MoveState.DONE)
        calls = sum(sandbox.request_counts.values())
        outcome = await mover(client, store).move(planned)
    assert outcome.outcome == Outcome.FLAGGED
    assert sum(sandbox.request_counts.values()) == calls


async def test_a_failed_move_backs_off_then_is_parked(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["put_app"])
    policy = MovePolicy(max_attempts=3)
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        first = await mover(client, store, policy=policy).move(planned)
        assert first.outcome == Outcome.FAILED
        calls = sum(sandbox.request_counts.values())
        deferred = await mover(client, store, policy=policy).move(planned)
        assert deferred.outcome == Outcome.DEFERRED
        assert sum(sandbox.request_counts.values()) == calls  # backing off: no call at all
        outcomes = []
        for _ in range(2):
            store.journal.update(
                SOURCE_ID,
                owner=None,
                state=MoveState.FAILED,
                attempts=journal(store).attempts,
                next_attempt_at=timedelta(0),
            )
            outcomes.append((await mover(client, store, policy=policy).move(planned)).outcome)
    assert outcomes == [Outcome.FAILED, Outcome.PARKED]
    assert journal(store).state == MoveState.PARKED
    assert "parked after 3 attempts" in str(journal(store).error)


def test_backoff_doubles_and_is_capped() -> None:
    policy = MovePolicy(backoff=timedelta(minutes=5), backoff_cap=timedelta(minutes=30))
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [
        timedelta(minutes=m) for m in (5, 10, 20, 30, 30)
    ]


async def test_a_pass_that_lost_its_lock_makes_no_irreversible_call(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def lost() -> None:
        raise LockLost("this sweep no longer holds the sweep lock")

    async with connected(sandbox) as client:
        outcome = await mover(client, store, guard=lost).move(await plan(client, config))
    assert outcome.outcome == Outcome.FAILED
    assert sandbox.request_counts["put_app"] == sandbox.request_counts["trigger"] == 0


async def test_a_pass_whose_row_was_taken_over_stops_before_the_next_step(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def take_over(ctx: HookContext) -> None:
        store.journal.take(SOURCE_ID, "pass-second")

    sandbox.add_hook("put_app", take_over)
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    assert outcome.outcome == Outcome.FAILED
    assert "another sweep" in outcome.detail
    assert sandbox.request_counts["trigger"] == 0
    assert journal(store).owner == "pass-second"


async def test_the_alias_is_a_second_signal_only(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    """A run found by its alias but not on this move's version is not adopted."""
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.CLAIMED)
        older = await deploy_copy(client, record, source_manifest(planned))
        await client.trigger_job(
            older["destination_deployment_id"], command="x", params=None, alias=run_alias(SOURCE_ID)
        )
        record = await left_with_trigger_sent(
            client, store, planned, sent_ago=timedelta(hours=1), triggered=False
        )
        outcome = await mover(client, store).resume(record, config)
    assert outcome.outcome == Outcome.MOVED
    record = journal(store)
    (ours,) = [
        c for c in copies(sandbox.state) if c["deploymentId"] == record.destination_deployment_id
    ]
    assert ours["name"] == record.destination_run_name


async def test_a_row_taken_over_while_an_attempt_fails_records_nothing_and_does_not_crash(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def take_over_and_fail(ctx: HookContext) -> None:
        store.journal.take(SOURCE_ID, "pass-second")
        raise SandboxError(500, "injected", "INTERNAL")

    sandbox.add_hook("put_app", take_over_and_fail)
    async with connected(sandbox) as client:
        outcome = await mover(client, store, policy=MovePolicy()).move(await plan(client, config))
    assert outcome.outcome == Outcome.FAILED
    assert "another sweep" in outcome.detail
    row = journal(store)
    assert (row.owner, row.attempts, row.error) == ("pass-second", 0, None)


# ------------------------------------------------------------------ the last word on the manifest


@pytest.mark.parametrize(
    ("labels", "max_hops", "detail"),
    [
        (
            {"jobfallback.io/move": "never"},
            2,
            "the job is labelled jobfallback.io/move: never; it is not moved",
        ),
        (
            {"jobfallback.io/hop-1": "c.a", "jobfallback.io/hop-2": "c.b"},
            2,
            "the job moved 2 time(s) already, the most allowed (--max-hops)",
        ),
        (
            {"jobfallback.io/hop-1": DESTINATION_FQN.replace(":", ".")},
            5,
            f"the job was already in {DESTINATION_FQN}; a copy never moves back",
        ),
    ],
)
async def test_the_move_declines_the_manifest_it_would_copy_when_the_plan_could_not_tell(
    sandbox: SandboxServer,
    store: Store,
    config: FallbackConfig,
    labels: dict[str, str],
    max_hops: int,
    detail: str,
) -> None:
    # The plan saw other labels (the version changed since, or it could not read them): the
    # move checks the manifest it is about to copy and creates nothing.
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        source_manifest(planned)["labels"] = labels
        outcome = await mover(client, store, policy=MovePolicy(max_hops=max_hops)).move(planned)
    assert (outcome.outcome, outcome.detail) == (Outcome.SKIPPED, detail)
    assert not sandbox.request_counts.get("put_app")
    assert copies(sandbox.state) == []
    assert (journal(store).state, journal(store).error) == (MoveState.SKIPPED, detail)
    assert source_status(sandbox.state) == RunStatus.CREATED


async def test_one_hop_below_the_limit_still_moves(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        source_manifest(planned)["labels"] = {"jobfallback.io/hop-1": "c.a"}
        outcome = await mover(client, store, policy=MovePolicy(max_hops=2)).move(planned)
    assert_moved_once(outcome, store, sandbox.state)


async def test_a_patch_the_real_manifest_cannot_take_parks_the_move(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    patched = store.configs.update(config.id, {"manifest_patch": {"env": {"ON_FALLBACK": "1"}}})
    async with connected(sandbox) as client:
        planned = await plan(client, patched)
        source_manifest(planned)["labels"] = {"team": 5}  # a label that is not a text
        outcome = await mover(client, store).move(planned)
    detail = (
        f"config {config.id}'s manifestPatch breaks this job's manifest: labels.team: must be a "
        f"text; fix the patch, then `jobfallback moves retry {SOURCE_ID}`"
    )
    assert (outcome.outcome, outcome.detail) == (Outcome.PARKED, detail)
    assert not sandbox.request_counts.get("put_app")
    assert journal(store).manifest_patch == {"env": {"ON_FALLBACK": "1"}}


async def test_a_patched_copy_of_a_job_with_params_moves(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    # The demo job declares params (a list in a job manifest): a patch leaves them as they are.
    patched = store.configs.update(config.id, {"manifest_patch": {"env": {"ON_FALLBACK": "1"}}})
    async with connected(sandbox) as client:
        planned = await plan(client, patched)
        outcome = await mover(client, store).move(planned)
    assert_moved_once(outcome, store, sandbox.state)
    destination = sandbox.state.application_by_name(DESTINATION_WS, JOB_NAME)
    assert destination is not None
    manifest = destination["deployment"]["manifest"]
    assert manifest["env"]["ON_FALLBACK"] == "1"
    assert manifest["params"] == source_manifest(planned)["params"]


@pytest.mark.parametrize(
    ("labels", "ours"),
    [
        # A copy of the same origin job made along another chain (A -> B -> C): ours to add to.
        ({"jobfallback.io/source-application-id": "app-copy-in-b", LABEL_ORIGIN_JOB: JOB}, True),
        # The same origin label without a source job label is no copy of ours: never touched.
        ({LABEL_ORIGIN_JOB: JOB}, False),
        # A copy of another origin: never touched.
        (
            {"jobfallback.io/source-application-id": "app-x", LABEL_ORIGIN_JOB: "app-other"},
            False,
        ),
    ],
)
async def test_copies_of_one_origin_share_a_destination_application(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, labels: Obj, ours: bool
) -> None:
    existing = sandbox.state.add_application(
        workspace_id=DESTINATION_WS,
        name=JOB_NAME,
        manifest={"image": {"type": "image"}, "labels": labels},
    )
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    after = sandbox.state.application_by_name(DESTINATION_WS, JOB_NAME)
    assert after is not None
    if ours:
        assert_moved_once(outcome, store, sandbox.state)
        assert after["id"] == existing["id"]
        assert after["deployment"]["id"] != existing["deployment"]["id"]  # a version of its own
    else:
        assert outcome.outcome == Outcome.PARKED
        assert after["deployment"]["id"] == existing["deployment"]["id"]
        assert sandbox.request_counts["put_app"] == 0


def test_a_manifest_that_names_no_workspace_as_text_gets_no_hop_label() -> None:
    for odd in (None, 5):
        manifest: Obj = {"name": "j", "workspace_fqn": odd, "labels": {}}
        labels = destination_manifest(manifest, "c:d", a_record())["labels"]
        assert not any(key.startswith("jobfallback.io/hop-") for key in labels)


@pytest.mark.parametrize(
    ("version", "detail"),
    [
        (None, f"run {SOURCE_NAME} names neither its deployment nor its version"),
        ("99", f"job {JOB_NAME} lists no version 99"),
    ],
)
async def test_a_run_whose_version_cannot_be_found_fails_naming_it(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, version: str | None, detail: str
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        planned.run.deployment_id = None
        planned.run.deployment_version = version
        planned.application.deployment = None  # nothing to seed the versions from
        outcome = await mover(client, store).move(planned)
    assert outcome.outcome == Outcome.FAILED
    assert detail in outcome.detail
    assert not sandbox.request_counts.get("put_app")

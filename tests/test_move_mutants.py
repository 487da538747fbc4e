"""The move against the mutants `make mutate` found alive: each test here pins a decision of
move.py that no other test noticed when it was broken (the README's "The move, exactly once").

Same set-up as test_move.py: a real client against an in-process sandbox and a real journal.
What a test asserts is what the sandbox and the journal end up with, which calls were made, and
what the sweep is told (every outcome names its run and says why, and the journal row says the
same to `jobfallback moves show`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, timedelta
from typing import Any

import pytest

from jobfallback.logs import LOGGER_NAME
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
    MoveOutcome,
    MovePolicy,
    Outcome,
    preview,
)
from jobfallback.store import Claim, Store
from jobfallback.store.lock import LockLost
from jobfallback.truefoundry import RetryPolicy, TrueFoundryClient, run_alias
from jobfallback_sandbox import HookContext, SandboxError, SandboxServer
from tests.fixtures.copies import copies_of
from tests.test_move import (
    DESTINATION_FQN,
    DESTINATION_WS,
    JOB,
    JOB_NAME,
    SOURCE_ID,
    SOURCE_NAME,
    Obj,
    a_record,
    assert_moved_once,
    connected,
    copies,
    deploy_copy,
    journal,
    left_behind,
    mover,
    plan,
    reset_journal,
    resumed_with_copy,
    source_manifest,
    source_status,
)

pytestmark = pytest.mark.anyio

SOURCE_FQN = "gpu-east:ml-team"
AGAIN = (
    "the journal says {} but the source run is listed CREATED again; "
    "check it by hand (nothing was done)"
)
MANY_RUNS = "more than one run on a move's version: adopting the oldest"
HOUR_AGO = -timedelta(hours=1)  # a trigger mark long past the settle window


@asynccontextmanager
async def once(sandbox: SandboxServer) -> AsyncIterator[TrueFoundryClient]:
    """A client that sends each request once: an injected error is not retried away."""
    async with TrueFoundryClient(
        sandbox.url, sandbox.token, retry=RetryPolicy(max_attempts=1)
    ) as client:
        yield client


def says_why(outcome: MoveOutcome, store: Store, kind: Outcome, state: MoveState) -> MoveRecord:
    """The outcome names its run and says why; the journal row is at `state` and says the same
    (a done move carries no error)."""
    assert (outcome.source_run_id, outcome.outcome) == (SOURCE_ID, kind), outcome
    assert outcome.detail
    assert outcome.detail != "None"
    row = journal(store)
    assert row.state == state
    assert row.error == (None if state == MoveState.DONE else outcome.detail)
    return row


def calls_since(sandbox: SandboxServer, before: dict[str, int]) -> dict[str, int]:
    now = sandbox.request_counts
    return {k: now[k] - before.get(k, 0) for k in now if now[k] - before.get(k, 0)}


def edit(endpoint: str, sandbox: SandboxServer, change: Callable[[HookContext], None]) -> None:
    """Rewrite the answers of one endpoint (what another server could answer)."""
    sandbox.add_hook(endpoint, change, when="after")


def without(*keys: str) -> Callable[[HookContext], None]:
    """An answer whose items (or object) lack `keys`."""

    def drop(ctx: HookContext) -> None:
        data = ctx.response["data"]
        for item in data if isinstance(data, list) else [data]:
            for key in keys:
                item.pop(key, None)

    return drop


def lose_answer(run_name: str | None = None) -> Callable[[HookContext], None]:
    """The write applies but its answer is lost (a 500 after the effect)."""

    def lose(ctx: HookContext) -> None:
        if run_name is None or ctx.query.get("jobRunName") == run_name:
            raise SandboxError(500, "upstream timeout after the effect", "INTERNAL")

    return lose


async def with_trigger_sent(
    client: TrueFoundryClient, store: Store, planned: PlannedMove, *, triggers: int, alias: str
) -> MoveRecord:
    """A row whose pass deployed, sent `triggers` triggers (answers lost) an hour ago, and died."""
    record = left_behind(store, planned, MoveState.CLAIMED)
    ids = await deploy_copy(client, record, source_manifest(planned))
    for _ in range(triggers):
        await client.trigger_job(
            ids["destination_deployment_id"], command=None, params=None, alias=alias
        )
    return left_behind(
        store, planned, MoveState.FAILED, error="read timeout", trigger_sent_at=HOUR_AGO, **ids
    )


# ------------------------------------------------------------------ the policy


def test_the_policy_from_the_settings_keeps_each_setting() -> None:
    policy = MovePolicy.of(settle_seconds=90, max_attempts=3, backoff_seconds=30)
    assert policy == MovePolicy(
        settle=timedelta(seconds=90),
        max_attempts=3,
        backoff=timedelta(seconds=30),
        backoff_cap=timedelta(minutes=12),  # 24 backoffs
    )


# ------------------------------------------------------------------ what the journal says first


@pytest.mark.parametrize(
    ("state", "fields", "kind", "says"),
    [
        (MoveState.PARKED, {"error": "parked after 8 attempts"}, Outcome.PARKED, None),
        (MoveState.PARKED, {}, Outcome.PARKED, "parked"),  # a row parked without a reason
        (MoveState.ABANDONED, {}, Outcome.SKIPPED, "abandoned by a person"),
        (MoveState.DONE, {}, Outcome.FLAGGED, AGAIN.format("done")),
        (MoveState.SKIPPED, {}, Outcome.FLAGGED, AGAIN.format("skipped")),
    ],
)
async def test_a_row_that_needs_no_pass_is_reported_for_its_run_and_left_alone(
    sandbox: SandboxServer,
    store: Store,
    config: FallbackConfig,
    state: MoveState,
    fields: dict[str, Any],
    kind: Outcome,
    says: str | None,
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        before = left_behind(store, planned, state, **fields)
        calls = dict(sandbox.request_counts)
        outcome = await mover(client, store).move(planned)
    assert (outcome.source_run_id, outcome.outcome) == (SOURCE_ID, kind)
    assert outcome.detail == (says or before.error)  # a parked row: the reason it was parked for
    assert calls_since(sandbox, calls) == {}
    after = journal(store)
    assert (after.state, after.error) == (before.state, before.error)


async def test_a_row_backing_off_says_until_when_and_is_left_alone(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        row = left_behind(store, planned, MoveState.FAILED, next_attempt_at=timedelta(hours=1))
        calls = dict(sandbox.request_counts)
        outcome = await mover(client, store).move(planned)
    assert (outcome.source_run_id, outcome.outcome) == (SOURCE_ID, Outcome.DEFERRED)
    assert row.next_attempt_at is not None
    assert (
        outcome.detail
        == f"backing off until {row.next_attempt_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    )
    assert calls_since(sandbox, calls) == {}


def test_a_dry_run_tells_what_a_pass_would_do_with_each_row() -> None:
    fresh = a_record(state=MoveState.FAILED)
    deployed = a_record(state=MoveState.FAILED, destination_deployment_id="dep")
    parked = a_record(state=MoveState.PARKED, error="parked after 8 attempts")
    assert preview(None) == "would move"
    assert preview(Claim(fresh, inserted=False, due=True)) == "would resume at deploy (was failed)"
    assert (
        preview(Claim(deployed, inserted=False, due=True)) == "would resume at trigger (was failed)"
    )
    assert preview(Claim(parked, inserted=False, due=True)) == "parked: parked after 8 attempts"


# ------------------------------------------------------------------ failures, backoff, parking


async def test_a_failed_attempt_records_its_source_its_config_and_why(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["put_app"])
    async with once(sandbox) as client:
        planned = await plan(client, config)
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            outcome = await mover(client, store).move(planned)
    row = says_why(outcome, store, Outcome.FAILED, MoveState.FAILED)
    # Retried by itself: a warning, not the error a parked move is (a person need not act yet).
    (logged,) = [r for r in caplog.records if r.__dict__.get("event") == "move.failed"]
    assert logged.levelno == logging.WARNING
    assert "500" in outcome.detail
    assert row.attempts == 1
    # What a resumed move goes by: which config governs it, and which version it copies.
    assert (row.config_id, row.source_deployment_id) == (config.id, planned.run.deployment_id)


async def test_a_move_that_keeps_failing_is_parked_with_every_attempt_counted(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["put_app"])
    policy = MovePolicy(max_attempts=2)
    async with once(sandbox) as client:
        planned = await plan(client, config)
        first = await mover(client, store, policy=policy).move(planned)
        assert first.outcome == Outcome.FAILED
        store.journal.retry_now(SOURCE_ID)
        store.journal.update(SOURCE_ID, owner=None, state=MoveState.FAILED, attempts=1)
        second = await mover(client, store, policy=policy).move(planned)
    row = says_why(second, store, Outcome.PARKED, MoveState.PARKED)
    assert row.attempts == 2
    assert second.detail.startswith("parked after 2 attempts")


async def test_a_row_whose_config_is_gone_is_dropped_saying_why(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.FAILED, error="500")
        outcome = await mover(client, store).resume(record, None)
    says_why(outcome, store, Outcome.SKIPPED, MoveState.SKIPPED)
    assert f"config {config.id}" in outcome.detail


async def test_a_pass_that_lost_its_lock_reports_the_run_and_writes_nothing(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def lost() -> None:
        raise LockLost("this sweep no longer holds the sweep lock")

    async with connected(sandbox) as client:
        outcome = await mover(client, store, guard=lost).move(await plan(client, config))
    assert (outcome.source_run_id, outcome.outcome) == (SOURCE_ID, Outcome.FAILED)
    assert "sweep lock" in outcome.detail
    row = journal(store)
    assert (row.state, row.error, row.attempts) == (MoveState.CLAIMED, None, 0)


async def test_another_jobs_application_parks_the_move_saying_why(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    theirs = sandbox.state.add_application(workspace_id=DESTINATION_WS, name=JOB_NAME)
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    says_why(outcome, store, Outcome.PARKED, MoveState.PARKED)
    assert outcome.detail == (
        f"destination {DESTINATION_FQN} already has an application {JOB_NAME!r} "
        f"({theirs['id']}) that is not a fallback copy, not of job {JOB_NAME} ({JOB}); it was "
        "left untouched: rename one of the jobs or point the config at another workspace, "
        f"then `jobfallback moves retry {SOURCE_ID}`"
    )


async def test_another_jobs_fallback_copy_parks_the_move_naming_both_jobs(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    """Job `train-llm` of another source workspace was moved here first: its copy is left
    alone, and the line a person reads names both jobs."""
    theirs = sandbox.state.add_application(
        workspace_id=DESTINATION_WS,
        name=JOB_NAME,
        manifest={"labels": {LABEL_SOURCE_JOB: "app-other-team", LABEL_SOURCE_RUN: "run-x"}},
    )
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    says_why(outcome, store, Outcome.PARKED, MoveState.PARKED)
    assert "a fallback copy of job app-other-team" in outcome.detail
    assert JOB in outcome.detail
    after = sandbox.state.application_by_name(DESTINATION_WS, JOB_NAME)
    assert after is not None
    assert after["deployment"]["id"] == theirs["deployment"]["id"]
    assert sandbox.request_counts["put_app"] == 0


# ------------------------------------------------------------------ one executor per run


async def test_a_run_planned_twice_in_a_pass_is_skipped_once_saying_why(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        one = mover(client, store)
        outcomes = await asyncio.gather(one.move(planned), one.move(planned))
    (skipped,) = [o for o in outcomes if o.outcome != Outcome.MOVED]
    assert skipped == MoveOutcome(SOURCE_ID, Outcome.SKIPPED, skipped.detail)
    assert skipped.detail == "already under way in this pass"
    assert len(copies(sandbox.state)) == 1


async def test_a_run_whose_attempt_ended_can_be_moved_again_by_the_same_pass(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["put_app"])
    async with once(sandbox) as client:
        planned = await plan(client, config)
        one = mover(client, store)
        assert (await one.move(planned)).outcome == Outcome.FAILED
        sandbox.set_faults(rate=0.0, kinds=[])
        store.journal.retry_now(SOURCE_ID)
        again = await one.move(planned)
    assert_moved_once(again, store, sandbox.state)


# ------------------------------------------------------------------ the source before a copy


async def test_a_source_gone_before_anything_was_triggered_is_skipped_saying_why(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def gone(ctx: HookContext) -> None:
        raise SandboxError(404, "run not found", "NOT_FOUND")

    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.FAILED, error="500")
        sandbox.add_hook("get_run", gone)
        outcome = await mover(client, store).resume(record, config)
    says_why(outcome, store, Outcome.SKIPPED, MoveState.SKIPPED)
    assert outcome.detail == "source run no longer exists; nothing was triggered"
    assert copies(sandbox.state) == []


async def test_a_source_that_started_before_the_trigger_is_skipped_without_a_copy(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.CLAIMED)
        ids = await deploy_copy(client, record, source_manifest(planned))
        record = left_behind(store, planned, MoveState.FAILED, error="500", **ids)
        sandbox.state.set_run_status(SOURCE_ID, RunStatus.RUNNING)
        outcome = await mover(client, store).resume(record, config)
    says_why(outcome, store, Outcome.SKIPPED, MoveState.SKIPPED)
    assert RunStatus.RUNNING in outcome.detail
    assert sandbox.request_counts["trigger"] == 0
    assert copies(sandbox.state) == []


# ------------------------------------------------------------------ which version is copied


async def second_source_version(sandbox: SandboxServer, planned: PlannedMove) -> Obj:
    """The source job gets a newer version; its stuck run stays on the first."""
    _, deployment = sandbox.state.put_app(
        {
            **source_manifest(planned),
            "workspace_fqn": SOURCE_FQN,
            "image": {"type": "image", "image_uri": "ghcr.io/acme/train-llm:2.0.0"},
        },
        dry_run=False,
    )
    return deployment


def named_by_version_only(planned: PlannedMove) -> PlannedMove:
    """The listing names the run's version number, not its deployment."""
    assert planned.run.deployment_version == "1"
    run = planned.run.model_copy(update={"deployment_id": None})
    return planned.model_copy(update={"run": run})


async def test_a_run_named_only_by_its_version_is_copied_from_that_version(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        first = await plan(client, config)
        await second_source_version(sandbox, first)
        planned = named_by_version_only(await plan(client, config))
        outcome = await mover(client, store).move(planned)
    assert_moved_once(outcome, store, sandbox.state)
    destination = sandbox.state.application_by_name(DESTINATION_WS, JOB_NAME)
    assert destination is not None
    assert destination["deployment"]["manifest"]["image"] == source_manifest(first)["image"]
    assert journal(store).source_deployment_id == first.run.deployment_id


@pytest.mark.parametrize(
    ("version", "says"), [("7", "lists no version 7"), (None, "names neither its deployment")]
)
async def test_a_run_whose_version_cannot_be_found_is_not_copied(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, version: str | None, says: str
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        run = planned.run.model_copy(update={"deployment_id": None, "deployment_version": version})
        planned = planned.model_copy(update={"run": run})
        assert planned.application.deployment is not None
        planned.application.deployment.manifest = {}  # the listing does not carry it
        outcome = await mover(client, store).move(planned)
    says_why(outcome, store, Outcome.FAILED, MoveState.FAILED)
    assert says in outcome.detail
    assert sandbox.request_counts["put_app"] == 0


async def test_a_source_version_without_a_manifest_is_never_copied(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def empty(ctx: HookContext) -> None:
        ctx.response["data"]["manifest"] = {}

    edit("get_deployment", sandbox, empty)
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        planned.application.deployment = None  # the listing does not carry it
        outcome = await mover(client, store).move(planned)
    says_why(outcome, store, Outcome.FAILED, MoveState.FAILED)
    assert "no deployment manifest" in outcome.detail
    assert sandbox.request_counts["put_app"] == 0


@pytest.mark.parametrize("listed", ["no version", "no manifest"])
async def test_a_listing_without_the_manifest_has_it_read_before_the_copy(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, listed: str
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        manifest = source_manifest(planned)
        assert planned.application.deployment is not None
        if listed == "no version":
            planned.application.deployment = None
        else:
            planned.application.deployment.manifest = {}
        outcome = await mover(client, store).move(planned)
    assert_moved_once(outcome, store, sandbox.state)
    destination = sandbox.state.application_by_name(DESTINATION_WS, JOB_NAME)
    assert destination is not None
    assert destination["deployment"]["manifest"]["image"] == manifest["image"]
    assert sandbox.request_counts["get_deployment"] == 1


async def test_two_runs_of_one_version_in_one_pass_read_its_manifest_once(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    old = sandbox.state.now_ms - 3 * 3600_000
    other = sandbox.state.add_run(application_id=JOB, name="train-llm-0413", created_at=old)
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        assert planned.application.deployment is not None
        planned.application.deployment = None  # the listing does not carry the manifest
        second = planned.model_copy(update={"run": await client.get_job_run(JOB, "train-llm-0413")})
        one = mover(client, store)
        outcomes = [await one.move(planned), await one.move(second)]
    assert [o.outcome for o in outcomes] == [Outcome.MOVED, Outcome.MOVED]
    assert len(copies_of(sandbox.state, SOURCE_ID)) == len(copies_of(sandbox.state, other["id"]))
    assert len(copies_of(sandbox.state, other["id"])) == 1
    assert sandbox.request_counts["get_deployment"] == 1


async def test_a_run_whose_deployment_no_answer_names_is_never_terminated(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    edit("get_run", sandbox, without("deploymentId"))
    edit("list_deployments", sandbox, without("id"))
    async with connected(sandbox) as client:
        planned = named_by_version_only(await plan(client, config))
        outcome = await mover(client, store).move(planned)
    row = says_why(outcome, store, Outcome.FAILED, MoveState.FAILED)
    assert "names no deployment" in outcome.detail
    assert row.destination_run_name is not None  # the copy exists and is kept
    assert source_status(sandbox.state) == RunStatus.CREATED
    assert sandbox.request_counts["terminate"] == 0


# ------------------------------------------------------------------ the destination application


async def earlier_and_our_version(
    client: TrueFoundryClient, store: Store, planned: PlannedMove, database_url: str
) -> tuple[Obj, Obj]:
    """Another move of the same job deployed version 1, ours deployed version 2 and triggered
    it, then the journal was lost: (version 1 ids, version 2 ids)."""
    record = left_behind(store, planned, MoveState.CLAIMED)
    earlier = await deploy_copy(
        client, record.model_copy(update={"source_run_id": "run-earlier"}), source_manifest(planned)
    )
    ours = await deploy_copy(client, record, source_manifest(planned))
    await client.trigger_job(
        ours["destination_deployment_id"], command=None, params=None, alias="z"
    )
    reset_journal(database_url)
    return earlier, ours


async def test_adopting_an_earlier_moves_version_and_run_costs_five_calls(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, database_url: str
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        await earlier_and_our_version(client, store, planned, database_url)
        before = dict(sandbox.request_counts)
        outcome = await mover(client, store).move(planned)
    assert_moved_once(outcome, store, sandbox.state)
    # Find the destination job and its versions, list the runs on ours (which name their
    # deployment: no version numbers to look up), re-read the source, terminate it.
    assert calls_since(sandbox, before) == {
        "list_apps": 1,
        "list_deployments": 1,
        "list_runs": 1,
        "get_run": 1,
        "terminate": 1,
    }


def no_latest(ctx: HookContext) -> None:
    for app in ctx.response["data"]:
        for key in ("lastDeploymentId", "activeDeploymentId", "deployment"):
            app.pop(key, None)


def oldest_first(ctx: HookContext) -> None:
    ctx.response["data"].reverse()


# How a server may answer about an application's versions; the newest decides whose it is.
VERSION_ANSWERS: dict[str, dict[str, list[Callable[[HookContext], None]]]] = {
    "as the vendor": {},
    "naming no latest, listed oldest first": {
        "list_apps": [no_latest],
        "list_deployments": [oldest_first],
    },
    "numbering no version, listed oldest first": {
        "list_deployments": [without("version"), oldest_first],
    },
    "naming no latest, numbering no version": {
        "list_apps": [no_latest],
        "list_deployments": [without("version")],
    },
}


@pytest.mark.parametrize("server", list(VERSION_ANSWERS))
async def test_an_application_another_team_deployed_over_a_copy_is_left_alone(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, server: str
) -> None:
    """Our copy is version 1; another team then deployed their own job under that name. The
    newest version says whose the application is now, however the server lists versions."""
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.CLAIMED)
        await deploy_copy(client, record, source_manifest(planned))
        sandbox.state.put_app(
            {
                "type": "job",
                "name": JOB_NAME,
                "workspace_fqn": DESTINATION_FQN,
                "image": {"type": "image", "image_uri": "registry.local/theirs:1"},
                "trigger": {"type": "manual"},
            },
            dry_run=False,
        )
        record = left_behind(store, planned, MoveState.FAILED, error="read timeout")
        for endpoint, changes in VERSION_ANSWERS[server].items():
            for change in changes:
                edit(endpoint, sandbox, change)
        outcome = await mover(client, store).resume(record, config)
    says_why(outcome, store, Outcome.PARKED, MoveState.PARKED)
    assert "not a fallback copy" in outcome.detail
    assert (sandbox.request_counts["put_app"], sandbox.request_counts["trigger"]) == (1, 0)
    assert source_status(sandbox.state) == RunStatus.CREATED


async def test_a_destination_application_that_lists_no_version_is_left_alone(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, database_url: str
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        await earlier_and_our_version(client, store, planned, database_url)

        def no_versions(ctx: HookContext) -> None:
            ctx.response["data"] = []
            ctx.response["pagination"]["total"] = 0

        edit("list_deployments", sandbox, no_versions)
        outcome = await mover(client, store).move(planned)
    says_why(outcome, store, Outcome.FAILED, MoveState.FAILED)
    assert "lists no version" in outcome.detail
    assert (sandbox.request_counts["put_app"], sandbox.request_counts["trigger"]) == (2, 1)
    assert source_status(sandbox.state) == RunStatus.CREATED


async def test_a_job_named_otherwise_in_its_manifest_is_found_by_that_name(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, database_url: str
) -> None:
    """The PUT names the destination job after the manifest: so must the look-up for an
    earlier move's version, or a lost journal means a second copy."""
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        source_manifest(planned)["name"] = "train-llm-v2"
        record = left_behind(store, planned, MoveState.CLAIMED)
        ids = await deploy_copy(client, record, source_manifest(planned))
        await client.trigger_job(
            ids["destination_deployment_id"], command=None, params=None, alias="z"
        )
        reset_journal(database_url)
        outcome = await mover(client, store).move(planned)
    assert outcome.outcome == Outcome.MOVED, outcome
    assert len(copies_of(sandbox.state, SOURCE_ID)) == 1
    assert (sandbox.request_counts["put_app"], sandbox.request_counts["trigger"]) == (1, 1)


async def test_an_adopted_version_records_the_source_version_it_copies(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, database_url: str
) -> None:
    async with connected(sandbox) as client:
        planned = named_by_version_only(await plan(client, config))
        record = left_behind(store, planned, MoveState.CLAIMED)
        ids = await deploy_copy(client, record, source_manifest(planned))
        await client.trigger_job(
            ids["destination_deployment_id"], command=None, params=None, alias="z"
        )
        reset_journal(database_url)
        edit("list_runs", sandbox, without("deploymentId"))  # runs name only their version
        outcome = await mover(client, store).move(planned)
    assert_moved_once(outcome, store, sandbox.state)
    row = journal(store)
    source = sandbox.state.run(SOURCE_ID)
    assert source is not None
    assert row.source_deployment_id == source["deploymentId"]
    assert row.destination_version == ids["destination_version"]


async def test_a_put_answer_without_its_application_is_completed_from_the_label(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    edit("put_app", sandbox, without("applicationId"))
    async with connected(sandbox) as client:
        planned = named_by_version_only(await plan(client, config))
        outcome = await mover(client, store).move(planned)
    assert_moved_once(outcome, store, sandbox.state)
    destination = sandbox.state.application_by_name(DESTINATION_WS, JOB_NAME)
    assert destination is not None
    row = journal(store)
    assert row.destination_application_id == destination["id"]
    assert row.source_deployment_id == sandbox.state.run(SOURCE_ID)["deploymentId"]  # type: ignore[index]
    assert sandbox.request_counts["list_runs"] == 0  # no look-up: the trigger was never sent


async def test_a_put_answer_naming_nothing_and_no_label_yet_fails_without_a_trigger(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    def not_listed_yet(ctx: HookContext) -> None:
        ctx.response["data"] = []
        ctx.response["pagination"]["total"] = 0

    edit("put_app", sandbox, without("applicationId", "id"))
    edit("list_apps", sandbox, not_listed_yet)
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    says_why(outcome, store, Outcome.FAILED, MoveState.FAILED)
    assert outcome.detail == (
        "the answer to the PUT names no deployment or application, and no version in "
        f"{DESTINATION_FQN} carries this move's label yet; the next attempt looks again"
    )
    assert sandbox.request_counts["trigger"] == 0


# ------------------------------------------------------------------ a resumed move


async def test_a_resumed_row_whose_put_answer_was_lost_adopts_its_version_and_triggers(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    """The row proves no trigger was sent: the adopted version is triggered at once (no look-up,
    no settle wait)."""
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.CLAIMED)
        await deploy_copy(client, record, source_manifest(planned))
        record = left_behind(store, planned, MoveState.FAILED, error="read timeout")
        outcome = await mover(client, store).resume(record, config)
    assert_moved_once(outcome, store, sandbox.state)
    assert sandbox.request_counts["list_runs"] == 0


# ------------------------------------------------------------------ the trigger and its look-up


async def test_the_trigger_carries_the_moves_alias(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    assert_moved_once(outcome, store, sandbox.state)
    (copy,) = copies(sandbox.state)
    assert sandbox.state.alias_of(copy["id"]) == run_alias(SOURCE_ID)
    says_why(outcome, store, Outcome.MOVED, MoveState.DONE)
    assert copy["name"] in outcome.detail  # the sweep says which run carries the job now


@pytest.mark.parametrize(
    ("put_says_it", "trigger_says", "learnt"),
    [
        (False, "1", 1.0),  # only the trigger's answer names it
        (True, None, 1.0),  # only the PUT's
        (False, "latest", None),  # neither, as a number
        (True, "99", 1.0),  # both, differently: the PUT's answer is about the version itself
    ],
)
async def test_the_journal_learns_the_copys_version_from_whichever_answer_says_it(
    sandbox: SandboxServer,
    store: Store,
    config: FallbackConfig,
    put_says_it: bool,
    trigger_says: str | None,
    learnt: float | None,
) -> None:
    """The version is what a later look-up lists the copy's runs by."""
    if not put_says_it:
        edit("put_app", sandbox, without("version"))

    def echo(ctx: HookContext) -> None:
        ctx.response["data"]["deploymentVersion"] = trigger_says

    edit("trigger", sandbox, without("deploymentVersion") if trigger_says is None else echo)
    async with connected(sandbox) as client:
        outcome = await mover(client, store).move(await plan(client, config))
    assert_moved_once(outcome, store, sandbox.state)
    assert journal(store).destination_version == learnt


async def lost_trigger(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, client: TrueFoundryClient
) -> PlannedMove:
    """A fresh move whose trigger applied but whose answer was lost."""
    sandbox.add_hook("trigger", lose_answer(), when="after")
    planned = await plan(client, config)
    outcome = await mover(client, store).move(planned)
    assert outcome.outcome == Outcome.FAILED, outcome
    row = journal(store)
    assert (row.trigger_sent_at is not None, row.destination_run_name) == (True, None)
    store.journal.retry_now(SOURCE_ID)
    return planned


async def test_a_lost_trigger_whose_runs_name_only_their_version_is_adopted(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, caplog: pytest.LogCaptureFixture
) -> None:
    queries: list[dict[str, str]] = []

    def record_query(ctx: HookContext) -> None:
        queries.append(ctx.query)

    async with once(sandbox) as client:
        await lost_trigger(sandbox, store, config, client)
        edit("list_runs", sandbox, without("deploymentId"))
        sandbox.add_hook("list_runs", record_query)
        with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
            outcome = await mover(client, store).resume(journal(store), config)
    assert_moved_once(outcome, store, sandbox.state)
    assert sandbox.request_counts["trigger"] == 1
    # The look-up asked for this move's version (the copy's), not for every run of the job,
    # and the version number it knows needed no question about deployments.
    assert [q.get("versionNumbers") for q in queries] == ["1"]
    assert sandbox.request_counts["list_deployments"] == 0
    assert not [r for r in caplog.records if "more than one run" in r.getMessage()]


async def test_a_run_the_version_listing_misses_is_found_by_its_alias(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    queries: list[dict[str, str]] = []

    def version_index_lags(ctx: HookContext) -> None:
        queries.append(ctx.query)
        if "versionNumbers" in ctx.query:
            ctx.response["data"] = []
            ctx.response["pagination"]["total"] = 0

    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = await with_trigger_sent(
            client, store, planned, triggers=1, alias=run_alias(SOURCE_ID)
        )
        edit("list_runs", sandbox, version_index_lags)
        outcome = await mover(client, store).resume(record, config)
    assert_moved_once(outcome, store, sandbox.state)
    assert sandbox.request_counts["trigger"] == 1  # only the earlier pass's
    assert [q.get("searchPrefix") for q in queries] == [None, run_alias(SOURCE_ID)]
    assert "versionNumbers" not in queries[1]


async def test_of_two_runs_on_the_version_the_oldest_is_adopted_and_both_are_named(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, caplog: pytest.LogCaptureFixture
) -> None:
    def newest_first(ctx: HookContext) -> None:
        ctx.response["data"].sort(key=lambda run: run["createdAt"], reverse=True)

    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = await with_trigger_sent(client, store, planned, triggers=2, alias="x")
        oldest, newest = sorted(copies(sandbox.state), key=lambda run: run["createdAt"])
        assert oldest["createdAt"] < newest["createdAt"]
        edit("list_runs", sandbox, newest_first)
        with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
            outcome = await mover(client, store).resume(record, config)
    assert outcome.outcome == Outcome.MOVED
    assert journal(store).destination_run_name == oldest["name"]
    (warning,) = [r for r in caplog.records if r.getMessage() == MANY_RUNS]
    assert (warning.levelno, warning.__dict__["event"]) == (logging.WARNING, "move.runs_adopted")
    fields = warning.__dict__["fields"]
    assert fields["source_run_id"] == SOURCE_ID
    assert sorted(fields["runs"].split(",")) == sorted([oldest["name"], newest["name"]])


async def test_the_settle_window_waits_saying_why_then_ends_on_the_dot(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    settle = MovePolicy().settle
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.CLAIMED)
        ids = await deploy_copy(client, record, source_manifest(planned))
        record = left_behind(
            store, planned, MoveState.FAILED, trigger_sent_at=timedelta(0), error="timeout", **ids
        )
        assert record.trigger_sent_at is not None
        sent = record.trigger_sent_at
        waiting = await mover(client, store, clock=lambda: sent + settle / 2).resume(record, config)
        says_why(waiting, store, Outcome.WAITING, MoveState.WAITING)
        assert "not listed yet" in waiting.detail
        outcome = await mover(client, store, clock=lambda: sent + settle).resume(
            journal(store), config
        )
    assert_moved_once(outcome, store, sandbox.state)


async def test_runs_that_name_neither_deployment_nor_version_make_the_move_wait_and_count(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with once(sandbox) as client:
        await lost_trigger(sandbox, store, config, client)
        edit("list_runs", sandbox, without("deploymentId", "deploymentVersion"))
        policy = MovePolicy(max_attempts=1)  # retry_now counted attempts from zero again
        outcome = await mover(client, store, policy=policy).resume(journal(store), config)
    row = says_why(outcome, store, Outcome.PARKED, MoveState.PARKED)
    assert outcome.detail.startswith("parked after 1 attempts; last: run ")
    assert outcome.detail.endswith(
        " names neither its deployment nor its version; cannot tell whose it is"
    )
    assert row.attempts == 1  # an unproven look-up counts towards parking
    assert sandbox.request_counts["trigger"] == 1
    assert source_status(sandbox.state) == RunStatus.CREATED


# ------------------------------------------------------------------ the source after a copy


async def test_a_terminate_whose_answer_was_lost_keeps_its_mark_and_the_copy(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with once(sandbox) as client:
        sandbox.add_hook("terminate", lose_answer(SOURCE_NAME), when="after")
        outcome = await mover(client, store).move(await plan(client, config))
        assert outcome.outcome == Outcome.FAILED
        assert journal(store).terminate_sent_at is not None  # it may have applied: it did
        # Our terminate applied; the source now reads a status that says neither.
        sandbox.state.set_run_status(SOURCE_ID, RunStatus.UNKNOWN)
        store.journal.retry_now(SOURCE_ID)
        again = await mover(client, store).resume(journal(store), config)
    says_why(again, store, Outcome.MOVED, MoveState.DONE)
    (copy,) = copies(sandbox.state)
    assert copy["status"] == RunStatus.RUNNING


async def test_a_source_that_failed_on_its_own_leaves_the_job_to_the_copy(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        record, _ = await resumed_with_copy(sandbox, store, config, client)
        sandbox.state.set_run_status(SOURCE_ID, RunStatus.FAILED)
        outcome = await mover(client, store).resume(record, config)
    says_why(outcome, store, Outcome.MOVED, MoveState.DONE)
    assert outcome.detail == "source failed on its own; the copy carries the job"
    (copy,) = copies(sandbox.state)
    assert copy["status"] == RunStatus.RUNNING
    assert sandbox.request_counts["terminate"] == 0


async def test_a_copy_that_refuses_to_stop_while_running_is_retried_not_reported_stopped(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        record, copy = await resumed_with_copy(sandbox, store, config, client)

        def refuse(ctx: HookContext) -> None:
            if ctx.query.get("jobRunName") == copy["name"]:
                raise SandboxError(417, "cannot terminate now", "FAILED")

        sandbox.add_hook("terminate", refuse)
        sandbox.state.set_run_status(SOURCE_ID, RunStatus.RUNNING)
        outcome = await mover(client, store).resume(record, config)
    row = says_why(outcome, store, Outcome.FAILED, MoveState.FAILED)
    assert "answered 417" in outcome.detail
    assert row.attempts == 1  # retried after a backoff
    assert sandbox.state.run(copy["id"])["status"] == RunStatus.RUNNING  # type: ignore[index]


async def test_a_copy_that_already_ended_is_reported_so(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    async with connected(sandbox) as client:
        record, copy = await resumed_with_copy(sandbox, store, config, client)
        sandbox.state.set_run_status(copy["id"], RunStatus.FINISHED)
        sandbox.state.set_run_status(SOURCE_ID, RunStatus.RUNNING)
        outcome = await mover(client, store).resume(record, config)
    says_why(outcome, store, Outcome.SKIPPED, MoveState.SKIPPED)
    assert f"already ended ({RunStatus.FINISHED})" in outcome.detail
    assert sandbox.state.run(copy["id"])["status"] == RunStatus.FINISHED  # type: ignore[index]


# ------------------------------------------------------------------ what the sweep's log says


async def test_each_outcome_is_logged_for_its_run_quiet_when_moved_loud_when_parked(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            moved = await mover(client, store).move(planned)
            store.journal.update(SOURCE_ID, owner=None, state=MoveState.PARKED, error="stop")
            parked = await mover(client, store).move(planned)
    events = [r for r in caplog.records if r.__dict__.get("event") in ("move.done", "move.parked")]
    assert [(r.__dict__["event"], r.getMessage(), r.levelno) for r in events] == [
        ("move.done", "move ended", logging.INFO),
        ("move.parked", "move ended", logging.ERROR),  # a person must look
    ]
    for record, outcome in zip(events, (moved, parked), strict=True):
        assert record.__dict__["fields"] == {
            "source_run": SOURCE_NAME,
            "source_run_id": SOURCE_ID,
            "job": JOB_NAME,
            "destination": DESTINATION_FQN,
            "outcome": outcome.outcome.value,
            "detail": outcome.detail,
        }


async def test_a_move_that_never_learnt_its_version_number_asks_which_deployment_it_is(
    sandbox: SandboxServer,
    store: Store,
    config: FallbackConfig,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the PUT's answer nor the (lost) trigger's said the version number, and the runs
    name only their number: the look-up asks once per number which deployment it is, and
    adopts a run of this move's version only (never the older run of another move's)."""
    async with once(sandbox) as client:
        planned = await plan(client, config)
        earlier = left_behind(store, planned, MoveState.CLAIMED).model_copy(
            update={"source_run_id": "run-earlier"}
        )
        other = await deploy_copy(client, earlier, source_manifest(planned))
        await client.trigger_job(
            other["destination_deployment_id"], command=None, params=None, alias="earlier"
        )
        reset_journal(database_url)
        edit("put_app", sandbox, without("version"))
        await lost_trigger(sandbox, store, config, client)
        row = journal(store)
        assert row.destination_version is None
        assert row.destination_deployment_id is not None
        # A second run on this move's version (an earlier pass's duplicate).
        sandbox.state.trigger(
            application_id=None,
            deployment_id=row.destination_deployment_id,
            command=None,
            params=None,
            alias="again",
        )
        edit("list_runs", sandbox, without("deploymentId"))
        before = dict(sandbox.request_counts)
        with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
            outcome = await mover(client, store).resume(row, config)
    assert outcome.outcome == Outcome.MOVED, outcome
    ours = copies_of(sandbox.state, SOURCE_ID)
    first = min(ours, key=lambda run: run["createdAt"])
    assert journal(store).destination_run_name == first["name"]
    assert calls_since(sandbox, before)["list_deployments"] == 2  # two numbers, each asked once
    assert sandbox.request_counts["trigger"] == 2  # the other move's, and our lost one
    assert len(ours) == 2
    (warning,) = [r for r in caplog.records if r.getMessage() == MANY_RUNS]
    assert sorted(warning.__dict__["fields"]["runs"].split(",")) == sorted(r["name"] for r in ours)


# ------------------------------------------------------------------ what the row already knows


@pytest.mark.parametrize(
    ("row_knows", "asked"),
    [
        (True, {}),  # the row names the source's deployment: no read
        (False, {"list_deployments": 1}),  # a row from before it did: found by version number
    ],
)
async def test_the_terminate_names_the_sources_deployment_without_reading_it_twice(
    sandbox: SandboxServer, store: Store, config: FallbackConfig, row_knows: bool, asked: Obj
) -> None:
    """The source's answer names no deployment (vendor-sparse): the terminate takes it from the
    row, else resolves the run's version number once."""
    async with connected(sandbox) as client:
        fields = {} if row_knows else {"source_deployment_id": None}
        record, _ = await resumed_with_copy(sandbox, store, config, client, **fields)
        edit("get_run", sandbox, without("deploymentId"))
        before = dict(sandbox.request_counts)
        outcome = await mover(client, store).resume(record, config)
    assert_moved_once(outcome, store, sandbox.state)
    reads = calls_since(sandbox, before)
    assert {k: reads.get(k) for k in asked} == asked
    assert "get_deployment" not in reads
    assert ("list_deployments" in reads) == (not row_knows)


async def test_a_resumed_move_copies_the_version_its_row_names(
    sandbox: SandboxServer, store: Store, config: FallbackConfig
) -> None:
    """The source's answer names only its version number (vendor-sparse); the row names the
    deployment: that one is read, not looked up by number."""
    async with connected(sandbox) as client:
        planned = await plan(client, config)
        record = left_behind(store, planned, MoveState.FAILED, error="500")
        edit("get_run", sandbox, without("deploymentId"))
        before = dict(sandbox.request_counts)
        outcome = await mover(client, store).resume(record, config)
    assert_moved_once(outcome, store, sandbox.state)
    reads = calls_since(sandbox, before)
    assert reads.get("get_deployment") == 1
    assert "list_deployments" not in reads

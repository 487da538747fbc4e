"""One pass (`run_pass`) in process: a real client against an in-process sandbox, a real journal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from jobfallback.models import FallbackConfig, FallbackConfigSpec, MoveState, RunStatus
from jobfallback.move import MovePolicy
from jobfallback.plan import Limits
from jobfallback.store import MoveJournal, Store
from jobfallback.sweep import SweepOptions, SweepResult, run_pass
from jobfallback.truefoundry import RetryPolicy, TrueFoundryClient
from jobfallback_sandbox import HookContext, SandboxServer, SandboxState, generate_fleet
from tests.fixtures.copies import copies_of

pytestmark = pytest.mark.anyio


def stored(store: Store, state: SandboxState) -> list[FallbackConfig]:
    return [store.configs.add(FallbackConfigSpec.model_validate(c)) for c in state.configs]


# Passes run back to back here stand for passes minutes apart: no backoff, and the sandbox's
# listings are immediate, so an empty look-up is proof at once.
BACK_TO_BACK = MovePolicy(settle=timedelta(0), backoff=timedelta(0))


async def one_pass(
    server: SandboxServer,
    configs: Sequence[FallbackConfig],
    journal: MoveJournal | None,
    *,
    token: str | None = None,
    max_moves: int | None = None,
    dry_run: bool | None = None,
) -> SweepResult:
    # One attempt per call: the failures these tests inject are not transient.
    async with TrueFoundryClient(
        server.url, token or server.token, retry=RetryPolicy(max_attempts=1)
    ) as client:
        return await run_pass(
            client,
            configs,
            journal,
            SweepOptions(
                threshold_minutes=60,
                dry_run=journal is None if dry_run is None else dry_run,
                limits=Limits(max_moves=max_moves, per_destination=None, per_source=None),
                policy=BACK_TO_BACK,
            ),
            now=datetime.now(tz=UTC),
        )


async def test_a_fleet_pass_moves_exactly_the_covered_stuck_runs(store: Store) -> None:
    state = generate_fleet(
        workspaces=4, jobs_per_workspace=3, runs_per_job=(1, 3), seed=7, stuck_fraction=0.4
    )
    state.configs = state.configs[:3]  # the fourth source workspace has no config
    stuck = [
        r for r in state.runs(status=RunStatus.CREATED) if r["createdAt"] <= state.now_ms - 3600_000
    ]
    apps = {a["id"]: a["workspaceId"] for a in state.applications()}
    covered = [r["id"] for r in stuck if apps[r["applicationId"]] != "ws-src-0004"]
    assert 0 < len(covered) < len(stuck)  # the fleet exercises both sides

    with SandboxServer(state) as server:
        result = await one_pass(server, stored(store, state), store.journal)

    report = result.report
    assert result.exit_code == 0
    assert (report.sources_total, report.sources_scanned, report.sources_failed) == (3, 3, 0)
    assert (report.stuck, report.planned, report.moved) == (len(covered),) * 3
    assert report.api_calls > 0
    after = {r["id"]: r for r in state.runs()}
    for run in stuck:
        copies = copies_of(state, run["id"])
        if run["id"] in covered:
            assert after[run["id"]]["status"] == RunStatus.TERMINATION_REQUESTED
            assert len(copies) == 1
        else:
            assert after[run["id"]]["status"] == RunStatus.CREATED
            assert copies == []
    assert {r.state for r in store.journal.history(limit=1000)} == {MoveState.DONE}


async def test_a_dry_pass_plans_and_writes_nothing(
    sandbox: SandboxServer, store: Store, sandbox_state: SandboxState
) -> None:
    result = await one_pass(sandbox, stored(store, sandbox_state), None)
    assert [m.run.id for m in result.plan.moves] == ["run-embed-1", "run-train-1", "run-eval-1"]
    assert result.report.dry_run
    assert result.outcomes == []
    assert sum(sandbox.request_counts[e] for e in ("put_app", "trigger", "terminate")) == 0
    assert store.journal.history() == []


async def test_a_failing_source_fails_the_pass_but_not_the_other_source(
    sandbox: SandboxServer, store: Store, sandbox_state: SandboxState
) -> None:
    def research_is_down(ctx: HookContext) -> None:
        if ctx.query.get("workspaceId") == "ws-east-research":
            raise RuntimeError("injected: this source is down")

    sandbox.add_hook("list_apps", research_is_down)
    result = await one_pass(sandbox, stored(store, sandbox_state), store.journal)
    assert (result.report.sources_failed, result.report.moved) == (1, 2)
    assert result.exit_code == 1
    assert [r["id"] for r in sandbox_state.runs(status=RunStatus.CREATED)] == [
        "run-embed-1",  # the failed source's stuck run
        "run-report-1",  # fresh
    ]


async def test_a_pass_that_dies_while_listing_stops_its_moves_and_the_next_finishes_them(
    sandbox: SandboxServer, store: Store, sandbox_state: SandboxState
) -> None:
    configs = stored(store, sandbox_state)

    def dies_after_the_first_source(stage: str, done: int, total: int) -> None:
        if stage == "sources" and done == 2:
            raise RuntimeError("injected: the pass dies")

    async with TrueFoundryClient(sandbox.url, sandbox.token) as client:
        with pytest.raises(RuntimeError, match="the pass dies"):
            await run_pass(
                client,
                configs,
                store.journal,
                SweepOptions(threshold_minutes=60),
                now=datetime.now(tz=UTC),
                progress=dies_after_the_first_source,
            )
    # Moves start once every source is listed (the caps and the chain need them all): nothing
    # was claimed or sent.
    assert store.journal.history() == []
    assert not sandbox.request_counts.get("put_app")

    result = await one_pass(sandbox, configs, store.journal)
    assert result.exit_code == 0
    for run_id in ("run-embed-1", "run-train-1", "run-eval-1"):
        record = store.journal.get(run_id)
        assert record is not None
        assert record.state == MoveState.DONE
        assert len(copies_of(sandbox_state, run_id)) == 1
        source = sandbox_state.run(run_id)
        assert source is not None
        assert source["status"] == RunStatus.TERMINATION_REQUESTED


async def test_every_source_failing_or_a_refused_token_exits_3(
    sandbox: SandboxServer, store: Store, sandbox_state: SandboxState
) -> None:
    configs = stored(store, sandbox_state)
    refused = await one_pass(sandbox, configs, store.journal, token="wrong-token")
    assert (refused.auth_refused, refused.exit_code) == (True, 3)

    sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["list_apps"])
    down = await one_pass(sandbox, configs, store.journal)
    assert (down.report.sources_failed, down.report.sources_total, down.exit_code) == (2, 2, 3)
    assert store.journal.history() == []


async def test_a_move_an_earlier_pass_left_unfinished_is_resumed(
    sandbox: SandboxServer, store: Store, sandbox_state: SandboxState
) -> None:
    configs = stored(store, sandbox_state)
    # A 429 says the terminate did nothing, so the move knows no terminate of its own applied.
    sandbox.set_faults(rate=1.0, kinds=["429"], endpoints=["terminate"])
    first = await one_pass(sandbox, configs, store.journal, max_moves=1)
    assert (first.report.failed, first.exit_code) == (1, 1)
    store.journal.retry_now("run-embed-1")  # due now rather than after its backoff
    # The source leaves CREATED on its own: it is no longer listed, only the journal knows it.
    sandbox_state.set_run_status("run-embed-1", RunStatus.RUNNING)
    sandbox.set_faults(rate=0.0, kinds=[])

    # A dry run shows the move it would resume, and touches neither the API nor the journal.
    writes = ("put_app", "trigger", "terminate")
    before = [sandbox.request_counts[e] for e in writes]
    dry = await one_pass(sandbox, configs, store.journal, max_moves=0, dry_run=True)
    assert [r.source_run_id for r in dry.resumes] == ["run-embed-1"]
    assert (dry.report.resumed, dry.outcomes) == (1, [])
    assert [sandbox.request_counts[e] for e in writes] == before
    failed = store.journal.get("run-embed-1")
    assert failed is not None
    assert failed.state == MoveState.FAILED

    second = await one_pass(sandbox, configs, store.journal, max_moves=0)
    assert (second.report.planned, second.report.resumed) == (0, 1)
    assert second.report.skipped == 1
    record = store.journal.get("run-embed-1")
    assert record is not None
    assert record.state == MoveState.SKIPPED
    # Our copy was stopped: the job runs once, in its source.
    (copy,) = copies_of(sandbox_state, "run-embed-1")
    assert copy["status"] == RunStatus.TERMINATION_REQUESTED


async def test_a_workspace_under_two_cluster_ids_is_refused_and_nothing_of_it_moves(
    sandbox: SandboxServer, store: Store, sandbox_state: SandboxState
) -> None:
    """Configs that reached the database some other way (the store refuses them) still never
    make a pass list one workspace twice: that source is refused, the others move."""
    configs = stored(store, sandbox_state)
    first = configs[0]
    typo = first.model_copy(
        update={"id": 999, "source_cluster_id": "gpu-typo", "destination_workspace_id": "ws-x"}
    )
    result = await one_pass(sandbox, [*configs, typo], store.journal)
    report = result.report
    assert (report.sources_refused, result.exit_code) == (1, 1)
    refused = [w for w in report.warnings if "is named under clusters" in w]
    assert len(refused) == 1
    assert "config 999" in refused[0]
    assert f"config {first.id}" in refused[0]
    moved = {o.source_run_id for o in result.outcomes}
    assert moved
    assert all(store.journal.require(run_id).config_id != first.id for run_id in moved)


@pytest.mark.parametrize("all_of_them", [False, True])
async def test_a_pass_whose_every_config_is_skipped_is_no_quiet_success(
    sandbox: SandboxServer, store: Store, sandbox_state: SandboxState, all_of_them: bool
) -> None:
    """A config without a destination FQN is skipped; when that leaves nothing usable the pass
    says so in its exit code (a green CronJob that can never move anything hides it)."""
    configs = stored(store, sandbox_state)
    skipped = len(configs) if all_of_them else 1
    unusable = [
        c.model_copy(update={"destination_workspace_fqn": None}) if i < skipped else c
        for i, c in enumerate(configs)
    ]
    result = await one_pass(sandbox, unusable, store.journal)
    report = result.report
    assert (report.configs_total, report.configs_skipped) == (len(configs), skipped)
    assert result.exit_code == (1 if all_of_them else 0)
    assert sum("has no destinationWorkspaceFqn" in w for w in report.warnings) == skipped

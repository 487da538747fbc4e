"""The sweep end to end: `jobfallback sweep` subprocesses against the demo sandbox."""

from __future__ import annotations

import time
from typing import Any

import pytest

from jobfallback.models import RunStatus
from jobfallback_sandbox import HookContext, SandboxState
from tests.e2e.harness import NOT_STUCK, STUCK, Jobfallback

pytestmark = pytest.mark.e2e


def test_dry_run_prints_the_plan_and_writes_nothing(jf: Jobfallback) -> None:
    # Planning needs no permission to move: a dry run works while sweeping is disabled.
    disabled = jf.sweep("--dry-run", env={"JOB_FALLBACK_ENABLED": "false"})
    result = jf.sweep("--dry-run")
    assert disabled.returncode == result.returncode == 0, (disabled, result)
    planned = [[m["sourceRunId"], m["configId"]] for m in disabled.json()["moves"]]
    assert planned == [[m["sourceRunId"], m["configId"]] for m in result.json()["moves"]]

    moves = result.json()["moves"]
    # Oldest first: embed (240 min), train (185), eval (150).
    assert [m["sourceRun"] for m in moves] == [
        "embed-corpus-0007",
        "train-llm-0412",
        "eval-suite-0098",
    ]
    embed, train, _ = moves
    assert embed["job"] == "embed-corpus"
    assert 239 <= embed["ageMinutes"] <= 245
    assert embed["reason"] == f"job-specific config {embed['configId']}"
    assert train["reason"] == f"generic config {train['configId']} (the only one for this source)"
    assert {m["destinationWorkspaceFqn"] for m in moves} == {"gpu-west:fallback"}
    assert result.json()["report"]["dryRun"] is True
    previews = [e for e in jf.log_events(result) if e["event"] == "dry_run.move"]
    assert [e["source_run"] for e in previews] == [m["sourceRun"] for m in moves]
    assert all(e["decision"].startswith("would move") for e in previews), previews

    assert jf.writes() == {"put_app": 0, "trigger": 0, "terminate": 0}
    assert jf.sandbox.request_counts["get_run"] == 0  # not even the move's re-read
    history = jf.run("history", "--output", "json")
    assert (history.returncode, history.json()) == (0, [])


def test_sweep_moves_every_stuck_run_exactly_once(jf: Jobfallback) -> None:
    before = {run["id"]: run for run in jf.sandbox.state.runs()}
    chat_api = jf.sandbox.state.application_by_name("ws-east-ml", "chat-api")

    result = jf.sweep()
    assert result.returncode == 0, result
    assert {m["sourceRunId"]: m["outcome"] for m in result.json()["moves"]} == dict.fromkeys(
        STUCK, "moved"
    )
    jf.assert_moved_once()
    for run_id in STUCK:
        (copy,) = jf.copies(run_id)
        assert copy["command"] == before[run_id]["command"]
        assert copy["params"] == before[run_id]["params"]
    for run_id in NOT_STUCK:
        assert jf.sandbox.state.run(run_id) == before[run_id]
    assert jf.sandbox.state.application_by_name("ws-east-ml", "chat-api") == chat_api
    assert jf.sandbox.state.application_by_name("ws-west-fallback", "chat-api") is None
    assert jf.sandbox.state.application_by_name("ws-west-fallback", "nightly-report") is None

    writes = jf.writes()
    again = jf.sweep()
    assert again.returncode == 0, again
    assert again.json()["moves"] == []
    assert jf.writes() == writes
    jf.assert_moved_once()


def test_a_job_specific_config_beats_the_generic_one(
    bare_jf: Jobfallback, sandbox_state: SandboxState
) -> None:
    special = sandbox_state.add_workspace(
        id="ws-west-special", name="special", cluster_id="gpu-west", has_capacity=True
    )
    configs: list[dict[str, Any]] = [dict(c) for c in sandbox_state.configs]
    configs[2].update(destinationWorkspaceId=special["id"], destinationWorkspaceFqn=special["fqn"])
    generic, _, specific = bare_jf.load_configs(configs)

    result = bare_jf.sweep()
    assert result.returncode == 0, result
    by_run = {m["sourceRunId"]: m for m in result.json()["moves"]}
    assert by_run["run-embed-1"]["configId"] == specific.id
    assert by_run["run-embed-1"]["destinationWorkspaceFqn"] == "gpu-west:special"
    assert by_run["run-train-1"]["configId"] == generic.id
    (copy,) = bare_jf.copies("run-embed-1")  # in the job-specific config's destination only
    special = bare_jf.sandbox.state.applications(workspace_id="ws-west-special")
    assert copy["applicationId"] in {app["id"] for app in special}
    bare_jf.assert_moved_once(["run-train-1", "run-eval-1"])


def test_a_run_that_starts_before_its_terminate_keeps_running_and_the_copy_stops(
    jf: Jobfallback,
) -> None:
    seen: list[str] = []

    def starts_on_its_own(ctx: HookContext) -> None:
        if ctx.path.endswith("/runs/train-llm-0412") and not seen:
            seen.append(ctx.path)
            ctx.state.set_run_status("run-train-1", RunStatus.RUNNING)

    jf.sandbox.add_hook("get_run", starts_on_its_own)
    result = jf.sweep()
    assert result.returncode == 0, result
    outcomes = {m["sourceRunId"]: m["outcome"] for m in result.json()["moves"]}
    assert outcomes == {"run-train-1": "skipped", "run-eval-1": "moved", "run-embed-1": "moved"}
    # The re-read right before the terminate saw it running: the job runs once, in its source.
    assert jf.status("run-train-1") == RunStatus.RUNNING
    assert [c["status"] for c in jf.copies("run-train-1")] == [RunStatus.TERMINATION_REQUESTED]
    assert jf.journal()["run-train-1"].state == "skipped"
    jf.assert_moved_once(["run-eval-1", "run-embed-1"])


def test_a_second_concurrent_sweep_backs_off(jf: Jobfallback) -> None:
    sweeps: list[Any] = []

    def hold_until_the_other_exits(ctx: HookContext) -> None:
        # The first listing comes from the sweep holding the lock: keep it holding the lock
        # until the other sweep has given up, so the two certainly overlap.
        if ctx.call_index != 0:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and all(p.poll() is None for p in sweeps):
            time.sleep(0.02)

    jf.sandbox.add_hook("list_apps", hold_until_the_other_exits)
    args = ("sweep", "--output", "json", "--log-format", "json")
    sweeps.extend([jf.start(*args), jf.start(*args)])
    first, second = (jf.finish(p) for p in sweeps)

    assert (first.returncode, second.returncode) == (0, 0), (first, second)
    backed_off = [r for r in (first, second) if "another sweep holds the lock" in r.stderr]
    assert len(backed_off) == 1, (first, second)
    assert backed_off[0].json() == {"skipped": "another sweep holds the lock; exiting"}
    (mover,) = [r for r in (first, second) if r is not backed_off[0]]
    assert [m["outcome"] for m in mover.json()["moves"]] == ["moved"] * 3
    assert jf.writes() == {"put_app": 3, "trigger": 3, "terminate": 3}
    jf.assert_moved_once()

"""`jobfallback explain RUN`: the real CLI against the sandbox over HTTP, on a test database.

The demo (tests/e2e/harness.py): ws-east-ml holds train (185 min, CREATED) and eval (150 min);
ws-east-research embed (240 min, its own config with a 180-minute threshold) and report (5 min).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from jobfallback.models import RunStatus
from jobfallback.shard import shard_of
from jobfallback.store import open_store
from jobfallback_sandbox import SandboxState
from tests.cli.test_sweep_cli import NO_DATABASE
from tests.e2e import harness
from tests.e2e.harness import Jobfallback, Result

pytestmark = pytest.mark.e2e
bare_jf = harness.bare_jf  # the fixture, visible to this module


@pytest.fixture
def jf(bare_jf: Jobfallback, sandbox_state: SandboxState) -> Jobfallback:
    """The demo sandbox and configs, with the guard rails at their defaults: explain shows them."""
    bare_jf.base_env = {}
    bare_jf.load_configs(sandbox_state.configs)
    return bare_jf


NO_WRITES = {"put_app": 0, "trigger": 0, "terminate": 0}
# The documented shape of `explain --output json` (README "Why was it (not) moved").
TOP_KEYS = {
    "run",
    "runId",
    "sweepEnabled",
    "listed",
    "configs",
    "chain",
    "chainReason",
    "decision",
    "guardRails",
    "shard",
    "journal",
    "wouldResume",
    "sourcesFailed",
}
LISTED_KEYS = {
    "runId",
    "runName",
    "status",
    "job",
    "jobId",
    "source",
    "createdAt",
    "ageMinutes",
    "thresholdMinutes",
    "stuck",
}
DECISION_KEYS = {
    "verdict",
    "summary",
    "configId",
    "destinationWorkspaceFqn",
    "reason",
    "hold",
    "detail",
    "action",
    "manifestPatch",
}
GUARD_RAIL_KEYS = {
    "maxMoves",
    "maxMovesPerSource",
    "maxMovesPerDestination",
    "cooldownMinutes",
    "maxHops",
    "breakerOpen",
    "optedOut",
    "hops",
    "movedRecently",
    "saturated",
}


def explain(jf: Jobfallback, *args: str, env: harness.EnvOverrides | None = None) -> Result:
    return jf.run("explain", *args, env=env)


def explained(jf: Jobfallback, *args: str, env: harness.EnvOverrides | None = None) -> Any:
    """`explain ARGS --output json`, which must exit 0 and write nothing."""
    before = jf.writes()
    result = explain(jf, *args, "--output", "json", env=env)
    assert result.returncode == 0, result
    assert jf.writes() == before
    return result.json()


def config_ids(jf: Jobfallback) -> dict[str | None, int]:
    with open_store(jf.database_url) as store:
        return {c.name: c.id for c in store.configs.list()}


def minutes_ago(jf: Jobfallback, minutes: int) -> int:
    return int(time.time() * 1000) - minutes * 60_000


def test_a_run_that_would_move_names_the_config_that_won_and_why(jf: Jobfallback) -> None:
    ids = config_ids(jf)
    generic, own = ids["research-to-west"], ids["embed-corpus-to-west"]
    out = explained(jf, "run-embed-1")

    assert set(out) == TOP_KEYS
    assert set(out["listed"]) == LISTED_KEYS
    assert set(out["decision"]) == DECISION_KEYS
    assert set(out["guardRails"]) == GUARD_RAIL_KEYS
    assert out["runId"] == "run-embed-1"
    listed = out["listed"]
    assert (listed["runName"], listed["jobId"], listed["source"]) == (
        "embed-corpus-0007",
        "app-embed-corpus",
        "gpu-east/ws-east-research",
    )
    # Its own config's threshold (180), not the global 60: and it is past it.
    assert listed["thresholdMinutes"] == 180
    assert 239 <= listed["ageMinutes"] <= 242
    assert listed["stuck"] is True
    # Both configs cover the source; the job's own one governs it.
    assert [c["id"] for c in out["configs"]] == [generic, own]
    assert out["chain"] == [own]
    assert out["chainReason"] == f"job-specific config {own}"
    decision = out["decision"]
    assert decision["verdict"] == "move"
    assert decision["configId"] == own
    assert decision["destinationWorkspaceFqn"] == "gpu-west:fallback"
    assert decision["action"] == "would move"
    assert decision["hold"] is None
    rails = out["guardRails"]
    assert (rails["optedOut"], rails["hops"], rails["breakerOpen"]) == (False, [], None)
    assert rails["maxMoves"] == 100
    assert out["shard"] is None
    assert out["journal"] is None
    assert jf.journal() == {}  # a dry run: nothing written to the journal either

    text = explain(jf, "embed-corpus-0007")  # by name, for people
    assert text.returncode == 0, text
    assert f"decision: moves to gpu-west:fallback by config {own}" in text.stdout
    assert f"its job is governed by job-specific config {own}" in text.stdout
    assert "a real pass: would move" in text.stdout
    assert "journal: no move recorded for this run" in text.stdout


def test_a_run_not_yet_stuck_shows_its_age_against_the_threshold(jf: Jobfallback) -> None:
    out = explained(jf, "run-report-1")
    listed = out["listed"]
    assert listed["stuck"] is False
    assert listed["thresholdMinutes"] == 60
    assert 4 <= listed["ageMinutes"] <= 7
    assert out["decision"]["verdict"] == "not_stuck"
    assert out["chain"] == [config_ids(jf)["research-to-west"]]
    assert out["decision"]["configId"] is None

    text = explain(jf, "run-report-1")
    assert text.returncode == 0, text
    assert "not stuck yet: " in text.stdout
    assert "the threshold is 60 min; stuck from " in text.stdout


def test_a_run_over_a_cap_is_held_and_says_which(jf: Jobfallback) -> None:
    # ws-east-ml: train (185 min) is older than eval (150 min), so it takes the one slot.
    cap = {"JOB_FALLBACK_MAX_MOVES_PER_SOURCE": "1"}
    out = explained(jf, "run-eval-1", env=cap)
    decision = out["decision"]
    assert decision["verdict"] == "held"
    assert decision["hold"] == "cap_source"
    assert "--max-moves-per-source" in decision["detail"]
    assert decision["configId"] == config_ids(jf)["ml-team-to-west"]
    assert out["guardRails"]["maxMovesPerSource"] == 1
    assert explained(jf, "run-train-1", env=cap)["decision"]["verdict"] == "move"

    # What explain said is what a sweep does.
    swept = jf.sweep(env=cap)
    assert [m["sourceRunId"] for m in swept.json()["deferred"]] == ["run-eval-1"]


def test_a_job_labelled_never_is_held_as_opted_out(jf: Jobfallback) -> None:
    state = jf.sandbox.state
    app = state.add_application(
        workspace_id="ws-east-ml",
        name="payments-batch",
        manifest={"labels": {"jobfallback.io/move": "never"}},
    )
    run = state.add_run(application_id=app["id"], created_at=minutes_ago(jf, 200))
    out = explained(jf, run["name"])
    assert out["runId"] == run["id"]
    decision = out["decision"]
    assert (decision["verdict"], decision["hold"]) == ("held", "opted_out")
    assert "jobfallback.io/move: never" in decision["detail"]
    assert out["guardRails"]["optedOut"] is True

    text = explain(jf, run["id"])
    assert "decision: held this pass (opted_out)" in text.stdout
    assert "opted out by label: yes" in text.stdout

    assert jf.sweep().returncode == 0
    assert jf.status(run["id"]) == RunStatus.CREATED
    assert jf.copies(run["id"]) == []


def test_a_moved_run_is_explained_by_its_journal_row(jf: Jobfallback) -> None:
    assert jf.sweep().returncode == 0
    jf.assert_moved_once()
    for asked in ("run-train-1", "train-llm-0412"):  # by id, and by name from the journal
        result = explain(jf, asked, "--output", "json")
        assert result.returncode == 0, result
        out = result.json()
        assert out["runId"] == "run-train-1"
        assert out["listed"] is None  # terminated: no listing of CREATED runs shows it
        assert out["decision"]["verdict"] == "not_listed"
        journal = out["journal"]
        assert journal["state"] == "done"
        assert journal["destinationWorkspaceFqn"] == "gpu-west:fallback"
        assert journal["destinationRunName"] == jf.journal()["run-train-1"].destination_run_name
        assert out["wouldResume"] is False

    text = explain(jf, "train-llm-0412")
    assert text.returncode == 0, text
    assert "decision: no listing of CREATED runs shows it" in text.stdout
    assert "journal: move done" in text.stdout


def test_another_run_of_a_job_just_moved_is_held_by_the_cooldown(jf: Jobfallback) -> None:
    assert jf.sweep().returncode == 0
    run = jf.sandbox.state.add_run(application_id="app-train-llm", created_at=minutes_ago(jf, 100))
    out = explained(jf, run["id"])
    assert (out["decision"]["verdict"], out["decision"]["hold"]) == ("held", "cooldown")
    assert list(out["guardRails"]["movedRecently"]) == ["run-train-1"]
    assert out["guardRails"]["cooldownMinutes"] == 60


def test_a_run_whose_only_destination_is_saturated_is_held(jf: Jobfallback) -> None:
    state = jf.sandbox.state
    waiting = state.add_application(workspace_id="ws-west-fallback", name="west-own-job")
    state.add_run(application_id=waiting["id"], created_at=minutes_ago(jf, 100))
    out = explained(jf, "run-train-1")
    assert (out["decision"]["verdict"], out["decision"]["hold"]) == (
        "held",
        "destinations_saturated",
    )
    assert "gpu-west:fallback is saturated" in out["decision"]["detail"]
    assert list(out["guardRails"]["saturated"]) == ["ws-west-fallback"]


def test_a_failed_move_shows_what_the_next_pass_does_and_the_journal_row(jf: Jobfallback) -> None:
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    assert jf.sweep().returncode == 1
    jf.sandbox.set_faults(rate=0.0, kinds=[])
    out = explained(jf, "run-train-1")
    assert out["listed"]["status"] == "CREATED"  # never terminated without a copy
    assert out["decision"]["verdict"] == "move"
    assert out["decision"]["action"].startswith("deferred: backing off until ")
    assert out["journal"]["state"] == "failed"
    assert "500" in out["journal"]["error"]
    assert out["journal"]["attempts"] == 1


def test_the_chosen_configs_manifest_patch_is_shown(bare_jf: Jobfallback) -> None:
    patch = {"env": {"RUNS_ON_FALLBACK": "1"}}
    bare_jf.load_configs(
        [
            {
                "name": "ml-team-to-west",
                "sourceClusterId": "gpu-east",
                "sourceWorkspaceId": "ws-east-ml",
                "destinationClusterId": "gpu-west",
                "destinationWorkspaceId": "ws-west-fallback",
                "destinationWorkspaceFqn": "gpu-west:fallback",
                "manifestPatch": patch,
            }
        ]
    )
    assert explained(bare_jf, "run-train-1")["decision"]["manifestPatch"] == patch
    text = explain(bare_jf, "run-train-1")
    assert "patch applied to the copy's manifest: {'env': {'RUNS_ON_FALLBACK': '1'}}" in (
        text.stdout
    )


def test_a_sharded_sweep_names_the_shard_that_owns_the_source(jf: Jobfallback) -> None:
    owner = shard_of("ws-east-ml", 2)
    other = 1 - owner
    out = explained(jf, "run-train-1", "--shard", f"{other}/2")
    assert out["shard"] == {"count": 2, "this": other, "owner": owner, "ownedByThis": False}
    # Decided as the owner's sweep decides it, whichever shard asks.
    assert out["decision"]["verdict"] == "move"
    here = explained(
        jf, "run-train-1", env={"JOB_FALLBACK_SHARD_COUNT": "2", "JOB_COMPLETION_INDEX": str(owner)}
    )
    assert here["shard"]["ownedByThis"] is True


def test_a_run_found_nowhere_exits_1(jf: Jobfallback) -> None:
    result = explain(jf, "run-nobody-knows", "--output", "json")
    assert result.returncode == 1, result
    out = result.json()
    assert (out["runId"], out["listed"], out["journal"]) == (None, None, None)
    assert out["decision"]["verdict"] == "not_listed"
    text = explain(jf, "run-nobody-knows")
    assert text.returncode == 1, text
    assert (
        "it is not in CREATED, no config covers its job, or the id or name is wrong" in text.stdout
    )


def test_without_a_config_it_says_why_no_source_was_looked_in(bare_jf: Jobfallback) -> None:
    result = explain(bare_jf, "run-train-1", "--output", "json")
    assert result.returncode == 1, result
    assert result.json()["decision"]["summary"].startswith("No run checked: no configs enabled")


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["run-train-1", "--source", "no-slash"], {}, 2, "expected CLUSTER/WORKSPACE"),
        ([" "], {}, 2, "is empty; give a run's id or name"),
        (["run-train-1", "--shard", "2/2"], {}, 2, "INDEX 0 to COUNT-1"),
        (["run-train-1"], {"TF_SERVICE_API_TOKEN": None}, 2, "TF_SERVICE_API_TOKEN is not set"),
        (["run-train-1"], {"TFY_HOST": None}, 2, "TFY_HOST is not set"),
        (["run-train-1"], {"JOB_FALLBACK_MAX_HOPS": "0"}, 2, "JOB_FALLBACK_MAX_HOPS is invalid"),
        (["run-train-1"], {"TF_SERVICE_API_TOKEN": "wrong-token-123456"}, 3, "token refused"),
        (["run-train-1"], {"DATABASE_URL": NO_DATABASE}, 3, "error: "),
    ],
    ids=[
        "bad-source",
        "empty-run",
        "bad-shard",
        "no-token",
        "no-host",
        "bad-setting",
        "bad-token",
        "db-unreachable",
    ],
)
def test_bad_usage_exits_2_and_an_unusable_api_exits_3(
    jf: Jobfallback, args: list[str], env: harness.EnvOverrides, code: int, message: str
) -> None:
    result = explain(jf, *args, env=env)
    assert result.returncode == code, result
    assert message in result.stderr, result
    assert result.stdout == ""
    assert jf.writes() == NO_WRITES
    assert "wrong-token-123456" not in result.stderr

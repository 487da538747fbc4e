"""Issue 14 through the real CLI: what the dry-run plan, `--output json`, the text table and the
logs say about each run a guard rail held, a chain's saturated destination, a patch and a shard.
(The rules themselves: tests/test_plan_guard_rails.py and tests/test_sweep_guard_rails.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import harness
from tests.e2e.harness import DESTINATION_WS, Jobfallback

pytestmark = pytest.mark.e2e

bare_jf = harness.bare_jf  # the fixture, visible to this module


@pytest.fixture
def jf(bare_jf: Jobfallback, sandbox_state: Any) -> Jobfallback:
    """The demo with its configs, the guard rails at their defaults."""
    bare_jf.base_env = {}
    bare_jf.load_configs(sandbox_state.configs)
    return bare_jf


def held(result: harness.Result) -> dict[str, tuple[str, str]]:
    return {row["sourceRunId"]: (row["hold"], row["detail"]) for row in result.json()["held"]}


def test_a_cap_is_shown_per_run_in_json_text_and_logs(jf: Jobfallback) -> None:
    every = jf.sweep("--dry-run").json()["moves"]
    by_age = [m["sourceRunId"] for m in sorted(every, key=lambda m: -m["ageMinutes"])]
    assert len(by_age) >= 2

    dry = jf.sweep("--dry-run", "--max-moves", "1")
    assert dry.returncode == 0, dry
    plan = dry.json()
    assert [m["sourceRunId"] for m in plan["moves"]] == by_age[:1]  # the oldest
    newer = dict.fromkeys(by_age[1:], ("cap_total", "1 moves this pass already (--max-moves)"))
    assert held(dry) == newer
    assert plan["report"]["held"] == {"cap_total": len(newer)}
    assert [m["sourceRunId"] for m in plan["deferred"]] == by_age[1:]
    events = [e for e in jf.log_events(dry) if e["event"] == "plan.held"]
    assert sorted(e["source_run"] for e in events) == sorted(
        m["sourceRun"] for m in every if m["sourceRunId"] in newer
    )

    text = jf.run("sweep", "--dry-run", "--max-moves", "1", "--output", "text")
    assert text.returncode == 0, text
    assert f"held {len(newer)} stuck run(s) this pass:" in text.stdout
    assert f"held: cap_total {len(newer)}" in text.stdout


def test_an_opted_out_job_and_a_saturated_destination_are_held_with_their_reason(
    jf: Jobfallback, sandbox_state: Any
) -> None:
    app = sandbox_state.add_application(
        workspace_id="ws-east-ml",
        name="billing",
        id="app-billing",
        manifest={"labels": {"jobfallback.io/move": "never"}},
    )
    sandbox_state.add_run(
        application_id=app["id"], id="run-billing-1", created_at=sandbox_state.now_ms - 200 * 60_000
    )
    dry = jf.sweep("--dry-run")
    assert held(dry)["run-billing-1"] == (
        "opted_out",
        "the job is labelled jobfallback.io/move: never",
    )

    # The destination's own job waits past the threshold: nothing more goes there this pass.
    busy = sandbox_state.add_application(workspace_id=DESTINATION_WS, name="busy", id="app-busy")
    sandbox_state.add_run(
        application_id=busy["id"], id="run-busy-1", created_at=sandbox_state.now_ms - 90 * 60_000
    )
    result = jf.sweep()
    assert result.returncode == 0, result
    report = result.json()["report"]
    assert (report["moved"], report["destinationsSaturated"]) == (0, 1)
    holds = held(result)
    assert holds["run-train-1"][0] == "destinations_saturated"
    assert (
        "gpu-west:fallback is saturated (its oldest CREATED run waits 90 min"
        in holds["run-train-1"][1]
    )
    assert not jf.copies("run-train-1")


def test_a_patch_and_a_shard_are_in_the_plan(jf: Jobfallback, tmp_path: Any) -> None:
    jf.run("configs", "update", "1", "--manifest-patch", '{"env": {"ON_FALLBACK": "1"}}')
    dry = jf.sweep("--dry-run")
    (train,) = [m for m in dry.json()["moves"] if m["sourceRunId"] == "run-train-1"]
    assert train["manifestPatch"] == {"env": {"ON_FALLBACK": "1"}}

    shards = [jf.sweep("--dry-run", "--shard", f"{i}/2").json() for i in range(2)]
    assert [s["report"]["shard"] for s in shards] == ["0/2", "1/2"]
    planned = sorted(m["sourceRunId"] for s in shards for m in s["moves"])
    assert planned == sorted(m["sourceRunId"] for m in dry.json()["moves"])

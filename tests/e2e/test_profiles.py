"""The sweep under every server profile of the sandbox (the readings of the API the contract
leaves open): the demo scenario moves every stuck run exactly once under each profile alone and
under combinations; a 100-source fleet whose run timestamps all have fractions is planned in
full; and `deploy/demo.py --profile ...` proves its own outcome."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jobfallback.models import RunStatus
from jobfallback_sandbox import PROFILES, SandboxServer, generate_fleet
from tests.e2e.harness import NOT_STUCK, STUCK, Jobfallback
from tests.fixtures.sandbox import PROFILE_SETS
from tests.fixtures.secrets import assert_no_secrets

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Combinations: the naming profiles exclude each other, everything else combines.
COMBINED = [
    tuple(name for name in PROFILES if name != "alias-name"),
    ("alias-name", "search-lag", "page-shift", "fractional-times", "vendor-sparse"),
]
STUCK_THRESHOLD_MINUTES = 60  # fleet runs are 2-6 h old (stuck) or 0-10 min old (fresh)


@pytest.mark.parametrize(
    "sandbox_profiles", [*PROFILE_SETS, *COMBINED], ids=lambda names: "+".join(names)
)
def test_the_demo_moves_every_stuck_run_exactly_once_under_every_profile(
    jf: Jobfallback, sandbox_profiles: tuple[str, ...]
) -> None:
    assert set(jf.sandbox.state.profile.names) >= set(sandbox_profiles)
    before = jf.snapshot()
    result = jf.sweep()
    assert result.returncode == 0, result
    assert {m["sourceRunId"]: m["outcome"] for m in result.json()["moves"]} == dict.fromkeys(
        STUCK, "moved"
    )
    assert result.json()["report"]["unreadable"] == 0, result
    jf.assert_moved_once()
    jf.assert_safe(before, moved=STUCK)
    for run_id in NOT_STUCK:
        assert jf.sandbox.state.run(run_id) == next(r for r in before["runs"] if r["id"] == run_id)

    writes = jf.writes()
    again = jf.sweep()
    assert again.returncode == 0, again
    assert again.json()["moves"] == []
    assert jf.writes() == writes
    jf.assert_safe(before, moved=STUCK)


def test_a_100_source_fleet_with_fractional_times_plans_every_stuck_run(
    jf_for: Callable[[SandboxServer], Jobfallback],
) -> None:
    """Issue 11's measurement: on such a fleet a sweep once saw 0 runs and planned 0 moves."""
    state = generate_fleet(
        workspaces=100,
        jobs_per_workspace=3,
        stuck_fraction=0.3,
        seed=11,
        profiles=("fractional-times",),
    )
    runs = state.runs(status=RunStatus.CREATED)
    assert runs
    assert all(not float(r["createdAt"]).is_integer() for r in runs)
    cutoff = state.now_ms - STUCK_THRESHOLD_MINUTES * 60_000
    stuck = {r["id"] for r in runs if r["createdAt"] <= cutoff}
    assert len(stuck) > 100
    with SandboxServer(state, seed=0) as server:
        jf = jf_for(server)
        jf.import_configs(state.configs)
        assert len({c["sourceWorkspaceId"] for c in state.configs}) == 100
        result = jf.sweep(
            "--dry-run",
            env={"JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": str(STUCK_THRESHOLD_MINUTES)},
        )
    assert result.returncode == 0, result
    report = result.json()["report"]
    assert (report["sourcesScanned"], report["sourcesFailed"]) == (100, 0), report
    assert report["runsSeen"] == len(runs), report
    assert (report["stuck"], report["planned"]) == (len(stuck), len(stuck)), report
    assert (report["unreadable"], report["warnings"]) == (0, []), report
    assert {m["sourceRunId"] for m in result.json()["moves"]} == stuck
    assert jf.writes() == {"put_app": 0, "trigger": 0, "terminate": 0}


@pytest.mark.parametrize(
    "profile", ["generated-names", "search-lag,fractional-times,vendor-sparse"]
)
def test_the_demo_script_runs_under_a_server_profile(database_url: str, profile: str) -> None:
    """`python deploy/demo.py --profile ...` (`make demo` with a profile), on the test's
    database instead of the embedded one, to stay fast."""
    script = str(REPO / "deploy" / "demo.py")
    demo = subprocess.run(
        [sys.executable, script, "--profile", profile, "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    output = demo.stdout + demo.stderr
    assert_no_secrets(output, "the demo's output")
    assert demo.returncode == 0, output[-4000:]
    assert f"server profiles: {profile}" in demo.stdout
    assert "OK: every stuck run moved exactly once." in demo.stdout, demo.stdout[-3000:]
    assert demo.stdout.count("-> 1 destination run(s)") == len(STUCK), demo.stdout[-3000:]
    assert "Traceback" not in demo.stderr, demo.stderr[-3000:]

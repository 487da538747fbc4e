"""The fault matrix: every fault kind at two rates on reads, writes and everything, with sweeps
repeated until the fleet converges, then one fault-free sweep; the fleet must end exactly as a
fault-free sweep would leave it (each covered stuck run moved once, nothing else touched).

It runs whole under the default server profile (alias-name), and under every other profile
(and two combinations) on a covering subset: every fault kind at 30% on all endpoints, plus
the answers lost after a write's effect, so every profile meets every fault kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jobfallback_sandbox import FAULT_KINDS, SandboxServer
from tests.faults.conftest import FLEET_SEED
from tests.faults.harness import (
    converged,
    fleet,
    import_configs,
    journal_rows,
    judge,
    stuck_run_ids,
    stuck_run_ids_now,
    sweep,
    sweep_env,
)

MAX_SWEEPS = 6
# A "timeout" fault holds the answer this long (+0.5 s), then hangs up. The sweep's own read
# timeout (30 s) has no flag or variable, so the sandbox hangs up first.
TIMEOUT_SECONDS = 0.2
READS = ("list_apps", "list_runs", "get_run")
WRITES = ("put_app", "trigger", "terminate")
GROUPS: dict[str, tuple[str, ...] | None] = {"reads": READS, "writes": WRITES, "all": None}

DEFAULT_PROFILE = "alias-name"
# Profile labels: names joined by "+" (the CLI's `--profile` joins them by ",").
OTHER_PROFILES = (
    "generated-names",
    "search-lag",
    "page-shift",
    "ignore-offset",
    "fractional-times",
    "vendor-sparse",
    # Every way to read a run differently at once.
    "generated-names+search-lag+fractional-times+vendor-sparse",
    # Every profile that combines (alias-name excludes generated-names).
    "generated-names+search-lag+page-shift+ignore-offset+fractional-times+vendor-sparse",
)

Case = tuple[str, float, str, bool, str]  # kind, rate, endpoints, after effect, profile


def run_case(
    database_url: str,
    baseline_requests: int,
    record: Callable[[dict[str, Any]], None],
    *,
    kind: str,
    rate: float,
    group: str,
    after_effect: bool = False,
    profile: str = DEFAULT_PROFILE,
) -> None:
    """Sweeps under faults until the fleet converges (at most MAX_SWEEPS), then one without;
    records the case's summary, then checks every invariant."""
    state = fleet(FLEET_SEED, profile=profile)
    stuck = stuck_run_ids(state)
    covered = stuck_run_ids_now(state)
    assert covered, "the fleet has no covered stuck run: pick another seed"
    import_configs(database_url, state)
    built = {str(run["id"]) for run in state.runs()}
    with SandboxServer(
        state,
        seed=FAULT_KINDS.index(kind),
        fault_rate=rate,
        fault_kinds=[kind],
        fault_endpoints=GROUPS[group],
        timeout_seconds=TIMEOUT_SECONDS,
        fault_after_effect=after_effect,
    ) as server:
        env = sweep_env(server, database_url)
        codes: list[int] = []
        while len(codes) < MAX_SWEEPS and not converged(state, database_url):
            run = sweep(env)
            # 3: every source failed (e.g. wrong-shaped lists are not retried); not a crash.
            assert run.code in (0, 1, 3), f"sweep exit {run.code}: {run.stderr[-2000:]}"
            codes.append(run.code)
        sweeps_to_converge = len(codes) if converged(state, database_url) else None
        server.set_faults(rate=0, kinds=())
        final = sweep(env)
        requests = sum(server.request_counts.values())
        faults = dict(server.fault_counts)
    verdict = judge(state, stuck)
    record(
        {
            "kind": kind,
            "rate": rate,
            "endpoints": group,
            "faultAfterEffect": after_effect,
            "profile": profile,
            "stuck": len(covered),
            "stuckUncovered": len(stuck) - len(covered),
            "sweepsToConverge": sweeps_to_converge,
            "exitCodes": codes,
            "finalExitCode": final.code,
            "faultsInjected": faults,
            "requests": requests,
            "extraRequests": requests - baseline_requests,
            # Source runs the server added on its own (page-shift, while a listing paged).
            "runsAddedByServer": len(
                {str(r["id"]) for r in state.runs()} - built - verdict.copy_ids
            ),
            "duplicates": verdict.duplicates,
            "lost": verdict.lost,
            "unmoved": verdict.unmoved,
            "twoAlive": verdict.two_alive,
        }
    )
    assert not verdict.problems, "\n".join(
        [*verdict.problems, "journal:", *journal_rows(database_url, verdict.runs)]
    )
    assert final.code == 0, final.stderr[-3000:]
    assert converged(state, database_url), "\n".join(["unsettled:", *journal_rows(database_url)])


def case_id(kind: str, rate: float, group: str, after_effect: bool, profile: str) -> str:
    return f"{profile}-{kind}-{rate}-{group}" + ("-after-effect" if after_effect else "")


# Answers lost after a write took effect: the faults that can make a move repeat a write.
AFTER_EFFECT = [
    (kind, rate, "writes", True) for kind in ("timeout", "reset") for rate in (0.1, 0.3)
]
FULL = [
    (kind, rate, group, False) for kind in FAULT_KINDS for rate in (0.1, 0.3) for group in GROUPS
]
COVERING = [(kind, 0.3, "all", False) for kind in FAULT_KINDS] + AFTER_EFFECT
MATRIX: list[Case] = [(*case, DEFAULT_PROFILE) for case in FULL + AFTER_EFFECT] + [
    (*case, profile) for profile in OTHER_PROFILES for case in COVERING
]
# Unmarked, so every test run has a taste; the rest runs under `-m faults` (CI).
SMOKE = {
    ("503", 0.3, "all", False, DEFAULT_PROFILE),
    ("reset", 0.3, "writes", True, DEFAULT_PROFILE),
}
CASES = [
    pytest.param(case, id=case_id(*case), marks=() if case in SMOKE else pytest.mark.faults)
    for case in MATRIX
]


@pytest.mark.parametrize("case", CASES)
def test_fleet_converges_to_one_move_per_stuck_run(
    database_url: str,
    baseline_requests: Callable[[str], int],
    fault_report: Callable[[str, dict[str, Any]], None],
    case: Case,
) -> None:
    kind, rate, group, after_effect, profile = case
    run_case(
        database_url,
        baseline_requests(profile),
        lambda summary: fault_report(case_id(*case), summary),
        kind=kind,
        rate=rate,
        group=group,
        after_effect=after_effect,
        profile=profile,
    )

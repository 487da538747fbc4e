"""The fault matrix: every fault kind at two rates on reads, writes and everything, with sweeps
repeated until the fleet converges, then one fault-free sweep; the fleet must end exactly as a
fault-free sweep would leave it (each covered stuck run moved once, nothing else touched)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jobfallback.sandbox import FAULT_KINDS, SandboxServer
from tests.faults.conftest import FLEET_SEED
from tests.faults.harness import (
    assert_invariants,
    converged,
    fleet,
    import_configs,
    journal_states,
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


def run_case(
    database_url: str,
    baseline_requests: int,
    *,
    kind: str,
    rate: float,
    group: str,
    after_effect: bool = False,
) -> dict[str, Any]:
    state = fleet(FLEET_SEED)
    stuck = stuck_run_ids(state)
    assert stuck_run_ids_now(state), "the fleet has no covered stuck run: pick another seed"
    import_configs(database_url, state)
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
        assert final.code == 0, final.stderr[-3000:]
        assert_invariants(state, stuck)
        assert converged(state, database_url), journal_states(database_url)
        requests = sum(server.request_counts.values())
        faults = dict(server.fault_counts)
    return {
        "kind": kind,
        "rate": rate,
        "endpoints": group,
        "faultAfterEffect": after_effect,
        "stuck": len(stuck),
        "sweepsToConverge": sweeps_to_converge,
        "exitCodes": codes,
        "faultsInjected": faults,
        "requests": requests,
        "extraRequests": requests - baseline_requests,
    }


def case_id(kind: str, rate: float, group: str, after_effect: bool) -> str:
    return f"{kind}-{rate}-{group}" + ("-after-effect" if after_effect else "")


MATRIX = [
    (kind, rate, group, False) for kind in FAULT_KINDS for rate in (0.1, 0.3) for group in GROUPS
] + [(kind, rate, "writes", True) for kind in ("timeout", "reset") for rate in (0.1, 0.3)]
# Unmarked, so every test run has a taste; the rest runs under `-m faults` (CI).
SMOKE = {("503", 0.3, "all", False), ("reset", 0.3, "writes", True)}
CASES = [
    pytest.param(case, id=case_id(*case), marks=() if case in SMOKE else pytest.mark.faults)
    for case in MATRIX
]


@pytest.mark.parametrize("case", CASES)
def test_fleet_converges_to_one_move_per_stuck_run(
    database_url: str,
    baseline_requests: int,
    fault_report: Callable[[str, dict[str, Any]], None],
    case: tuple[str, float, str, bool],
) -> None:
    kind, rate, group, after_effect = case
    summary = run_case(
        database_url,
        baseline_requests,
        kind=kind,
        rate=rate,
        group=group,
        after_effect=after_effect,
    )
    fault_report(case_id(*case), summary)

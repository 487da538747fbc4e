"""A terminate answered 200 with a body of the wrong shape did not necessarily terminate."""

from __future__ import annotations

from jobfallback_sandbox import SandboxServer
from tests.faults.harness import (
    assert_invariants,
    fleet,
    import_configs,
    stuck_run_ids,
    sweep,
    sweep_env,
)


def test_wrong_shaped_terminate_answer_is_not_taken_for_done(database_url: str) -> None:
    state = fleet(seed=31)
    stuck = stuck_run_ids(state)
    import_configs(database_url, state)
    with SandboxServer(
        state, fault_rate=1.0, fault_kinds=["wrongshape"], fault_endpoints=["terminate"]
    ) as server:
        env = sweep_env(server, database_url)
        sweep(env)
        server.set_faults(rate=0, kinds=())
        assert sweep(env).code == 0
    assert_invariants(state, stuck)

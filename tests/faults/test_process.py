"""Faults outside the API: the control plane unreachable, the database dropping our connections
mid-pass, the database down at start."""

from __future__ import annotations

import socket

import psycopg

from jobfallback_sandbox import HookContext, SandboxServer
from tests.faults.harness import (
    assert_invariants,
    converged,
    fleet,
    import_configs,
    journal_states,
    stuck_run_ids,
    sweep,
    sweep_env,
)

WRITES = ("put_app", "trigger", "terminate")


def closed_port_url(scheme: str) -> str:
    """A loopback URL nobody listens on (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}"


def test_control_plane_refusing_connections_exits_3_and_writes_nothing(database_url: str) -> None:
    state = fleet(seed=11)
    import_configs(database_url, state)
    with SandboxServer(state) as server:
        env = sweep_env(server, database_url, TFY_HOST=closed_port_url("http"))
        run = sweep(env)
    assert run.code == 3, run.stderr[-2000:]
    assert not journal_states(database_url)


def test_database_down_at_start_exits_3_before_any_write(database_url: str) -> None:
    state = fleet(seed=12)
    with SandboxServer(state) as server:
        down = closed_port_url("postgresql") + "/jobfallback"
        run = sweep(sweep_env(server, down))
        assert run.code == 3, run.stderr[-2000:]
        assert not any(server.request_counts[e] for e in WRITES), server.request_counts


def kill_other_backends(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_database_connections_killed_mid_pass_then_a_rerun_converges(database_url: str) -> None:
    state = fleet(seed=13)
    stuck = stuck_run_ids(state)
    import_configs(database_url, state)
    with SandboxServer(state) as server:

        def kill_on_first_trigger(ctx: HookContext) -> None:
            if ctx.call_index == 0:
                kill_other_backends(database_url)

        server.add_hook("trigger", kill_on_first_trigger)
        env = sweep_env(server, database_url)
        first = sweep(env)  # no traceback (checked by sweep), any exit code
        assert first.code in (0, 1, 3), first.stderr[-2000:]
        rerun = sweep(env)
        assert rerun.code == 0, rerun.stderr[-2000:]
    assert_invariants(state, stuck)
    assert converged(state, database_url), journal_states(database_url)

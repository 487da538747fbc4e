"""A sweep killed (SIGKILL) at each step of a move; the next sweep finishes every move once."""

from __future__ import annotations

import os
import signal
import time
from typing import Literal

import pytest

from jobfallback.models import MoveState
from jobfallback_sandbox import HookContext
from tests.e2e.harness import STUCK, Jobfallback
from tests.fixtures import cli

pytestmark = pytest.mark.e2e


class RequestLost(Exception):
    """Raised by a "before" hook so the sandbox never applies the request (the sweep died)."""


@pytest.mark.parametrize(
    ("endpoint", "when", "unfinished"),
    [
        # The journal row is written, the PUT never arrives.
        ("put_app", "before", MoveState.CLAIMED),
        # The PUT is applied, its answer is lost: the row still says claimed.
        ("put_app", "after", MoveState.CLAIMED),
        # The trigger is applied, its answer is lost: the row says deployed, with its trigger mark.
        ("trigger", "after", MoveState.DEPLOYED),
        # The source is terminated, the answer is lost: the row says triggered.
        ("terminate", "after", MoveState.TRIGGERED),
    ],
)
def test_a_killed_sweep_is_finished_by_the_next(
    jf: Jobfallback,
    endpoint: str,
    when: Literal["before", "after"],
    unfinished: MoveState,
) -> None:
    sweeps: list[cli.Running] = []

    def kill_the_sweep(ctx: HookContext) -> None:
        if ctx.call_index != 0:
            return
        while not sweeps:  # the request cannot come before Popen returned; be safe anyway
            time.sleep(0.01)
        os.kill(sweeps[0].pid, signal.SIGKILL)
        if when == "before":
            raise RequestLost

    jf.sandbox.add_hook(endpoint, kill_the_sweep, when=when)
    sweeps.append(jf.start("sweep", "--output", "json", "--log-format", "json"))
    killed = jf.finish(sweeps[0])
    assert killed.returncode == -signal.SIGKILL, killed
    # The kill landed mid-move: at least one row stopped at the step under test.
    assert unfinished in {r.state for r in jf.journal().values()}

    jf.wait_for_lock_release()
    # Another move's trigger may have been in flight when the sweep died, with its mark
    # recorded: the sandbox lists a run at once, so an empty look-up is proof without waiting.
    result = jf.sweep(env={"JOB_FALLBACK_SETTLE_SECONDS": "0"})
    assert result.returncode == 0, result
    jf.assert_moved_once(STUCK)

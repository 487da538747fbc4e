"""SIGTERM (the CronJob's activeDeadlineSeconds, a node drain): the sweep stops starting steps,
cuts the one under way (its journal row says where it was), logs and publishes its summary and
exits 143; the next pass resumes the cut move exactly once. A real sweep process against the
sandbox; the mechanism itself (`Stop`, the pass deadline brought forward) in process."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobfallback.models import FallbackConfigSpec, MoveState
from jobfallback.move import MovePolicy
from jobfallback.store import Store
from jobfallback.sweep import STOPPED_EXIT_CODE, Stop, SweepOptions, run_pass
from jobfallback.truefoundry import RetryPolicy, TrueFoundryClient
from jobfallback_sandbox import HookContext, SandboxServer, SandboxState
from tests.e2e.harness import STUCK, Jobfallback
from tests.fixtures.cli import Running
from tests.ops.receiver import Receiver
from tests.ops.series import parse, value
from tests.ops.test_json_logs import assert_ends_with_its_summary, json_lines

HOLD_SECONDS = 20  # far longer than the stop may take: the stop must not wait for the answer


def test_sigterm_stops_the_pass_reports_publishes_and_the_next_pass_resumes_once(
    jf: Jobfallback, pushgateway: Receiver, tmp_path: Path
) -> None:
    sweeps: list[Running] = []
    release, held_done = threading.Event(), threading.Event()

    def stop_the_sweep_mid_trigger(ctx: HookContext) -> None:
        """The first trigger is under way when SIGTERM comes; the server applies it only
        after the sweep gave up on its answer (its copy then exists: the next pass must adopt
        it, not trigger again)."""
        if ctx.call_index != 0:
            return
        while not sweeps:
            time.sleep(0.01)
        os.kill(sweeps[0].pid, signal.SIGTERM)
        release.wait(HOLD_SECONDS)
        held_done.set()

    jf.sandbox.add_hook("trigger", stop_the_sweep_mid_trigger)
    before = jf.snapshot()
    textfile = tmp_path / "jobfallback.prom"
    started = time.monotonic()
    sweeps.append(
        jf.start(
            "sweep",
            "--output",
            "json",
            "--log-format",
            "json",
            "--pushgateway-url",
            pushgateway.url,
            "--metrics-file",
            str(textfile),
        )
    )
    stopped = jf.finish(sweeps[0])
    took = time.monotonic() - started
    release.set()
    assert held_done.wait(10), "the held trigger never ended"

    # The exit code, well before the held answer would have come.
    assert stopped.returncode == STOPPED_EXIT_CODE, stopped
    assert took < HOLD_SECONDS / 2, stopped

    # Every stderr line is JSON; the stop and the summary are there, the summary last.
    events = json_lines(stopped)
    assert_ends_with_its_summary(events, STOPPED_EXIT_CODE)
    names = [e["event"] for e in events]
    (stopping,) = [e for e in events if e["event"] == "sweep.stopping"]
    assert (stopping["signal"], stopping["level"]) == ("SIGTERM", "warning")
    assert names.index("sweep.stopping") < names.index("sweep.finished")
    (summary,) = [e for e in events if e["event"] == "sweep.finished"]
    assert summary["stopped_by"] == "SIGTERM"
    assert summary["moved"] + summary["failed"] == len(STUCK), summary

    # The report, on stdout as asked: the move under way failed, for the next pass to resume.
    report = stopped.json()
    assert report["report"]["failed"] >= 1, report
    cut = [m for m in report["moves"] if m["outcome"] == "failed"]
    assert all("stopped" in m["detail"] for m in cut), cut
    assert all("SIGTERM" in m["detail"] for m in cut), cut

    # Published: the metrics say 143, and it is no success.
    pushed = parse(pushgateway.only().body)
    assert value(pushed, "last_exit_code") == STOPPED_EXIT_CODE
    assert "jobfallback_last_success_timestamp_seconds" not in pushed
    assert parse(textfile.read_text()) == pushed

    # The journal: each cut move kept the row of its last step (a move cut before its first
    # has none); the held trigger's move (and any other whose trigger was sent) stopped with
    # its trigger mark, nothing that is not done says done.
    journal = jf.journal()
    cut_ids = {m["sourceRunId"] for m in cut}
    unfinished = {r.source_run_id: r for r in journal.values() if r.state != MoveState.DONE}
    assert set(unfinished) <= cut_ids, journal
    marked = [r for r in unfinished.values() if r.trigger_sent_at is not None]
    assert len(marked) >= 1, unfinished  # the held trigger's move at least
    assert {r.state for r in marked} == {MoveState.DEPLOYED}, marked

    # The next pass resumes each cut move once: a trigger that reached the server is adopted,
    # not sent again; every stuck run has exactly one copy and its source is terminated.
    jf.wait_for_lock_release()
    again = jf.sweep(
        env={"JOB_FALLBACK_SETTLE_SECONDS": "0", "JOB_FALLBACK_RETRY_BACKOFF_SECONDS": "0"}
    )
    assert again.returncode == 0, again
    outcomes = {m["sourceRunId"]: m["outcome"] for m in again.json()["moves"]}
    assert {outcomes[run_id] for run_id in cut_ids} == {"moved"}, outcomes
    assert jf.sandbox.request_counts["trigger"] == len(STUCK)  # one trigger per move, ever
    jf.assert_safe(before, moved=STUCK)


def test_sigterm_before_the_pass_ends_the_sweep_with_143_and_its_summary(
    jf: Jobfallback,
) -> None:
    """A stop that comes while the first source is listed: nothing starts, the summary says
    so, and nothing was written."""
    sweeps: list[Running] = []

    def stop_at_the_first_listing(ctx: HookContext) -> None:
        if ctx.call_index == 0:
            while not sweeps:
                time.sleep(0.01)
            os.kill(sweeps[0].pid, signal.SIGTERM)
            time.sleep(1)  # the listing's answer comes after the stop

    jf.sandbox.add_hook("list_apps", stop_at_the_first_listing)
    sweeps.append(jf.start("sweep", "--log-format", "json"))
    stopped = jf.finish(sweeps[0])
    assert stopped.returncode == STOPPED_EXIT_CODE, stopped
    assert stopped.stdout == ""  # not a terminal, no --output: no table
    events = json_lines(stopped)
    assert_ends_with_its_summary(events, STOPPED_EXIT_CODE)
    (summary,) = [e for e in events if e["event"] == "sweep.finished"]
    assert summary["sources_failed"] == summary["sources_total"] > 0
    assert summary["moved"] == summary["planned"] == 0
    assert {e["event"] for e in events} >= {"sweep.stopping", "source.stopped"}
    assert jf.writes() == {"put_app": 0, "trigger": 0, "terminate": 0}
    assert jf.journal() == {}


# ------------------------------------------------------------------ the mechanism, in process


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_stop_ends_moves_under_way_and_starts_none(
    sandbox: SandboxServer, store: Store, sandbox_state: SandboxState
) -> None:
    configs = [
        store.configs.add(FallbackConfigSpec.model_validate(c)) for c in sandbox_state.configs
    ]
    stop = Stop()
    puts = threading.Event()

    def stop_at_the_first_put(ctx: HookContext) -> None:
        if ctx.call_index == 0:
            stop.request("SIGTERM")  # as the signal handler does, from another thread
            puts.set()
            time.sleep(2)  # the answer comes too late

    sandbox.add_hook("put_app", stop_at_the_first_put)
    began = time.monotonic()
    async with TrueFoundryClient(
        sandbox.url, sandbox.token, retry=RetryPolicy(max_attempts=1)
    ) as client:
        result = await run_pass(
            client,
            configs,
            store.journal,
            SweepOptions(threshold_minutes=60, policy=MovePolicy(), stop=stop),
            now=datetime.now(tz=UTC),
        )
    assert puts.is_set()
    assert time.monotonic() - began < 1.5  # did not wait for the held answer
    assert result.stopped == "SIGTERM"
    assert result.exit_code == STOPPED_EXIT_CODE
    assert result.report.moved == 0
    assert {o.outcome.value for o in result.outcomes} == {"failed"}
    assert all("SIGTERM" in o.detail for o in result.outcomes)
    # No move took a step after the stop (a PUT sent alongside the held one may have gone).
    assert sandbox.request_counts["trigger"] == 0
    # What the stop cut left a journal row to resume from.
    assert {r.state for r in store.journal.history()} <= {MoveState.CLAIMED, MoveState.DEPLOYED}


def test_a_stop_before_the_pass_is_kept_and_one_after_changes_nothing() -> None:
    stop = Stop()
    heard: list[str] = []
    forget = stop.on_request(lambda: heard.append("first"))
    stop.request("SIGTERM")
    stop.request("SIGINT")  # only the first counts
    assert (stop.reason, heard) == ("SIGTERM", ["first"])
    forget()
    stop.on_request(lambda: heard.append("late"))  # asked already: told at once
    assert heard == ["first", "late"]
    assert json.dumps(stop.reason) == '"SIGTERM"'

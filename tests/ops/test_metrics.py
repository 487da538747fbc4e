"""`jobfallback sweep` metrics: a real sweep process against the sandbox, a local receiver
standing in for the Pushgateway, and a textfile; each series checked against the sweep's own
report (`--output json`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from jobfallback.metrics import write_textfile
from jobfallback.move import Outcome
from jobfallback.plan import Hold
from jobfallback.shard import Shard
from jobfallback.store.lock import sweep_lock
from jobfallback_sandbox.server import HookContext
from jobfallback_sandbox.state import SandboxError
from tests.cli.test_sweep_cli import NO_DATABASE
from tests.e2e.harness import EnvOverrides, Jobfallback, Result
from tests.ops.receiver import Receiver
from tests.ops.series import Samples, by, parse, value

pytestmark = pytest.mark.e2e

INSTANCE = "ci-cluster"
# What only a pass that ran has: a run that stopped before one leaves these to the last pass.
PASS_SERIES = ("sources", "runs_seen", "moves", "sweep_duration_seconds")


def sweep(
    jf: Jobfallback,
    pushgateway: Receiver,
    *args: str,
    textfile: Path | None = None,
    env: EnvOverrides | None = None,
    group: str = f"/metrics/job/jobfallback/instance/{INSTANCE}",
) -> tuple[Result, Samples]:
    """A sweep pushing to `pushgateway` (and writing `textfile`), and the series it pushed."""
    files = () if textfile is None else ("--metrics-file", str(textfile))
    pushed_before = len(pushgateway.requests)
    result = jf.sweep(
        "--pushgateway-url",
        pushgateway.url,
        *files,
        *args,
        env={"JOB_FALLBACK_METRICS_INSTANCE": INSTANCE, **(env or {})},
    )
    push = pushgateway.requests[pushed_before:]
    assert len(push) == 1, result
    # POST: the Pushgateway replaces only the families pushed (see jobfallback/metrics.py).
    assert (push[0].method, push[0].path) == ("POST", group)
    return result, parse(push[0].body)


def assert_is_the_report(samples: Samples, output: dict[str, Any]) -> None:
    report = output["report"]
    assert {
        name: value(samples, name)
        for name in (
            "sources",
            "sources_scanned",
            "sources_failed",
            "sources_refused",
            "sources_missing",
            "jobs_listed",
            "runs_seen",
            "runs_unreadable",
            "runs_stuck",
            "runs_planned",
            "runs_deferred",
            "moves_resumed",
            "sweep_duration_seconds",
        )
    } == {
        "sources": report["sourcesTotal"],
        "sources_scanned": report["sourcesScanned"],
        "sources_failed": report["sourcesFailed"],
        "sources_refused": report["sourcesRefused"],
        "sources_missing": report["sourcesMissing"],
        "jobs_listed": report["jobsListed"],
        "runs_seen": report["runsSeen"],
        "runs_unreadable": report["unreadable"],
        "runs_stuck": report["stuck"],
        "runs_planned": report["planned"],
        "runs_deferred": len(output["deferred"]),
        "moves_resumed": report["resumed"],
        "sweep_duration_seconds": report["durationSeconds"],
    }
    outcomes = Counter(move["outcome"] for move in output["moves"])
    assert by(samples, "moves") == {(o.value,): outcomes[o.value] for o in Outcome}
    # The guard rails: every reason, 0 included, so a later pass replaces an earlier one's.
    assert by(samples, "runs_held") == {(h.value,): report["held"].get(h.value, 0) for h in Hold}
    assert value(samples, "breaker_open") == int(report["breakerOpen"])
    assert value(samples, "destinations_saturated") == report["destinationsSaturated"]
    assert sum(by(samples, "api_requests").values()) == report["apiCalls"]


def test_a_pass_pushes_and_writes_its_report(
    jf: Jobfallback, pushgateway: Receiver, tmp_path: Path
) -> None:
    textfile = tmp_path / "jobfallback.prom"
    started = time.time()
    result, pushed = sweep(jf, pushgateway, textfile=textfile)
    assert result.returncode == 0, result
    output = result.json()
    assert output["report"]["moved"] == 3  # the demo's three stuck runs

    assert_is_the_report(pushed, output)
    assert parse(textfile.read_text()) == pushed  # the textfile holds the same series
    assert {
        name: value(pushed, name)
        for name in (
            "enabled",
            "dry_run",
            "token_configured",
            "lock_held_by_other",
            "last_exit_code",
        )
    } == {
        "enabled": 1,
        "dry_run": 0,
        "token_configured": 1,
        "lock_held_by_other": 0,
        "last_exit_code": 0,
    }
    success = value(pushed, "last_success_timestamp_seconds")
    assert started <= success == value(pushed, "last_run_timestamp_seconds") <= time.time()
    assert by(pushed, "configs_skipped") == {("no_destination_fqn",): 0, ("source_conflict",): 0}
    # Every attempt answered 2xx, none retried; the sandbox saw each of them.
    requests = by(pushed, "api_requests")
    assert {status for _, status in requests} == {"2xx"}
    assert sum(requests.values()) == sum(jf.sandbox.request_counts.values())
    assert set(by(pushed, "api_retries").values()) == {0}


def test_runs_without_a_pass_keep_the_last_success_and_the_last_pass(
    jf: Jobfallback, pushgateway: Receiver, tmp_path: Path
) -> None:
    textfile = tmp_path / "jobfallback.prom"
    first, _ = sweep(jf, pushgateway, textfile=textfile)
    assert first.returncode == 0, first
    after_pass = parse(textfile.read_text())

    disabled, pushed = sweep(
        jf, pushgateway, textfile=textfile, env={"JOB_FALLBACK_ENABLED": "false"}
    )
    assert disabled.returncode == 0, disabled
    assert value(pushed, "enabled") == 0
    assert "jobfallback_last_success_timestamp_seconds" not in pushed
    assert not set(pushed) & {f"jobfallback_{name}" for name in PASS_SERIES}

    with sweep_lock(jf.database_url) as held:
        assert held
        locked_out, _ = sweep(jf, pushgateway, textfile=textfile)
    assert locked_out.returncode == 0, locked_out

    # The textfile, like the Pushgateway, keeps what the later runs left out.
    now = parse(textfile.read_text())
    assert value(now, "lock_held_by_other") == 1
    assert value(now, "enabled") == 1
    assert value(now, "last_run_timestamp_seconds") > value(
        after_pass, "last_run_timestamp_seconds"
    )
    unchanged = {
        name: series
        for name, series in after_pass.items()
        if name.removeprefix("jobfallback_")
        not in ("last_run_timestamp_seconds", "lock_held_by_other")
    }
    assert {name: now[name] for name in unchanged} == unchanged


@pytest.mark.parametrize(
    ("env", "code", "token", "ran"),
    [
        ({"TF_SERVICE_API_TOKEN": None}, 0, 0, False),
        ({"DATABASE_URL": NO_DATABASE}, 3, 1, False),
        ({"TF_SERVICE_API_TOKEN": "wrong-token-123456"}, 3, 1, True),
    ],
    ids=["no-token", "db-unreachable", "token-refused"],
)
def test_a_sweep_that_could_not_do_its_work_is_no_success(
    jf: Jobfallback, pushgateway: Receiver, env: EnvOverrides, code: int, token: int, ran: bool
) -> None:
    result, pushed = sweep(jf, pushgateway, env=env)
    assert result.returncode == code, result
    assert (value(pushed, "last_exit_code"), value(pushed, "token_configured")) == (code, token)
    assert "jobfallback_last_success_timestamp_seconds" not in pushed
    assert ("jobfallback_sources" in pushed) == ran
    if ran:  # the token refused: every source failed on a 401
        assert value(pushed, "sources_failed") == value(pushed, "sources") > 0
        assert {status for _, status in by(pushed, "api_requests")} == {"4xx"}


def test_failed_moves_and_retries_are_counted(jf: Jobfallback, pushgateway: Receiver) -> None:
    def first_listing_unavailable(ctx: HookContext) -> None:
        if ctx.call_index == 0:
            raise SandboxError(503, "try again", "UNAVAILABLE")

    jf.sandbox.add_hook("list_runs", first_listing_unavailable)
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    result, pushed = sweep(jf, pushgateway)
    assert result.returncode == 1, result
    output = result.json()
    assert output["report"]["failed"] == 3
    assert_is_the_report(pushed, output)
    assert value(pushed, "last_exit_code") == 1
    assert "jobfallback_last_success_timestamp_seconds" not in pushed

    requests, retries = by(pushed, "api_requests"), by(pushed, "api_retries")
    assert requests[("list_runs", "5xx")] == retries[("list_runs",)] == 1
    # A trigger is not retried after a 500 (it may have run): one attempt per move, no retry.
    assert requests[("trigger", "5xx")] == jf.sandbox.request_counts["trigger"] == 3
    assert retries[("trigger",)] == 0


def test_an_attempt_without_an_answer_has_status_class_none(
    jf: Jobfallback, pushgateway: Receiver
) -> None:
    jf.sandbox.set_faults(rate=1.0, kinds=["reset"], endpoints=["terminate"])
    result, pushed = sweep(jf, pushgateway)
    assert_is_the_report(pushed, result.json())
    requests = by(pushed, "api_requests")
    assert requests[("terminate", "none")] == jf.sandbox.request_counts["terminate"] > 0
    assert ("terminate", "2xx") not in requests


def test_without_metrics_settings_the_library_is_not_even_loaded() -> None:
    # prometheus_client takes ~0.1 s to import: a sweep that publishes nothing must not pay it.
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jobfallback", "sweep"],
        env={**os.environ, "JOB_FALLBACK_ENABLED": "false"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "sweeping is disabled" in run.stderr
    assert "prometheus_client" not in run.stderr


def test_runs_held_by_a_cap_are_counted_by_reason(jf: Jobfallback, pushgateway: Receiver) -> None:
    result, pushed = sweep(jf, pushgateway, "--max-moves", "1")
    assert result.returncode == 0, result
    assert_is_the_report(pushed, result.json())
    assert by(pushed, "runs_held")[(Hold.CAP_TOTAL.value,)] == 2  # the demo's 3 stuck, 1 moved
    assert value(pushed, "runs_deferred") == 2


def test_each_shard_pushes_to_a_group_of_its_own(jf: Jobfallback, pushgateway: Receiver) -> None:
    # A POST replaces the families it carries in its group: shards sharing one group would
    # replace each other's figures. prometheus_client writes a value holding "/" in base64.
    groups = {
        "0/2": f"/metrics/job/jobfallback/instance/{INSTANCE}/shard@base64/MC8y",
        "1/2": f"/metrics/job/jobfallback/instance/{INSTANCE}/shard@base64/MS8y",
    }
    for shard, group in groups.items():
        result, pushed = sweep(jf, pushgateway, "--shard", shard, group=group)
        assert result.returncode == 0, result
        assert_is_the_report(pushed, result.json())


def test_each_shard_writes_a_textfile_of_its_own(tmp_path: Path) -> None:
    # Two shards on one node: each its own file, each sample labelled with its shard, as
    # node-exporter serves every file of the directory side by side.
    path = tmp_path / "jobfallback.prom"
    for index, stuck in ((0, 5.0), (1, 7.0)):
        registry = CollectorRegistry()
        Gauge("jobfallback_runs_stuck", "Runs past their threshold.", registry=registry).set(stuck)
        write_textfile(str(path), registry, Shard(index, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "jobfallback.shard-0-of-2.prom",
        "jobfallback.shard-1-of-2.prom",
    ]
    for index, stuck in ((0, 5.0), (1, 7.0)):
        text = (tmp_path / f"jobfallback.shard-{index}-of-2.prom").read_text()
        assert f'jobfallback_runs_stuck{{shard="{index}/2"}} {stuck}' in text

"""`jobfallback sweep` exit codes and flags, through the real CLI in a subprocess."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from jobfallback.cli import app
from jobfallback.models import RunStatus
from jobfallback.settings import Settings
from jobfallback.shard import Shard
from jobfallback.store.lock import sweep_lock
from tests.e2e import harness
from tests.e2e.harness import NOT_STUCK, STUCK, EnvOverrides, Jobfallback, with_password

pytestmark = pytest.mark.e2e
bare_jf, jf = harness.bare_jf, harness.jf  # the fixtures, visible to this module


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NO_DATABASE = with_password(f"postgresql://jf@127.0.0.1:{closed_port()}/jf", "pw-unreachable-db")


@pytest.mark.parametrize(
    ("env", "args", "code", "message"),
    [
        ({"JOB_FALLBACK_ENABLED": "false"}, [], 0, "sweeping is disabled"),
        ({"TF_SERVICE_API_TOKEN": None}, [], 0, "TF_SERVICE_API_TOKEN is not set: sweep skipped"),
        ({"TFY_HOST": None}, [], 2, "TFY_HOST is not set"),
        ({"DATABASE_URL": NO_DATABASE}, [], 3, '"event": "command.failed"'),
        ({"TF_SERVICE_API_TOKEN": "wrong-token-123456"}, [], 3, '"event": "source.token_refused"'),
        ({}, ["--source", "no-slash"], 2, "expected CLUSTER/WORKSPACE"),
    ],
    ids=["disabled", "no-token", "no-host", "db-unreachable", "bad-token", "bad-source"],
)
def test_a_sweep_that_cannot_or_must_not_move_writes_nothing(
    jf: Jobfallback, env: EnvOverrides, args: list[str], code: int, message: str
) -> None:
    result = jf.sweep(*args, env=env)
    assert result.returncode == code, result
    assert message in result.stderr, result
    assert jf.writes() == {"put_app": 0, "trigger": 0, "terminate": 0}
    assert jf.journal() == {}
    assert "wrong-token-123456" not in result.stderr + result.stdout


def test_source_and_max_moves_limit_the_pass(jf: Jobfallback) -> None:
    result = jf.sweep("--source", "gpu-east/ws-east-ml", "--max-moves", "1")
    assert result.returncode == 0, result
    output = result.json()
    # ws-east-ml holds train (185 min) and eval (150 min): the oldest moves, the other waits.
    assert [m["sourceRunId"] for m in output["moves"]] == ["run-train-1"]
    assert [m["sourceRunId"] for m in output["deferred"]] == ["run-eval-1"]
    report = output["report"]
    assert (report["sourcesTotal"], report["moved"], report["deferred"]) == (1, 1, 1)
    jf.assert_moved_once(["run-train-1"])
    for run_id in ("run-eval-1", "run-embed-1"):  # deferred; another source
        assert jf.status(run_id) == RunStatus.CREATED
        assert jf.copies(run_id) == []
    assert set(jf.journal()) == {"run-train-1"}


def test_a_failed_move_exits_1_and_the_next_sweep_completes_it(jf: Jobfallback) -> None:
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    failed = jf.sweep()
    assert failed.returncode == 1, failed
    assert failed.json()["report"]["failed"] == 3
    journal = jf.journal()
    for run_id in STUCK:
        assert journal[run_id].state == "failed"
        assert "500" in str(journal[run_id].error)
        assert journal[run_id].destination_application_id is not None  # the PUT went through
        assert journal[run_id].trigger_sent_at is not None  # a 500 may have had its effect
        assert jf.status(run_id) == RunStatus.CREATED  # never terminated without a copy

    jf.sandbox.set_faults(rate=0.0, kinds=[])
    backing_off = jf.sweep()
    assert backing_off.returncode == 0, backing_off
    assert backing_off.json()["report"]["deferred"] == 3  # not yet due: no call, no copy
    assert jf.writes()["trigger"] == 3

    for run_id in STUCK:  # a person says: try now
        retried = jf.run("moves", "retry", run_id)
        assert retried.returncode == 0, retried
    # The version's listing shows no run and the settle window is over: trigger again, once.
    resumed = jf.sweep(env={"JOB_FALLBACK_SETTLE_SECONDS": "0"})
    assert resumed.returncode == 0, resumed
    jf.assert_moved_once()
    for run_id in NOT_STUCK:
        assert jf.status(run_id) != RunStatus.TERMINATION_REQUESTED


def test_a_trigger_whose_answer_is_unknown_waits_out_the_settle_window(jf: Jobfallback) -> None:
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    assert jf.sweep().returncode == 1
    jf.sandbox.set_faults(rate=0.0, kinds=[])
    for run_id in STUCK:
        assert jf.run("moves", "retry", run_id).returncode == 0
    waiting = jf.sweep()  # the default 10-minute window has not passed
    assert waiting.returncode == 0, waiting
    assert waiting.json()["report"]["waiting"] == 3
    assert jf.writes()["trigger"] == 3  # no second trigger while it cannot prove absence
    assert {r.state for r in jf.journal().values()} == {"waiting"}


@pytest.mark.parametrize(
    ("args", "flag", "allowed"),
    [
        (["--shard", "4/4"], "--shard", "INDEX 0 to COUNT-1"),
        (["--shard", "first"], "--shard", "expected INDEX/COUNT"),
        (["--log-format", "xml"], "--log-format", "'xml' is not one of auto, json, text"),
        (["--output", "xml"], "--output", "'xml' is not one of text, json"),
        (
            ["--breaker-failure-ratio", "0"],
            "--breaker-failure-ratio",
            "0 is not in the range 0<x<=1",
        ),
        (["--breaker-failure-ratio", "1.5"], "--breaker-failure-ratio", "0<x<=1"),
        (["--max-hops", "11"], "--max-hops", "1<=x<=10"),
        (["--max-moves-per-source", "-1"], "--max-moves-per-source", "-1 is not in the range x>=0"),
        (["--cooldown-minutes", "-1"], "--cooldown-minutes", "0<=x<=525600"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it(
    bare_jf: Jobfallback, args: list[str], flag: str, allowed: str
) -> None:
    result = bare_jf.run("sweep", "--log-format", "text", *args)  # a later --log-format wins
    assert result.returncode == 2, result
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert flag in line
    assert allowed in line
    assert "Value error" not in result.stderr  # pydantic's wording, not ours


def test_a_shard_count_without_an_index_stops_the_sweep(bare_jf: Jobfallback) -> None:
    result = bare_jf.run("sweep", "--log-format", "text", env={"JOB_FALLBACK_SHARD_COUNT": "4"})
    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert "JOB_FALLBACK_SHARD_COUNT" in line
    assert "JOB_COMPLETION_INDEX" in line


def test_help_shows_each_guard_rails_default_from_the_settings() -> None:
    result = CliRunner().invoke(app, ["sweep", "--help"], env={"COLUMNS": "400"})
    text = " ".join(result.output.split())
    for flag, field in [
        ("--max-moves", "job_fallback_max_moves"),
        ("--max-moves-per-destination", "job_fallback_max_moves_per_destination"),
        ("--max-moves-per-source", "job_fallback_max_moves_per_source"),
        ("--cooldown-minutes", "job_fallback_cooldown_minutes"),
        ("--max-hops", "job_fallback_max_hops"),
        ("--breaker-failure-ratio", "job_fallback_breaker_failure_ratio"),
        ("--breaker-min-moves", "job_fallback_breaker_min_moves"),
        ("--breaker-failed-passes", "job_fallback_breaker_failed_passes"),
        ("--breaker-quiet-minutes", "job_fallback_breaker_quiet_minutes"),
    ]:
        assert flag in text
        default = Settings.model_fields[field].default
        assert f"(env {field.upper()}; default {default:g})" in text, flag
    assert "[auto|json|text]" in text


def test_shards_sweep_side_by_side_and_together_move_what_one_sweep_moves(
    jf: Jobfallback,
) -> None:
    # The demo's sources: ws-east-ml (train, eval) is in shard 0 of 2, ws-east-research
    # (embed) in shard 1. Shard 0's lock is held elsewhere: shard 1 still sweeps.
    with sweep_lock(jf.database_url, Shard(0, 2)) as other:
        assert other
        held = jf.sweep("--shard", "0/2")
        one = jf.sweep(env={"JOB_FALLBACK_SHARD_COUNT": "2", "JOB_COMPLETION_INDEX": "1"})
    assert (held.returncode, one.returncode) == (0, 0), (held, one)
    assert '"reason": "lock_held"' in held.stderr
    assert [m["sourceRunId"] for m in one.json()["moves"]] == ["run-embed-1"]
    assert one.json()["report"]["shard"] == "1/2"
    started = next(line for line in one.stderr.splitlines() if '"sweep.started"' in line)
    assert json.loads(started)["shard"] == "1/2"

    zero = jf.sweep("--shard", "0/2")
    assert zero.returncode == 0, zero
    assert sorted(m["sourceRunId"] for m in zero.json()["moves"]) == ["run-eval-1", "run-train-1"]
    jf.assert_moved_once()  # the union: every stuck run, each once


def test_the_text_summary_says_the_shard_and_what_was_held(jf: Jobfallback) -> None:
    result = jf.run(
        "sweep", "--output", "text", "--log-format", "text", "--shard", "0/2", "--max-moves", "1"
    )
    assert result.returncode == 0, result
    assert "shard 0/2; held: cap_total 1" in result.stdout

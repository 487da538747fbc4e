"""With `--log-format json` (the chart's default) every line a sweep writes to stderr is one
JSON event, whatever its exit: a real sweep process against the sandbox on every exit path
(SIGTERM: tests/ops/test_clean_stop.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.cli.test_sweep_cli import NO_DATABASE
from tests.e2e.harness import EnvOverrides, Jobfallback, Result
from tests.test_logs import KEY, documented_events

pytestmark = pytest.mark.e2e

# What a sweep's last line (`sweep.finished`) says at each exit code.
LEVELS = {0: "info", 1: "warning", 2: "error", 3: "error", 143: "warning"}
DELIVERIES = re.compile(r"(metrics|webhook)\.")


def json_lines(result: Result) -> list[dict[str, Any]]:
    """Every stderr line, each one JSON object with the keys every event has."""
    documented = documented_events()
    events = []
    for number, line in enumerate(result.stderr.splitlines(), start=1):
        try:
            payload = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"stderr line {number} is not JSON: {line!r}\n{result}")
        assert isinstance(payload, dict), line
        assert list(payload)[:5] == ["ts", "level", "event", "logger", "msg"], line
        assert KEY.fullmatch(payload["event"]), line
        assert payload["event"] in documented, f"{payload['event']} is not in the README"
        events.append(payload)
    return events


def assert_ends_with_its_summary(events: list[dict[str, Any]], code: int) -> None:
    """A sweep that started ends with `sweep.finished` (then only the delivery lines), at the
    level its exit code calls for."""
    names = [e["event"] for e in events]
    assert names[0] == "sweep.started", names
    assert names.count("sweep.finished") == 1, names
    last = [e for e in events if not DELIVERIES.match(e["event"])][-1]
    assert last["event"] == "sweep.finished", names
    assert (last["exit_code"], last["level"]) == (code, LEVELS[code]), last


@pytest.mark.parametrize(
    ("args", "env", "code", "expected"),
    [
        ([], {}, 0, "move.done"),
        ([], {"JOB_FALLBACK_ENABLED": "false"}, 0, "sweep.skipped"),
        (["--dry-run"], {}, 0, "dry_run.move"),
        ([], {"TF_SERVICE_API_TOKEN": None}, 0, "sweep.skipped"),
        ([], {"TFY_HOST": None}, 2, "command.failed"),
        ([], {"DATABASE_URL": NO_DATABASE}, 3, "command.failed"),
        ([], {"TF_SERVICE_API_TOKEN": "wrong-token-123456"}, 3, "source.token_refused"),
    ],
    ids=["moved", "disabled", "dry-run", "no-token", "no-host", "db-unreachable", "bad-token"],
)
def test_every_stderr_line_is_json_on_every_exit_path(
    jf: Jobfallback, args: list[str], env: EnvOverrides, code: int, expected: str
) -> None:
    result = jf.sweep(*args, env=env)
    assert result.returncode == code, result
    events = json_lines(result)
    assert expected in [e["event"] for e in events], result
    assert_ends_with_its_summary(events, code)
    failed = [e for e in events if e["event"] == "command.failed"]
    for line in failed:
        assert (line["level"], line["exit_code"]) == ("error", code)
        assert not line["error"].startswith("error:")


def test_failed_moves_exit_1_with_warnings_and_the_summary_at_warning(jf: Jobfallback) -> None:
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    result = jf.sweep()
    assert result.returncode == 1, result
    events = json_lines(result)
    assert_ends_with_its_summary(events, 1)
    failed = [e for e in events if e["event"] == "move.failed"]
    assert len(failed) == 3, events
    assert {e["level"] for e in failed} == {"warning"}
    assert all(e["msg"] == "move ended" and "500" in e["detail"] for e in failed), failed
    (summary,) = [e for e in events if e["event"] == "sweep.finished"]
    assert (summary["failed"], summary["moved"]) == (3, 0)


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--threshold-minutes", "0"], {}, "--threshold-minutes"),
        (["--source", "no-slash"], {}, "expected CLUSTER/WORKSPACE"),
        (["--no-such-flag"], {}, "--no-such-flag"),
        ([], {"JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": "abc"}, "JOB_FALLBACK_STUCK_THRESHOLD"),
    ],
    ids=["out-of-range", "bad-source", "unknown-flag", "bad-setting"],
)
def test_bad_usage_or_settings_is_one_json_event_and_exit_2(
    jf: Jobfallback, args: list[str], env: EnvOverrides, says: str
) -> None:
    result = jf.run("sweep", "--log-format", "json", *args, env=env)
    assert result.returncode == 2, result
    (line,) = json_lines(result)  # nothing started: no summary, no metrics
    assert (line["event"], line["level"], line["exit_code"]) == ("command.failed", "error", 2)
    assert says in line["error"], line
    assert result.stdout == ""


def test_off_a_terminal_the_table_stays_off_stdout_and_auto_logs_json(jf: Jobfallback) -> None:
    result = jf.run("sweep")  # no --output, no --log-format: stdout and stderr are pipes
    assert result.returncode == 0, result
    assert result.stdout == ""
    events = json_lines(result)
    assert_ends_with_its_summary(events, 0)
    (summary,) = [e for e in events if e["event"] == "sweep.finished"]
    assert summary["moved"] == 3
    started = events[0]
    assert started["job_fallback_enabled"] is True
    assert started["tf_service_api_token"] == "set"
    assert all(key == key.lower() for key in started), started


def test_text_logs_keep_the_error_line_for_people(jf: Jobfallback) -> None:
    result = jf.run("sweep", "--log-format", "text", env={"TFY_HOST": None})
    assert result.returncode == 2, result
    assert "error: TFY_HOST is not set" in result.stderr
    usage = jf.run("sweep", "--log-format", "text", "--threshold-minutes", "0")
    assert usage.returncode == 2, usage
    assert "Invalid value" in usage.stderr
    assert not usage.stderr.lstrip().startswith("{")


def test_an_unexpected_error_is_one_json_event_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug: no bare traceback on stderr, but `sweep.crashed` (its traceback in `exc`), then
    the summary; exit 1, Python's own exit code for an unhandled error."""
    from typer.testing import CliRunner

    from jobfallback.cli import app
    from jobfallback.cli import sweep as sweep_cli

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(sweep_cli, "_execute", broken)
    monkeypatch.setenv("JOB_FALLBACK_ENABLED", "true")
    monkeypatch.setenv("TF_SERVICE_API_TOKEN", "token-of-the-crash-test")
    monkeypatch.setenv("TFY_HOST", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["sweep", "--log-format", "json"])
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    names = [e["event"] for e in lines]
    assert names == ["sweep.started", "sweep.crashed", "sweep.finished"], result.stderr
    crashed = lines[1]
    assert crashed["level"] == "critical"
    assert "RuntimeError: a bug" in crashed["exc"]
    assert (lines[2]["exit_code"], lines[2]["level"]) == (1, "warning")
    assert result.stdout == ""

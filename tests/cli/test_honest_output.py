"""Issue 15, "Honest output": what the CLI says is what happened, through the real CLI against
the sandbox (message and exit code for each case)."""

from __future__ import annotations

import re

import pytest

from tests.cli.test_sweep_cli import closed_port
from tests.e2e import harness
from tests.e2e.harness import Jobfallback

pytestmark = pytest.mark.e2e
bare_jf, jf = harness.bare_jf, harness.jf  # the fixtures, visible to this module

NOTHING_STUCK = "Nothing stuck: no run to move."


def text_sweep(
    jf: Jobfallback, *args: str, env: harness.EnvOverrides | None = None
) -> harness.Result:
    return jf.run("sweep", "--output", "text", "--log-format", "json", *args, env=env)


def test_nothing_stuck_only_when_every_source_was_scanned(jf: Jobfallback) -> None:
    result = text_sweep(
        jf, "--dry-run", "--source", "gpu-east/ws-east-ml", "--threshold-minutes", "100000"
    )
    assert result.returncode == 0, result
    assert NOTHING_STUCK in result.stdout, result


def test_a_refused_token_says_every_source_failed(jf: Jobfallback) -> None:
    result = text_sweep(jf, env={"TF_SERVICE_API_TOKEN": "wrong-token-123456"})
    assert result.returncode == 3, result
    assert "No run checked: 2 of 2 sources failed: token refused" in result.stdout, result
    assert NOTHING_STUCK not in result.stdout


def test_an_unreachable_api_says_every_source_failed(jf: Jobfallback) -> None:
    result = text_sweep(jf, env={"TFY_HOST": f"http://127.0.0.1:{closed_port()}"})
    assert result.returncode == 3, result
    assert "No run checked: 2 of 2 sources failed: " in result.stdout, result
    assert NOTHING_STUCK not in result.stdout


def test_no_configs_says_how_to_add_one(bare_jf: Jobfallback) -> None:
    result = text_sweep(bare_jf)
    assert result.returncode == 0, result
    assert "No run checked: no configs enabled; add one with `jobfallback configs add" in (
        result.stdout
    ), result
    assert NOTHING_STUCK not in result.stdout


def test_every_config_skipped_says_so(bare_jf: Jobfallback) -> None:
    bare_jf.insert_configs_unchecked(
        [
            {
                "sourceClusterId": "gpu-east",
                "sourceWorkspaceId": "ws-east-ml",
                "destinationClusterId": "gpu-west",
                "destinationWorkspaceId": "ws-west-fallback",
            }
        ]
    )
    result = text_sweep(bare_jf)
    assert result.returncode == 1, result
    assert "No run checked: every config skipped (1 of 1;" in result.stdout, result
    assert NOTHING_STUCK not in result.stdout


def test_a_source_matching_no_config_says_so(jf: Jobfallback) -> None:
    result = text_sweep(jf, "--source", "gpu-east/ws-nowhere")
    assert result.returncode == 0, result
    assert "No run checked: no usable config has the source gpu-east/ws-nowhere" in (
        result.stdout
    ), result
    assert NOTHING_STUCK not in result.stdout


BAD_THRESHOLD = {"JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": "abc"}


@pytest.mark.parametrize(
    "command", [("history",), ("configs", "list"), ("db", "status"), ("moves", "list")]
)
def test_a_bad_sweep_only_setting_blocks_only_the_sweep(
    jf: Jobfallback, command: tuple[str, ...]
) -> None:
    result = jf.run(*command, env=BAD_THRESHOLD)
    assert result.returncode == 0, result
    assert "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES" not in result.stdout + result.stderr


def test_a_bad_sweep_only_setting_stops_the_sweep(jf: Jobfallback) -> None:
    result = jf.run("sweep", "--dry-run", env=BAD_THRESHOLD)
    assert result.returncode == 2, result
    assert "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES is invalid" in result.stderr, result


def test_doctor_checks_the_api_and_the_database_after_a_bad_setting(jf: Jobfallback) -> None:
    result = jf.run("doctor", env=BAD_THRESHOLD)
    assert result.returncode == 1, result
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "FAIL settings",
        "ok   token",
        "ok   api",
        "ok   database",
    ], result
    assert "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES is invalid" in result.stdout


def test_doctor_reports_every_failed_check(jf: Jobfallback) -> None:
    env = {**BAD_THRESHOLD, "TFY_HOST": f"http://127.0.0.1:{closed_port()}"}
    result = jf.run("doctor", env=env)
    assert result.returncode == 1, result
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "FAIL settings",
        "ok   token",
        "FAIL api",
        "ok   database",
    ], result


def test_the_why_column_names_the_config_plainly(jf: Jobfallback) -> None:
    result = text_sweep(jf, "--dry-run")
    assert result.returncode == 0, result
    assert "generic config 1 (the only one for this source)" in result.stdout, result
    assert " of 1" not in result.stdout


def test_a_failed_sweep_shows_why_each_move_failed(jf: Jobfallback) -> None:
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    failed = text_sweep(jf, "--source", "gpu-east/ws-east-ml")
    assert failed.returncode == 1, failed
    header, *rows = failed.stdout.splitlines()[:3]
    assert header.split()[-2:] == ["OUTCOME", "DETAIL"], failed
    assert all("failed" in row and "500 Internal Server Error" in row for row in rows), failed

    # A move of an earlier pass, resumed (another source this time), fails again: its row says why.
    assert jf.run("moves", "retry", "run-train-1").returncode == 0
    resumed = text_sweep(
        jf, "--source", "gpu-east/ws-east-research", env={"JOB_FALLBACK_SETTLE_SECONDS": "0"}
    )
    assert resumed.returncode == 1, resumed
    section = resumed.stdout.split("resumed 1 unfinished move(s) of earlier passes:")[1]
    header, row = section.strip().splitlines()[:2]
    assert header.split() == ["SOURCE", "RUN", "JOB", "DESTINATION", "WAS", "OUTCOME", "DETAIL"]
    assert row.startswith("train-llm-0412"), resumed
    assert "failed" in row, resumed
    assert "500 Internal Server Error" in row, resumed


def test_history_of_a_state_without_moves_counts_the_others(jf: Jobfallback) -> None:
    empty = jf.run("history", "--state", "failed")
    assert empty.returncode == 0, empty
    assert "No moves recorded yet." in empty.stdout, empty
    assert jf.sweep().returncode == 0
    result = jf.run("history", "--state", "failed")
    assert result.returncode == 0, result
    assert "No moves in state failed (3 moves in other states)." in result.stdout, result


UTC_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def test_history_db_status_and_moves_print_times_in_one_format(jf: Jobfallback) -> None:
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    assert jf.sweep().returncode == 1
    for command in (("history",), ("db", "status"), ("moves", "list")):
        result = jf.run(*command)
        assert result.returncode == 0, result
        rows = result.stdout.splitlines()[1:]
        assert rows, result
        assert all(re.search(UTC_TIME, row) for row in rows), result
        assert not re.search(r"\d\d:\d\d:\d\d\.\d|\+00:00", result.stdout), result


def config(cluster: str, workspace: str) -> dict[str, str]:
    return {
        "sourceClusterId": cluster,
        "sourceWorkspaceId": workspace,
        "destinationClusterId": "gpu-west",
        "destinationWorkspaceId": "ws-west-fallback",
        "destinationWorkspaceFqn": "gpu-west:fallback",
    }


def test_a_missing_source_workspace_or_a_wrong_cluster_is_noticed(bare_jf: Jobfallback) -> None:
    good, gone, elsewhere = bare_jf.load_configs(
        [
            config("gpu-east", "ws-east-ml"),
            config("gpu-east", "ws-gone"),
            config("gpu-west", "ws-east-research"),  # it is in gpu-east
        ]
    )
    before = dict(bare_jf.sandbox.request_counts)
    result = bare_jf.sweep("--dry-run")
    assert result.returncode == 1, result
    report = result.json()["report"]
    assert (report["sourcesTotal"], report["sourcesScanned"], report["sourcesMissing"]) == (3, 1, 2)
    assert report["sourcesFailed"] == 0
    missing = {
        e["config_id"]: e["detail"]
        for e in bare_jf.log_events(result)
        if e["event"] == "source.missing"
    }
    assert missing == {
        gone.id: "source workspace ws-gone not found",
        elsewhere.id: "source workspace ws-east-research is in cluster gpu-east, not gpu-west",
    }
    # One workspace listing for the whole pass; the missing sources are not listed: the apps
    # listings are the good source's and its destination's (is it saturated?).
    calls = bare_jf.sandbox.request_counts
    assert calls["list_workspaces"] - before.get("list_workspaces", 0) == 1
    assert calls["list_apps"] - before.get("list_apps", 0) == 2
    assert good.id not in missing

    text = bare_jf.run("sweep", "--dry-run", "--output", "text", "--log-format", "json")
    assert text.returncode == 1, text
    assert "(2 missing)" in text.stdout, text


def test_every_source_missing_says_so(bare_jf: Jobfallback) -> None:
    bare_jf.load_configs([config("gpu-east", "ws-gone")])
    result = text_sweep(bare_jf, "--dry-run")
    assert result.returncode == 1, result
    assert "No run checked: 1 of 1 source workspaces not found in their cluster" in (
        result.stdout
    ), result
    assert NOTHING_STUCK not in result.stdout

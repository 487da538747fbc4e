"""Answers that must not stall, exhaust or crash a sweep: the real CLI against a hostile server.

Figures measured with `jobfallback doctor` on the shared 2-vCPU build machine (before: the code
without these limits):
- a 400 MB body that is not JSON: before, peak RSS 2.5 GB and 28 s (read whole, five times);
  now 60-70 MB and 2-4 s (the body is cut at 8 MiB, or not read when its length says so);
- a 40-byte answer dripped over 20 s, timeout 1 s: before, held 20.7 s and taken as good; now
  7.6 s for five attempts of 1 s and their backoff.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from jobfallback.truefoundry.client import MAX_BODY_BYTES
from jobfallback_sandbox import SandboxServer, SandboxState
from jobfallback_sandbox.server import HookContext
from jobfallback_sandbox.state import SandboxError
from tests.e2e.harness import STUCK, Jobfallback, secret_url
from tests.security.cli import Run, clean_env, run_cli
from tests.security.servers import dripping, fixed, hostile_server, huge_body

TOKEN = "hostile-test-token-5d2e9a"
HUGE = 400 * 1024 * 1024
# The API's probe by `doctor`: one read, retried like every read.
PROBE = ("doctor",)


def doctor_against(url: str, database_url: str, **env: str) -> Run:
    return run_cli(
        *PROBE,
        env=clean_env(TFY_HOST=url, TF_SERVICE_API_TOKEN=TOKEN, DATABASE_URL=database_url, **env),
    )


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_huge_body_is_cut_at_the_cap_not_read_whole(declared: bool, database_url: str) -> None:
    with hostile_server(huge_body(HUGE, declared=declared)) as url:
        run = doctor_against(url, database_url, JOB_FALLBACK_HTTP_TIMEOUT_SECONDS="20")
    assert run.returncode == 1, run
    assert f"body over {MAX_BODY_BYTES} bytes" in run.stdout, run
    # Five attempts of at most 8 MiB each, on top of the interpreter and its imports (~70 MB).
    assert run.peak_rss_mb < 200, run.peak_rss_mb


def test_a_dripping_answer_is_cut_at_the_attempt_deadline(database_url: str) -> None:
    body = json.dumps({"data": [], "pagination": {"total": 0}}).encode()
    with hostile_server(dripping(body, interval=20 / len(body))) as url:
        run = doctor_against(url, database_url, JOB_FALLBACK_HTTP_TIMEOUT_SECONDS="1")
    assert run.returncode == 1, run
    assert "no complete answer within 1s" in run.stdout, run
    # Five attempts of 1 s and their backoff; before: 20 s for the first attempt alone.
    assert run.seconds < 15, run


def test_deeply_nested_json_from_the_api_is_a_bad_answer_not_a_crash(database_url: str) -> None:
    with hostile_server(fixed("200 OK", b"[" * 100_000 + b"]" * 100_000)) as url:
        run = doctor_against(url, database_url)
    assert run.returncode == 1, run
    assert "body is not JSON" in run.stdout, run


def test_the_pass_ends_at_its_deadline_and_reports(
    database_url: str, sandbox_state: SandboxState
) -> None:
    with SandboxServer(sandbox_state, latency_ms=30_000) as slow:
        jf = Jobfallback(slow, secret_url(database_url))
        jf.load_configs(sandbox_state.configs)
        result = jf.sweep("--dry-run", env={"JOB_FALLBACK_PASS_DEADLINE_SECONDS": "2"})
    report = result.json()["report"]
    assert report["sourcesFailed"] == report["sourcesTotal"] > 0, result
    assert "pass deadline" in result.stderr, result
    assert result.returncode == 3  # nothing could be listed in time


def test_moves_under_way_at_the_deadline_fail_and_the_next_pass_finishes_them(
    jf: Jobfallback,
) -> None:
    hold_seconds = 8.0
    slow = threading.Event()
    slow.set()

    def hold(_ctx: HookContext) -> None:
        if slow.is_set():
            time.sleep(hold_seconds)

    jf.sandbox.add_hook("put_app", hold)
    before = jf.snapshot()
    started = time.monotonic()
    first = jf.sweep(env={"JOB_FALLBACK_PASS_DEADLINE_SECONDS": "2"})
    took = time.monotonic() - started
    assert took < hold_seconds - 1, first  # the process starts, then the 2 s deadline
    assert first.returncode == 1, first
    details = {m["sourceRunId"]: m["detail"] for m in first.json()["moves"]}
    assert set(details) == set(STUCK)
    assert all("pass deadline" in detail for detail in details.values()), details

    slow.clear()
    time.sleep(hold_seconds - took + 0.5)  # the held PUTs end (their copies may now exist)
    second = jf.sweep(env={"JOB_FALLBACK_RETRY_BACKOFF_SECONDS": "0"})
    assert second.returncode == 0, second
    jf.assert_safe(before, moved=STUCK)


def _hostile_texts(sandbox: SandboxServer) -> None:
    """Every PUT of an application fails with an error text holding a NUL and escapes."""

    def refuse(_ctx: HookContext) -> None:
        raise SandboxError(
            400, "manifest\x00refused \x1b]0;owned\x07\x1b[2J by policy", "BAD_REQUEST"
        )

    sandbox.add_hook("put_app", refuse)


def test_a_nul_in_an_api_error_fails_the_move_not_every_sweep(jf: Jobfallback) -> None:
    _hostile_texts(jf.sandbox)
    for _ in range(2):  # the next pass is not stopped by the row the first one wrote
        result = jf.sweep(env={"JOB_FALLBACK_RETRY_BACKOFF_SECONDS": "0"})
        assert result.returncode == 1, result  # moves failed; before: exit 3, nothing recorded
        outcomes = {m["sourceRunId"]: m["outcome"] for m in result.json()["moves"]}
        assert outcomes == dict.fromkeys(STUCK, "failed"), result
    errors = [record.error or "" for record in jf.journal().values()]
    assert len(errors) == len(STUCK)
    assert all("manifest\\x00refused \\x1b]0;owned\\x07" in e for e in errors), errors
    history = jf.run("history")
    assert not any(char in history.stdout for char in "\x1b\x00\x07"), history
    assert "\\x1b]0;owned" in history.stdout, history


def test_escape_sequences_in_api_names_reach_no_terminal_raw(jf: Jobfallback) -> None:
    state = jf.sandbox.state
    source = state.configs[0]["sourceWorkspaceId"]
    app = state.add_application(workspace_id=source, name="train\x1b]0;pwned\x07")
    three_hours = 3 * 60 * 60 * 1000
    state.add_run(
        application_id=app["id"],
        name="run\x1b[2J\x1b[31m\u202eevil",
        created_at=state.now_ms - three_hours,
    )
    result = jf.run("sweep", "--dry-run", "--output", "text", "--log-format", "text")
    assert result.returncode == 0, result
    for text in (result.stdout, result.stderr):
        assert not any(char in text for char in "\x1b\x07\u202e"), result
    assert "run\\x1b[2J\\x1b[31m\\u202eevil" in result.stdout, result


def test_a_deeply_nested_config_file_is_one_line_and_exit_2(
    tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 20_000 + "]" * 20_000)
    run = run_cli("configs", "import", str(path), env=clean_env(DATABASE_URL=database_url))
    assert run.returncode == 2, run
    assert run.stderr.strip().count("\n") == 0, run
    assert "nested too deeply" in run.stderr, run


def test_a_config_file_over_the_cap_is_refused_unread(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (5 * 1024 * 1024))
    run = run_cli("configs", "import", str(path), env=clean_env(DATABASE_URL=database_url))
    assert (run.returncode, run.stderr.count("\n")) == (2, 1), run
    assert "over 4 MiB" in run.stderr, run


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("sourceWorkspaceId", "..", "must not be . or .."),
        ("destinationWorkspaceId", ".", "must not be . or .."),
        ("name", "team\u202eexe.yaml", "control or format characters"),
        ("name", "team\x1b[2J", "control or format characters"),
    ],
)
def test_config_ids_and_names_that_would_misroute_or_drive_a_terminal_are_refused(
    tmp_path: Path, database_url: str, field: str, value: str, why: str
) -> None:
    config = {
        "name": "ok",
        "sourceClusterId": "c1",
        "sourceWorkspaceId": "ws-1",
        "destinationClusterId": "c2",
        "destinationWorkspaceId": "ws-2",
        field: value,
    }
    path = tmp_path / "configs.json"
    path.write_text(json.dumps([config]))
    run = run_cli("configs", "import", str(path), env=clean_env(DATABASE_URL=database_url))
    assert run.returncode == 2, run
    assert why in run.stderr, run
    assert not any(char in run.stderr for char in "\x1b\u202e"), run

"""`jobfallback sandbox serve` and `jobfallback sandbox configs`."""

from __future__ import annotations

import re
import signal

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from jobfallback.cli import app
from jobfallback.models import FallbackConfigSpec
from tests.fixtures.sandbox import serve_sandbox

runner = CliRunner()


@pytest.mark.e2e
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_url_and_token_then_stops_cleanly(stop_signal: signal.Signals) -> None:
    with serve_sandbox("--fleet", "3x2", "--latency-ms", "1", "--token", "t0k") as sandbox:
        assert sandbox.token == "t0k"
        assert sandbox.url.startswith("http://127.0.0.1:")
        response = httpx.get(
            f"{sandbox.url}/api/svc/v1/workspaces", headers={"Authorization": "Bearer t0k"}
        )
        assert response.json()["pagination"]["total"] == 4
        sandbox.process.send_signal(stop_signal)
        assert sandbox.process.wait(10) == 0
        assert sandbox.process.stdout is not None
        assert sandbox.process.stdout.read() == ""  # exactly one line


@pytest.mark.e2e
def test_serve_demo_with_faults_and_a_random_token() -> None:
    with serve_sandbox("--fault-rate", "1", "--fault-kinds", "503", "--seed", "1") as sandbox:
        assert len(sandbox.token) >= 16
        headers = {"Authorization": f"Bearer {sandbox.token}"}
        assert httpx.get(f"{sandbox.url}/api/svc/v1/apps", headers=headers).status_code == 503
        state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
        assert state["faultCounts"] == {"503": 1}
        assert len(state["workspaces"]) == 3
        assert sandbox.stop() == 0


@pytest.mark.e2e
def test_serve_can_lose_the_answer_of_an_applied_write() -> None:
    args = ("--fault-rate", "1", "--fault-kinds", "reset", "--fault-endpoints", "trigger")
    with serve_sandbox(*args, "--fault-after-effect") as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.token}"}
        body = {"applicationId": "app-nightly-report", "metadata": {"job_run_name_alias": "fb"}}
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{sandbox.url}/api/svc/v1/jobs/trigger", json=body, headers=headers)
        state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
        assert [r["name"] for r in state["runs"] if r["alias"] == "fb"] == ["fb"]


@pytest.mark.e2e
def test_serve_under_chosen_profiles() -> None:
    with serve_sandbox(
        "--fleet", "2x1", "--profile", "generated-names,fractional-times"
    ) as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.token}"}
        body = {"applicationId": "app-0001-001", "metadata": {"job_run_name_alias": "fb-cli"}}
        answer = httpx.post(f"{sandbox.url}/api/svc/v1/jobs/trigger", json=body, headers=headers)
        run = answer.json()["data"]
        assert re.fullmatch(r"job-0001-001-[0-9a-f]{6}", run["name"]), run["name"]
        assert not float(run["createdAt"]).is_integer()
        state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
        assert state["profiles"] == ["fractional-times", "generated-names"]
        assert sandbox.stop() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "alias-name,teapot"], "unknown server profiles ['teapot']"),
        (["--profile", "alias-name,generated-names"], "exclude each other"),
        (["--fault-rate", "0.5", "--fault-kinds", "500,teapot"], "unknown fault kinds"),
        (["--fleet", "ten"], "WORKSPACESxJOBS"),
        (["--fleet", "2x2", "--scenario", "demo"], "exclude each other"),
        (["--scenario", "missing.yaml"], "neither a built-in"),
    ],
)
def test_serve_refuses_bad_options_with_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["sandbox", "serve", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_configs_prints_the_demo_configs_as_yaml() -> None:
    result = runner.invoke(app, ["sandbox", "configs"])
    assert result.exit_code == 0, result.output
    specs = [FallbackConfigSpec.model_validate(c) for c in yaml.safe_load(result.stdout)]
    assert len(specs) == 3
    assert {s.destination_workspace_fqn for s in specs} == {"gpu-west:fallback"}
    assert [s.source_job_id for s in specs if s.source_job_id] == ["app-embed-corpus"]


def test_configs_for_a_fleet() -> None:
    result = runner.invoke(app, ["sandbox", "configs", "--fleet", "4x1"])
    assert result.exit_code == 0, result.output
    configs = yaml.safe_load(result.stdout)
    assert [c["sourceWorkspaceId"] for c in configs] == [f"ws-src-{i:04d}" for i in range(1, 5)]

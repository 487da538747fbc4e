"""The server itself: hooks, request counts, the /_sandbox endpoints, keep-alive, concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from jobfallback_sandbox import HookContext, SandboxError, SandboxServer, SandboxState
from tests.sandbox.conftest import api_client, raw_connection, raw_get


def terminate_params(state: SandboxState) -> dict[str, str]:
    app = state.application_by_name("ws-east-research", "embed-corpus")
    assert app is not None
    return {"deploymentId": app["activeDeploymentId"], "jobRunName": "embed-corpus-0007"}


def test_before_hook_can_race_the_request(sandbox: SandboxServer, api: httpx.Client) -> None:
    """The run starts on its own just before the terminate lands: the API says 417."""
    seen: list[HookContext] = []

    def start_the_run(ctx: HookContext) -> None:
        seen.append(ctx)
        ctx.state.set_run_status("run-embed-1", "RUNNING")
        ctx.state.set_run_status("run-embed-1", "FINISHED")

    sandbox.add_hook("terminate", start_the_run)
    params = terminate_params(sandbox.state)
    assert api.post("/jobs/terminate", params=params).status_code == 417
    assert api.post("/jobs/terminate", params=params).status_code == 417
    assert [c.call_index for c in seen] == [0, 1]
    ctx = seen[0]
    assert (ctx.endpoint, ctx.method, ctx.status) == ("terminate", "POST", None)
    assert ctx.path == "/api/svc/v1/jobs/terminate"
    assert ctx.query == params


def test_after_hook_sees_the_applied_effect(sandbox: SandboxServer, api: httpx.Client) -> None:
    observed: list[tuple[int | None, int, str | None]] = []

    def crash_point(ctx: HookContext) -> None:
        runs = ctx.state.runs(application_id="app-nightly-report")
        observed.append((ctx.status, len(runs), ctx.body["metadata"]["job_run_name_alias"]))

    sandbox.add_hook("trigger", crash_point, when="after")
    body = {"applicationId": "app-nightly-report", "metadata": {"job_run_name_alias": "fb-x"}}
    response = api.post("/jobs/trigger", json=body)
    assert response.status_code == 200
    assert observed == [(200, 2, "fb-x")]


def test_a_hook_can_answer_with_an_api_error(
    sandbox: SandboxServer, api: httpx.Client, sandbox_state: SandboxState
) -> None:
    def refuse(ctx: HookContext) -> None:
        raise SandboxError(417, "not now", "FAILED")

    def lose(ctx: HookContext) -> None:
        raise SandboxError(404, "lost after the fact", "NOT_FOUND")

    sandbox.add_hook("terminate", refuse)
    response = api.post("/jobs/terminate", params=terminate_params(sandbox_state))
    assert response.json() == {"statusCode": 417, "message": "not now", "code": "FAILED"}
    assert sandbox_state.run("run-embed-1")["status"] == "CREATED"  # nothing applied

    sandbox.add_hook("trigger", lose, when="after")
    response = api.post("/jobs/trigger", json={"applicationId": "app-nightly-report"})
    assert response.status_code == 404
    assert len(sandbox_state.runs(application_id="app-nightly-report")) == 2  # applied


def test_hooks_need_a_known_endpoint(sandbox: SandboxServer) -> None:
    with pytest.raises(ValueError, match="no endpoint 'trigger_job'"):
        sandbox.add_hook("trigger_job", lambda ctx: None)


def test_a_failing_hook_answers_500(sandbox: SandboxServer, api: httpx.Client) -> None:
    def broken(ctx: HookContext) -> None:
        raise RuntimeError("boom")

    sandbox.add_hook("list_workspaces", broken)
    response = api.get("/workspaces")
    assert response.status_code == 500
    assert response.json()["statusCode"] == 500


def test_request_counts_include_refused_and_faulted_requests(sandbox: SandboxServer) -> None:
    with api_client(sandbox) as api:
        api.get("/workspaces")
        api.get("/workspaces/ws-nope")
        api.get("/jobs/app-train-llm/runs")
        sandbox.set_faults(rate=1.0, kinds=["503"], endpoints=["get_app"])
        assert api.get("/apps/app-train-llm").status_code == 503
    httpx.get(f"{sandbox.url}/api/svc/v1/workspaces")  # no token
    assert sandbox.request_counts == {
        "list_workspaces": 2,
        "get_workspace": 1,
        "list_runs": 1,
        "get_app": 1,
    }


def test_sandbox_state_and_health_need_no_token(sandbox: SandboxServer, api: httpx.Client) -> None:
    api.get("/apps")
    sandbox.set_faults(rate=1.0, kinds=["500"])
    api.get("/apps")
    assert httpx.get(f"{sandbox.url}/_sandbox/health").json() == {"status": "ok"}
    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
    assert state["requestCounts"] == {"list_apps": 2}
    assert state["faultCounts"] == {"500": 1}
    assert len(state["runs"]) == 6
    assert {ws["id"] for ws in state["workspaces"]} == {
        "ws-east-ml",
        "ws-east-research",
        "ws-west-fallback",
    }
    assert state == {
        **sandbox.state.snapshot(),
        "requestCounts": {"list_apps": 2},
        "faultCounts": {"500": 1},
    }
    assert httpx.get(f"{sandbox.url}/_sandbox/nope").status_code == 404


def test_wrong_method_is_405(api: httpx.Client) -> None:
    response = api.delete("/apps")
    assert response.status_code == 405
    assert response.json()["statusCode"] == 405


def test_bad_json_body_is_400(api: httpx.Client) -> None:
    response = api.post(
        "/jobs/trigger", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_keep_alive_answers_several_requests_on_one_connection(sandbox: SandboxServer) -> None:
    request = raw_get(sandbox, "/workspaces/ws-east-ml")
    with raw_connection(sandbox) as conn, conn.makefile("rb") as reader:
        for _ in range(3):
            conn.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200")
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            body = reader.read(int(headers["content-length"]))
            assert b'"ws-east-ml"' in body


def test_many_concurrent_connections_with_latency(sandbox_state: SandboxState) -> None:
    with SandboxServer(sandbox_state, latency_ms=5) as server:

        def worker(_: int) -> list[int]:
            with api_client(server) as api:
                return [api.get("/apps", params={"limit": 2}).status_code for _ in range(20)]

        with ThreadPoolExecutor(48) as pool:
            results = [code for codes in pool.map(worker, range(48)) for code in codes]
    assert results == [200] * 48 * 20
    assert server.request_counts["list_apps"] == 48 * 20


def test_stop_ends_idle_keep_alive_connections(sandbox_state: SandboxState) -> None:
    server = SandboxServer(sandbox_state).start()
    with api_client(server) as api:
        assert api.get("/workspaces").status_code == 200
        server.stop()
        try:
            api.get("/workspaces")
        except httpx.TransportError:
            pass
        else:
            raise AssertionError("a stopped sandbox still answered")


def test_repr_hides_the_token(sandbox: SandboxServer) -> None:
    assert sandbox.token not in repr(sandbox)

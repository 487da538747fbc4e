"""Every answer of every endpoint, and every error, parses under the SDK's own response models,
under every server profile: a field the SDK requires that the sandbox drops fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pydantic
import pytest
import truefoundry_sdk as tfy

from jobfallback_sandbox import SandboxServer, SandboxState
from jobfallback_sandbox.api import ENDPOINTS
from tests.contract.conftest import CONTRACT_PROFILE_IDS, CONTRACT_PROFILE_SETS, vendor

pytestmark = pytest.mark.parametrize(
    "sandbox_profiles", CONTRACT_PROFILE_SETS, ids=CONTRACT_PROFILE_IDS
)

# The SDK's model of each endpoint's answer.
MODELS: dict[str, type[pydantic.BaseModel]] = {
    "list_workspaces": tfy.ListWorkspacesResponse,
    "get_workspace": tfy.GetWorkspaceResponse,
    "list_apps": tfy.ListApplicationsResponse,
    "get_app": tfy.GetApplicationResponse,
    "list_deployments": tfy.ListApplicationDeploymentsResponse,
    "get_deployment": tfy.GetApplicationDeploymentResponse,
    "put_app": tfy.GetApplicationDeploymentResponse,  # what applications.create_or_update reads
    "trigger": tfy.TriggerJobRunResponse,
    "terminate": tfy.TerminateJobResponse,
    "list_runs": tfy.ListJobRunResponse,
    "get_run": tfy.GetJobRunResponse,
}
RUN_SORTS = ["startTime", "duration", "deploymentVersion", "triggeredBy", "status"]


def job_manifest(state: SandboxState, labels: dict[str, str]) -> dict[str, Any]:
    app = state.get_app("app-train-llm")
    return {**app["deployment"]["manifest"], "workspace_fqn": "gpu-west:fallback", "labels": labels}


def answers(api: httpx.Client, state: SandboxState) -> Iterator[tuple[str, httpx.Response]]:
    """(endpoint, answer) for every endpoint, with every filter and every kind of object the
    demo has, after writes that leave new versions, triggered, terminated and ended runs."""
    state.set_run_status("run-report-1", "FAILED")
    for labels in ({"a": "1"}, {"a": "2"}):
        body = {"manifest": job_manifest(state, labels), "dryRun": False}
        yield "put_app", api.put("/apps", json=body)
    yield "put_app", api.put("/apps", json={"manifest": job_manifest(state, {}), "dryRun": True})
    moved = state.application_by_name("ws-west-fallback", "train-llm")
    assert moved is not None
    first_version = state.list_deployments(moved["id"], {"version": {1}}, 0, 1)[1][0]
    by_deployment = {"deploymentId": first_version["id"], "metadata": {"job_run_name_alias": "fb"}}
    triggered = api.post("/jobs/trigger", json=by_deployment)
    yield "trigger", triggered
    by_app = {"applicationId": "app-eval-suite", "input": {"command": "x", "params": {"k": "v"}}}
    yield "trigger", api.post("/jobs/trigger", json=by_app)
    terminate = {"deploymentId": first_version["id"], "jobRunName": triggered.json()["jobRunName"]}
    yield "terminate", api.post("/jobs/terminate", params=terminate)

    yield "list_workspaces", api.get("/workspaces")
    yield "list_workspaces", api.get("/workspaces", params={"limit": 1, "offset": 1})
    for ws in state.workspaces():
        yield "get_workspace", api.get(f"/workspaces/{ws['id']}")
    yield "list_apps", api.get("/apps")
    yield "list_apps", api.get("/apps", params={"applicationType": "job", "limit": 2, "offset": 2})
    for app in state.applications():
        yield "get_app", api.get(f"/apps/{app['id']}")
        yield "list_deployments", api.get(f"/apps/{app['id']}/deployments")
        yield "list_deployments", api.get(f"/apps/{app['id']}/deployments", params={"version": "1"})
        for deployment in state.list_deployments(app["id"], {}, 0, 100)[1]:
            path = f"/apps/{app['id']}/deployments/{deployment['id']}"
            yield "get_deployment", api.get(path)
        if app["type"] != "job":
            continue
        runs = f"/jobs/{app['id']}/runs"
        yield "list_runs", api.get(runs)
        yield "list_runs", api.get(runs, params={"status": "CREATED", "versionNumbers": "1.0"})
        yield "list_runs", api.get(runs, params=[("status", "CREATED"), ("status", "RUNNING")])
        yield "list_runs", api.get(runs, params={"searchPrefix": app["name"][:3]})
        yield "list_runs", api.get(runs, params={"limit": 1, "offset": 1})
        for sort_by in RUN_SORTS:
            yield "list_runs", api.get(runs, params={"sortBy": sort_by, "order": "asc"})
        for run in state.runs(application_id=app["id"]):
            yield "get_run", api.get(f"{runs}/{run['name']}")


def test_every_answer_parses_under_the_sdk_models(
    api: httpx.Client, sandbox_state: SandboxState
) -> None:
    seen: set[str] = set()
    for endpoint, response in answers(api, sandbox_state):
        assert response.status_code in (200, 201), (endpoint, response.text)
        body = response.json()
        vendor(MODELS[endpoint], body)
        for item in body["data"] if isinstance(body.get("data"), list) else [body.get("data")]:
            assert "alias" not in (item or {}), endpoint  # the vendor's JobRun has none
        seen.add(endpoint)
    assert seen == set(ENDPOINTS) == set(MODELS)


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status"),
    [
        ("GET", "/apps/app-nope", None, None, 404),
        ("GET", "/workspaces/ws-nope", None, None, 404),
        ("GET", "/jobs/app-train-llm/runs/nope", None, None, 404),
        ("GET", "/apps/app-train-llm/deployments/dep-nope", None, None, 404),
        ("GET", "/no/such/endpoint", None, None, 404),
        ("GET", "/jobs/app-train-llm/runs", {"sortBy": "createdAt"}, None, 400),
        ("GET", "/jobs/app-train-llm/runs", {"versionNumbers": "1.5"}, None, 400),
        ("GET", "/workspaces", {"limit": "0"}, None, 400),
        ("POST", "/jobs/trigger", None, {"input": {"command": "x"}}, 400),
        ("PUT", "/apps", None, {"manifest": {"type": "service", "name": "x"}}, 400),
        ("POST", "/jobs/terminate", {"deploymentId": "dep-nope", "jobRunName": "x"}, None, 404),
        ("DELETE", "/apps", None, None, 405),
    ],
)
def test_every_error_parses_as_the_sdk_http_error(
    api: httpx.Client,
    method: str,
    path: str,
    params: dict[str, str] | None,
    body: Any,
    status: int,
) -> None:
    response = api.request(method, path, params=params, json=body)
    assert response.status_code == status
    error = vendor(tfy.HttpError, response.json())
    assert (error.status_code, bool(error.message)) == (status, True)


def test_conflict_refusal_and_auth_errors_parse_too(
    sandbox: SandboxServer, api: httpx.Client, sandbox_state: SandboxState
) -> None:
    conflict = {**job_manifest(sandbox_state, {}), "name": "chat-api"}
    conflict["workspace_fqn"] = "gpu-east:ml-team"
    sandbox_state.set_run_status("run-eval-1", "FINISHED")
    deployment = sandbox_state.get_app("app-eval-suite")["activeDeploymentId"]
    refused = {"deploymentId": deployment, "jobRunName": "eval-suite-0098"}
    responses = {
        409: api.put("/apps", json={"manifest": conflict}),
        417: api.post("/jobs/terminate", params=refused),
        401: httpx.get(f"{sandbox.url}/api/svc/v1/apps"),
    }
    for status, response in responses.items():
        assert response.status_code == status
        assert vendor(tfy.HttpError, response.json()).status_code == status

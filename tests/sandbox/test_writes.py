"""PUT /apps, trigger and terminate: their effects on the state and their answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import truefoundry_sdk as tfy

from jobfallback_sandbox import SandboxState
from tests.contract.conftest import vendor


def job_manifest(
    name: str = "train-llm", workspace_fqn: str = "gpu-west:fallback"
) -> dict[str, Any]:
    return {
        "type": "job",
        "name": name,
        "image": {"type": "image", "image_uri": "ghcr.io/acme/x:1", "command": "python x.py"},
        "trigger": {"type": "manual"},
        "workspace_fqn": workspace_fqn,
    }


def put(api: httpx.Client, manifest: Any, **extra: Any) -> httpx.Response:
    body = {"manifest": manifest, "dryRun": False, "forceDeploy": False, "triggerOnDeploy": False}
    return api.put("/apps", json={**body, **extra})


def test_put_creates_then_adds_a_version(api: httpx.Client, sandbox_state: SandboxState) -> None:
    created = put(api, job_manifest())
    assert created.status_code == 201
    first = vendor(tfy.Deployment, created.json()["data"])
    assert first.version == 1
    assert created.json()["data"]["manifest"]["workspace_fqn"] == "gpu-west:fallback"
    app = sandbox_state.application_by_name("ws-west-fallback", "train-llm")
    assert app is not None
    assert app["id"] == first.application_id
    assert app["fqn"] == "gpu-west:fallback:train-llm"

    again = put(api, {**job_manifest(), "retries": 3})
    assert again.status_code == 200
    second = vendor(tfy.Deployment, again.json()["data"])
    assert (second.application_id, second.version) == (first.application_id, 2)
    served = api.get(f"/apps/{first.application_id}").json()["data"]
    assert served["activeDeploymentId"] == served["lastDeploymentId"] == second.id
    assert served["deployment"]["manifest"]["retries"] == 3
    assert (served["activeVersion"], served["lastVersion"]) == (2, 2)
    # The source job of the same name is a different application.
    assert app["id"] != "app-train-llm"


def test_put_stores_the_manifest_as_given_and_always_adds_a_version(api: httpx.Client) -> None:
    manifest = {**job_manifest(), "labels": {"jobfallback/source-run": "run-1"}, "retries": 1}
    ids = [put(api, manifest).json()["data"]["id"] for _ in range(3)]
    assert len(set(ids)) == 3
    app_id = put(api, manifest).json()["data"]["applicationId"]
    versions = api.get(f"/apps/{app_id}/deployments").json()["data"]
    assert [d["version"] for d in versions] == [4, 3, 2, 1]
    assert all(d["manifest"] == manifest for d in versions)


def test_put_dry_run_stores_nothing(api: httpx.Client, sandbox_state: SandboxState) -> None:
    response = put(api, job_manifest(), dryRun=True)
    assert response.status_code == 201
    preview = vendor(tfy.Deployment, response.json()["data"])
    assert (preview.id, preview.version, preview.application_id) == ("dry-run", 1, None)
    assert sandbox_state.application_by_name("ws-west-fallback", "train-llm") is None


@pytest.mark.parametrize(
    ("manifest", "status", "field"),
    [
        ("not an object", 400, "manifest"),
        ({**job_manifest(), "type": "service"}, 400, "manifest.type"),
        ({**job_manifest(), "name": ""}, 400, "manifest.name"),
        ({**job_manifest(), "image": "ghcr.io/acme/x:1"}, 400, "manifest.image"),
        ({k: v for k, v in job_manifest().items() if k != "trigger"}, 400, "manifest.trigger"),
        (
            {k: v for k, v in job_manifest().items() if k != "workspace_fqn"},
            400,
            "manifest.workspace_fqn",
        ),
        (job_manifest(workspace_fqn="gpu-west:nope"), 404, "gpu-west:nope"),
        (job_manifest(name="chat-api", workspace_fqn="gpu-east:ml-team"), 409, "chat-api"),
    ],
)
def test_put_rejects_bad_manifests(
    api: httpx.Client, manifest: Any, status: int, field: str
) -> None:
    response = put(api, manifest)
    assert response.status_code == status
    assert response.json()["statusCode"] == status
    assert field in response.json()["message"]


def trigger(api: httpx.Client, alias: str | None = None, **target: str) -> httpx.Response:
    body: dict[str, Any] = {
        "input": {"command": "python x.py --n 1", "params": {"n": "1"}},
        **target,
    }
    if alias is not None:
        body["metadata"] = {"job_run_name_alias": alias}
    return api.post("/jobs/trigger", json=body)


def test_trigger_without_capacity_creates_a_created_run(api: httpx.Client) -> None:
    response = trigger(api, applicationId="app-nightly-report")
    assert response.status_code == 200
    body = vendor(tfy.TriggerJobRunResponse, response.json())
    run = body.data
    assert body.job_run_name == run.name
    assert run.status == "CREATED"
    assert (run.command, response.json()["data"]["params"]) == ("python x.py --n 1", {"n": "1"})
    assert api.get(f"/jobs/app-nightly-report/runs/{run.name}").json()["data"]["id"] == run.id


def test_trigger_with_capacity_starts_running(api: httpx.Client) -> None:
    app_id = put(api, job_manifest()).json()["data"]["applicationId"]
    run = trigger(api, applicationId=app_id).json()["data"]
    assert run["status"] == "RUNNING"


def test_trigger_by_deployment_id_uses_that_version(api: httpx.Client) -> None:
    first = put(api, job_manifest()).json()["data"]
    put(api, {**job_manifest(), "retries": 2})
    run = trigger(api, deploymentId=first["id"]).json()["data"]
    assert (run["deploymentId"], run["deploymentVersion"]) == (first["id"], "1")
    latest = trigger(api, applicationId=first["applicationId"]).json()["data"]
    assert latest["deploymentVersion"] == "2"


def test_alias_names_the_run_and_a_duplicate_gets_a_suffix(
    api: httpx.Client, sandbox_state: SandboxState
) -> None:
    first = trigger(api, "fb-run-train-1", applicationId="app-train-llm").json()
    second = trigger(api, "fb-run-train-1", applicationId="app-train-llm").json()
    assert first["jobRunName"] == "fb-run-train-1"
    assert second["jobRunName"] == "fb-run-train-1-2"
    found = api.get("/jobs/app-train-llm/runs", params={"searchPrefix": "fb-run-train-1"}).json()
    assert {r["name"] for r in found["data"]} == {"fb-run-train-1", "fb-run-train-1-2"}
    assert all("alias" not in r for r in found["data"])
    assert sandbox_state.alias_of(second["data"]["id"]) == "fb-run-train-1"


def test_search_prefix_matches_the_alias_too(
    api: httpx.Client, sandbox_state: SandboxState
) -> None:
    sandbox_state.add_run(application_id="app-eval-suite", name="eval-suite-7", alias="fb-abc")
    found = api.get("/jobs/app-eval-suite/runs", params={"searchPrefix": "fb-a"}).json()["data"]
    assert [r["name"] for r in found] == ["eval-suite-7"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"applicationId": "app-nope"}, 404),
        ({"deploymentId": "dep-nope"}, 404),
        ({"input": {"command": "x"}}, 400),
        ({"applicationId": "app-chat-api"}, 400),
        ({"applicationId": "app-eval-suite", "input": {"params": [1]}}, 400),
    ],
)
def test_trigger_errors(api: httpx.Client, body: dict[str, Any], status: int) -> None:
    assert api.post("/jobs/trigger", json=body).status_code == status


def deployment_of(api: httpx.Client, app_id: str) -> str:
    return str(api.get(f"/apps/{app_id}").json()["data"]["activeDeploymentId"])


@pytest.mark.parametrize(
    ("app_id", "run_name"),
    [("app-train-llm", "train-llm-0412"), ("app-train-llm", "train-llm-0411")],
)
def test_terminate_requests_termination(
    api: httpx.Client, sandbox_state: SandboxState, app_id: str, run_name: str
) -> None:
    params = {"deploymentId": deployment_of(api, app_id), "jobRunName": run_name}
    response = api.post("/jobs/terminate", params=params)
    assert response.status_code == 200
    assert response.json()["jobRunStatus"] == "TERMINATION_REQUESTED"
    run = api.get(f"/jobs/{app_id}/runs/{run_name}").json()["data"]
    assert run["status"] == "TERMINATION_REQUESTED"
    # Asking again is refused: the run can no longer be terminated.
    again = api.post("/jobs/terminate", params=params)
    assert again.status_code == 417
    assert again.json()["statusCode"] == 417


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "TERMINATED", "TERMINATING"])
def test_terminate_an_ended_run_is_417(
    api: httpx.Client, sandbox_state: SandboxState, status: str
) -> None:
    sandbox_state.set_run_status("run-embed-1", status)
    params = {
        "deploymentId": deployment_of(api, "app-embed-corpus"),
        "jobRunName": "embed-corpus-0007",
    }
    assert api.post("/jobs/terminate", params=params).status_code == 417
    assert sandbox_state.runs(application_id="app-embed-corpus")[0]["status"] == status


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"deploymentId": "dep-nope", "jobRunName": "x"}, 404),
        ({"jobRunName": "embed-corpus-0007"}, 400),
    ],
)
def test_terminate_errors(api: httpx.Client, params: dict[str, str], status: int) -> None:
    assert api.post("/jobs/terminate", params=params).status_code == status


def test_terminate_unknown_run_is_404(api: httpx.Client) -> None:
    params = {"deploymentId": deployment_of(api, "app-embed-corpus"), "jobRunName": "nope"}
    assert api.post("/jobs/terminate", params=params).status_code == 404


def test_set_run_status_records_the_end(sandbox_state: SandboxState) -> None:
    sandbox_state.set_run_status("run-report-1", "FINISHED")
    run = sandbox_state.run("run-report-1")
    assert run is not None
    assert run["status"] == "FINISHED"
    assert run["endTime"] is not None


def test_state_queries(sandbox_state: SandboxState) -> None:
    created = sandbox_state.runs(status="CREATED")
    assert sorted(r["name"] for r in created) == [
        "embed-corpus-0007",
        "eval-suite-0098",
        "nightly-report-0031",
        "train-llm-0412",
    ]
    assert len(sandbox_state.runs(workspace_id="ws-east-research")) == 2
    assert sandbox_state.application_by_name("ws-east-ml", "embed-corpus") is None

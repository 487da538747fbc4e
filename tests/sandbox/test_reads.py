"""Auth, list filters, paging and single-object reads."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import truefoundry_sdk as tfy

from jobfallback_sandbox import SandboxServer, SandboxState
from tests.contract.conftest import vendor


def names(response: httpx.Response, key: str = "name") -> list[str]:
    assert response.status_code == 200, response.text
    return [item[key] for item in response.json()["data"]]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc"])
def test_api_requires_the_bearer_token(sandbox: SandboxServer, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = httpx.get(f"{sandbox.url}/api/svc/v1/workspaces", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["statusCode"] == 401
    assert sandbox.token not in response.text


def test_workspace_filters(api: httpx.Client) -> None:
    assert len(names(api.get("/workspaces"))) == 3
    assert names(api.get("/workspaces", params={"clusterId": "gpu-east"})) == [
        "ml-team",
        "research",
    ]
    assert names(api.get("/workspaces", params={"fqn": "gpu-west:fallback"})) == ["fallback"]
    assert names(api.get("/workspaces", params={"name": "research"}), "fqn") == [
        "gpu-east:research"
    ]
    assert names(api.get("/workspaces", params={"name": "nope"})) == []


def test_workspace_wire_shape(api: httpx.Client) -> None:
    data = api.get("/workspaces/ws-west-fallback").json()["data"]
    ws = vendor(tfy.Workspace, data)
    assert (ws.fqn, ws.cluster_id, ws.account_id) == (
        "gpu-west:fallback",
        "gpu-west",
        "acc-sandbox",
    )
    assert ws.manifest.name == "fallback"
    assert data["name"] == "fallback"  # not in the vendor's model, served all the same


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"workspaceId": "ws-east-ml"}, ["train-llm", "eval-suite", "chat-api"]),
        ({"workspaceId": "ws-east-ml", "applicationType": "job"}, ["train-llm", "eval-suite"]),
        ({"workspaceFqn": "gpu-east:research"}, ["embed-corpus", "nightly-report"]),
        ({"clusterId": "gpu-west"}, []),
        ({"clusterId": "gpu-east,gpu-west", "applicationType": "service"}, ["chat-api"]),
        ({"applicationId": "app-train-llm,app-embed-corpus"}, ["train-llm", "embed-corpus"]),
        ({"fqn": "gpu-east:research:nightly-report"}, ["nightly-report"]),
        ({"applicationName": "eval-suite"}, ["eval-suite"]),
        (
            {"workspaceId": "ws-east-ml,ws-east-research", "applicationName": "embed-corpus"},
            ["embed-corpus"],
        ),
    ],
)
def test_app_filters(api: httpx.Client, params: dict[str, str], expected: list[str]) -> None:
    assert names(api.get("/apps", params=params)) == expected


def test_apps_embed_their_active_deployment(api: httpx.Client) -> None:
    listed = api.get("/apps", params={"applicationName": "train-llm"}).json()["data"][0]
    got = api.get("/apps/app-train-llm").json()["data"]
    for data in (listed, got):
        app = vendor(tfy.Application, data)
        assert app.deployment is not None
        assert app.deployment.id == app.active_deployment_id
        assert (app.active_version, app.last_version) == (1, 1)
        manifest = data["deployment"]["manifest"]
        assert manifest["type"] == "job"
        assert manifest["workspace_fqn"] == "gpu-east:ml-team"
        assert manifest["image"]["image_uri"].startswith("ghcr.io/acme/train-llm")


def test_deployments_of_an_application(api: httpx.Client, sandbox_state: SandboxState) -> None:
    first = sandbox_state.get_app("app-train-llm")["deployment"]
    manifest = {**first["manifest"], "retries": 5}
    second = sandbox_state.put_app(manifest, dry_run=False)[1]
    listed = api.get("/apps/app-train-llm/deployments").json()
    assert [d["id"] for d in listed["data"]] == [second["id"], first["id"]]  # newest first
    assert listed["pagination"] == {"total": 2, "offset": 0, "limit": 100}
    for version in ("1", "1.0"):
        found = api.get("/apps/app-train-llm/deployments", params={"version": version}).json()
        assert [d["id"] for d in found["data"]] == [first["id"]]
    by_id = api.get("/apps/app-train-llm/deployments", params={"deploymentId": second["id"]})
    assert [d["version"] for d in by_id.json()["data"]] == [2]
    got = api.get(f"/apps/app-train-llm/deployments/{first['id']}").json()["data"]
    assert got == first
    other_app = api.get(f"/apps/app-eval-suite/deployments/{first['id']}")
    assert other_app.status_code == 404


def test_runs_filter_by_status_and_prefix(api: httpx.Client) -> None:
    assert names(api.get("/jobs/app-train-llm/runs", params={"status": "CREATED"})) == [
        "train-llm-0412"
    ]
    both = api.get("/jobs/app-train-llm/runs", params={"status": "CREATED,RUNNING"})
    assert sorted(names(both)) == ["train-llm-0411", "train-llm-0412"]
    repeated = [("status", "CREATED"), ("status", "RUNNING"), ("status", "FAILED")]
    assert sorted(names(api.get("/jobs/app-train-llm/runs", params=repeated))) == sorted(
        names(both)
    )
    assert names(api.get("/jobs/app-train-llm/runs", params={"searchPrefix": "train-llm-041"})) == [
        "train-llm-0412",
        "train-llm-0411",
    ]
    assert names(api.get("/jobs/app-train-llm/runs", params={"searchPrefix": "x"})) == []


def test_runs_filter_by_deployment_version(api: httpx.Client, sandbox_state: SandboxState) -> None:
    manifest = sandbox_state.get_app("app-eval-suite")["deployment"]["manifest"]
    sandbox_state.put_app({**manifest, "retries": 2}, dry_run=False)
    sandbox_state.add_run(application_id="app-eval-suite", name="eval-suite-v2")
    runs = "/jobs/app-eval-suite/runs"
    assert names(api.get(runs, params={"versionNumbers": "2"})) == ["eval-suite-v2"]
    assert names(api.get(runs, params={"versionNumbers": "1.0", "status": "FINISHED"})) == [
        "eval-suite-0097"
    ]
    every = ["eval-suite-v2", "eval-suite-0098", "eval-suite-0097"]
    assert names(api.get(runs, params={"versionNumbers": "1,2.0"})) == every
    assert names(api.get(runs, params=[("versionNumbers", "1"), ("versionNumbers", "2")])) == every
    assert names(api.get(runs, params={"versionNumbers": "3"})) == []
    for bad in ("1.5", "two"):
        assert api.get(runs, params={"versionNumbers": bad}).status_code == 400


@pytest.fixture
def sortable(sandbox_state: SandboxState) -> str:
    """A job whose runs differ in every sort key but the version and who triggered them."""
    app = sandbox_state.add_application(workspace_id="ws-east-ml", name="sortable")
    runs = [("s-a", "RUNNING", 3), ("s-b", "CREATED", 1), ("s-c", "FINISHED", 2)]
    for name, status, minute in runs:
        sandbox_state.add_run(
            id=name, application_id=app["id"], name=name, status=status, created_at=minute * 60_000
        )
    sandbox_state.set_run_status("s-b", "FAILED")  # ends now: the longest duration
    return str(app["id"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["s-a", "s-c", "s-b"]),  # newest first by creation
        ({"sortBy": "startTime", "order": "asc"}, ["s-b", "s-c", "s-a"]),
        ({"sortBy": "startTime"}, ["s-a", "s-c", "s-b"]),
        (
            {"sortBy": "status", "order": "asc"},
            ["s-b", "s-c", "s-a"],
        ),  # FAILED < FINISHED < RUNNING
        ({"sortBy": "duration", "order": "asc"}, ["s-a", "s-c", "s-b"]),  # no duration first
        ({"sortBy": "deploymentVersion", "order": "desc"}, ["s-a", "s-c", "s-b"]),
        ({"sortBy": "triggeredBy", "order": "ASC"}, ["s-b", "s-c", "s-a"]),
    ],
)
def test_runs_sort(
    api: httpx.Client, sortable: str, params: dict[str, str], expected: list[str]
) -> None:
    assert names(api.get(f"/jobs/{sortable}/runs", params=params)) == expected


@pytest.mark.parametrize("params", [{"sortBy": "createdAt"}, {"sortBy": "name"}, {"order": "up"}])
def test_runs_sort_refuses_what_the_vendor_does_not_offer(
    api: httpx.Client, params: dict[str, Any]
) -> None:
    response = api.get("/jobs/app-eval-suite/runs", params=params)
    assert response.status_code == 400
    assert (
        "startTime, duration, deploymentVersion, triggeredBy, status" in response.json()["message"]
    )


def test_run_wire_shape(api: httpx.Client, sandbox_state: SandboxState) -> None:
    data = api.get("/jobs/app-embed-corpus/runs/embed-corpus-0007").json()["data"]
    run = vendor(tfy.JobRun, data)
    assert run.status == "CREATED"
    assert run.application_name == "embed-corpus"
    assert run.created_at == sandbox_state.now_ms - 240 * 60_000
    assert run.command == "python embed.py --shard 7"
    assert (run.deployment_version, data["deploymentVersion"]) == ("1", "1")
    assert (run.end_time, run.duration, run.exit_code) == (None, None, None)
    assert "alias" not in data
    finished = api.get("/jobs/app-eval-suite/runs/eval-suite-0097").json()["data"]
    assert (finished["endTime"], finished["exitCode"]) == (finished["createdAt"], 0)


@pytest.fixture
def paged(sandbox_state: SandboxState) -> str:
    """A job with 25 runs, for paging."""
    app = sandbox_state.add_application(workspace_id="ws-east-ml", name="many")
    for i in range(25):
        sandbox_state.add_run(application_id=app["id"], name=f"many-{i:02d}", created_at=i)
    return str(app["id"])


def test_pagination_walks_all_pages(api: httpx.Client, paged: str) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        body = api.get(f"/jobs/{paged}/runs", params={"limit": 10, "offset": offset}).json()
        assert body["pagination"] == {"total": 25, "offset": offset, "limit": 10}
        if not body["data"]:
            break
        seen += [run["name"] for run in body["data"]]
        offset += len(body["data"])
    assert seen == [f"many-{i:02d}" for i in reversed(range(25))]
    assert offset == 25


def test_pagination_defaults_and_cap(api: httpx.Client, paged: str) -> None:
    assert api.get(f"/jobs/{paged}/runs").json()["pagination"] == {
        "total": 25,
        "offset": 0,
        "limit": 100,
    }
    capped = api.get(f"/jobs/{paged}/runs", params={"limit": 5000}).json()["pagination"]
    assert capped["limit"] == 1000
    past_end = api.get(f"/jobs/{paged}/runs", params={"offset": 30}).json()
    assert past_end["data"] == []
    assert past_end["pagination"]["total"] == 25


@pytest.mark.parametrize("params", [{"limit": "0"}, {"offset": "-1"}, {"limit": "ten"}])
def test_bad_paging_is_a_400(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/workspaces", params=params)
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400


def test_paging_workspaces_and_apps(api: httpx.Client) -> None:
    first = api.get("/workspaces", params={"limit": 2}).json()
    second = api.get("/workspaces", params={"limit": 2, "offset": 2}).json()
    assert first["pagination"]["total"] == second["pagination"]["total"] == 3
    assert len(first["data"]) == 2
    assert len(second["data"]) == 1
    apps = api.get("/apps", params={"limit": 3, "offset": 3}).json()
    assert apps["pagination"] == {"total": 5, "offset": 3, "limit": 3}
    assert len(apps["data"]) == 2


@pytest.mark.parametrize(
    "path",
    [
        "/workspaces/ws-nope",
        "/apps/app-nope",
        "/jobs/app-nope/runs",
        "/jobs/app-train-llm/runs/no-such-run",
        "/no/such/endpoint",
    ],
)
def test_unknown_objects_are_404_json(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    body = response.json()
    assert body["statusCode"] == 404
    assert body["message"]

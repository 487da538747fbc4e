"""Auth, list filters, paging and single-object reads."""

from __future__ import annotations

import httpx
import pytest

from jobfallback.models import Application, JobRun, Workspace
from jobfallback.sandbox import SandboxServer, SandboxState


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


def test_workspace_wire_shape_parses_into_the_domain_model(api: httpx.Client) -> None:
    data = api.get("/workspaces/ws-west-fallback").json()["data"]
    ws = Workspace.model_validate(data)
    assert (ws.fqn, ws.cluster_id) == ("gpu-west:fallback", "gpu-west")


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
        app = Application.model_validate(data)
        assert app.deployment is not None
        assert app.deployment.id == app.active_deployment_id
        assert app.deployment.manifest["type"] == "job"
        assert app.deployment.manifest["workspace_fqn"] == "gpu-east:ml-team"
        assert app.deployment.manifest["image"]["image_uri"].startswith("ghcr.io/acme/train-llm")


def test_runs_filter_by_status_and_prefix(api: httpx.Client) -> None:
    assert names(api.get("/jobs/app-train-llm/runs", params={"status": "CREATED"})) == [
        "train-llm-0412"
    ]
    both = api.get("/jobs/app-train-llm/runs", params={"status": "CREATED,RUNNING"})
    assert sorted(names(both)) == ["train-llm-0411", "train-llm-0412"]
    assert names(api.get("/jobs/app-train-llm/runs", params={"searchPrefix": "train-llm-041"})) == [
        "train-llm-0412",
        "train-llm-0411",
    ]
    assert names(api.get("/jobs/app-train-llm/runs", params={"searchPrefix": "x"})) == []


def test_runs_sort(api: httpx.Client) -> None:
    newest_first = names(api.get("/jobs/app-eval-suite/runs"))
    assert newest_first == ["eval-suite-0098", "eval-suite-0097"]
    oldest_first = api.get(
        "/jobs/app-eval-suite/runs", params={"sortBy": "createdAt", "order": "asc"}
    )
    assert names(oldest_first) == newest_first[::-1]
    by_name = api.get("/jobs/app-eval-suite/runs", params={"sortBy": "name", "order": "asc"})
    assert names(by_name) == ["eval-suite-0097", "eval-suite-0098"]
    assert api.get("/jobs/app-eval-suite/runs", params={"sortBy": "bogus"}).status_code == 400


def test_run_wire_shape(api: httpx.Client, sandbox_state: SandboxState) -> None:
    data = api.get("/jobs/app-embed-corpus/runs/embed-corpus-0007").json()["data"]
    run = JobRun.model_validate(data)
    assert run.status == "CREATED"
    assert run.application_name == "embed-corpus"
    assert run.created_at == sandbox_state.now_ms - 240 * 60_000
    assert run.command == "python embed.py --shard 7"


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

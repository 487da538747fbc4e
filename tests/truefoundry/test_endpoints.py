"""One test family per endpoint: request sent as the contract says, answer parsed to a model."""

from __future__ import annotations

import json

import pytest
from pytest_httpx import HTTPXMock

from jobfallback.truefoundry import BadResponse, NotFoundError, TerminateOutcome, run_alias
from tests.truefoundry.payloads import (
    API,
    TOKEN,
    application,
    deployment,
    error,
    job_run,
    page,
    workspace,
)

pytestmark = pytest.mark.anyio

TERMINATE = f"{API}/jobs/terminate?deploymentId=dep-1&jobRunName=run-1"


async def test_every_request_carries_the_bearer_token(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        url=f"{API}/workspaces/ws-1",
        match_headers={"Authorization": f"Bearer {TOKEN}"},
        json={"data": workspace()},
    )
    async with make_client() as client:
        ws = await client.get_workspace("ws-1")
    assert (ws.id, ws.fqn, ws.cluster_id) == ("ws-1", "cluster-a:ws-1", "cluster-a")


async def test_get_application_with_its_deployment(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        url=f"{API}/apps/app-1", json={"data": application(deployment=deployment())}
    )
    async with make_client() as client:
        app = await client.get_application("app-1")
    assert app.deployment is not None
    assert app.deployment.manifest["workspace_fqn"] == "cluster-b:ws-2"
    assert app.active_deployment_id == "dep-app-1"


async def test_path_segments_are_escaped(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(url=f"{API}/jobs/app%2F1/runs/run%201", json={"data": job_run("run 1")})
    async with make_client() as client:
        run = await client.get_job_run("app/1", "run 1")
        assert run.name == "run 1"
        assert client.calls == {"get_run": 1}


@pytest.mark.parametrize(
    ("body", "attempts"),
    [({}, 5), ({"data": None}, 5), ({"data": [job_run()]}, 5), ({"data": {"name": "no-id"}}, 1)],
    ids=["empty", "null", "list", "invalid"],
)
async def test_a_wrong_shaped_object_answer_is_a_bad_response(
    httpx_mock: HTTPXMock, make_client, body: object, attempts: int
) -> None:
    # A wrong envelope is asked again (a proxy's page passes); a wrong object inside a right
    # envelope is the server's data and is not.
    httpx_mock.add_response(url=f"{API}/jobs/app-1/runs/run-1", json=body, is_reusable=True)
    async with make_client() as client:
        with pytest.raises(BadResponse, match=r"GET /api/svc/v1/jobs/app-1/runs/run-1: 200 OK"):
            await client.get_job_run("app-1", "run-1")
        assert client.calls["get_run"] == attempts


async def test_put_application_sends_the_manifest_without_deploy_side_effects(
    httpx_mock: HTTPXMock, make_client
) -> None:
    manifest = {"type": "job", "name": "train", "workspace_fqn": "cluster-b:ws-2"}
    httpx_mock.add_response(
        method="PUT",
        url=f"{API}/apps",
        match_json={
            "manifest": manifest,
            "dryRun": False,
            "forceDeploy": False,
            "triggerOnDeploy": False,
        },
        status_code=201,
        json={"data": deployment("dep-9", applicationId="app-9")},
    )
    async with make_client() as client:
        dep = await client.put_application(manifest)
    assert (dep.id, dep.application_id, dep.version) == ("dep-9", "app-9", 3)


async def test_get_deployment_reads_one_version_with_its_manifest(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(
        url=f"{API}/apps/app-1/deployments/dep-7", json={"data": deployment("dep-7", version=7)}
    )
    async with make_client() as client:
        dep = await client.get_deployment("app-1", "dep-7")
        assert client.calls == {"get_deployment": 1}
    assert (dep.id, dep.version, dep.application_id) == ("dep-7", 7, "app-1")
    assert dep.manifest["name"] == "train"


async def test_get_deployment_escapes_both_segments(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        url=f"{API}/apps/app%2F1/deployments/dep%3F7", json={"data": deployment("dep?7")}
    )
    async with make_client() as client:
        assert (await client.get_deployment("app/1", "dep?7")).id == "dep?7"


async def test_trigger_sends_the_deployment_input_and_alias(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{API}/jobs/trigger",
        match_json={
            "deploymentId": "dep-9",
            "input": {"command": "python train.py", "params": {"lr": "0.1"}},
            "metadata": {"job_run_name_alias": "fb-abc"},
        },
        json={"message": "ok", "jobRunName": "fb-abc", "data": job_run("fb-abc")},
    )
    async with make_client() as client:
        run = await client.trigger_job(
            "dep-9", command="python train.py", params={"lr": "0.1"}, alias="fb-abc"
        )
    assert run.name == "fb-abc"
    sent = json.loads(httpx_mock.get_request().content)
    assert "applicationId" not in sent  # one version, never "the application's latest"


async def test_trigger_omits_missing_command_and_params(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(url=f"{API}/jobs/trigger", json={"data": job_run("fb-abc")})
    async with make_client() as client:
        await client.trigger_job("dep-1", command=None, params=None, alias="fb-abc")
    sent = json.loads(httpx_mock.get_request().content)
    assert sent["input"] == {}
    assert sent["deploymentId"] == "dep-1"


async def test_trigger_without_a_run_in_the_answer_is_a_bad_response(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(url=f"{API}/jobs/trigger", json={"jobRunName": "fb-abc"})
    async with make_client() as client:
        with pytest.raises(BadResponse, match="no `data` object") as caught:
            await client.trigger_job("dep-1", command=None, params=None, alias="fb-abc")
        assert client.calls == {"trigger": 1}
    assert not caught.value.refused  # a 2xx: the run may exist


APPS_BY_NAME = f"{API}/apps?workspaceFqn=cluster-b%3Aws-2&applicationName=train&limit=100&offset=0"


@pytest.mark.parametrize(
    ("items", "found"),
    [
        ([application("app-7", name="train", workspaceFqn="cluster-b:ws-2")], "app-7"),
        ([application("app-7", name="train")], "app-7"),  # no workspaceFqn in the answer
        ([application("app-7", name="train", type="service")], "app-7"),  # any type
        (
            [
                application("app-6", name="train-2"),  # a server that matched by prefix
                application("app-9", name="train", workspaceFqn="cluster-c:other"),
                application("app-7", name="train", workspaceFqn="cluster-b:ws-2"),
            ],
            "app-7",
        ),
        ([application("app-6", name="Train")], None),
        ([], None),
    ],
    ids=["exact", "no-fqn", "any-type", "filters-again", "case", "none"],
)
async def test_find_application_by_workspace_and_name(
    httpx_mock: HTTPXMock, make_client, items: list[dict[str, object]], found: str | None
) -> None:
    httpx_mock.add_response(url=APPS_BY_NAME, json=page(items, total=len(items)))
    async with make_client() as client:
        app = await client.find_application("cluster-b:ws-2", "train")
    assert (app.id if app else None) == found


async def test_find_application_raises_on_an_item_it_cannot_read(
    httpx_mock: HTTPXMock, make_client
) -> None:
    # "Not there" decides whether to create one: an unreadable item is no proof of absence.
    nameless = application("app-8")
    del nameless["name"]
    items = [application("app-6", name="other"), nameless]
    httpx_mock.add_response(url=APPS_BY_NAME, json=page(items, total=2))
    async with make_client() as client:
        with pytest.raises(BadResponse, match="name") as caught:
            await client.find_application("cluster-b:ws-2", "train")
        assert client.skipped_items == []
        assert client.calls == {"find_app": 1}  # the server's data: not asked again
    assert caught.value.status == 200
    assert not caught.value.refused


async def test_find_application_reads_every_page(httpx_mock: HTTPXMock, make_client) -> None:
    url = f"{API}/apps?workspaceFqn=ws&applicationName=train&limit=1"
    httpx_mock.add_response(
        url=f"{url}&offset=0", json=page([application("a1", name="x")], total=2, limit=1)
    )
    httpx_mock.add_response(
        url=f"{url}&offset=1",
        json=page([application("a2", name="train")], total=2, offset=1, limit=1),
    )
    async with make_client(page_size=1) as client:
        app = await client.find_application("ws", "train")
    assert app is not None
    assert app.id == "a2"


RUNS = f"{API}/jobs/app-1/runs"


@pytest.mark.parametrize(("version", "sent"), [(3, "3"), (3.0, "3"), (12.0, "12"), (2.5, "2.5")])
async def test_runs_of_one_version_are_asked_by_version_number(
    httpx_mock: HTTPXMock, make_client, version: float, sent: str
) -> None:
    httpx_mock.add_response(
        url=RUNS,
        match_params={
            "versionNumbers": sent,
            "sortBy": "startTime",
            "order": "asc",
            "limit": "100",
            "offset": "0",
        },
        json=page([job_run(deploymentVersion=sent)], total=1),
    )
    async with make_client() as client:
        runs = [r async for r in client.list_job_runs("app-1", version=version, strict=True)]
    assert [r.deployment_version for r in runs] == [sent]


async def test_a_strict_run_listing_raises_on_an_item_it_cannot_read(
    httpx_mock: HTTPXMock, make_client
) -> None:
    bad = job_run("run-bad")
    del bad["createdAt"]
    url = f"{RUNS}?searchPrefix=fb-abc&sortBy=startTime&order=asc&limit=100&offset=0"
    httpx_mock.add_response(url=url, json=page([job_run("run-ok"), bad], total=2))
    async with make_client() as client:
        runs = client.list_job_runs("app-1", search_prefix="fb-abc", strict=True)
        assert (await anext(runs)).name == "run-ok"  # readable items still come first
        with pytest.raises(BadResponse, match="createdAt") as caught:
            await anext(runs)
        assert client.skipped_items == []
    assert "GET /api/svc/v1/jobs/app-1/runs?" in caught.value.message


async def test_a_strict_run_listing_raises_on_a_non_object_item(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(
        url=f"{RUNS}?sortBy=startTime&order=asc&limit=100&offset=0",
        json=page(["run-1"], total=1),
    )
    async with make_client() as client:
        with pytest.raises(BadResponse, match="not a JobRun"):
            [r async for r in client.list_job_runs("app-1", strict=True)]


async def test_terminate_sends_query_parameters_and_no_body(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(
        method="POST",
        url=TERMINATE,
        json={"message": "ok", "jobRunStatus": "TERMINATION_REQUESTED"},
    )
    async with make_client() as client:
        assert await client.terminate_job_run("dep-1", "run-1") is TerminateOutcome.REQUESTED
    assert httpx_mock.get_request().content == b""


@pytest.mark.parametrize("status", ["TERMINATED", "SOMETHING_NEW"])
async def test_any_run_status_in_the_answer_proves_the_terminate(
    httpx_mock: HTTPXMock, make_client, status: str
) -> None:
    httpx_mock.add_response(url=TERMINATE, json={"message": "ok", "jobRunStatus": status})
    async with make_client() as client:
        assert await client.terminate_job_run("dep-1", "run-1") is TerminateOutcome.REQUESTED


@pytest.mark.parametrize(
    "body", [{"message": "ok"}, {"jobRunStatus": None}, {"jobRunStatus": 3}], ids=str
)
async def test_a_terminate_answer_without_a_status_is_a_bad_response(
    httpx_mock: HTTPXMock, make_client, body: dict[str, object]
) -> None:
    httpx_mock.add_response(url=TERMINATE, json=body, is_reusable=True)
    async with make_client() as client:
        with pytest.raises(BadResponse, match="jobRunStatus") as caught:
            await client.terminate_job_run("dep-1", "run-1")
    assert not caught.value.refused


@pytest.mark.parametrize(
    "answer",
    [{"json": error(417, "run has finished")}, {"text": "<html>expectation failed</html>"}],
    ids=["json", "html"],
)
async def test_terminate_417_is_refused_not_finished(
    httpx_mock: HTTPXMock, make_client, answer: dict[str, object]
) -> None:
    # The cause of a 417 is undocumented: the client reports a refusal, never "finished".
    httpx_mock.add_response(url=TERMINATE, status_code=417, **answer)  # type: ignore[arg-type]
    async with make_client() as client:
        outcome = await client.terminate_job_run("dep-1", "run-1")
        assert outcome is TerminateOutcome.REFUSED
        assert client.calls == {"terminate": 1}
    assert {o.name for o in TerminateOutcome} == {"REQUESTED", "REFUSED"}


async def test_terminate_of_an_unknown_run_raises(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(url=TERMINATE, status_code=404, json=error(404, "no such run"))
    async with make_client() as client:
        with pytest.raises(NotFoundError, match="no such run") as caught:
            await client.terminate_job_run("dep-1", "run-1")
    assert caught.value.refused


def test_run_alias_is_stable_fixed_length_and_distinct() -> None:
    assert run_alias("run-id-1") == run_alias("run-id-1")
    assert run_alias("run-id-1") != run_alias("run-id-2")
    assert {len(run_alias(str(i))) for i in range(100)} == {len(run_alias("x"))}
    assert run_alias("run-id-1").startswith("fb-")

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


async def test_trigger_sends_input_and_alias(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{API}/jobs/trigger",
        match_json={
            "applicationId": "app-1",
            "input": {"command": "python train.py", "params": {"lr": "0.1"}},
            "metadata": {"job_run_name_alias": "fb-abc"},
        },
        json={"message": "ok", "jobRunName": "fb-abc", "data": job_run("fb-abc")},
    )
    async with make_client() as client:
        run = await client.trigger_job(
            "app-1", command="python train.py", params={"lr": "0.1"}, alias="fb-abc"
        )
    assert run.name == "fb-abc"


async def test_trigger_omits_missing_command_and_params(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(url=f"{API}/jobs/trigger", json={"data": job_run("fb-abc")})
    async with make_client() as client:
        await client.trigger_job("app-1", command=None, params=None, alias="fb-abc")
    sent = json.loads(httpx_mock.get_request().content)
    assert sent["input"] == {}


async def test_trigger_without_a_run_in_the_answer_is_a_bad_response(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(url=f"{API}/jobs/trigger", json={"jobRunName": "fb-abc"})
    async with make_client() as client:
        with pytest.raises(BadResponse, match="no `data` object"):
            await client.trigger_job("app-1", command=None, params=None, alias="fb-abc")
        assert client.calls == {"trigger": 1}


@pytest.mark.parametrize(
    ("names", "found"),
    [
        (["fb-abc"], "fb-abc"),
        (["fb-abc-x7k2", "fb-abc"], "fb-abc"),  # the exact name wins
        (["fb-abc-x7k2"], "fb-abc-x7k2"),  # the server suffixed the alias
        (["other-fb-abc"], None),  # searchPrefix matched something else
        ([], None),
    ],
)
async def test_find_run_by_alias(
    httpx_mock: HTTPXMock, make_client, names: list[str], found: str | None
) -> None:
    httpx_mock.add_response(
        url=f"{API}/jobs/app-1/runs?searchPrefix=fb-abc&limit=100&offset=0",
        json=page([job_run(n) for n in names], total=len(names)),
    )
    async with make_client() as client:
        run = await client.find_run_by_alias("app-1", "fb-abc")
    assert (run.name if run else None) == found


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


async def test_terminate_of_a_finished_run_is_already_finished(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(url=TERMINATE, status_code=417, json=error(417, "run has finished"))
    async with make_client() as client:
        outcome = await client.terminate_job_run("dep-1", "run-1")
        assert outcome is TerminateOutcome.ALREADY_FINISHED
        assert client.calls == {"terminate": 1}


async def test_terminate_of_an_unknown_run_raises(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(url=TERMINATE, status_code=404, json=error(404, "no such run"))
    async with make_client() as client:
        with pytest.raises(NotFoundError, match="no such run"):
            await client.terminate_job_run("dep-1", "run-1")


def test_run_alias_is_stable_fixed_length_and_distinct() -> None:
    assert run_alias("run-id-1") == run_alias("run-id-1")
    assert run_alias("run-id-1") != run_alias("run-id-2")
    assert {len(run_alias(str(i))) for i in range(100)} == {len(run_alias("x"))}
    assert run_alias("run-id-1").startswith("fb-")

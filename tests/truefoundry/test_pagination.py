"""List methods: paging, filters, and items that do not validate."""

from __future__ import annotations

import logging

import pytest
from pytest_httpx import HTTPXMock

from jobfallback.truefoundry import BadResponse
from tests.truefoundry.payloads import API, application, job_run, page, workspace

pytestmark = pytest.mark.anyio

RUNS = f"{API}/jobs/app-1/runs"


async def test_follows_offsets_across_pages(httpx_mock: HTTPXMock, make_client) -> None:
    names = [f"run-{i}" for i in range(5)]
    for offset in (0, 2, 4):
        chunk = [job_run(n) for n in names[offset : offset + 2]]
        httpx_mock.add_response(
            url=RUNS,
            match_params={"status": "CREATED", "limit": "2", "offset": str(offset)},
            json=page(chunk, total=5, offset=offset, limit=2),
        )
    async with make_client(page_size=2) as client:
        runs = [run async for run in client.list_job_runs("app-1", status="CREATED")]
        assert [run.name for run in runs] == names
        assert client.calls["list_runs"] == 3


async def test_stops_on_an_empty_page_even_if_total_says_more(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(
        url=RUNS, match_params={"limit": "2", "offset": "0"}, json=page([job_run()], total=10)
    )
    httpx_mock.add_response(
        url=RUNS, match_params={"limit": "2", "offset": "1"}, json=page([], total=10)
    )
    async with make_client(page_size=2) as client:
        runs = [run async for run in client.list_job_runs("app-1")]
        assert len(runs) == 1
        assert client.calls["list_runs"] == 2


async def test_without_pagination_info_reads_until_an_empty_page(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(
        url=f"{API}/workspaces?limit=100&offset=0", json={"data": [workspace()]}
    )
    httpx_mock.add_response(url=f"{API}/workspaces?limit=100&offset=1", json={"data": []})
    async with make_client() as client:
        assert [ws.id async for ws in client.list_workspaces()] == ["ws-1"]


async def test_yields_a_page_before_asking_for_the_next(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        url=RUNS, match_params={"limit": "1", "offset": "0"}, json=page([job_run()], total=3)
    )
    async with make_client(page_size=1) as client:
        runs = client.list_job_runs("app-1")
        first = await anext(runs)
        assert first.name == "run-1"
        assert len(httpx_mock.get_requests()) == 1
        await runs.aclose()  # type: ignore[attr-defined]


async def test_filters_are_sent_as_documented(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        url=f"{API}/workspaces",
        match_params={
            "fqn": "c:ws",
            "clusterId": "c",
            "name": "ws",
            "limit": "100",
            "offset": "0",
        },
        json=page([], total=0),
    )
    httpx_mock.add_response(
        url=f"{API}/apps",
        match_params={
            "workspaceId": "ws-1",
            "clusterId": "c",
            "applicationId": "app-1,app-2",
            "applicationType": "job",
            "limit": "100",
            "offset": "0",
        },
        json=page([], total=0),
    )
    httpx_mock.add_response(
        url=RUNS,
        match_params={"searchPrefix": "fb-", "limit": "100", "offset": "0"},
        json=page([], total=0),
    )
    async with make_client() as client:
        assert [
            w async for w in client.list_workspaces(fqn="c:ws", cluster_id="c", name="ws")
        ] == []
        apps = client.list_applications(
            workspace_id="ws-1", cluster_id="c", application_ids=["app-1", "app-2"]
        )
        assert [a async for a in apps] == []
        assert [r async for r in client.list_job_runs("app-1", search_prefix="fb-")] == []


async def test_every_application_type_when_asked(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        url=f"{API}/apps?limit=100&offset=0", json=page([application()], total=1)
    )
    async with make_client() as client:
        apps = [a async for a in client.list_applications(application_type=None)]
        assert [a.id for a in apps] == ["app-1"]


async def test_an_empty_id_filter_is_refused(make_client) -> None:
    async with make_client() as client:
        with pytest.raises(ValueError, match="application_ids"):
            client.list_applications(application_ids=[])


async def test_unknown_status_and_type_are_kept(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        url=f"{API}/apps?applicationType=job&limit=100&offset=0",
        json=page([application(type="ray-cluster")], total=1),
    )
    httpx_mock.add_response(
        url=f"{RUNS}?limit=100&offset=0", json=page([job_run(status="PAUSED_BY_ADMIN")], total=1)
    )
    async with make_client() as client:
        assert [a.type async for a in client.list_applications()] == ["ray-cluster"]
        assert [r.status async for r in client.list_job_runs("app-1")] == ["PAUSED_BY_ADMIN"]


async def test_malformed_items_are_skipped_with_a_warning(
    httpx_mock: HTTPXMock, make_client, logs: pytest.LogCaptureFixture
) -> None:
    bad = job_run("run-bad")
    del bad["createdAt"]
    items = [job_run("run-ok"), bad, "not-an-object", job_run("run-ok-2")]
    httpx_mock.add_response(url=f"{RUNS}?limit=100&offset=0", json=page(items, total=4))
    async with make_client() as client:
        runs = [r.name async for r in client.list_job_runs("app-1")]
        assert runs == ["run-ok", "run-ok-2"]
        assert len(client.skipped_items) == 2
        assert "id=id-run-bad" in client.skipped_items[0]
        assert "createdAt" in client.skipped_items[0]
        assert "index=2" in client.skipped_items[1]
    warnings = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
    assert any("id-run-bad" in w for w in warnings)
    assert any("index=2" in w for w in warnings)


@pytest.mark.parametrize(
    "body", [{"items": []}, {"data": {"id": "x"}}, ["a", "list"]], ids=["no-data", "obj", "list"]
)
async def test_a_wrong_envelope_is_asked_again_then_a_bad_response(
    httpx_mock: HTTPXMock, make_client, body: object
) -> None:
    httpx_mock.add_response(url=f"{RUNS}?limit=100&offset=0", json=body, is_reusable=True)
    async with make_client() as client:
        with pytest.raises(BadResponse, match=r"GET /api/svc/v1/jobs/app-1/runs\?.*`data` list"):
            [r async for r in client.list_job_runs("app-1")]
        assert client.calls["list_runs"] == 5  # asked again each time, then given up

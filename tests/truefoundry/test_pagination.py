"""List methods: paging, filters, and items that do not validate."""

from __future__ import annotations

import pytest
from pytest_httpx import HTTPXMock

from tests.truefoundry.payloads import API, application, job_run, page, workspace

pytestmark = pytest.mark.anyio

RUNS = f"{API}/jobs/app-1/runs"
# Every runs listing asks oldest first (a run created while paging lands on the last page).
SORTED = {"sortBy": "startTime", "order": "asc"}


async def test_follows_offsets_across_pages(httpx_mock: HTTPXMock, make_client) -> None:
    names = [f"run-{i}" for i in range(5)]
    for offset in (0, 2, 4):
        chunk = [job_run(n) for n in names[offset : offset + 2]]
        httpx_mock.add_response(
            url=RUNS,
            match_params={"status": "CREATED", **SORTED, "limit": "2", "offset": str(offset)},
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
        url=RUNS,
        match_params={**SORTED, "limit": "2", "offset": "0"},
        json=page([job_run()], total=10),
    )
    httpx_mock.add_response(
        url=RUNS, match_params={**SORTED, "limit": "2", "offset": "1"}, json=page([], total=10)
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
        url=RUNS,
        match_params={**SORTED, "limit": "1", "offset": "0"},
        json=page([job_run()], total=3),
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
            "applicationType": "job",
            "limit": "100",
            "offset": "0",
        },
        json=page([], total=0),
    )
    httpx_mock.add_response(
        url=RUNS,
        match_params={
            "searchPrefix": "fb-",
            **SORTED,
            "limit": "100",
            "offset": "0",
        },
        json=page([], total=0),
    )
    async with make_client() as client:
        assert [
            w async for w in client.list_workspaces(fqn="c:ws", cluster_id="c", name="ws")
        ] == []
        apps = client.list_applications(workspace_id="ws-1", cluster_id="c")
        assert [a async for a in apps] == []
        assert [r async for r in client.list_job_runs("app-1", search_prefix="fb-")] == []


async def test_every_application_type_when_asked(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        url=f"{API}/apps?limit=100&offset=0", json=page([application()], total=1)
    )
    async with make_client() as client:
        apps = [a async for a in client.list_applications(application_type=None)]
        assert [a.id for a in apps] == ["app-1"]

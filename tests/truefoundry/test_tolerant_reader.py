"""The tolerant reader: answers are read as widely as the vendor's models type them (issue 11).

Numbers where the vendor says float, a string or a number where it says string, optional where it
says optional, unknown fields ignored, unknown enum values kept (and never taken for CREATED).
An item that still cannot be read is skipped with a warning naming it in a listing, and fails
the call in a strict look-up (find_application, list_job_runs(strict=True)).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from jobfallback.models import Application, Deployment, JobRun, RunStatus
from jobfallback.plan import age_minutes
from jobfallback.truefoundry import BadResponse
from tests.truefoundry.payloads import API, application, deployment, job_run, page, workspace

pytestmark = pytest.mark.anyio

RUNS = f"{API}/jobs/app-1/runs"
CREATED_RUNS = f"{RUNS}?status=CREATED&sortBy=startTime&order=asc&limit=100&offset=0"
ALL_RUNS = f"{RUNS}?sortBy=startTime&order=asc&limit=100&offset=0"
JOBS = f"{API}/apps?workspaceId=ws-1&applicationType=job&limit=100&offset=0"
BY_NAME = f"{API}/apps?workspaceFqn=c%3Aws&applicationName=train&limit=100&offset=0"


async def read_runs(httpx_mock: HTTPXMock, make_client: Any, items: list[Any]) -> list[JobRun]:
    httpx_mock.add_response(url=CREATED_RUNS, json=page(items, total=len(items)))
    async with make_client() as client:
        runs = [r async for r in client.list_job_runs("app-1", status="CREATED")]
        assert client.skipped_items == []
    return runs


# ---------------------------------------------------------------- numbers and versions


async def test_a_run_with_fractional_times_is_read_and_aged(
    httpx_mock: HTTPXMock, make_client
) -> None:
    created = 1_700_000_000_123.456
    items = [job_run(createdAt=created, endTime=1_700_000_060_000.5)]
    [run] = await read_runs(httpx_mock, make_client, items)
    assert run.created_at == created
    assert run.end_time == 1_700_000_060_000.5
    assert run.created_datetime() == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    now = run.created_datetime() + timedelta(minutes=45)
    assert age_minutes(run, now) == pytest.approx(45, abs=1e-6)


@pytest.mark.parametrize(
    ("created", "end"),
    [(1_700_000_000_000, None), (1.7e12, 1.7e12), (1_700_000_000_000.0, 1_700_000_000_001)],
    ids=["int-no-end", "exponent", "float-and-int"],
)
async def test_any_json_number_is_a_time(
    httpx_mock: HTTPXMock, make_client, created: float, end: float | None
) -> None:
    [run] = await read_runs(httpx_mock, make_client, [job_run(createdAt=created, endTime=end)])
    assert run.created_at == created
    assert run.end_time == end


@pytest.mark.parametrize("served", ["3", 3, 3.0], ids=["text", "int", "float"])
async def test_a_deployment_version_as_text_or_number_reads_the_same(
    httpx_mock: HTTPXMock, make_client, served: object
) -> None:
    [run] = await read_runs(httpx_mock, make_client, [job_run(deploymentVersion=served)])
    assert run.deployment_version == "3"


@pytest.mark.parametrize("served", [3, 3.0, 3.5])
async def test_a_deployment_version_is_any_number(
    httpx_mock: HTTPXMock, make_client, served: float
) -> None:
    httpx_mock.add_response(
        url=f"{API}/apps/app-1/deployments/dep-1", json={"data": deployment(version=served)}
    )
    async with make_client() as client:
        dep = await client.get_deployment("app-1", "dep-1")
    assert dep.version == served


# ---------------------------------------------------------------- enums


@pytest.mark.parametrize(
    "status", ["PAUSED_BY_ADMIN", "created", "CREATED ", "Created", "", "__JOBRUNSTATUS_UNKNOWN__"]
)
async def test_an_unknown_run_status_is_kept_and_never_created(
    httpx_mock: HTTPXMock, make_client, status: str
) -> None:
    [run] = await read_runs(httpx_mock, make_client, [job_run(status=status)])
    assert run.status == status
    assert run.status != RunStatus.CREATED
    assert run.status != "CREATED"


async def test_every_known_run_status_is_read(httpx_mock: HTTPXMock, make_client) -> None:
    items = [job_run(f"run-{s}", status=s.value) for s in RunStatus]
    runs = await read_runs(httpx_mock, make_client, items)
    assert [r.status for r in runs] == [s.value for s in RunStatus]
    assert [r.name for r in runs if r.status == RunStatus.CREATED] == ["run-CREATED"]


@pytest.mark.parametrize(
    ("served", "kept", "is_job"),
    [
        ("job", "job", True),
        ("ray-cluster", "ray-cluster", False),
        ("Job", "Job", False),
        ("spark-job", "spark-job", False),
        (None, None, False),
    ],
)
async def test_an_unknown_application_type_is_kept(
    httpx_mock: HTTPXMock, make_client, served: str | None, kept: str | None, is_job: bool
) -> None:
    httpx_mock.add_response(
        url=f"{API}/apps?limit=100&offset=0", json=page([application(type=served)], total=1)
    )
    async with make_client() as client:
        [app] = [a async for a in client.list_applications(application_type=None)]
        assert client.skipped_items == []
    assert app.type == kept
    assert app.is_job is is_job


async def test_an_application_without_a_type_is_read(httpx_mock: HTTPXMock, make_client) -> None:
    item = application()
    del item["type"]
    httpx_mock.add_response(url=f"{API}/apps/app-1", json={"data": item})
    async with make_client() as client:
        app = await client.get_application("app-1")
    assert app.type is None
    assert not app.is_job


# ---------------------------------------------------------------- unreadable items


async def test_an_app_without_an_id_or_a_name_is_skipped_with_a_warning_naming_it(
    httpx_mock: HTTPXMock, make_client, logs: pytest.LogCaptureFixture
) -> None:
    no_id = application("app-2")
    del no_id["id"]
    no_name = application("app-3")
    del no_name["name"]
    null_name = application("app-4", name=None)
    items = [application("app-1"), no_id, no_name, null_name, application("app-5")]
    httpx_mock.add_response(url=JOBS, json=page(items, total=len(items)))
    async with make_client() as client:
        apps = [a.id async for a in client.list_applications(workspace_id="ws-1")]
        skipped = list(client.skipped_items)
    assert apps == ["app-1", "app-5"]
    assert len(skipped) == 3
    assert skipped[0].startswith("list_apps item index=1: id:")  # no id: named by position
    assert skipped[1].startswith("list_apps item id=app-3: name:")
    assert skipped[2].startswith("list_apps item id=app-4: name:")
    warnings = [r for r in logs.records if r.levelno == logging.WARNING]
    assert [
        r.__dict__["fields"]["detail"]
        for r in warnings
        if r.__dict__.get("event") == "api.item_skipped"
    ] == skipped


@pytest.mark.parametrize("missing", ["id", "name"])
async def test_find_application_raises_on_an_app_without_an_id_or_a_name(
    httpx_mock: HTTPXMock, make_client, missing: str
) -> None:
    item = application("app-7", name="train")
    del item[missing]
    httpx_mock.add_response(url=BY_NAME, json=page([item], total=1))
    async with make_client() as client:
        with pytest.raises(BadResponse, match=rf"`data` is not a Application: {missing}:"):
            await client.find_application("c:ws", "train")
        assert client.skipped_items == []


async def test_malformed_runs_are_skipped_with_a_warning_naming_each(
    httpx_mock: HTTPXMock, make_client, logs: pytest.LogCaptureFixture
) -> None:
    no_time = job_run("run-bad")
    del no_time["createdAt"]
    text_time = job_run("run-text-time", createdAt="yesterday")
    items = [job_run("run-ok"), no_time, "not-an-object", text_time, job_run("run-ok-2")]
    httpx_mock.add_response(url=ALL_RUNS, json=page(items, total=len(items)))
    async with make_client() as client:
        runs = [r.name async for r in client.list_job_runs("app-1")]
        skipped = list(client.skipped_items)
    assert runs == ["run-ok", "run-ok-2"]
    assert len(skipped) == 3
    assert "id=id-run-bad" in skipped[0]
    assert "createdAt" in skipped[0]
    assert "index=2" in skipped[1]
    assert "id=id-run-text-time" in skipped[2]
    warnings = [
        f"{r.getMessage()} {r.__dict__.get('fields')}"
        for r in logs.records
        if r.levelno == logging.WARNING
    ]
    assert any("id-run-bad" in w for w in warnings)
    assert any("index=2" in w for w in warnings)


async def test_a_strict_run_listing_raises_where_a_lenient_one_skips(
    httpx_mock: HTTPXMock, make_client
) -> None:
    bad = job_run("run-bad", status=None)
    items = [job_run("run-ok"), bad]
    httpx_mock.add_response(url=ALL_RUNS, json=page(items, total=2), is_reusable=True)
    async with make_client() as client:
        assert [r.name async for r in client.list_job_runs("app-1")] == ["run-ok"]
        assert len(client.skipped_items) == 1
        with pytest.raises(BadResponse, match=r"`data` is not a JobRun: status:"):
            [r async for r in client.list_job_runs("app-1", strict=True)]
        assert len(client.skipped_items) == 1  # the strict listing warned about nothing


@pytest.mark.parametrize(
    "body", [{"items": []}, {"data": {"id": "x"}}, ["a", "list"]], ids=["no-data", "obj", "list"]
)
async def test_a_wrong_envelope_is_asked_again_then_a_bad_response(
    httpx_mock: HTTPXMock, make_client, body: object
) -> None:
    httpx_mock.add_response(url=ALL_RUNS, json=body, is_reusable=True)
    async with make_client() as client:
        with pytest.raises(BadResponse, match=r"GET /api/svc/v1/jobs/app-1/runs\?.*`data` list"):
            [r async for r in client.list_job_runs("app-1")]
        assert client.calls["list_runs"] == 5  # asked again each time, then given up


# ---------------------------------------------------------------- optional and unknown fields


SPARSE_RUN: dict[str, Any] = {"id": "id-1", "name": "run-1", "createdAt": 1.5, "status": "CREATED"}


@pytest.mark.parametrize("optional", ["absent", "null"])
async def test_a_run_with_only_its_needed_fields_is_read(
    httpx_mock: HTTPXMock, make_client, optional: str
) -> None:
    item = dict(SPARSE_RUN)
    if optional == "null":
        names = ["applicationName", "applicationId", "deploymentId", "deploymentVersion"]
        names += ["endTime", "command", "params", "triggeredBy", "tenantName"]
        item.update(dict.fromkeys(names))
    [run] = await read_runs(httpx_mock, make_client, [item])
    assert (run.id, run.name, run.created_at, run.status) == ("id-1", "run-1", 1.5, "CREATED")
    assert run.deployment_id is None
    assert run.deployment_version is None
    assert run.command is None
    assert run.params is None
    assert run.end_time is None


@pytest.mark.parametrize("optional", ["absent", "null"])
async def test_an_app_with_only_an_id_and_a_name_is_read(
    httpx_mock: HTTPXMock, make_client, optional: str
) -> None:
    item: dict[str, Any] = {"id": "app-1", "name": "train"}
    if optional == "null":
        names = ["fqn", "type", "workspaceId", "workspaceFqn", "activeDeploymentId"]
        names += ["lastDeploymentId", "lastVersion", "activeVersion", "deployment", "tenantName"]
        item.update(dict.fromkeys(names))
    httpx_mock.add_response(url=JOBS, json=page([item], total=1))
    async with make_client() as client:
        [app] = [a async for a in client.list_applications(workspace_id="ws-1")]
        assert client.skipped_items == []
    assert (app.id, app.name, app.type, app.deployment, app.last_deployment_id) == (
        "app-1",
        "train",
        None,
        None,
        None,
    )


@pytest.mark.parametrize("optional", ["absent", "null"])
async def test_a_deployment_with_only_its_manifest_is_read(
    httpx_mock: HTTPXMock, make_client, optional: str
) -> None:
    item: dict[str, Any] = {"manifest": {"type": "job", "name": "train"}}
    if optional == "null":
        item.update(dict.fromkeys(["id", "version", "fqn", "applicationId", "createdAt"]))
    httpx_mock.add_response(url=f"{API}/apps/app-1/deployments/dep-1", json={"data": item})
    httpx_mock.add_response(method="PUT", url=f"{API}/apps", json={"data": item})
    async with make_client() as client:
        got = await client.get_deployment("app-1", "dep-1")
        put = await client.put_application({"type": "job", "name": "train"})
    for dep in (got, put):
        assert (dep.id, dep.version, dep.application_id) == (None, None, None)
        assert dep.manifest == {"type": "job", "name": "train"}


async def test_unknown_extra_fields_are_ignored_at_every_level(
    httpx_mock: HTTPXMock, make_client
) -> None:
    extra = {"somethingNew": {"nested": [1, None, "x"]}, "totalRetries": 2, "sparkUi": None}
    manifest = {"type": "job", "name": "train", "future_key": {"kept": True}}
    app = application(
        **extra,
        createdBySubject={"subjectId": "u", "subjectType": "user"},
        lifecycleStage="something-new",
        deployment=deployment(manifest=manifest, **extra),
    )
    httpx_mock.add_response(url=f"{API}/apps/app-1", json={"data": app, "extraTop": 1})
    httpx_mock.add_response(
        url=CREATED_RUNS,
        json={
            "data": [job_run(**extra)],
            "pagination": {"total": 1, "nextCursor": "x"},
            "totalCount": 1,
        },
    )
    httpx_mock.add_response(url=f"{API}/workspaces/ws-1", json={"data": workspace(**extra)})
    async with make_client() as client:
        got = await client.get_application("app-1")
        runs = [r async for r in client.list_job_runs("app-1", status="CREATED")]
        ws = await client.get_workspace("ws-1")
        assert client.skipped_items == []
    assert got.deployment is not None
    assert got.deployment.manifest == manifest  # a manifest's unknown keys are kept: copied on
    assert [r.name for r in runs] == ["run-1"]
    assert ws.id == "ws-1"
    for model in (got, got.deployment, runs[0], ws):
        assert "somethingNew" not in model.model_dump(by_alias=True)


@pytest.mark.parametrize("model", [JobRun, Application, Deployment])
def test_unknown_fields_are_not_kept_on_the_models(model: type[Any]) -> None:
    assert model.model_config.get("extra") == "ignore"

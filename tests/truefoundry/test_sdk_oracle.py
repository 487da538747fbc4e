"""The vendor's SDK as the oracle for the client (issue 11), in both directions.

Answers: built with the SDK's own models (tests/truefoundry/sdk_models.py), with optional
fields absent or null and unknown fields added, they never crash the client, and every field the
sweep reads comes out as the SDK reads it.

Requests: for the same call, our client sends what the SDK sends (method, path, query parameter
names and values, JSON body), and what it sends validates against the SDK's request types.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import truefoundry_sdk as tfy
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from truefoundry_sdk.core.pydantic_utilities import parse_obj_as

from jobfallback.models import MoveRecord, MoveState
from jobfallback.move import LABEL_SOURCE_JOB, LABEL_SOURCE_RUN, destination_manifest
from jobfallback.plan import age_minutes
from jobfallback.truefoundry import (
    ApiError,
    BadResponse,
    RetryPolicy,
    TerminateOutcome,
)
from tests.truefoundry.payloads import TOKEN
from tests.truefoundry.sdk_models import (
    answering,
    applications,
    body_of,
    deployments,
    drop_nulls,
    identified_applications,
    job_manifests,
    job_runs,
    json_values,
    our_application,
    our_deployment,
    our_run,
    paged,
    path_of,
    run_statuses,
    sdk_application,
    sdk_deployment,
    sdk_run,
    sdk_sends,
    texts,
    we_send,
    wire,
    with_client,
    workspaces,
)

PROPERTY = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
page_sizes = st.sampled_from([1, 2, 100])
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def served(items: list[Any], nulls: bool) -> list[Any]:
    return items if nulls else [drop_nulls(item) for item in items]


# ================================================================ answers


@PROPERTY
@given(
    items=st.lists(job_runs, max_size=6),
    nulls=st.booleans(),
    page_size=page_sizes,
    strict=st.booleans(),
)
def test_runs_built_by_the_sdk_are_read_as_the_sdk_reads_them(
    items: list[Any], nulls: bool, page_size: int, strict: bool
) -> None:
    items = served(items, nulls)
    runs, client = with_client(
        paged(items),
        lambda c: c.list_job_runs("app-1", status="CREATED", strict=strict),
        page_size=page_size,
    )
    assert client.skipped_items == []
    assert [our_run(run) for run in runs] == [sdk_run(item) for item in items]
    for run in runs:
        assert math.isfinite(age_minutes(run, NOW))
        assert run.created_datetime().year <= 2100


@PROPERTY
@given(items=st.lists(applications, max_size=5), nulls=st.booleans(), page_size=page_sizes)
def test_applications_built_by_the_sdk_are_read_as_the_sdk_reads_them(
    items: list[Any], nulls: bool, page_size: int
) -> None:
    """Lenient listing: an app without an id or a name (optional to the SDK, needed to move a
    job) is skipped with a warning naming it; every other field is read as the SDK reads it."""
    items = served(items, nulls)
    apps, client = with_client(
        paged(items),
        lambda c: c.list_applications(workspace_id="ws-1", application_type=None),
        page_size=page_size,
    )
    readable = [
        (index, item)
        for index, item in enumerate(items)
        if isinstance(item.get("id"), str) and isinstance(item.get("name"), str)
    ]
    assert [our_application(app) for app in apps] == [sdk_application(item) for _, item in readable]
    unreadable = [(i, item) for i, item in enumerate(items) if (i, item) not in readable]
    event(f"read {min(len(apps), 3)}+, skipped {min(len(unreadable), 1)}+")
    assert len(client.skipped_items) == len(unreadable)
    for (index, item), warning in zip(unreadable, client.skipped_items, strict=True):
        named = f"id={item['id']}" if isinstance(item.get("id"), str) else f"index={index}"
        assert warning.startswith(f"list_apps item {named}: "), warning
    for app, (_, item) in zip(apps, readable, strict=True):
        if app.deployment is not None:
            # The manifest is copied key by key: read as served, unknown keys and all.
            assert app.deployment.manifest == item["deployment"]["manifest"]


@st.composite
def named_listings(draw: st.DrawFn) -> tuple[list[Any], str, str]:
    """A listing by workspace FQN and name, with the FQN and name looked for."""
    items = draw(st.lists(identified_applications, max_size=4))
    if draw(st.integers(0, 3)) == 0:  # now and then one the client cannot read
        items.insert(draw(st.integers(0, len(items))), draw(applications))
    names = [item["name"] for item in items if isinstance(item.get("name"), str)]
    fqns = [item["workspaceFqn"] for item in items if isinstance(item.get("workspaceFqn"), str)]
    name = draw(st.sampled_from(names) if names and draw(st.booleans()) else texts)
    fqn = draw(st.sampled_from(fqns) if fqns and draw(st.booleans()) else texts)
    return items, fqn, name


@PROPERTY
@given(listing=named_listings(), nulls=st.booleans(), page_size=page_sizes)
def test_find_application_is_strict_and_otherwise_reads_as_the_sdk(
    listing: tuple[list[Any], str, str], nulls: bool, page_size: int
) -> None:
    items, fqn, name = listing
    items = served(items, nulls)
    readable = all(
        isinstance(item.get("id"), str) and isinstance(item.get("name"), str) for item in items
    )
    if not readable:
        event("an unreadable item")
        with pytest.raises(BadResponse, match="`data` is not a Application"):
            with_client(paged(items), lambda c: c.find_application(fqn, name), page_size=page_size)
        return
    found, client = with_client(
        paged(items), lambda c: c.find_application(fqn, name), page_size=page_size
    )
    matches = [
        sdk_application(item)
        for item in items
        if sdk_application(item)["name"] == name
        and sdk_application(item)["workspace_fqn"] in (None, fqn)
    ]
    event("found" if found is not None else "not found")
    assert (None if found is None else our_application(found)) == (matches[0] if matches else None)
    assert client.skipped_items == []


@PROPERTY
@given(item=deployments, nulls=st.booleans(), status=st.sampled_from([200, 201]))
def test_a_deployment_built_by_the_sdk_is_read_as_the_sdk_reads_it(
    item: Any, nulls: bool, status: int
) -> None:
    """GET .../deployments/{id}, and the answer to PUT /apps: GetApplicationDeploymentResponse."""
    [item] = served([item], nulls)
    body = {"data": item}
    parse_obj_as(tfy.GetApplicationDeploymentResponse, body)
    got, _ = with_client(answering(body, status), lambda c: c.get_deployment("app-1", "dep-1"))
    put, _ = with_client(answering(body, status), lambda c: c.put_application({"name": "x"}))
    for dep in (got, put):
        assert our_deployment(dep) == sdk_deployment(item)
        assert dep.manifest == item["manifest"]


@PROPERTY
@given(item=applications, nulls=st.booleans())
def test_one_application_built_by_the_sdk_is_read_as_the_sdk_reads_it(
    item: Any, nulls: bool
) -> None:
    [item] = served([item], nulls)
    body = {"data": item}
    parse_obj_as(tfy.GetApplicationResponse, body)
    readable = isinstance(item.get("id"), str) and isinstance(item.get("name"), str)
    if not readable:
        with pytest.raises(BadResponse, match="`data` is not a Application"):
            with_client(answering(body), lambda c: c.get_application("app-1"))
        return
    app, _ = with_client(answering(body), lambda c: c.get_application("app-1"))
    assert our_application(app) == sdk_application(item)


@PROPERTY
@given(run=job_runs, message=texts, nulls=st.booleans())
def test_a_trigger_answer_built_by_the_sdk_names_the_run_the_sdk_reads(
    run: Any, message: str, nulls: bool
) -> None:
    body = wire(tfy.TriggerJobRunResponse(message=message, jobRunName=run["name"], data=run))
    body["data"] = run  # the run as served: its unknown status, if any, kept (see sdk_models)
    [body] = served([body], nulls)
    got, client = with_client(
        answering(body), lambda c: c.trigger_job("dep-1", command="x", params=None, alias="fb")
    )
    assert our_run(got) == sdk_run(body["data"])
    assert client.calls == {"trigger": 1}


@PROPERTY
@given(status=run_statuses, message=texts)
def test_any_terminate_answer_built_by_the_sdk_is_a_requested_terminate(
    status: str, message: str
) -> None:
    body = wire(tfy.TerminateJobResponse(message=message, jobRunStatus=status))
    parse_obj_as(tfy.TerminateJobResponse, body)
    outcome, _ = with_client(answering(body), lambda c: c.terminate_job_run("dep-1", "run-1"))
    assert outcome is TerminateOutcome.REQUESTED


@PROPERTY
@given(items=st.lists(workspaces, max_size=4), nulls=st.booleans(), page_size=page_sizes)
def test_workspaces_built_by_the_sdk_are_read_as_the_sdk_reads_them(
    items: list[Any], nulls: bool, page_size: int
) -> None:
    items = served(items, nulls)
    got, client = with_client(paged(items), lambda c: c.list_workspaces(), page_size=page_size)
    sdk = [parse_obj_as(tfy.Workspace, item) for item in items]
    assert [(w.id, w.fqn, w.cluster_id, w.tenant_name) for w in got] == [
        (w.id, w.fqn, w.cluster_id, w.tenant_name) for w in sdk
    ]
    assert client.skipped_items == []
    if items:
        one, _ = with_client(answering({"data": items[0]}), lambda c: c.get_workspace("ws-1"))
        assert one == got[0]


@PROPERTY
@given(
    status=st.sampled_from([400, 403, 404, 408, 409, 417, 422, 429, 500, 502, 503]),
    code=st.none() | st.integers(0, 999) | texts,
    message=texts,
    details=st.none() | st.lists(st.dictionaries(texts, json_values, max_size=2), max_size=2),
)
def test_an_sdk_error_answer_is_an_api_error_with_the_status_line(
    status: int, code: int | str | None, message: str, details: list[Any] | None
) -> None:
    body = drop_nulls(
        wire(tfy.HttpError(statusCode=status, message=message, code=code, details=details))
    )
    # The status line decides, never the body's statusCode (a proxy may send another).
    body["statusCode"] = 200
    with pytest.raises(ApiError) as caught:
        with_client(
            answering(body, status),
            lambda c: c.get_application("app-1"),
            retry=RetryPolicy(max_attempts=1),
        )
    exc = caught.value
    assert exc.status == status
    assert exc.refused is (status < 500 and status != 408)
    assert exc.code == (code if isinstance(code, str) else None)
    assert TOKEN not in exc.message


# ================================================================ requests

# Ids and names that are one path segment as they are: the SDK does not percent-encode path
# parameters (its `encode_path_param` only str()s them), so only these compare like for like.
segments = st.text(
    alphabet=st.characters(categories=["L", "N"], include_characters="-_~"),
    min_size=1,
    max_size=12,
)
versions = st.integers(0, 999_999) | st.integers(0, 999_999).map(float)


def same_request(ours: httpx.Request, theirs: httpx.Request) -> None:
    assert ours.method == theirs.method
    assert path_of(ours) == path_of(theirs)
    assert sorted(ours.url.params.multi_items()) == sorted(theirs.url.params.multi_items())
    assert body_of(ours) == body_of(theirs)
    assert ours.headers["authorization"] == theirs.headers["authorization"] == f"Bearer {TOKEN}"
    if ours.content:
        assert ours.headers["content-type"] == theirs.headers["content-type"]


def with_version_as_float(request: httpx.Request) -> list[tuple[str, Any]]:
    return sorted(
        (name, float(value) if name == "versionNumbers" else value)
        for name, value in request.url.params.multi_items()
    )


@PROPERTY
@given(
    app_id=segments,
    status=st.none() | st.sampled_from(["CREATED", "SCHEDULED"]),
    prefix=st.none() | texts,
    version=st.none() | versions,
)
def test_a_runs_listing_asks_what_the_sdk_asks(
    app_id: str, status: str | None, prefix: str | None, version: float | None
) -> None:
    ours = we_send(
        lambda c: c.list_job_runs(app_id, status=status, search_prefix=prefix, version=version)
    )
    theirs = sdk_sends(
        lambda sdk: sdk.jobs.list_runs(
            app_id,
            status=status,
            search_prefix=prefix,
            sort_by="startTime",
            order="asc",
            version_numbers=None if version is None else [version],
        )
    )
    assert ours.method == theirs.method == "GET"
    assert path_of(ours) == path_of(theirs)
    # The SDK writes a float version as "3.0", we write "3": the same number to the server.
    assert with_version_as_float(ours) == with_version_as_float(theirs)
    params = ours.url.params
    assert tfy.JobRunsSortBy(params["sortBy"]).name != "_UNKNOWN"
    assert tfy.SortDirection(params["order"]).name != "_UNKNOWN"
    if version is not None:
        assert params["versionNumbers"] == f"{int(version)}"


@PROPERTY
@given(
    workspace_id=st.none() | texts,
    cluster_id=st.none() | texts,
    application_type=st.none() | st.sampled_from(["job", "service"]),
)
def test_an_applications_listing_asks_what_the_sdk_asks(
    workspace_id: str | None, cluster_id: str | None, application_type: str | None
) -> None:
    ours = we_send(
        lambda c: c.list_applications(
            workspace_id=workspace_id, cluster_id=cluster_id, application_type=application_type
        )
    )
    theirs = sdk_sends(
        lambda sdk: sdk.applications.list(
            workspace_id=workspace_id, cluster_id=cluster_id, application_type=application_type
        )
    )
    same_request(ours, theirs)
    assert "applicationId" not in ours.url.params


@PROPERTY
@given(fqn=texts, name=texts)
def test_find_application_asks_what_the_sdk_asks(fqn: str, name: str) -> None:
    ours = we_send(lambda c: c.find_application(fqn, name))
    theirs = sdk_sends(lambda sdk: sdk.applications.list(workspace_fqn=fqn, application_name=name))
    same_request(ours, theirs)


@PROPERTY
@given(fqn=st.none() | texts, cluster_id=st.none() | texts, name=st.none() | texts)
def test_a_workspaces_listing_asks_what_the_sdk_asks(
    fqn: str | None, cluster_id: str | None, name: str | None
) -> None:
    ours = we_send(lambda c: c.list_workspaces(fqn=fqn, cluster_id=cluster_id, name=name))
    theirs = sdk_sends(lambda sdk: sdk.workspaces.list(fqn=fqn, cluster_id=cluster_id, name=name))
    same_request(ours, theirs)


@PROPERTY
@given(first=segments, second=segments)
def test_one_object_reads_ask_what_the_sdk_asks(first: str, second: str) -> None:
    pairs = [
        (lambda c: c.get_workspace(first), lambda sdk: sdk.workspaces.get(first)),
        (lambda c: c.get_application(first), lambda sdk: sdk.applications.get(first)),
        (
            lambda c: c.get_deployment(first, second),
            lambda sdk: sdk.application_versions.get(first, second),
        ),
        (lambda c: c.get_job_run(first, second), lambda sdk: sdk.jobs.get_run(first, second)),
    ]
    for ours, theirs in pairs:
        same_request(we_send(ours), sdk_sends(theirs))


@PROPERTY
@given(deployment_id=texts, run_name=texts)
def test_terminate_asks_what_the_sdk_asks(deployment_id: str, run_name: str) -> None:
    ours = we_send(lambda c: c.terminate_job_run(deployment_id, run_name))
    theirs = sdk_sends(
        lambda sdk: sdk.jobs.terminate(deployment_id=deployment_id, job_run_name=run_name)
    )
    same_request(ours, theirs)
    assert ours.content == b""


@PROPERTY
@given(
    deployment_id=texts,
    command=st.none() | texts,
    run_params=st.none() | st.dictionaries(texts, json_values, max_size=3),
    alias=texts,
)
def test_a_trigger_sends_what_the_sdk_sends_and_validates_as_its_request_types(
    deployment_id: str, command: str | None, run_params: dict[str, Any] | None, alias: str
) -> None:
    ours = we_send(
        lambda c: c.trigger_job(deployment_id, command=command, params=run_params, alias=alias)
    )
    given_input = {
        key: value
        for key, value in (("command", command), ("params", run_params))
        if value is not None
    }
    theirs = sdk_sends(
        lambda sdk: sdk.jobs.trigger(
            deployment_id=deployment_id,
            input=tfy.JobTriggerInput(**given_input),
            metadata=tfy.Metadata(job_run_name_alias=alias),
        )
    )
    same_request(ours, theirs)
    sent = body_of(ours)
    assert set(sent) == {"deploymentId", "input", "metadata"}
    run_input = parse_obj_as(tfy.TriggerJobRequestInput, sent["input"])
    assert isinstance(run_input, tfy.JobTriggerInput)
    assert (run_input.command, run_input.params) == (command, run_params)
    assert parse_obj_as(tfy.Metadata, sent["metadata"]).job_run_name_alias == alias


def move_record(run_id: str, app_id: str) -> MoveRecord:
    return MoveRecord(
        source_run_id=run_id,
        source_run_name="run-1",
        source_application_id=app_id,
        source_application_name="train",
        destination_workspace_fqn="cluster-b:ws-2",
        state=MoveState.CLAIMED,
        created_at=NOW,
        updated_at=NOW,
    )


@PROPERTY
@given(manifest=job_manifests, fqn=texts, run_id=texts, app_id=texts, nulls=st.booleans())
def test_a_put_sends_what_the_sdk_sends_and_its_manifest_is_a_job(
    manifest: dict[str, Any], fqn: str, run_id: str, app_id: str, nulls: bool
) -> None:
    """The manifest a move PUTs (the source's, moved) validates as the SDK's `Job`: manual
    trigger, no trigger on deploy, the destination workspace, the provenance labels."""
    [manifest] = served([manifest], nulls)
    moved = destination_manifest(manifest, fqn, move_record(run_id, app_id))
    ours = we_send(lambda c: c.put_application(moved))
    theirs = sdk_sends(
        lambda sdk: sdk.applications.create_or_update(
            manifest=moved, dry_run=False, force_deploy=False, trigger_on_deploy=False
        )
    )
    same_request(ours, theirs)
    sent = body_of(ours)
    assert sent["manifest"] == moved
    job = parse_obj_as(tfy.Job, sent["manifest"])
    assert isinstance(job.trigger, tfy.Manual)
    assert job.trigger_on_deploy is False
    assert job.workspace_fqn == fqn
    assert job.labels is not None
    assert job.labels[LABEL_SOURCE_RUN] == run_id
    assert job.labels[LABEL_SOURCE_JOB] == app_id
    source = parse_obj_as(tfy.Job, manifest)
    assert (job.name, job.image) == (source.name, source.image)
    for key in set(manifest) - {"trigger", "trigger_on_deploy", "workspace_fqn", "labels"}:
        assert sent["manifest"][key] == manifest[key]  # everything else kept as it was
    for flag in ("dryRun", "forceDeploy", "triggerOnDeploy"):
        assert sent[flag] is False


def test_every_query_parameter_we_send_is_one_the_sdk_sends() -> None:
    """The names, with every filter set: none is ours alone."""
    calls = [
        (
            lambda c: c.list_job_runs("a", status="CREATED", search_prefix="p", version=3),
            lambda sdk: sdk.jobs.list_runs(
                "a",
                status="CREATED",
                search_prefix="p",
                sort_by="startTime",
                order="asc",
                version_numbers=[3.0],
                triggered_by=["u"],
            ),
        ),
        (
            lambda c: c.list_applications(workspace_id="w", cluster_id="c"),
            lambda sdk: sdk.applications.list(
                workspace_id="w",
                cluster_id="c",
                application_type="job",
                application_id="x",
                workspace_fqn="f",
                application_name="n",
                fqn="q",
            ),
        ),
        (
            lambda c: c.find_application("f", "n"),
            lambda sdk: sdk.applications.list(workspace_fqn="f", application_name="n"),
        ),
        (
            lambda c: c.list_workspaces(fqn="f", cluster_id="c", name="n"),
            lambda sdk: sdk.workspaces.list(fqn="f", cluster_id="c", name="n"),
        ),
        (
            lambda c: c.terminate_job_run("d", "r"),
            lambda sdk: sdk.jobs.terminate(deployment_id="d", job_run_name="r"),
        ),
    ]
    for ours, theirs in calls:
        assert set(we_send(ours).url.params) <= set(sdk_sends(theirs).url.params)


@given(app_id=st.text(min_size=1, max_size=12), run_name=st.text(min_size=1, max_size=12))
@PROPERTY
def test_our_path_segments_are_always_one_segment(app_id: str, run_name: str) -> None:
    """Unlike the SDK, the client percent-encodes path parameters: a "/" or "?" in an id never
    changes the endpoint, even for the ids "." and ".."."""
    request = we_send(lambda c: c.get_job_run(app_id, run_name))
    prefix, rest = path_of(request).split("/jobs/", 1)
    assert prefix == "/api/svc/v1"
    segments_sent = rest.split("/")
    assert len(segments_sent) == 3
    assert segments_sent[1] == "runs"
    assert (unquote(segments_sent[0]), unquote(segments_sent[2])) == (app_id, run_name)


# ================================================================ bugs the oracle found (fixed)


def test_a_large_version_number_is_sent_exactly() -> None:
    request = we_send(lambda c: c.list_job_runs("app-1", version=1_234_567))
    assert request.url.params["versionNumbers"] == "1234567"


def test_a_large_numeric_deployment_version_reads_like_its_text() -> None:
    items = [wire(tfy.JobRun(**run_fields())) | {"deploymentVersion": 1_234_567}]
    runs, _ = with_client(paged(items), lambda c: c.list_job_runs("app-1"))
    assert runs[0].deployment_version == "1234567"


@pytest.mark.parametrize("segment", [".", ".."])
def test_a_dot_id_is_refused_before_anything_is_sent(segment: str) -> None:
    # Escaped or not, a server or proxy that normalises the path would read another endpoint.
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(404, json={"message": "not found"})

    with pytest.raises(ApiError, match="names another endpoint"):
        with_client(record, lambda c: c.get_deployment(segment, "dep-1"))
    assert sent == []


def run_fields() -> dict[str, Any]:
    return {
        "id": "id-1",
        "name": "run-1",
        "applicationName": "train",
        "deploymentVersion": "1234567",
        "createdAt": 1.7e12,
        "command": "python train.py",
        "totalRetries": 0,
        "status": "CREATED",
    }

"""The vendor's SDK (`truefoundry_sdk`, a test-only dependency) as the oracle for the client.

Hypothesis strategies that build answers with the SDK's own pydantic models (so every answer
is valid to the vendor by construction) and serialize them as the SDK would put them on the
wire; how the SDK reads an answer; and the request the SDK itself sends for a call.

Two quirks of the SDK 0.6.0 shape these helpers:
- its forward-compatible enums (JobRunStatus, ApplicationType, ...) keep every unknown value in
  one shared `_UNKNOWN` member, so the value is read right after each parse and every model is
  serialized right after it is built (a later unknown value would overwrite an earlier one);
- its models serialize with a plain serializer that ignores `exclude_none`: `wire` drops the
  nulls itself when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import truefoundry_sdk as tfy
from hypothesis import strategies as st
from pydantic import BaseModel
from truefoundry_sdk.core.api_error import ApiError as SdkApiError
from truefoundry_sdk.core.pydantic_utilities import parse_obj_as

from jobfallback import models
from jobfallback.truefoundry import ApiError, TrueFoundryClient
from tests.truefoundry.payloads import HOST, TOKEN

# ---------------------------------------------------------------- serializing


def drop_nulls(value: Any) -> Any:
    """`value` with every null-valued key left out, at any depth."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def wire(model: BaseModel, *, nulls: bool = True) -> Any:
    """A model as the SDK serializes it (by alias, JSON types), nulls kept or left out."""
    body = model.model_dump(by_alias=True, mode="json", exclude_none=not nulls)
    return body if nulls else drop_nulls(body)


# ---------------------------------------------------------------- strategies

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
texts = st.text(max_size=10)
epoch_ms = st.integers(0, 4_102_444_800_000) | st.floats(
    0, 4_102_444_800_000, allow_nan=False, allow_infinity=False
)
datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
RUN_STATUSES = [s.value for s in tfy.JobRunStatus if s.name != "_UNKNOWN"]
APP_TYPES = [t.value for t in tfy.ApplicationType if t.name != "_UNKNOWN"]
# Unknown values, some of them close to a known one.
run_statuses = (
    st.sampled_from(RUN_STATUSES)
    | st.sampled_from(["created", "Created", "CREATED ", " CREATED", "QUEUED", ""])
    | st.text(max_size=10)
)
app_types = st.sampled_from(APP_TYPES) | st.sampled_from(["Job", "job ", "ray-cluster"]) | texts
subjects = st.fixed_dictionaries(
    {"subjectId": texts, "subjectType": st.sampled_from(["user", "team", "serviceaccount"])},
    optional={"subjectSlug": texts},
)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An optional field: absent (by `optional=`), null, or a value."""
    return st.none() | strategy


def _known_keys(*model_types: type[BaseModel]) -> frozenset[str]:
    keys: set[str] = set()
    for model in model_types:
        for name, info in model.model_fields.items():
            keys |= {name, info.alias or name}
    return frozenset(keys)


@st.composite
def built(
    draw: st.DrawFn,
    sdk_model: type[BaseModel],
    ours: type[BaseModel] | None,
    required: dict[str, st.SearchStrategy[Any]],
    optional: dict[str, st.SearchStrategy[Any]],
) -> Any:
    """The wire form of an SDK model built from drawn fields, with unknown extra fields (keys
    neither the SDK's model nor ours knows, in either spelling)."""
    fields = draw(st.fixed_dictionaries(required, optional=optional))
    known = _known_keys(sdk_model, *([ours] if ours else []))
    extra = draw(
        st.dictionaries(
            st.text(min_size=1, max_size=8).filter(lambda key: key not in known),
            json_values,
            max_size=2,
        )
    )
    # Serialized at once: the SDK's shared `_UNKNOWN` enum member changes with the next build.
    return wire(sdk_model(**fields, **extra))


images = st.fixed_dictionaries(
    {"type": st.just("image"), "image_uri": texts}, optional={"docker_registry": texts}
)
triggers = st.just({"type": "manual"}) | st.fixed_dictionaries(
    {
        "type": st.just("scheduled"),
        "schedule": texts,
        "concurrency_policy": st.sampled_from(["Forbid", "Allow", "Replace"]),
    },
    optional={"timezone": texts},
)
params = st.fixed_dictionaries(
    {"name": texts}, optional={"description": opt(texts), "default": opt(texts)}
)
job_manifests = built(
    tfy.Job,
    None,
    {"name": texts, "image": images, "trigger": triggers},
    {
        "trigger_on_deploy": opt(st.booleans()),
        "params": opt(st.lists(params, max_size=2)),
        "env": opt(st.dictionaries(texts, opt(texts), max_size=2)),
        "labels": opt(st.dictionaries(texts, texts, max_size=2)),
        "workspace_fqn": opt(texts),
        "retries": opt(st.integers(0, 10)),
        "timeout": opt(st.integers(1, 86_400)),
        "concurrency_limit": opt(st.integers(1, 10)),
        "service_account": opt(texts),
    },
)
# `Deployment.version` is a float in the SDK; in practice a small whole number.
versions = st.integers(0, 100_000) | st.floats(0, 100_000, allow_nan=False)

deployments = built(
    tfy.Deployment,
    models.Deployment,
    {"manifest": job_manifests, "createdBySubject": subjects},
    {
        "id": opt(texts),
        "version": opt(versions),
        "fqn": opt(texts),
        "applicationId": opt(texts),
        "createdAt": opt(datetimes),
        "createdBy": opt(texts),
    },
)


def _applications(identified: bool) -> st.SearchStrategy[Any]:
    identity = {"id": texts, "name": texts}
    return built(
        tfy.Application,
        models.Application,
        {
            "createdBySubject": subjects,
            "lifecycleStage": st.sampled_from(["active", "deleting", "deletion_failed"]) | texts,
            "autopilot": st.dictionaries(texts, json_values, max_size=2),
            **(identity if identified else {}),
        },
        {
            **({} if identified else {name: opt(value) for name, value in identity.items()}),
            "type": opt(app_types),
            "fqn": opt(texts),
            "workspaceId": opt(texts),
            "workspaceFqn": opt(texts),
            "activeDeploymentId": opt(texts),
            "lastDeploymentId": opt(texts),
            "lastVersion": opt(st.integers(0, 100_000)),
            "activeVersion": opt(st.integers(0, 100_000)),
            "deployment": opt(deployments),
            "tenantName": opt(texts),
        },
    )


# With an id and a name (optional to the SDK, needed by jobfallback), or with either or both
# absent or null.
identified_applications = _applications(identified=True)
applications = identified_applications | _applications(identified=False)

job_runs = built(
    tfy.JobRun,
    models.JobRun,
    {
        "id": texts,
        "name": texts,
        "applicationName": texts,
        "deploymentVersion": st.integers(0, 100_000).map(str) | texts,
        "createdAt": epoch_ms,
        "command": texts,
        "totalRetries": st.integers(0, 5),
        "status": run_statuses,
    },
    {
        "endTime": opt(epoch_ms),
        "duration": opt(st.integers(0, 10**6)),
        "error": opt(texts),
        "triggeredBy": opt(texts),
        "triggeredBySubject": opt(subjects),
        "exitCode": opt(st.integers(-1, 255)),
        "applicationId": opt(texts),
        "deploymentId": opt(texts),
        "tenantName": opt(texts),
    },
)
workspaces = built(
    tfy.Workspace,
    models.Workspace,
    {
        "id": texts,
        "fqn": texts,
        "tenantName": texts,
        "clusterId": texts,
        "createdBySubject": subjects,
        "createdAt": datetimes,
        "updatedAt": datetimes,
        "manifest": st.fixed_dictionaries({"cluster_fqn": texts, "name": texts}),
        "accountId": texts,
    },
    {"environmentId": opt(texts), "isSystemWs": opt(st.booleans()), "createdBy": opt(texts)},
)


# ---------------------------------------------------------------- how the SDK reads


def sdk_run(item: Any) -> dict[str, Any]:
    """The fields of a run the sweep reads, as the SDK reads them."""
    run = parse_obj_as(tfy.JobRun, item)
    return {
        "id": run.id,
        "name": run.name,
        "created_at": run.created_at,
        "end_time": run.end_time,
        "status": run.status.value,  # read now: the next parse may change an unknown member
        "created": run.status is tfy.JobRunStatus.CREATED,
        "deployment_id": run.deployment_id,
        "deployment_version": run.deployment_version,
        "application_id": run.application_id,
        "command": run.command,
    }


def our_run(run: models.JobRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "created_at": run.created_at,
        "end_time": run.end_time,
        "status": run.status,
        "created": run.status == models.RunStatus.CREATED,
        "deployment_id": run.deployment_id,
        "deployment_version": run.deployment_version,
        "application_id": run.application_id,
        "command": run.command,
    }


def sdk_deployment(item: Any) -> dict[str, Any]:
    dep = parse_obj_as(tfy.Deployment, item)
    return {
        "id": dep.id,
        "version": dep.version,
        "application_id": dep.application_id,
        "manifest_name": dep.manifest.name,  # type: ignore[union-attr]
    }


def our_deployment(dep: models.Deployment) -> dict[str, Any]:
    return {
        "id": dep.id,
        "version": dep.version,
        "application_id": dep.application_id,
        "manifest_name": dep.manifest.get("name"),
    }


def sdk_application(item: Any) -> dict[str, Any]:
    app = parse_obj_as(tfy.Application, item)
    return {
        "id": app.id,
        "name": app.name,
        "type": None if app.type is None else app.type.value,  # read now, like a run's status
        "is_job": app.type is tfy.ApplicationType.JOB,
        "workspace_id": app.workspace_id,
        "workspace_fqn": app.workspace_fqn,
        "last_deployment_id": app.last_deployment_id,
        "active_deployment_id": app.active_deployment_id,
        "last_version": app.last_version,
        "deployment": None if app.deployment is None else sdk_deployment(item["deployment"]),
    }


def our_application(app: models.Application) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "type": app.type,
        "is_job": app.is_job,
        "workspace_id": app.workspace_id,
        "workspace_fqn": app.workspace_fqn,
        "last_deployment_id": app.last_deployment_id,
        "active_deployment_id": app.active_deployment_id,
        "last_version": app.last_version,
        "deployment": None if app.deployment is None else our_deployment(app.deployment),
    }


# ---------------------------------------------------------------- serving and recording


def paged(items: list[Any]) -> Callable[[httpx.Request], httpx.Response]:
    """A server that honours `offset`/`limit` and says its `total` (SDK `Pagination`)."""

    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", "0"))
        limit = int(request.url.params.get("limit", "100"))
        pagination = tfy.Pagination(total=len(items), offset=offset, limit=limit)
        body = {"data": items[offset : offset + limit], "pagination": wire(pagination)}
        return httpx.Response(200, json=body)

    return answer


def answering(body: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return answer


def with_client(
    handler: Callable[[httpx.Request], httpx.Response],
    use: Callable[[TrueFoundryClient], Any],
    **options: Any,
) -> tuple[Any, TrueFoundryClient]:
    """What `use(client)` returns (awaited, or collected when it is a listing), and the client."""

    async def run() -> tuple[Any, TrueFoundryClient]:
        transport = httpx.MockTransport(handler)
        async with TrueFoundryClient(HOST, TOKEN, transport=transport, **options) as client:
            result = use(client)
            if inspect.isawaitable(result):
                return await result, client
            return [item async for item in result], client

    return asyncio.run(run())


_NOT_FOUND = {"statusCode": 404, "message": "recorded"}


def _recording(sent: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    # A 404 to everything: neither client retries it, so each call sends exactly one request.
    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        sent.append(request)
        return httpx.Response(404, json=_NOT_FOUND)

    return answer


def we_send(use: Callable[[TrueFoundryClient], Any]) -> httpx.Request:
    """The one request our client sends for `use(client)`."""
    sent: list[httpx.Request] = []
    with contextlib.suppress(ApiError):
        with_client(_recording(sent), use)
    assert len(sent) == 1, sent
    return sent[0]


def sdk_sends(use: Callable[[tfy.TrueFoundry], Any]) -> httpx.Request:
    """The one request the vendor's SDK sends for `use(sdk)`."""
    sent: list[httpx.Request] = []
    with httpx.Client(transport=httpx.MockTransport(_recording(sent))) as http:
        sdk = tfy.TrueFoundry(base_url=HOST, api_key=TOKEN, httpx_client=http)
        with contextlib.suppress(SdkApiError):
            result = use(sdk)
            if not isinstance(result, BaseModel | None):
                list(result)  # a pager
    assert len(sent) == 1, sent
    return sent[0]


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def path_of(request: httpx.Request) -> str:
    return request.url.raw_path.decode("ascii").split("?", 1)[0]

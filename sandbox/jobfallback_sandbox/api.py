"""The TrueFoundry endpoints the sandbox serves (contract: docs/truefoundry-api.md; shapes:
vendor.py): routing, query parsing, paging and the answer envelopes. No sockets here: a
handler takes a Request and returns a Reply, or raises SandboxError."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from jobfallback_sandbox.state import RUN_SORT_FIELDS, RunQuery, SandboxError, SandboxState
from jobfallback_sandbox.vendor import Obj, envelope, served

API_PREFIX = "/api/svc/v1"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
UNKNOWN_ENDPOINT = "unknown"

Query = dict[str, list[str]]  # every value of each parameter, in order


def first_values(query: Mapping[str, list[str]]) -> dict[str, str]:
    return {name: values[0] for name, values in query.items()}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query_all: Query
    body: Any
    params: dict[str, str] = field(default_factory=dict)  # path parameters, URL-decoded

    @property
    def query(self) -> dict[str, str]:
        """The first value of each query parameter."""
        return first_values(self.query_all)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


Handler = Callable[[SandboxState, Request], Reply]


@dataclass(frozen=True)
class RawReply:
    """An answer as bytes on the wire."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    send_bytes: int | None = None  # declare len(body) but send only this many bytes, then close


def encode(reply: Reply) -> RawReply:
    return RawReply(reply.status, json.dumps(reply.body).encode())


def split_target(target: str) -> tuple[str, Query]:
    """The path and query of a request target; an empty parameter counts as absent."""
    parts = urlsplit(target)
    return parts.path.rstrip("/") or "/", parse_qs(parts.query)


# ------------------------------------------------------------------ query helpers


def _bad(message: str) -> SandboxError:
    return SandboxError(400, message, "BAD_REQUEST")


def _int(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _bad(f"query parameter {name} must be a whole number") from None


def _page(req: Request) -> tuple[int, int]:
    limit, offset = _int(req.query, "limit", DEFAULT_LIMIT), _int(req.query, "offset", 0)
    if limit < 1 or offset < 0:
        raise _bad("limit must be >= 1 and offset >= 0")
    return offset, min(limit, MAX_LIMIT)


def _values(req: Request, name: str, *, many: bool) -> frozenset[str] | None:
    """The accepted values of a filter. `many` filters take repeated keys, comma-separated
    lists, or both; the others take the first value."""
    raw = req.query_all.get(name)
    if not raw:
        return None
    if not many:
        return frozenset(raw[:1])
    return frozenset(v.strip() for value in raw for v in value.split(",") if v.strip())


def _versions(req: Request, name: str) -> frozenset[int] | None:
    """Deployment version numbers: the SDK sends them as floats ("3.0"), people as "3"."""
    values = _values(req, name, many=True)
    return None if values is None else frozenset(_whole(v, name) for v in values)


def _whole(raw: str, name: str) -> int:
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise _bad(f"query parameter {name} takes whole numbers, e.g. 3 or 3.0; not {raw!r}")
    return int(number)


def _filters(req: Request, spec: Mapping[str, tuple[str, bool]]) -> dict[str, Any]:
    """{object field: accepted values} for the query parameters given in spec
    (parameter -> (object field, comma list allowed))."""
    found = {fld: _values(req, param, many=many) for param, (fld, many) in spec.items()}
    return {fld: values for fld, values in found.items() if values is not None}


def _listing(
    state: SandboxState, kind: str, total_and_items: tuple[int, list[Obj]], offset: int, limit: int
) -> Reply:
    total, items = total_and_items
    pagination = {"total": total, "offset": offset, "limit": limit}
    body = {
        "data": [served(state.profile, kind, item) for item in items],
        "pagination": served(state.profile, "pagination", pagination),
    }
    return Reply(200, envelope(state.profile, body))


def _one(state: SandboxState, kind: str, obj: Obj, status: int = 200) -> Reply:
    return Reply(status, envelope(state.profile, {"data": served(state.profile, kind, obj)}))


def _object(body: Any, name: str) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise _bad(f"{name} must be a JSON object")
    return body


def _optional_str(body: Mapping[str, Any], key: str, where: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad(f"{where}{key} must be a string")
    return value


# ------------------------------------------------------------------ handlers

_WORKSPACE_FILTERS = {
    "fqn": ("fqn", False),
    "clusterId": ("clusterId", False),
    "name": ("name", False),
}
_APP_FILTERS = {
    "workspaceId": ("workspaceId", True),
    "workspaceFqn": ("workspaceFqn", True),
    "applicationId": ("id", True),
    "fqn": ("fqn", True),
    "applicationName": ("name", False),
    "applicationType": ("type", False),
}


def list_workspaces(state: SandboxState, req: Request) -> Reply:
    offset, limit = _page(req)
    found = state.list_workspaces(_filters(req, _WORKSPACE_FILTERS), offset, limit)
    return _listing(state, "workspace", found, offset, limit)


def get_workspace(state: SandboxState, req: Request) -> Reply:
    return _one(state, "workspace", state.get_workspace(req.params["id"]))


def list_apps(state: SandboxState, req: Request) -> Reply:
    offset, limit = _page(req)
    clusters = _values(req, "clusterId", many=True)
    found = state.list_apps(_filters(req, _APP_FILTERS), clusters, offset, limit)
    return _listing(state, "application", found, offset, limit)


def get_app(state: SandboxState, req: Request) -> Reply:
    return _one(state, "application", state.get_app(req.params["id"]))


def list_deployments(state: SandboxState, req: Request) -> Reply:
    offset, limit = _page(req)
    filters: dict[str, Any] = _filters(req, {"deploymentId": ("id", True)})
    versions = _versions(req, "version")
    if versions is not None:
        filters["version"] = versions
    found = state.list_deployments(req.params["id"], filters, offset, limit)
    return _listing(state, "deployment", found, offset, limit)


def get_deployment(state: SandboxState, req: Request) -> Reply:
    deployment = state.get_deployment(req.params["id"], req.params["deployment"])
    return _one(state, "deployment", deployment)


def list_runs(state: SandboxState, req: Request) -> Reply:
    offset, limit = _page(req)
    sort_by = req.query.get("sortBy", "startTime")
    order = req.query.get("order", "desc").lower()
    if sort_by not in RUN_SORT_FIELDS or order not in ("asc", "desc"):
        allowed = ", ".join(RUN_SORT_FIELDS)
        raise _bad(f"sortBy must be one of {allowed}; order asc or desc")
    query = RunQuery(
        statuses=_values(req, "status", many=True),
        versions=_versions(req, "versionNumbers"),
        triggered_by=_values(req, "triggeredBy", many=True),
        search_prefix=req.query.get("searchPrefix"),
        sort_by=sort_by,
        descending=order == "desc",
    )
    found = state.list_runs(req.params["app"], query, offset, limit)
    return _listing(state, "run", found, offset, limit)


def get_run(state: SandboxState, req: Request) -> Reply:
    return _one(state, "run", state.get_run(req.params["app"], req.params["name"]))


def put_app(state: SandboxState, req: Request) -> Reply:
    body = _object(req.body, "request body")
    if body.get("triggerOnDeploy"):
        raise _bad("triggerOnDeploy is not supported by the sandbox")
    created, deployment = state.put_app(body.get("manifest"), dry_run=bool(body.get("dryRun")))
    return _one(state, "deployment", deployment, 201 if created else 200)


def trigger(state: SandboxState, req: Request) -> Reply:
    body = _object(req.body, "request body")
    given = _object(body.get("input"), "input")
    metadata = _object(body.get("metadata"), "metadata")
    run = state.trigger(
        application_id=_optional_str(body, "applicationId", ""),
        deployment_id=_optional_str(body, "deploymentId", ""),
        command=_optional_str(given, "command", "input."),
        params=_object(given.get("params"), "input.params"),
        alias=_optional_str(metadata, "job_run_name_alias", "metadata."),
    )
    answer = {
        "message": "Job run triggered",
        "jobRunName": run["name"],
        "data": served(state.profile, "run", run),
    }
    return Reply(200, envelope(state.profile, answer))


def terminate(state: SandboxState, req: Request) -> Reply:
    deployment_id, run_name = req.query.get("deploymentId"), req.query.get("jobRunName")
    if deployment_id is None or run_name is None:
        raise _bad("query parameters deploymentId and jobRunName are required")
    run = state.terminate(deployment_id, run_name)
    answer = {"message": "Termination requested", "jobRunStatus": run["status"]}
    return Reply(200, envelope(state.profile, answer))


# ------------------------------------------------------------------ routing

_ROUTES: tuple[tuple[str, str, str, Handler], ...] = (
    ("GET", "/workspaces", "list_workspaces", list_workspaces),
    ("GET", "/workspaces/(?P<id>[^/]+)", "get_workspace", get_workspace),
    ("GET", "/apps", "list_apps", list_apps),
    ("PUT", "/apps", "put_app", put_app),
    ("GET", "/apps/(?P<id>[^/]+)", "get_app", get_app),
    ("GET", "/apps/(?P<id>[^/]+)/deployments", "list_deployments", list_deployments),
    (
        "GET",
        "/apps/(?P<id>[^/]+)/deployments/(?P<deployment>[^/]+)",
        "get_deployment",
        get_deployment,
    ),
    ("POST", "/jobs/trigger", "trigger", trigger),
    ("POST", "/jobs/terminate", "terminate", terminate),
    ("GET", "/jobs/(?P<app>[^/]+)/runs", "list_runs", list_runs),
    ("GET", "/jobs/(?P<app>[^/]+)/runs/(?P<name>[^/]+)", "get_run", get_run),
)
_COMPILED = tuple(
    (method, re.compile(re.escape(API_PREFIX) + pattern), name, handler)
    for method, pattern, name, handler in _ROUTES
)
ENDPOINTS = tuple(dict.fromkeys(name for _, _, name, _ in _ROUTES))
WRITE_ENDPOINTS = frozenset({"put_app", "trigger", "terminate"})


def _refuse(status: int, message: str) -> Handler:
    def handler(_state: SandboxState, _req: Request) -> Reply:
        raise SandboxError(status, message, "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED")

    return handler


def resolve(method: str, path: str) -> tuple[str, Handler, dict[str, str]]:
    """(endpoint name, handler, path parameters); an unknown route gets a handler answering
    404 (or 405 when the path exists with another method)."""
    path_known = False
    for route_method, pattern, name, handler in _COMPILED:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if route_method == method:
            return name, handler, {k: unquote(v) for k, v in match.groupdict().items()}
        path_known = True
    if path_known:
        return UNKNOWN_ENDPOINT, _refuse(405, f"{method} is not allowed on {path}"), {}
    return UNKNOWN_ENDPOINT, _refuse(404, f"no endpoint {method} {path}"), {}

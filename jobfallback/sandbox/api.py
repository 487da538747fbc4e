"""The TrueFoundry endpoints the sandbox serves (shared/truefoundry-api.md): routing, query
parsing, paging and the answer envelopes. No sockets here: a handler takes a Request and
returns a Reply, or raises SandboxError."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from jobfallback.sandbox.state import RUN_SORT_FIELDS, Obj, SandboxError, SandboxState

API_PREFIX = "/api/svc/v1"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
UNKNOWN_ENDPOINT = "unknown"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # the first value of each parameter
    body: Any
    params: dict[str, str] = field(default_factory=dict)  # path parameters, URL-decoded


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


def split_target(target: str) -> tuple[str, dict[str, str]]:
    """The path and query of a request target; an empty parameter counts as absent."""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return parts.path.rstrip("/") or "/", query


# ------------------------------------------------------------------ query helpers


def _int(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SandboxError(
            400, f"query parameter {name} must be a whole number", "BAD_REQUEST"
        ) from None


def _page(query: Mapping[str, str]) -> tuple[int, int]:
    limit, offset = _int(query, "limit", DEFAULT_LIMIT), _int(query, "offset", 0)
    if limit < 1 or offset < 0:
        raise SandboxError(400, "limit must be >= 1 and offset >= 0", "BAD_REQUEST")
    return offset, min(limit, MAX_LIMIT)


def _values(query: Mapping[str, str], name: str, *, many: bool) -> frozenset[str] | None:
    """The accepted values of a filter; `many` filters take a comma-separated list."""
    raw = query.get(name)
    if raw is None:
        return None
    return frozenset(v.strip() for v in raw.split(",") if v.strip()) if many else frozenset([raw])


def _filters(query: Mapping[str, str], spec: Mapping[str, tuple[str, bool]]) -> dict[str, Any]:
    """{object field: accepted values} for the query parameters given in spec
    (parameter -> (object field, comma list allowed))."""
    found = {fld: _values(query, param, many=many) for param, (fld, many) in spec.items()}
    return {fld: values for fld, values in found.items() if values is not None}


def _listing(total_and_items: tuple[int, list[Obj]], offset: int, limit: int) -> Reply:
    total, items = total_and_items
    pagination = {"total": total, "offset": offset, "limit": limit}
    return Reply(200, {"data": items, "pagination": pagination})


def _object(body: Any, name: str) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise SandboxError(400, f"{name} must be a JSON object", "BAD_REQUEST")
    return body


def _optional_str(body: Mapping[str, Any], key: str, where: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise SandboxError(400, f"{where}{key} must be a string", "BAD_REQUEST")
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
    offset, limit = _page(req.query)
    return _listing(
        state.list_workspaces(_filters(req.query, _WORKSPACE_FILTERS), offset, limit), offset, limit
    )


def get_workspace(state: SandboxState, req: Request) -> Reply:
    return Reply(200, {"data": state.get_workspace(req.params["id"])})


def list_apps(state: SandboxState, req: Request) -> Reply:
    offset, limit = _page(req.query)
    filters = _filters(req.query, _APP_FILTERS)
    clusters = _values(req.query, "clusterId", many=True)
    return _listing(state.list_apps(filters, clusters, offset, limit), offset, limit)


def get_app(state: SandboxState, req: Request) -> Reply:
    return Reply(200, {"data": state.get_app(req.params["id"])})


def list_runs(state: SandboxState, req: Request) -> Reply:
    offset, limit = _page(req.query)
    sort_by = req.query.get("sortBy", "createdAt")
    order = req.query.get("order", "desc").lower()
    if sort_by not in RUN_SORT_FIELDS or order not in ("asc", "desc"):
        allowed = ", ".join(sorted(RUN_SORT_FIELDS))
        raise SandboxError(
            400, f"sortBy must be one of {allowed}; order asc or desc", "BAD_REQUEST"
        )
    page = state.list_runs(
        req.params["app"],
        statuses=_values(req.query, "status", many=True),
        search_prefix=req.query.get("searchPrefix"),
        sort_by=sort_by,
        descending=order == "desc",
        offset=offset,
        limit=limit,
    )
    return _listing(page, offset, limit)


def get_run(state: SandboxState, req: Request) -> Reply:
    return Reply(200, {"data": state.get_run(req.params["app"], req.params["name"])})


def put_app(state: SandboxState, req: Request) -> Reply:
    body = _object(req.body, "request body")
    if body.get("triggerOnDeploy"):
        raise SandboxError(400, "triggerOnDeploy is not supported by the sandbox", "BAD_REQUEST")
    created, deployment = state.put_app(body.get("manifest"), dry_run=bool(body.get("dryRun")))
    return Reply(201 if created else 200, {"data": deployment})


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
    return Reply(200, {"message": "Job run triggered", "jobRunName": run["name"], "data": run})


def terminate(state: SandboxState, req: Request) -> Reply:
    deployment_id, run_name = req.query.get("deploymentId"), req.query.get("jobRunName")
    if deployment_id is None or run_name is None:
        raise SandboxError(
            400, "query parameters deploymentId and jobRunName are required", "BAD_REQUEST"
        )
    run = state.terminate(deployment_id, run_name)
    return Reply(200, {"message": "Termination requested", "jobRunStatus": run["status"]})


# ------------------------------------------------------------------ routing

_ROUTES: tuple[tuple[str, str, str, Handler], ...] = (
    ("GET", "/workspaces", "list_workspaces", list_workspaces),
    ("GET", "/workspaces/(?P<id>[^/]+)", "get_workspace", get_workspace),
    ("GET", "/apps", "list_apps", list_apps),
    ("PUT", "/apps", "put_app", put_app),
    ("GET", "/apps/(?P<id>[^/]+)", "get_app", get_app),
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

"""TrueFoundryClient: one method per endpoint of the contract, with pagination and retries.

`concurrency` one-connection httpx clients per client object (see connections.py for why),
lent one per request, so at most `concurrency` requests are in flight. Every attempt is counted
in `calls`, every retry in `retries`.

No answer can hold or flood a sweep: each attempt, from connect to last byte, ends within its
deadline (a server dripping its answer byte by byte never resets a read timeout for long), and
a body is read up to MAX_BODY_BYTES only (a larger one fails the attempt before it is parsed).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import RetryCallState

from jobfallback.logs import event, get_logger
from jobfallback.models import Application, Deployment, JobRun, Workspace, version_text
from jobfallback.truefoundry.connections import ConnectionSlots, one_connection_client
from jobfallback.truefoundry.errors import (
    ApiError,
    TransportError,
    bad_response,
    error_from_response,
    transport_error,
    where,
)
from jobfallback.truefoundry.retry import RetryPolicy, parse_retry_after, retrying

log = get_logger("truefoundry")

M = TypeVar("M", bound=BaseModel)

_API = "/api/svc/v1"
# The largest answer read: a page of 100 applications with their manifests is well under 1 MiB.
MAX_BODY_BYTES = 8 * 1024 * 1024


class TerminateOutcome(StrEnum):
    REQUESTED = "requested"
    REFUSED = "refused"  # 417


def run_alias(source_run_id: str) -> str:
    """The alias of the destination run of a move: derived from the source run id only, so a
    later pass finds the run it triggered. Fixed length, so no alias is a prefix of another."""
    return "fb-" + hashlib.sha256(source_run_id.encode()).hexdigest()[:16]


class _Answer(NamedTuple):
    response: httpx.Response
    body: Any


def _segment(value: str) -> str:
    """One path segment, "/" and all escaped. The ids "." and ".." are refused: escaped or not,
    a server or proxy that normalises the path would read them as another endpoint."""
    if value in (".", ".."):
        raise ApiError(
            f"refused the id {value!r}: as a path segment it names another endpoint",
            endpoint="path",
        )
    return quote(value, safe="")


def _query(**params: str | int | None) -> dict[str, str | int]:
    return {name: value for name, value in params.items() if value is not None}


# A shape check: the problem with an answer's body, or None when it has the expected shape.
Shape = Callable[[Any], str | None]


def _data_list(body: Any) -> str | None:
    ok = isinstance(body, dict) and isinstance(body.get("data"), list)
    return None if ok else "answer has no `data` list"


def _data_object(body: Any) -> str | None:
    ok = isinstance(body, dict) and isinstance(body.get("data"), dict)
    return None if ok else "answer has no `data` object"


def _run_status(body: Any) -> str | None:
    # Only an answer naming the run's new status proves a terminate was taken.
    ok = isinstance(body, dict) and isinstance(body.get("jobRunStatus"), str)
    return None if ok else "answer has no `jobRunStatus`"


def _first_error(exc: ValidationError) -> str:
    # Never the input value: manifests may carry secrets in `env`.
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "item"
    return f"{field}: {error['msg']}"


class TrueFoundryClient:
    def __init__(
        self,
        host: str,
        token: str,
        *,
        concurrency: int = 16,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  (frozen, so sharing it is safe)
        page_size: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._host = host.rstrip("/")
        self._token = token
        self._deadline = read_timeout  # each attempt, connect to last byte
        self._concurrency = concurrency
        self._retry = retry
        self._page_size = page_size
        self._slots = ConnectionSlots(
            concurrency,
            one_connection_client(
                self._host,
                {"Authorization": f"Bearer {token}", "Accept": "application/json"},
                httpx.Timeout(read_timeout, connect=connect_timeout),
                transport,
            ),
        )
        self.calls: collections.Counter[str] = collections.Counter()
        self.retries: collections.Counter[str] = collections.Counter()
        # (endpoint, "2xx".."5xx") of each attempt that got an answer; `calls` minus these are
        # the attempts that got none (the metrics' status_class "none").
        self.answered: collections.Counter[tuple[str, str]] = collections.Counter()
        self.skipped_items: list[str] = []

    def __repr__(self) -> str:
        return f"TrueFoundryClient(host={self._host!r}, concurrency={self._concurrency})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._slots.aclose()

    # ------------------------------------------------------------ workspaces

    def list_workspaces(
        self, *, fqn: str | None = None, cluster_id: str | None = None, name: str | None = None
    ) -> AsyncIterator[Workspace]:
        params = _query(fqn=fqn, clusterId=cluster_id, name=name)
        return self._paginate("list_workspaces", f"{_API}/workspaces", params, Workspace)

    async def get_workspace(self, workspace_id: str) -> Workspace:
        path = f"{_API}/workspaces/{_segment(workspace_id)}"
        return await self._get_one("get_workspace", path, Workspace)

    # ------------------------------------------------------------ applications

    def list_applications(
        self,
        *,
        workspace_id: str | None = None,
        cluster_id: str | None = None,
        application_type: str | None = "job",
    ) -> AsyncIterator[Application]:
        # No `applicationId` list filter: the vendor documents it as one id, so a server may
        # read "a,b" as no match at all. Callers pick jobs out of the workspace's listing.
        params = _query(
            workspaceId=workspace_id, clusterId=cluster_id, applicationType=application_type
        )
        return self._paginate("list_apps", f"{_API}/apps", params, Application)

    async def get_application(self, application_id: str) -> Application:
        path = f"{_API}/apps/{_segment(application_id)}"
        return await self._get_one("get_app", path, Application)

    async def find_application(self, workspace_fqn: str, name: str) -> Application | None:
        """The application named `name` in a workspace, of any type, or None. Strict: an
        answer it cannot read raises, because "not there" decides whether to create one."""
        params = _query(workspaceFqn=workspace_fqn, applicationName=name)
        found = [
            app
            async for app in self._paginate(
                "find_app", f"{_API}/apps", params, Application, strict=True
            )
            if app.name == name and app.workspace_fqn in (None, workspace_fqn)
        ]
        return found[0] if found else None

    async def get_deployment(self, application_id: str, deployment_id: str) -> Deployment:
        """One version of an application, with its manifest."""
        path = f"{_API}/apps/{_segment(application_id)}/deployments/{_segment(deployment_id)}"
        return await self._get_one("get_deployment", path, Deployment)

    def list_deployments(
        self, application_id: str, *, version: str | None = None
    ) -> AsyncIterator[Deployment]:
        """An application's versions (newest first, as the vendor lists them), or the one
        numbered `version`. Strict: these answers decide what is copied and whose a job is."""
        path = f"{_API}/apps/{_segment(application_id)}/deployments"
        params = _query(version=version)
        return self._paginate("list_deployments", path, params, Deployment, strict=True)

    async def put_application(self, manifest: dict[str, Any]) -> Deployment:
        """Create the application, or a new version of it."""
        payload = {
            "manifest": manifest,
            "dryRun": False,
            "forceDeploy": False,
            "triggerOnDeploy": False,
        }
        answer = await self._send(
            "put_app", "PUT", f"{_API}/apps", json=payload, shape=_data_object
        )
        return self._model(answer, "put_app", Deployment)

    # ------------------------------------------------------------ job runs

    def list_job_runs(
        self,
        application_id: str,
        *,
        status: str | None = None,
        search_prefix: str | None = None,
        version: float | None = None,
        strict: bool = False,
    ) -> AsyncIterator[JobRun]:
        """Runs of a job, oldest first (a run created while the listing is paged then lands on
        the last page instead of shifting every page). A server may still repeat an item:
        callers deduplicate by run id. `strict` raises on an item it cannot read instead of
        skipping it, for look-ups whose "not found" would lead to an action."""
        path = f"{_API}/jobs/{_segment(application_id)}/runs"
        params = _query(
            status=status,
            searchPrefix=search_prefix,
            versionNumbers=None if version is None else version_text(version),
            sortBy="startTime",
            order="asc",
        )
        return self._paginate("list_runs", path, params, JobRun, strict=strict)

    async def get_job_run(self, application_id: str, run_name: str) -> JobRun:
        path = f"{_API}/jobs/{_segment(application_id)}/runs/{_segment(run_name)}"
        return await self._get_one("get_run", path, JobRun)

    async def trigger_job(
        self,
        deployment_id: str,
        *,
        command: str | None,
        params: dict[str, Any] | None,
        alias: str,
    ) -> JobRun:
        """Trigger a run of one deployment version. Not idempotent: retried only when the
        request never left."""
        run_input: dict[str, Any] = {}
        if command is not None:
            run_input["command"] = command
        if params is not None:
            run_input["params"] = params
        payload = {
            "deploymentId": deployment_id,
            "input": run_input,
            "metadata": {"job_run_name_alias": alias},
        }
        answer = await self._send(
            "trigger",
            "POST",
            f"{_API}/jobs/trigger",
            json=payload,
            idempotent=False,
            shape=_data_object,
        )
        return self._model(answer, "trigger", JobRun)

    async def terminate_job_run(self, deployment_id: str, run_name: str) -> TerminateOutcome:
        params = _query(deploymentId=deployment_id, jobRunName=run_name)
        try:
            # Not retried after an attempt that may have applied: a 417 on a retry would then
            # answer for our own earlier terminate, and the move reads a 417 as "not applied".
            await self._send(
                "terminate",
                "POST",
                f"{_API}/jobs/terminate",
                params=params,
                idempotent=False,
                shape=_run_status,
            )
        except ApiError as exc:
            # 417: the server will not terminate the run now. Its cause is undocumented, so
            # the caller re-reads the run rather than assuming it has ended.
            if exc.status == 417:
                return TerminateOutcome.REFUSED
            raise
        return TerminateOutcome.REQUESTED

    # ------------------------------------------------------------ plumbing

    async def _paginate(
        self,
        endpoint: str,
        path: str,
        params: dict[str, str | int],
        model: type[M],
        *,
        strict: bool = False,
    ) -> AsyncIterator[M]:
        offset = 0
        while True:
            page = {**params, "limit": self._page_size, "offset": offset}
            answer = await self._send(endpoint, "GET", path, params=page, shape=_data_list)
            body = answer.body
            items: list[Any] = body["data"]
            for index, item in enumerate(items, start=offset):
                if strict:
                    yield self._model(_Answer(answer.response, {"data": item}), endpoint, model)
                    continue
                parsed = self._item(endpoint, model, item, index)
                if parsed is not None:
                    yield parsed
            offset += len(items)
            pagination = body.get("pagination")
            total = pagination.get("total") if isinstance(pagination, dict) else None
            if not items or (isinstance(total, int) and offset >= total):
                return

    def _item(self, endpoint: str, model: type[M], item: Any, index: int) -> M | None:
        try:
            return model.model_validate(item)
        except ValidationError as exc:
            item_id = item.get("id") if isinstance(item, dict) else None
            name = f"id={item_id}" if isinstance(item_id, str) else f"index={index}"
            description = f"{endpoint} item {name}: {_first_error(exc)}"
            self.skipped_items.append(description)
            event(
                log,
                logging.WARNING,
                "api.item_skipped",
                "skipped a malformed item",
                endpoint=endpoint,
                detail=description,
            )
            return None

    async def _get_one(self, endpoint: str, path: str, model: type[M]) -> M:
        answer = await self._send(endpoint, "GET", path, shape=_data_object)
        return self._model(answer, endpoint, model)

    def _model(self, answer: _Answer, endpoint: str, model: type[M]) -> M:
        """The `data` object of an answer whose shape was checked (`_data_object`)."""
        try:
            return model.model_validate(answer.body["data"])
        except ValidationError as exc:
            reason = f"`data` is not a {model.__name__}: {_first_error(exc)}"
            raise bad_response(answer.response, endpoint, reason) from exc

    async def _send(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
        idempotent: bool = True,
        shape: Shape | None = None,
    ) -> _Answer:
        """One call with retries. `shape` checks the body inside each attempt, so a wrong-shaped
        answer (a proxy's page, a broken server) is retried like a garbled one when safe."""
        attempts = itertools.count(1)

        async def attempt() -> _Answer:
            answer = await self._attempt(endpoint, method, path, params, json, next(attempts))
            problem = shape(answer.body) if shape is not None else None
            if problem is not None:
                raise bad_response(answer.response, endpoint, problem)
            return answer

        def before_sleep(state: RetryCallState) -> None:
            self.retries[endpoint] += 1
            exc = state.outcome.exception() if state.outcome else None
            event(
                log,
                logging.WARNING,
                "api.retry",
                "API request failed; retrying",
                endpoint=endpoint,
                error=str(exc),
                attempt=state.attempt_number,
                max_attempts=self._retry.max_attempts,
                wait_seconds=round(state.upcoming_sleep, 2),
            )

        policy = retrying(self._retry, idempotent=idempotent, before_sleep=before_sleep)
        return await policy(attempt)

    async def _attempt(
        self,
        endpoint: str,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
        json: dict[str, Any] | None,
        attempt: int,
    ) -> _Answer:
        self.calls[endpoint] += 1
        async with self._slots.lend() as http:
            request = http.build_request(method, path, params=params, json=json)
            try:
                async with asyncio.timeout(self._deadline):
                    response, too_large = await _read_capped(http, request)
            except TimeoutError:
                # Like a read timeout: a read is tried again, a write may have applied.
                cause = httpx.ReadTimeout("attempt deadline", request=request)
                raise TransportError(
                    f"{where(request)}: no complete answer within {self._deadline:g}s",
                    endpoint=endpoint,
                ) from cause
            except httpx.TransportError as exc:
                raise transport_error(exc, endpoint, secret=self._token) from exc
        self.answered[endpoint, f"{response.status_code // 100}xx"] += 1
        if log.isEnabledFor(logging.DEBUG):  # formatting every request's line costs when unused
            event(
                log,
                logging.DEBUG,
                "api.request",
                "API request answered",
                request=where(response.request),
                endpoint=endpoint,
                status=response.status_code,
                attempt=attempt,
            )
        if too_large:
            raise bad_response(response, endpoint, f"body over {MAX_BODY_BYTES} bytes, not read")
        if not response.is_success:
            raise error_from_response(
                response,
                endpoint,
                secret=self._token,
                retry_after=parse_retry_after(response.headers),
            )
        try:
            return _Answer(response, response.json())
        except (ValueError, RecursionError) as exc:
            raise bad_response(response, endpoint, "body is not JSON") from exc


async def _read_capped(
    http: httpx.AsyncClient, request: httpx.Request
) -> tuple[httpx.Response, bool]:
    """The answer with its (decoded, so a compressed bomb counts at its real size) body read
    up to MAX_BODY_BYTES, and whether there was more: then the body is left empty and the rest
    is never read (the connection is closed, not drained)."""
    response = await http.send(request, stream=True)
    body = bytearray()
    try:
        declared = response.headers.get("content-length", "")
        too_large = declared.isdigit() and int(declared) > MAX_BODY_BYTES
        if not too_large:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    too_large = True
                    break
    finally:
        await response.aclose()
    # A plain in-memory answer; the body is decoded already, so without Content-Encoding.
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "content-encoding"]
    extensions = {k: v for k, v in response.extensions.items() if k == "reason_phrase"}
    content = b"" if too_large else bytes(body)
    answer = httpx.Response(
        response.status_code,
        headers=headers,
        content=content,
        request=request,
        extensions=extensions,
    )
    return answer, too_large

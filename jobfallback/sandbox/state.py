"""The sandbox's in-memory TrueFoundry state: clusters, workspaces, applications, runs.

Objects are stored as the camelCase dicts the API serves (deployment manifests keep their
snake_case keys), so answering a request is a copy, not a translation. One lock guards
everything; every method that returns objects returns deep copies, so callers never see
(or cause) a half-applied change.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from jobfallback.models import RunStatus

Obj = dict[str, Any]

TERMINABLE = frozenset({RunStatus.CREATED, RunStatus.SCHEDULED, RunStatus.RUNNING})
_ENDED = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.TERMINATED})
RUN_SORT_FIELDS = frozenset({"createdAt", "endTime", "name", "status", "id"})


class SandboxError(Exception):
    """An API error: the handler answers it as `{"statusCode", "message", "code"}`."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> Obj:
        return {"statusCode": self.status, "message": self.message, "code": self.code}


def wall_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    """Workspaces and applications carry ISO timestamps; only runs use epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _matches(obj: Obj, filters: Mapping[str, Collection[str]]) -> bool:
    return all(obj.get(field) in allowed for field, allowed in filters.items())


class SandboxState:
    """All objects of one sandbox. `now_ms` is the reference time the scenario was built at;
    `clock` stamps objects created later (through the API)."""

    def __init__(self, *, now_ms: int | None = None, clock: Callable[[], int] = wall_ms) -> None:
        self.now_ms = clock() if now_ms is None else now_ms
        self.configs: list[Obj] = []  # fallback configs (camelCase) that fit this state
        self._clock = clock
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._clusters: dict[str, Obj] = {}
        self._workspaces: dict[str, Obj] = {}
        self._apps: dict[str, Obj] = {}
        self._deployments: dict[str, Obj] = {}
        self._runs: dict[str, Obj] = {}
        self._runs_by_app: dict[str, dict[str, Obj]] = {}  # application id -> run name -> run
        self._apps_by_ws: dict[str, list[Obj]] = {}  # a sweep lists apps one workspace at a time
        self._deployments_by_app: dict[str, list[Obj]] = {}  # oldest version first

    # ------------------------------------------------------------ building (scenarios, tests)

    def add_cluster(self, cluster_id: str) -> Obj:
        with self._lock:
            self._require_new(self._clusters, cluster_id, "cluster")
            self._clusters[cluster_id] = {"id": cluster_id}
            return {"id": cluster_id}

    def add_workspace(
        self,
        *,
        name: str,
        cluster_id: str,
        id: str | None = None,
        has_capacity: bool = False,
        tenant_name: str = "sandbox",
    ) -> Obj:
        with self._lock:
            if cluster_id not in self._clusters:
                raise ValueError(f"workspace {name}: unknown cluster {cluster_id!r}; add it first")
            ws_id = self._new_id("ws", self._workspaces, id)
            stamp = iso(self.now_ms)
            self._workspaces[ws_id] = {
                "id": ws_id,
                "fqn": f"{cluster_id}:{name}",
                "name": name,
                "clusterId": cluster_id,
                "tenantName": tenant_name,
                "hasCapacity": has_capacity,
                "createdAt": stamp,
                "updatedAt": stamp,
            }
            return copy.deepcopy(self._workspaces[ws_id])

    def add_application(
        self,
        *,
        workspace_id: str,
        name: str,
        manifest: Mapping[str, Any] | None = None,
        app_type: str = "job",
        id: str | None = None,
    ) -> Obj:
        """An application with its first deployment; the manifest gets type, name and
        workspace_fqn filled in when missing."""
        with self._lock:
            ws = self._workspaces.get(workspace_id)
            if ws is None:
                raise ValueError(f"application {name}: unknown workspace {workspace_id!r}")
            full = {"type": app_type, "name": name, "workspace_fqn": ws["fqn"], **(manifest or {})}
            app = self._create_app(ws, full, id, self.now_ms)
            return self._app_view(app)

    def add_run(
        self,
        *,
        application_id: str,
        name: str | None = None,
        status: str = RunStatus.CREATED,
        created_at: int | None = None,
        command: str | None = None,
        params: Mapping[str, Any] | None = None,
        alias: str | None = None,
        id: str | None = None,
    ) -> Obj:
        with self._lock:
            app = self._get(self._apps, application_id, "application")
            deployment = self._deployments[app["lastDeploymentId"]]
            run = self._create_run(
                app,
                deployment,
                name=name,
                status=status,
                created_at=self.now_ms if created_at is None else created_at,
                command=command,
                params=params,
                alias=alias,
                run_id=id,
            )
            return copy.deepcopy(run)

    # ------------------------------------------------------------ queries for tests

    def runs(
        self,
        *,
        application_id: str | None = None,
        workspace_id: str | None = None,
        status: str | None = None,
    ) -> list[Obj]:
        with self._lock:
            found = [
                run
                for run in self._runs.values()
                if (application_id is None or run["applicationId"] == application_id)
                and (
                    workspace_id is None
                    or self._apps[run["applicationId"]]["workspaceId"] == workspace_id
                )
                and (status is None or run["status"] == status)
            ]
            return copy.deepcopy(found)

    def run(self, run_id: str) -> Obj | None:
        with self._lock:
            return copy.deepcopy(self._runs.get(run_id))

    def set_run_status(self, run_id: str, status: str) -> None:
        with self._lock:
            run = self._get(self._runs, run_id, "run")
            run["status"] = status
            if status in _ENDED and run["endTime"] is None:
                run["endTime"] = self._clock()

    def application_by_name(self, workspace_id: str, name: str) -> Obj | None:
        with self._lock:
            app = self._app_named(workspace_id, name)
            return None if app is None else self._app_view(app)

    def workspaces(self) -> list[Obj]:
        with self._lock:
            return copy.deepcopy(list(self._workspaces.values()))

    def applications(self, *, workspace_id: str | None = None) -> list[Obj]:
        with self._lock:
            return [
                self._app_view(app)
                for app in self._apps.values()
                if workspace_id is None or app["workspaceId"] == workspace_id
            ]

    def snapshot(self) -> Obj:
        with self._lock:
            return {
                "nowMs": self.now_ms,
                "clusters": copy.deepcopy(list(self._clusters.values())),
                "workspaces": copy.deepcopy(list(self._workspaces.values())),
                "applications": [
                    {
                        **copy.deepcopy(app),
                        "deployments": copy.deepcopy(self._deployments_by_app[app["id"]]),
                    }
                    for app in self._apps.values()
                ],
                "runs": copy.deepcopy(list(self._runs.values())),
                "configs": copy.deepcopy(self.configs),
            }

    # ------------------------------------------------------------ the API's operations

    def list_workspaces(
        self, filters: Mapping[str, Collection[str]], offset: int, limit: int
    ) -> tuple[int, list[Obj]]:
        with self._lock:
            found = [ws for ws in self._workspaces.values() if _matches(ws, filters)]
            return len(found), copy.deepcopy(found[offset : offset + limit])

    def get_workspace(self, workspace_id: str) -> Obj:
        with self._lock:
            return copy.deepcopy(self._get(self._workspaces, workspace_id, "workspace"))

    def list_apps(
        self,
        filters: Mapping[str, Collection[str]],
        cluster_ids: Collection[str] | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Obj]]:
        """Applications have no clusterId of their own: that filter goes through the workspace."""
        with self._lock:
            ws_ids = filters.get("workspaceId", ())
            candidates = (
                self._apps_by_ws.get(next(iter(ws_ids)), [])
                if len(ws_ids) == 1
                else self._apps.values()
            )
            found = [
                app
                for app in candidates
                if _matches(app, filters)
                and (
                    cluster_ids is None
                    or self._workspaces[app["workspaceId"]]["clusterId"] in cluster_ids
                )
            ]
            return len(found), [self._app_view(app) for app in found[offset : offset + limit]]

    def get_app(self, application_id: str) -> Obj:
        with self._lock:
            return self._app_view(self._get(self._apps, application_id, "application"))

    def list_runs(
        self,
        application_id: str,
        *,
        statuses: Collection[str] | None,
        search_prefix: str | None,
        sort_by: str,
        descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Obj]]:
        with self._lock:
            self._get(self._apps, application_id, "application")
            found = [
                run
                for run in self._runs_by_app[application_id].values()
                if (statuses is None or run["status"] in statuses)
                and (search_prefix is None or _has_prefix(run, search_prefix))
            ]
            # None (a run without an endTime) sorts first ascending; the id breaks ties so
            # pages never overlap.
            found.sort(
                key=lambda r: (r[sort_by] is not None, r[sort_by], r["id"]), reverse=descending
            )
            return len(found), copy.deepcopy(found[offset : offset + limit])

    def get_run(self, application_id: str, run_name: str) -> Obj:
        with self._lock:
            self._get(self._apps, application_id, "application")
            return copy.deepcopy(self._run_named(application_id, run_name))

    def put_app(self, manifest: Any, *, dry_run: bool) -> tuple[bool, Obj]:
        """Create the job in manifest["workspace_fqn"], or add a deployment version to the
        application of that name. Returns (created, deployment)."""
        name, ws_fqn = _check_manifest(manifest)
        with self._lock:
            ws = next((w for w in self._workspaces.values() if w["fqn"] == ws_fqn), None)
            if ws is None:
                raise SandboxError(
                    404, f"workspace {ws_fqn!r} (manifest.workspace_fqn) not found", "NOT_FOUND"
                )
            existing = self._app_named(ws["id"], name)
            if existing is not None and existing["type"] != manifest["type"]:
                raise SandboxError(
                    409,
                    f"application {name!r} exists in {ws_fqn} as a {existing['type']}",
                    "CONFLICT",
                )
            if dry_run:
                # Validated, nothing stored: the answer only echoes what would be deployed.
                app_id = "" if existing is None else existing["id"]
                preview = {"id": "dry-run", "applicationId": app_id, "manifest": dict(manifest)}
                return existing is None, copy.deepcopy(preview)
            now = self._clock()
            if existing is None:
                app = self._create_app(ws, manifest, None, now)
                return True, copy.deepcopy(self._deployments[app["lastDeploymentId"]])
            return False, copy.deepcopy(self._add_deployment(existing, manifest, now))

    def trigger(
        self,
        *,
        application_id: str | None,
        deployment_id: str | None,
        command: str | None,
        params: Mapping[str, Any] | None,
        alias: str | None,
    ) -> Obj:
        """A new run on the deployment given, or on the application's latest one; a duplicate
        alias still creates a run (suffixed) so a client that triggers twice is visible."""
        with self._lock:
            if deployment_id is not None:
                deployment = self._get(self._deployments, deployment_id, "deployment")
                app = self._apps[deployment["applicationId"]]
            elif application_id is not None:
                app = self._get(self._apps, application_id, "application")
                deployment = self._deployments[app["lastDeploymentId"]]
            else:
                raise SandboxError(400, "give applicationId or deploymentId", "BAD_REQUEST")
            if app["type"] != "job":
                raise SandboxError(400, f"application {app['name']!r} is not a job", "BAD_REQUEST")
            has_capacity = self._workspaces[app["workspaceId"]]["hasCapacity"]
            run = self._create_run(
                app,
                deployment,
                name=alias,
                status=RunStatus.RUNNING if has_capacity else RunStatus.CREATED,
                created_at=self._clock(),
                command=command,
                params=params,
                alias=alias,
                run_id=None,
            )
            return copy.deepcopy(run)

    def terminate(self, deployment_id: str, run_name: str) -> Obj:
        with self._lock:
            deployment = self._get(self._deployments, deployment_id, "deployment")
            run = self._run_named(deployment["applicationId"], run_name)
            if run["status"] not in TERMINABLE:
                raise SandboxError(
                    417, f"run {run_name!r} is {run['status']} and cannot be terminated", "FAILED"
                )
            run["status"] = RunStatus.TERMINATION_REQUESTED
            return copy.deepcopy(run)

    # ------------------------------------------------------------ internals (lock held)

    def _new_id(self, prefix: str, table: Mapping[str, Any], wanted: str | None) -> str:
        if wanted is not None:
            self._require_new(table, wanted, prefix)
            return wanted
        while (candidate := f"{prefix}-{next(self._counter):05d}") in table:
            pass
        return candidate

    @staticmethod
    def _require_new(table: Mapping[str, Any], key: str, kind: str) -> None:
        if key in table:
            raise ValueError(f"{kind} id {key!r} is already used; ids must be unique")

    @staticmethod
    def _get(table: Mapping[str, Obj], key: str, kind: str) -> Obj:
        try:
            return table[key]
        except KeyError:
            raise SandboxError(404, f"{kind} {key!r} not found", "NOT_FOUND") from None

    def _run_named(self, application_id: str, run_name: str) -> Obj:
        run = self._runs_by_app[application_id].get(run_name)
        if run is None:
            raise SandboxError(404, f"run {run_name!r} not found in its job", "NOT_FOUND")
        return run

    def _app_named(self, workspace_id: str, name: str) -> Obj | None:
        return next(
            (
                a
                for a in self._apps.values()
                if a["workspaceId"] == workspace_id and a["name"] == name
            ),
            None,
        )

    def _app_view(self, app: Obj) -> Obj:
        """An application as the API serves it: with its active deployment embedded."""
        return copy.deepcopy({**app, "deployment": self._deployments[app["activeDeploymentId"]]})

    def _create_app(
        self, ws: Obj, manifest: Mapping[str, Any], app_id: str | None, now: int
    ) -> Obj:
        app_id = self._new_id("app", self._apps, app_id)
        name = str(manifest["name"])
        app: Obj = {
            "id": app_id,
            "fqn": f"{ws['fqn']}:{name}",
            "name": name,
            "type": str(manifest["type"]),
            "workspaceId": ws["id"],
            "workspaceFqn": ws["fqn"],
            "activeDeploymentId": None,
            "lastDeploymentId": None,
            "createdAt": iso(now),
            "updatedAt": iso(now),
        }
        self._apps[app_id] = app
        self._apps_by_ws.setdefault(ws["id"], []).append(app)
        self._runs_by_app[app_id] = {}
        self._add_deployment(app, manifest, now)
        return app

    def _add_deployment(self, app: Obj, manifest: Mapping[str, Any], now: int) -> Obj:
        versions = self._deployments_by_app.setdefault(app["id"], [])
        version = len(versions) + 1
        dep_id = self._new_id("dep", self._deployments, None)
        deployment = {
            "id": dep_id,
            "version": version,
            "fqn": f"{app['fqn']}:{version}",
            "applicationId": app["id"],
            "manifest": copy.deepcopy(dict(manifest)),
            "createdAt": iso(now),
        }
        self._deployments[dep_id] = deployment
        versions.append(deployment)
        app.update(activeDeploymentId=dep_id, lastDeploymentId=dep_id, updatedAt=iso(now))
        return deployment

    def _create_run(
        self,
        app: Obj,
        deployment: Obj,
        *,
        name: str | None,
        status: str,
        created_at: int,
        command: str | None,
        params: Mapping[str, Any] | None,
        alias: str | None,
        run_id: str | None,
    ) -> Obj:
        run_id = self._new_id("run", self._runs, run_id)
        by_name = self._runs_by_app[app["id"]]
        run_name = _free_name(name or f"{app['name']}-{run_id}", by_name)
        ended = status in _ENDED
        run: Obj = {
            "id": run_id,
            "name": run_name,
            "alias": alias,
            "applicationName": app["name"],
            "applicationId": app["id"],
            "deploymentId": deployment["id"],
            "deploymentVersion": deployment["version"],
            "createdAt": created_at,
            "endTime": created_at if ended else None,
            "duration": 0 if ended else None,
            "command": command if command is not None else _default_command(deployment),
            "params": dict(params or {}),
            "totalRetries": 0,
            "error": None,
            "status": str(status),
            "triggeredBy": "sandbox",
            "exitCode": 0 if status == RunStatus.FINISHED else None,
            "tenantName": self._workspaces[app["workspaceId"]]["tenantName"],
        }
        self._runs[run_id] = run
        by_name[run_name] = run
        return run


def _free_name(wanted: str, taken: Iterable[str]) -> str:
    names = set(taken)
    if wanted not in names:
        return wanted
    return next(f"{wanted}-{n}" for n in itertools.count(2) if f"{wanted}-{n}" not in names)


def _has_prefix(run: Obj, prefix: str) -> bool:
    return str(run["name"]).startswith(prefix) or str(run["alias"] or "").startswith(prefix)


def _default_command(deployment: Obj) -> str:
    image = deployment["manifest"].get("image")
    return str(image.get("command") or "") if isinstance(image, dict) else ""


def _check_manifest(manifest: Any) -> tuple[str, str]:
    """(name, workspace_fqn) of a job manifest, or a 400 naming the field to fix."""
    if not isinstance(manifest, Mapping):
        raise SandboxError(400, "manifest must be a JSON object", "BAD_REQUEST")
    if manifest.get("type") != "job":
        raise SandboxError(400, 'manifest.type must be "job"', "BAD_REQUEST")
    for field in ("name", "workspace_fqn"):
        if not isinstance(manifest.get(field), str) or not manifest[field].strip():
            raise SandboxError(400, f"manifest.{field} must be a non-empty string", "BAD_REQUEST")
    return manifest["name"], manifest["workspace_fqn"]

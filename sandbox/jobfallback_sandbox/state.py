"""The sandbox's in-memory TrueFoundry state: clusters, workspaces, applications, runs.

Objects are stored as the camelCase dicts of the vendor's models (deployment manifests keep
their snake_case keys), with every field the vendor's SDK requires, plus a few keys of the
sandbox's own (vendor.INTERNAL_KEYS: a run's alias, a workspace's capacity) that are never
served. One lock guards everything; every method that returns objects returns deep copies, so
callers never see (or cause) a half-applied change. The server profile (profiles.py) decides
the choices the contract leaves open: how runs are named, when searches find them, whether a
paged listing holds still, whether times have fractions.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jobfallback_sandbox.profiles import (
    ALIAS_NAME,
    FRACTIONAL_TIMES,
    IGNORE_OFFSET,
    PAGE_SHIFT,
    SEARCH_LAG,
    ProfileSpec,
    ServerProfile,
)
from jobfallback_sandbox.vendor import (
    ACCOUNT_ID,
    ENDED,
    TERMINABLE,
    Obj,
    RunStatus,
    subject,
)

# `sortBy` of the runs listing (the SDK's JobRunsSortBy) -> the run's sort key.
_RUN_SORT_KEYS: dict[str, Callable[[Obj], Any]] = {
    "startTime": lambda run: run["createdAt"],
    "duration": lambda run: run["duration"],
    "deploymentVersion": lambda run: int(run["deploymentVersion"]),
    "triggeredBy": lambda run: run["triggeredBy"],
    "status": lambda run: run["status"],
}
RUN_SORT_FIELDS = tuple(_RUN_SORT_KEYS)
# What add_application fills into a manifest it is not given, so that every manifest the
# sandbox serves is one the SDK's DeploymentManifest accepts.
_MANIFEST_DEFAULTS: dict[str, Obj] = {
    "job": {"trigger": {"type": "manual"}},
    "service": {"ports": [{"port": 8000, "protocol": "TCP", "expose": False}], "replicas": 1},
}


class SandboxError(Exception):
    """An API error: the handler answers it as `{"statusCode", "message", "code"}`."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> Obj:
        return {"statusCode": self.status, "message": self.message, "code": self.code}


@dataclass(frozen=True)
class RunQuery:
    """The filters and order of one runs listing (None: no filter)."""

    statuses: frozenset[str] | None = None
    versions: frozenset[int] | None = None
    triggered_by: frozenset[str] | None = None
    search_prefix: str | None = None
    sort_by: str = "startTime"
    descending: bool = True

    def matches(self, run: Obj) -> bool:
        return (
            (self.statuses is None or run["status"] in self.statuses)
            and (self.versions is None or int(run["deploymentVersion"]) in self.versions)
            and (self.triggered_by is None or run["triggeredBy"] in self.triggered_by)
        )

    def sort(self, runs: list[Obj]) -> None:
        """A missing value sorts first ascending; creation, then the id break ties so pages
        never overlap."""
        key = _RUN_SORT_KEYS[self.sort_by]
        runs.sort(
            key=lambda r: (key(r) is not None, key(r), r["createdAt"], r["id"]),
            reverse=self.descending,
        )


def wall_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: float) -> str:
    """Workspaces, applications and deployments carry ISO timestamps; runs epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _matches(obj: Obj, filters: Mapping[str, Collection[Any]]) -> bool:
    return all(obj.get(field) in allowed for field, allowed in filters.items())


class SandboxState:
    """All objects of one sandbox. `now_ms` is the reference time the scenario was built at;
    `clock` stamps objects created later (through the API); `profiles` as ServerProfile.of
    takes them."""

    def __init__(
        self,
        *,
        now_ms: int | None = None,
        clock: Callable[[], int] = wall_ms,
        profiles: ProfileSpec = (),
    ) -> None:
        self.now_ms = clock() if now_ms is None else now_ms
        self.configs: list[Obj] = []  # fallback configs (camelCase) that fit this state
        self.profile = ServerProfile.of(profiles)
        self._clock = clock
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._fractions = itertools.count(1)
        self._clusters: dict[str, Obj] = {}
        self._workspaces: dict[str, Obj] = {}
        self._apps: dict[str, Obj] = {}
        self._deployments: dict[str, Obj] = {}
        self._runs: dict[str, Obj] = {}
        self._runs_by_app: dict[str, dict[str, Obj]] = {}  # application id -> run name -> run
        self._apps_by_ws: dict[str, list[Obj]] = {}  # a sweep lists apps one workspace at a time
        self._deployments_by_app: dict[str, list[Obj]] = {}  # oldest version first
        # search-lag: run id -> (searches it is still hidden from, epoch ms it shows from)
        self._search_lag: dict[str, tuple[int | None, float | None]] = {}
        # page-shift: (application id, listing) -> runs still to add while it is paged
        self._page_shifts: dict[tuple[str, RunQuery], int] = {}

    def use_profile(self, profiles: ProfileSpec) -> None:
        """Switch profiles; with fractional-times, the runs already there get fractions too."""
        with self._lock:
            self.profile = ServerProfile.of(profiles)
            for run in self._runs.values():
                run["createdAt"] = self._stamp(run["createdAt"])
                if run["endTime"] is not None:
                    run["endTime"] = self._stamp(run["endTime"])

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
                "accountId": ACCOUNT_ID,
                "manifest": {"type": "workspace", "cluster_fqn": cluster_id, "name": name},
                "isSystemWs": False,
                "createdBySubject": subject(),
                "createdBy": subject()["subjectSlug"],
                "createdAt": stamp,
                "updatedAt": stamp,
                "hasCapacity": has_capacity,
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
        """An application with its first deployment; the manifest gets type, name,
        workspace_fqn, an image and what its type requires filled in when missing."""
        with self._lock:
            ws = self._workspaces.get(workspace_id)
            if ws is None:
                raise ValueError(f"application {name}: unknown workspace {workspace_id!r}")
            full = {
                "type": app_type,
                "name": name,
                "image": {"type": "image", "image_uri": f"registry.local/{name}:1"},
                **copy.deepcopy(_MANIFEST_DEFAULTS.get(app_type, {})),
                "workspace_fqn": ws["fqn"],
                **(manifest or {}),
            }
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
        """A run of the application's latest deployment; without a name the server names it."""
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

    def alias_of(self, run_id: str) -> str | None:
        """The `metadata.job_run_name_alias` a run was triggered with (never served)."""
        with self._lock:
            alias: str | None = self._get(self._runs, run_id, "run")["alias"]
            return alias

    def set_run_status(self, run_id: str, status: str) -> None:
        with self._lock:
            run = self._get(self._runs, run_id, "run")
            run["status"] = status
            if status in ENDED and run["endTime"] is None:
                self._end(run, self._clock())

    def end_search_lag(self) -> None:
        """search-lag: every run triggered so far is found by searches from now on."""
        with self._lock:
            self._search_lag.clear()

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
                "profiles": sorted(self.profile.names),
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

    def list_deployments(
        self,
        application_id: str,
        filters: Mapping[str, Collection[Any]],
        offset: int,
        limit: int,
    ) -> tuple[int, list[Obj]]:
        """An application's versions, newest first."""
        with self._lock:
            self._get(self._apps, application_id, "application")
            found = [
                d
                for d in reversed(self._deployments_by_app[application_id])
                if _matches(d, filters)
            ]
            return len(found), copy.deepcopy(found[offset : offset + limit])

    def get_deployment(self, application_id: str, deployment_id: str) -> Obj:
        with self._lock:
            self._get(self._apps, application_id, "application")
            deployment = self._deployments.get(deployment_id)
            if deployment is None or deployment["applicationId"] != application_id:
                raise SandboxError(
                    404,
                    f"deployment {deployment_id!r} of {application_id!r} not found",
                    "NOT_FOUND",
                )
            return copy.deepcopy(deployment)

    def list_runs(
        self, application_id: str, query: RunQuery, offset: int, limit: int
    ) -> tuple[int, list[Obj]]:
        with self._lock:
            app = self._get(self._apps, application_id, "application")
            if PAGE_SHIFT in self.profile:
                self._shift_pages(app, query, offset)
            found = [
                run for run in self._runs_by_app[application_id].values() if query.matches(run)
            ]
            if query.search_prefix is not None:
                found = [run for run in found if self._found_by_search(run, query.search_prefix)]
            query.sort(found)
            start = 0 if IGNORE_OFFSET in self.profile else offset
            return len(found), copy.deepcopy(found[start : start + limit])

    def get_run(self, application_id: str, run_name: str) -> Obj:
        with self._lock:
            self._get(self._apps, application_id, "application")
            return copy.deepcopy(self._run_named(application_id, run_name))

    def put_app(self, manifest: Any, *, dry_run: bool) -> tuple[bool, Obj]:
        """Create the job in manifest["workspace_fqn"], or add a deployment version to the
        application of that name (always, even for an unchanged manifest). Returns
        (created, deployment)."""
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
            now = self._clock()
            if dry_run:
                # Validated, nothing stored: the answer only shows what would be deployed.
                app_id = None if existing is None else existing["id"]
                preview = _deployment(
                    deployment_id="dry-run",
                    application_id=app_id,
                    application_fqn=f"{ws_fqn}:{name}",
                    version=len(self._deployments_by_app.get(app_id or "", [])) + 1,
                    manifest=manifest,
                    now=now,
                )
                return existing is None, preview
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
        """A new run on the deployment given, or on the application's latest one. Under
        alias-name the alias names it, and a duplicate alias still creates a run (suffixed) so
        a client that triggers twice is visible; otherwise the server names it."""
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
            now = self._clock()
            run = self._create_run(
                app,
                deployment,
                name=alias if ALIAS_NAME in self.profile else None,
                status=RunStatus.RUNNING if has_capacity else RunStatus.CREATED,
                created_at=now,
                command=command,
                params=params,
                alias=alias,
                run_id=None,
            )
            if SEARCH_LAG in self.profile:
                seconds = self.profile.search_lag_seconds
                shows_at = None if seconds is None else now + seconds * 1000
                self._search_lag[run["id"]] = (self.profile.search_lag_searches, shows_at)
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
        """An application with its active deployment embedded."""
        return copy.deepcopy({**app, "deployment": self._deployments[app["activeDeploymentId"]]})

    def _stamp(self, ms: float) -> float:
        """A run's timestamp; fractional-times gives a whole one a (deterministic) fraction."""
        if FRACTIONAL_TIMES not in self.profile or not float(ms).is_integer():
            return ms
        return ms + (137 * next(self._fractions) % 997 + 1) / 1000

    def _end(self, run: Obj, at: float) -> None:
        run["endTime"] = self._stamp(at)
        run["duration"] = max(0, int((run["endTime"] - run["createdAt"]) // 1000))
        run["exitCode"] = {RunStatus.FINISHED: 0, RunStatus.FAILED: 1}.get(run["status"])

    def _found_by_search(self, run: Obj, prefix: str) -> bool:
        """`searchPrefix` finds a run by name or id (and by alias under alias-name), unless
        search-lag still hides it; each search it is hidden from counts toward its showing."""
        keys = (run["name"], run["id"], run["alias"] if ALIAS_NAME in self.profile else None)
        if not any(key is not None and str(key).startswith(prefix) for key in keys):
            return False
        lag = self._search_lag.get(run["id"])
        if lag is None:
            return True
        searches, shows_at = lag
        if (searches is not None and searches <= 0) or (
            shows_at is not None and self._clock() >= shows_at
        ):
            del self._search_lag[run["id"]]
            return True
        self._search_lag[run["id"]] = (None if searches is None else searches - 1, shows_at)
        return False

    def _shift_pages(self, app: Obj, query: RunQuery, offset: int) -> None:
        """page-shift: a listing's first page starts it; each later page that still has items
        adds a run to the job, newest of all, that the listing matches, until the listing's
        budget (page_shift_runs) is spent. The budget keeps a pager that stops only at an
        empty page from chasing new runs forever."""
        key = (app["id"], query)
        if offset == 0:
            self._page_shifts[key] = self.profile.page_shift_runs
            return
        left = self._page_shifts.get(key, self.profile.page_shift_runs)
        runs = self._runs_by_app[app["id"]].values()
        if left <= 0 or offset >= sum(query.matches(run) for run in runs):
            return
        self._page_shifts[key] = left - 1
        newest = max((run["createdAt"] for run in runs), default=0)
        self._create_run(
            app,
            self._deployments[app["lastDeploymentId"]],
            name=None,
            status=min(query.statuses or {RunStatus.CREATED}),
            created_at=max(self._clock(), int(newest) + 1),
            command=None,
            params=None,
            alias=None,
            run_id=None,
        )

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
            "tenantName": ws["tenantName"],
            "workspaceId": ws["id"],
            "workspaceFqn": ws["fqn"],
            "lifecycleStage": "active",
            "autopilot": {},
            "createdBySubject": subject(),
            "createdBy": subject()["subjectSlug"],
            "activeDeploymentId": None,
            "lastDeploymentId": None,
            "activeVersion": None,
            "lastVersion": None,
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
        deployment = _deployment(
            deployment_id=self._new_id("dep", self._deployments, None),
            application_id=app["id"],
            application_fqn=app["fqn"],
            version=len(versions) + 1,
            manifest=manifest,
            now=now,
        )
        self._deployments[deployment["id"]] = deployment
        versions.append(deployment)
        app.update(
            activeDeploymentId=deployment["id"],
            lastDeploymentId=deployment["id"],
            activeVersion=deployment["version"],
            lastVersion=deployment["version"],
            updatedAt=iso(now),
        )
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
        run_name = _free_name(name or _server_name(app["name"], run_id), by_name)
        run: Obj = {
            "id": run_id,
            "name": run_name,
            "applicationName": app["name"],
            "applicationId": app["id"],
            "deploymentId": deployment["id"],
            "deploymentVersion": str(deployment["version"]),
            "createdAt": self._stamp(created_at),
            "endTime": None,
            "duration": None,
            "command": command if command is not None else _default_command(deployment),
            "params": dict(params or {}),  # not in the vendor's JobRun: served as an extra field
            "totalRetries": 0,
            "error": None,
            "status": str(status),
            "triggeredBy": subject()["subjectSlug"],
            "triggeredBySubject": subject(),
            "exitCode": None,
            "tenantName": self._workspaces[app["workspaceId"]]["tenantName"],
            "alias": alias,
        }
        if status in ENDED:
            self._end(run, run["createdAt"])
        self._runs[run_id] = run
        by_name[run_name] = run
        return run


def _deployment(
    *,
    deployment_id: str,
    application_id: str | None,
    application_fqn: str,
    version: int,
    manifest: Mapping[str, Any],
    now: int,
) -> Obj:
    return {
        "id": deployment_id,
        "version": version,
        "fqn": f"{application_fqn}:{version}",
        "applicationId": application_id,
        "manifest": copy.deepcopy(dict(manifest)),
        "createdBySubject": subject(),
        "createdBy": subject()["subjectSlug"],
        "createdAt": iso(now),
        "updatedAt": iso(now),
    }


def _server_name(app_name: str, run_id: str) -> str:
    """A name the server makes up: the job's name and 6 hex digits, the same for the same id."""
    return f"{app_name}-{hashlib.sha256(run_id.encode()).hexdigest()[:6]}"


def _free_name(wanted: str, taken: Iterable[str]) -> str:
    names = set(taken)
    if wanted not in names:
        return wanted
    return next(f"{wanted}-{n}" for n in itertools.count(2) if f"{wanted}-{n}" not in names)


def _default_command(deployment: Obj) -> str:
    image = deployment["manifest"].get("image")
    return str(image.get("command") or "") if isinstance(image, dict) else ""


def _check_manifest(manifest: Any) -> tuple[str, str]:
    """(name, workspace_fqn) of a job manifest, or a 400 naming the field to fix. `image` and
    `trigger` are what the SDK's Job requires beyond the name."""
    if not isinstance(manifest, Mapping):
        raise SandboxError(400, "manifest must be a JSON object", "BAD_REQUEST")
    if manifest.get("type") != "job":
        raise SandboxError(400, 'manifest.type must be "job"', "BAD_REQUEST")
    for field in ("name", "workspace_fqn"):
        if not isinstance(manifest.get(field), str) or not manifest[field].strip():
            raise SandboxError(400, f"manifest.{field} must be a non-empty string", "BAD_REQUEST")
    for field in ("image", "trigger"):
        if not isinstance(manifest.get(field), Mapping):
            raise SandboxError(400, f"manifest.{field} must be an object", "BAD_REQUEST")
    return manifest["name"], manifest["workspace_fqn"]

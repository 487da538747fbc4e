"""Wire payloads as the TrueFoundry API sends them (camelCase, extra fields included)."""

from __future__ import annotations

from typing import Any

HOST = "https://tfy.test"
TOKEN = "tfy-secret-7f3c9a1e"  # a fake; tests assert it never leaks
API = f"{HOST}/api/svc/v1"


def workspace(ws_id: str = "ws-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": ws_id,
        "fqn": f"cluster-a:{ws_id}",
        "clusterId": "cluster-a",
        "tenantName": "acme",
        "createdAt": "2024-01-01T00:00:00Z",
        "somethingNew": {"ignored": True},
        **fields,
    }


def application(app_id: str = "app-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": app_id,
        "fqn": f"cluster-a:ws-1:{app_id}",
        "name": f"{app_id}-name",
        "type": "job",
        "workspaceId": "ws-1",
        "activeDeploymentId": f"dep-{app_id}",
        **fields,
    }


def deployment(dep_id: str = "dep-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": dep_id,
        "version": 3,
        "applicationId": "app-1",
        "manifest": {"type": "job", "name": "train", "workspace_fqn": "cluster-b:ws-2"},
        **fields,
    }


def job_run(name: str = "run-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "applicationId": "app-1",
        "deploymentId": "dep-1",
        "createdAt": 1_700_000_000_000,
        "status": "CREATED",
        "command": "python train.py",
        **fields,
    }


def page(items: list[Any], *, total: int, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    return {"data": items, "pagination": {"total": total, "offset": offset, "limit": limit}}


def error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if code is not None:
        body["code"] = code
    return body

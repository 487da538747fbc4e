"""Render the chart with Helm's own engine (helm-python-sdk binds Helm's Go SDK; no binary)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "jobfallback"
RELEASE = "rel"
NAMESPACE = "ns"
FULLNAME = "rel-jobfallback"

# The least a user must set: the chart refuses to render without these.
TOKEN = "tfy-secret-token-0123456789"
DATABASE_URL = "postgresql://jobfallback:db-password-42@postgres:5432/jobfallback"
REQUIRED: dict[str, Any] = {
    "tfyHost": "https://acme.truefoundry.cloud",
    "secret": {"serviceToken": TOKEN, "databaseUrl": DATABASE_URL},
}
CONFIG = {
    "name": "gpu-to-spot",
    "sourceClusterId": "cluster-a",
    "sourceWorkspaceId": "ws-a",
    "destinationClusterId": "cluster-b",
    "destinationWorkspaceId": "ws-b",
}


def load_chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART_DIR)


@dataclass(frozen=True)
class Rendered:
    """The objects one render produced (NOTES.txt kept apart as text)."""

    objects: list[dict[str, Any]]
    notes: str

    def kinds(self) -> list[str]:
        return sorted(obj["kind"] for obj in self.objects)

    def get(self, kind: str, name: str = FULLNAME) -> dict[str, Any]:
        found = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind}/{name}, found {self.kinds()}"
        return found[0]

    def find(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]


def parse(manifests: dict[str, str]) -> Rendered:
    objects: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(objects, notes)


def render(chart: helm_python.Chart, values: dict[str, Any]) -> Rendered:
    return parse(chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True))


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a CronJob or a Job."""
    job_spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    spec: dict[str, Any] = job_spec["template"]["spec"]
    return spec


def container(obj: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(obj)["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


def env(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The container's env by name."""
    return {item["name"]: item for item in container(obj)["env"]}


def with_required(**values: Any) -> dict[str, Any]:
    return {**REQUIRED, **values}


# Value sets every rendered object is linted and schema-validated for.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": with_required(),
    "existing-secret": {
        "tfyHost": "https://acme.truefoundry.cloud",
        "existingSecret": "jobfallback-credentials",
        "secretKeys": {"serviceToken": "token", "databaseUrl": "dsn"},
    },
    "configs": with_required(configs=[CONFIG], configsPrune=True),
    "suspend": with_required(suspend=True),
    "dry-run": with_required(dryRun=True, enabled=True),
    "history-zero": with_required(
        successfulJobsHistoryLimit=0, failedJobsHistoryLimit=0, backoffLimit=0
    ),
    "extra-env": with_required(extraEnv=[{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]),
    "everything": with_required(
        enabled=True,
        stuckThresholdMinutes=15,
        concurrency=4,
        logFormat="text",
        timeZone="Europe/Berlin",
        startingDeadlineSeconds=None,
        activeDeadlineSeconds=None,
        ttlSecondsAfterFinished=None,
        hooks={"dbUpgrade": False},
        image={"digest": "sha256:" + "a" * 64},
        imagePullSecrets=[{"name": "regcred"}],
        serviceAccount={"create": False, "name": "shared"},
        commonLabels={"team": "platform"},
        podLabels={"sidecar.istio.io/inject": "false"},
        podAnnotations={"prometheus.io/scrape": "false"},
        priorityClassName="low",
        nodeSelector={"kubernetes.io/os": "linux"},
        tolerations=[{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ops"]}]}
                    ]
                }
            }
        },
    ),
}

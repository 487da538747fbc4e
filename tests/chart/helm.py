"""Render the chart with Helm's own engine (helm-python-sdk binds Helm's Go SDK; no binary)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from jobfallback.settings import Settings, load_settings

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
    "destinationWorkspaceFqn": "cluster-b:team-b",
}
WEBHOOK_URL = "https://hooks.example.com/services/T0/B0/whk-chart-secret"
PUSHGATEWAY_URL = "http://prometheus-pushgateway.monitoring:9091"
# What the chart passes as JOB_FALLBACK_METRICS_INSTANCE by default: <namespace>/<release>.
INSTANCE = f"{NAMESPACE}/{RELEASE}"
# CloudNativePG's Secret for a Cluster named "pg": it holds the URL under "uri".
CNPG_SECRET = "pg-app"
CA_VOLUME = {"name": "db-ca", "secret": {"secretName": "db-ca"}}
CA_MOUNT = {"name": "db-ca", "mountPath": "/etc/ssl/db", "readOnly": True}


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
    """The pod spec of a CronJob, a Job or a Pod."""
    if obj["kind"] == "Pod":
        pod: dict[str, Any] = obj["spec"]
        return pod
    job_spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    spec: dict[str, Any] = job_spec["template"]["spec"]
    return spec


def init_containers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pod's init containers by name."""
    return {c["name"]: c for c in pod_spec(obj).get("initContainers", [])}


def container(obj: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(obj)["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


def env(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The container's env by name."""
    return env_of(container(obj))


def env_of(one: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in one["env"]}


def sweep_settings(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """What `jobfallback sweep` would read in the CronJob's pod: its literal variables, and
    those from the rendered Secret (a missing optional key leaves the variable unset)."""
    cronjob = rendered.get("CronJob")
    secret = {
        key: base64.b64decode(value).decode()
        for key, value in rendered.get("Secret")["data"].items()
    }
    for name, variable in env(cronjob).items():
        if "value" in variable:
            monkeypatch.setenv(name, variable["value"])
        elif variable["valueFrom"]["secretKeyRef"]["key"] in secret:
            monkeypatch.setenv(name, secret[variable["valueFrom"]["secretKeyRef"]["key"]])
        else:
            assert variable["valueFrom"]["secretKeyRef"].get("optional") is True, name
    return load_settings()


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
    # The token from External Secrets, the URL where CloudNativePG writes it.
    "two-secrets": {
        "tfyHost": "https://acme.truefoundry.cloud",
        "existingSecret": "tfy-token",
        "secretKeys": {"serviceToken": "token", "databaseUrl": "unused"},
        "database": {"existingSecret": CNPG_SECRET},
    },
    # The chart renders the token's Secret; the URL is CloudNativePG's.
    "token-rendered-database-secret": {
        "tfyHost": "https://acme.truefoundry.cloud",
        "secret": {"serviceToken": TOKEN},
        "database": {"existingSecret": CNPG_SECRET, "existingSecretKey": "uri"},
    },
    "network-policy": with_required(
        networkPolicy={
            "enabled": True,
            "database": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "pg"}}}],
            "extraEgress": [
                {
                    "to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}],
                    "ports": [{"protocol": "TCP", "port": 3128}],
                }
            ],
        }
    ),
    # Metrics pushed, the alerts, the webhook in the rendered Secret, the NetworkPolicy.
    "metrics": with_required(
        secret={"serviceToken": TOKEN, "databaseUrl": DATABASE_URL, "webhookUrl": WEBHOOK_URL},
        metrics={
            "pushgateway": {"url": PUSHGATEWAY_URL},
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "kube-prometheus-stack"},
                "additionalAlertLabels": {"team": "platform"},
            },
        },
        networkPolicy={"enabled": True},
    ),
    "no-db-upgrade": with_required(database={"upgrade": False}),
    "configs": with_required(configs=[CONFIG], configsPrune=True),
    "suspend": with_required(suspend=True),
    "dry-run": with_required(dryRun=True, enabled=True),
    "history-zero": with_required(
        successfulJobsHistoryLimit=0, failedJobsHistoryLimit=0, backoffLimit=0
    ),
    # Four sweeps side by side, an Indexed Job (Kubernetes 1.29+).
    "shards": with_required(shards=4),
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
        database={"upgrade": False},
        maxMoves=10,
        maxMovesPerDestination=5,
        maxMovesPerSource=None,
        cooldownMinutes=0,
        maxHops=3,
        breaker={"failureRatio": 0.25, "minMoves": 8, "failedPasses": None, "quietMinutes": 90},
        extraArgs=["--source", "gpu-east/ws-ml"],
        extraVolumes=[CA_VOLUME],
        extraVolumeMounts=[CA_MOUNT],
        commonAnnotations={"owner": "platform"},
        jobLabels={"cost-center": "ops"},
        jobAnnotations={"jobs/owner": "platform"},
        topologySpreadConstraints=[
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "sweep"}},
            }
        ],
        image={"digest": "sha256:" + "a" * 64},
        imagePullSecrets=[{"name": "regcred"}],
        serviceAccount={"create": False, "name": "shared"},
        commonLabels={"team": "platform"},
        podLabels={"sidecar.istio.io/inject": "false"},
        podAnnotations={"prometheus.io/scrape": "false"},
        priorityClassName="low",
        metrics={
            "pushgateway": {"url": "https://pushgateway.example.com", "timeoutSeconds": 2.5},
            "instance": "acme/prod",
            "prometheusRule": {
                "enabled": True,
                "noSuccessForSeconds": 1800,
                "disabledFor": "12h",
                "tokenMissingFor": "5m",
            },
        },
        notifications={"webhook": {"format": "json", "timeoutSeconds": 20}},
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

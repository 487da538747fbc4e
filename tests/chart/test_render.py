"""What the chart renders: the CronJob, its Secret handling, hooks, security settings."""

from __future__ import annotations

import base64
import re
from typing import Any

import helm_python
import pytest
import yaml

from tests.chart.helm import (
    CA_MOUNT,
    CA_VOLUME,
    CNPG_SECRET,
    CONFIG,
    DATABASE_URL,
    FULLNAME,
    TOKEN,
    VALUE_SETS,
    WEBHOOK_URL,
    Rendered,
    container,
    env,
    env_of,
    init_containers,
    parse,
    pod_spec,
    render,
    with_required,
)

pytestmark = pytest.mark.chart

CONFIGS_IMPORT = f"{FULLNAME}-configs-import"
HELM_TEST = f"{FULLNAME}-test"
COMPONENT = "app.kubernetes.io/component"


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    annotations: dict[str, str] = obj["metadata"].get("annotations") or {}
    return annotations


def _pod_template_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        pod: dict[str, Any] = obj["metadata"]
        return pod
    job_spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    metadata: dict[str, Any] = job_spec["template"]["metadata"]
    return metadata


def _workloads(rendered: Rendered) -> list[dict[str, Any]]:
    """Everything that starts a pod: the CronJob, the configs import Job, the helm test Pod."""
    return [*rendered.find("CronJob"), *rendered.find("Job"), *rendered.find("Pod")]


def _secret_refs(one: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        name: v["valueFrom"]["secretKeyRef"] for name, v in env_of(one).items() if "valueFrom" in v
    }


def test_defaults_render_the_cronjob_its_secret_account_and_test(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, with_required())
    assert rendered.kinds() == ["CronJob", "Pod", "Secret", "ServiceAccount"]
    cronjob = rendered.get("CronJob")
    assert cronjob["spec"]["schedule"] == "*/5 * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["suspend"] is False
    assert cronjob["spec"]["failedJobsHistoryLimit"] == 1
    assert container(cronjob)["args"] == ["sweep", "--log-format", "json"]
    assert container(cronjob)["image"] == "ghcr.io/jobfallback/jobfallback:0.1.0"


def test_settings_reach_the_sweep_as_environment(chart: helm_python.Chart) -> None:
    values = with_required(enabled=True, stuckThresholdMinutes=15, concurrency=4, logFormat="text")
    cronjob = render(chart, values).get("CronJob")
    variables = env(cronjob)
    assert {name: v.get("value") for name, v in variables.items() if "value" in v} == {
        "TFY_HOST": "https://acme.truefoundry.cloud",
        "JOB_FALLBACK_ENABLED": "true",
        "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": "15",
        "JOB_FALLBACK_CONCURRENCY": "4",
        "JOB_FALLBACK_PASS_DEADLINE_SECONDS": "180",
        # Metrics and webhook settings (tests/chart/test_metrics.py).
        "JOB_FALLBACK_METRICS_INSTANCE": "ns/rel",
        "JOB_FALLBACK_WEBHOOK_FORMAT": "slack",
        "JOB_FALLBACK_WEBHOOK_TIMEOUT_SECONDS": "10",
        # The guard rails (tests/chart/test_guard_rails.py), at values.yaml's defaults.
        "JOB_FALLBACK_MAX_MOVES": "100",
        "JOB_FALLBACK_MAX_MOVES_PER_DESTINATION": "50",
        "JOB_FALLBACK_MAX_MOVES_PER_SOURCE": "50",
        "JOB_FALLBACK_COOLDOWN_MINUTES": "60",
        "JOB_FALLBACK_MAX_HOPS": "2",
        "JOB_FALLBACK_BREAKER_FAILURE_RATIO": "0.5",
        "JOB_FALLBACK_BREAKER_MIN_MOVES": "4",
        "JOB_FALLBACK_BREAKER_FAILED_PASSES": "3",
        "JOB_FALLBACK_BREAKER_QUIET_MINUTES": "30",
    }
    assert container(cronjob)["args"] == ["sweep", "--log-format", "text"]


def test_moves_are_disabled_by_default(chart: helm_python.Chart) -> None:
    variables = env(render(chart, with_required()).get("CronJob"))
    assert variables["JOB_FALLBACK_ENABLED"]["value"] == "false"


def test_token_and_database_url_come_from_the_rendered_secret(chart: helm_python.Chart) -> None:
    rendered = render(chart, with_required())
    secret = rendered.get("Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"TF_SERVICE_API_TOKEN": TOKEN, "DATABASE_URL": DATABASE_URL}
    variables = env(rendered.get("CronJob"))
    for name in ("TF_SERVICE_API_TOKEN", "DATABASE_URL"):
        assert "value" not in variables[name]
        assert variables[name]["valueFrom"]["secretKeyRef"] == {"name": FULLNAME, "key": name}


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_secrets_appear_in_no_object_but_the_secret(
    chart: helm_python.Chart, value_set: str
) -> None:
    rendered = render(chart, VALUE_SETS[value_set])
    needles = [TOKEN, DATABASE_URL, "db-password-42", WEBHOOK_URL, "whk-chart-secret"]
    needles += [base64.b64encode(n.encode()).decode() for n in needles]
    for obj in rendered.objects:
        if obj["kind"] == "Secret":
            continue
        text = yaml.safe_dump(obj)
        leaked = [n for n in needles if n in text]
        assert not leaked, f"{obj['kind']}/{obj['metadata']['name']} contains a secret"
    assert not [n for n in needles if n in rendered.notes]


def test_existing_secret_is_referenced_with_its_own_keys(chart: helm_python.Chart) -> None:
    rendered = render(chart, VALUE_SETS["existing-secret"])
    assert rendered.find("Secret") == []
    for workload in _workloads(rendered):
        refs = _secret_refs(container(workload))
        assert refs["DATABASE_URL"] == {"name": "jobfallback-credentials", "key": "dsn"}
    cron_refs = env(rendered.get("CronJob"))["TF_SERVICE_API_TOKEN"]["valueFrom"]
    assert cron_refs["secretKeyRef"] == {"name": "jobfallback-credentials", "key": "token"}
    notes = rendered.notes
    assert "TF_SERVICE_API_TOKEN): Secret jobfallback-credentials, key token" in notes
    assert "DATABASE_URL): Secret jobfallback-credentials, key dsn" in notes


def test_database_url_and_token_from_two_existing_secrets(chart: helm_python.Chart) -> None:
    rendered = render(chart, VALUE_SETS["two-secrets"])
    assert rendered.find("Secret") == []
    assert len(_workloads(rendered)) == 2
    for workload in _workloads(rendered):
        for one in [container(workload), *init_containers(workload).values()]:
            assert _secret_refs(one)["DATABASE_URL"] == {"name": CNPG_SECRET, "key": "uri"}
        assert _secret_refs(container(workload))["TF_SERVICE_API_TOKEN"] == {
            "name": "tfy-token",
            "key": "token",
        }
    assert f"DATABASE_URL): Secret {CNPG_SECRET}, key uri" in rendered.notes


def test_rendered_token_secret_beside_the_database_secret(chart: helm_python.Chart) -> None:
    rendered = render(chart, VALUE_SETS["token-rendered-database-secret"])
    secret = rendered.get("Secret")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "TF_SERVICE_API_TOKEN": TOKEN
    }
    refs = _secret_refs(container(rendered.get("CronJob")))
    assert refs == {
        "TF_SERVICE_API_TOKEN": {"name": FULLNAME, "key": "TF_SERVICE_API_TOKEN"},
        "DATABASE_URL": {"name": CNPG_SECRET, "key": "uri"},
        # Beside the token; optional, so this Secret without the key is no webhook.
        "JOB_FALLBACK_WEBHOOK_URL": {
            "name": FULLNAME,
            "key": "JOB_FALLBACK_WEBHOOK_URL",
            "optional": True,
        },
    }


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_pod_runs_locked_down(chart: helm_python.Chart, value_set: str) -> None:
    rendered = render(chart, VALUE_SETS[value_set])
    for workload in _workloads(rendered):
        spec = pod_spec(workload)
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        assert spec["restartPolicy"] == "Never"
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"]
        for one in [container(workload), *init_containers(workload).values()]:
            context = one["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            mounts = {m["name"]: m["mountPath"] for m in one["volumeMounts"]}
            assert mounts["tmp"] == "/tmp"
    for account in rendered.find("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_every_pod_migrates_first_in_an_init_container(chart: helm_python.Chart) -> None:
    rendered = render(chart, with_required(configs=[CONFIG]))
    workloads = _workloads(rendered)
    assert sorted(w["kind"] for w in workloads) == ["CronJob", "Job", "Pod"]
    for workload in workloads:
        (upgrade,) = init_containers(workload).values()
        assert upgrade["args"] == ["db", "upgrade"]
        assert upgrade["image"] == container(workload)["image"]
        # The migration needs the database only: the API token stays out of it.
        refs = _secret_refs(upgrade)
        assert refs == {"DATABASE_URL": _secret_refs(container(workload))["DATABASE_URL"]}


def test_without_database_upgrade_no_pod_migrates(chart: helm_python.Chart) -> None:
    rendered = render(chart, with_required(configs=[CONFIG], database={"upgrade": False}))
    for workload in _workloads(rendered):
        assert "initContainers" not in pod_spec(workload)
    assert "db upgrade" not in rendered.notes


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_only_the_import_and_the_test_are_hooks(chart: helm_python.Chart, value_set: str) -> None:
    # The Secret, the ServiceAccount and the rest are ordinary objects: `helm uninstall` deletes
    # them, Argo CD diffs them, and switching a value never leaves one without an owner.
    values = {**VALUE_SETS[value_set], "configs": [CONFIG]}
    hooks = {
        (obj["kind"], obj["metadata"]["name"]): _annotations(obj)["helm.sh/hook"]
        for obj in render(chart, values).objects
        if "helm.sh/hook" in _annotations(obj)
    }
    assert hooks == {
        ("Job", CONFIGS_IMPORT): "post-install,post-upgrade",
        ("Pod", HELM_TEST): "test",
    }


def test_helm_test_runs_doctor_with_the_sweeps_environment(chart: helm_python.Chart) -> None:
    rendered = render(chart, with_required(extraEnv=[{"name": "HTTPS_PROXY", "value": "p"}]))
    pod = rendered.get("Pod", HELM_TEST)
    assert container(pod)["args"] == ["doctor"]
    assert env(pod) == env(rendered.get("CronJob"))
    assert "before-hook-creation" in _annotations(pod)["helm.sh/hook-delete-policy"]
    assert "helm test rel -n ns" in rendered.notes


def test_components_tell_the_sweep_from_the_import_and_the_test(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, with_required(configs=[CONFIG]))
    cronjob = rendered.get("CronJob")
    job_template = cronjob["spec"]["jobTemplate"]["metadata"]
    for labels in (cronjob["metadata"]["labels"], job_template["labels"]):
        assert labels[COMPONENT] == "sweep"
    expected = {"CronJob": "sweep", "Job": "configs-import", "Pod": "test"}
    for workload in _workloads(rendered):
        assert _pod_template_metadata(workload)["labels"][COMPONENT] == expected[workload["kind"]]
    assert rendered.get("Job", CONFIGS_IMPORT)["metadata"]["labels"][COMPONENT] == "configs-import"
    for shared in ("Secret", "ServiceAccount", "ConfigMap"):
        assert COMPONENT not in rendered.find(shared)[0]["metadata"]["labels"]


def test_sweep_args_and_extra_args(chart: helm_python.Chart) -> None:
    # The guard rails go in as variables (test_guard_rails.py): extraArgs may still override them.
    cronjob = render(chart, VALUE_SETS["everything"]).get("CronJob")
    assert container(cronjob)["args"] == [
        "sweep",
        "--log-format",
        "text",
        "--source",
        "gpu-east/ws-ml",
    ]


def test_extra_volumes_mount_in_every_container(chart: helm_python.Chart) -> None:
    values = with_required(configs=[CONFIG], extraVolumes=[CA_VOLUME], extraVolumeMounts=[CA_MOUNT])
    workloads = _workloads(render(chart, values))
    assert len(workloads) == 3
    for workload in workloads:
        assert CA_VOLUME in pod_spec(workload)["volumes"]
        for one in [container(workload), *init_containers(workload).values()]:
            assert CA_MOUNT in one["volumeMounts"]


def test_common_and_job_metadata(chart: helm_python.Chart) -> None:
    rendered = render(chart, {**VALUE_SETS["everything"], "configs": [CONFIG]})
    for obj in rendered.objects:
        assert _annotations(obj)["owner"] == "platform", obj["kind"]
    jobs = [rendered.get("CronJob")["spec"]["jobTemplate"], rendered.get("Job", CONFIGS_IMPORT)]
    for job in jobs:
        assert job["metadata"]["labels"]["cost-center"] == "ops"
        assert job["metadata"]["annotations"]["jobs/owner"] == "platform"
    # Not on objects that are not Jobs.
    assert "cost-center" not in rendered.get("CronJob")["metadata"]["labels"]


def test_network_policy_allows_dns_control_plane_and_database_only(
    chart: helm_python.Chart,
) -> None:
    assert render(chart, with_required()).find("NetworkPolicy") == []
    rendered = render(chart, {**VALUE_SETS["network-policy"], "configs": [CONFIG]})
    policy = rendered.get("NetworkPolicy")["spec"]
    # Every pod of the release is selected, and nothing may connect to any of them.
    for workload in _workloads(rendered):
        labels = _pod_template_metadata(workload)["labels"]
        assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in policy
    dns, control_plane, database, proxy = policy["egress"]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    assert control_plane == {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    assert database == {
        "to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "pg"}}}],
        "ports": [{"protocol": "TCP", "port": 5432}],
    }
    assert proxy["ports"] == [{"protocol": "TCP", "port": 3128}]


def test_network_policy_without_database_peers_allows_its_port_only(
    chart: helm_python.Chart,
) -> None:
    policy = render(chart, with_required(networkPolicy={"enabled": True})).get("NetworkPolicy")
    assert policy["spec"]["egress"][-1] == {"ports": [{"protocol": "TCP", "port": 5432}]}


@pytest.mark.parametrize(("prune", "args_tail"), [(False, []), (True, ["--prune"])])
def test_configs_are_imported_after_install_and_upgrade(
    chart: helm_python.Chart, prune: bool, args_tail: list[str]
) -> None:
    rendered = render(chart, with_required(configs=[CONFIG], configsPrune=prune))
    configmap = rendered.get("ConfigMap", f"{FULLNAME}-configs")
    assert yaml.safe_load(configmap["data"]["configs.yaml"]) == [CONFIG]
    job = rendered.get("Job", CONFIGS_IMPORT)
    assert _annotations(job)["helm.sh/hook"] == "post-install,post-upgrade"
    assert container(job)["args"] == ["configs", "import", "/config/configs.yaml", *args_tail]
    mounts = {m["name"]: m["mountPath"] for m in container(job)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert mounts["configs"] == "/config"
    assert volumes["configs"]["configMap"]["name"] == f"{FULLNAME}-configs"


def test_no_configs_no_import(chart: helm_python.Chart) -> None:
    rendered = render(chart, with_required())
    assert rendered.find("ConfigMap") == []
    assert rendered.find("Job") == []


def test_config_checksum_follows_the_configs(chart: helm_python.Chart) -> None:
    def checksum(configs: list[dict[str, Any]]) -> str:
        cronjob = render(chart, with_required(configs=configs)).get("CronJob")
        value: str = _pod_template_metadata(cronjob)["annotations"]["checksum/config"]
        return value

    one = checksum([CONFIG])
    assert len(one) == 64
    assert one == checksum([CONFIG])
    assert one != checksum([{**CONFIG, "destinationWorkspaceId": "ws-c"}])


def test_suspend(chart: helm_python.Chart) -> None:
    cronjob = render(chart, VALUE_SETS["suspend"]).get("CronJob")
    assert cronjob["spec"]["suspend"] is True


def test_dry_run_appends_the_flag(chart: helm_python.Chart) -> None:
    rendered = render(chart, VALUE_SETS["dry-run"])
    assert container(rendered.get("CronJob"))["args"][-1] == "--dry-run"
    assert "jobfallback sweep --dry-run" in rendered.notes


def test_history_limits_and_backoff_render_when_zero(chart: helm_python.Chart) -> None:
    spec = render(chart, VALUE_SETS["history-zero"]).get("CronJob")["spec"]
    assert spec["successfulJobsHistoryLimit"] == 0
    assert spec["failedJobsHistoryLimit"] == 0
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0


def test_deadlines_render_by_default_and_drop_when_null(chart: helm_python.Chart) -> None:
    spec = render(chart, with_required()).get("CronJob")["spec"]
    assert spec["startingDeadlineSeconds"] == 120
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 240
    assert spec["jobTemplate"]["spec"]["ttlSecondsAfterFinished"] == 86400
    spec = render(chart, VALUE_SETS["everything"]).get("CronJob")["spec"]
    assert "startingDeadlineSeconds" not in spec
    assert "activeDeadlineSeconds" not in spec["jobTemplate"]["spec"]
    assert "ttlSecondsAfterFinished" not in spec["jobTemplate"]["spec"]


@pytest.mark.parametrize(
    ("values", "deadline"),
    [
        ({}, "180"),  # 60 s below the pod's 240
        ({"activeDeadlineSeconds": 600}, "540"),
        ({"activeDeadlineSeconds": 30}, "1"),
        ({"passDeadlineSeconds": 100}, "100"),
        ({"activeDeadlineSeconds": None}, None),  # the sweep's own default
    ],
)
def test_the_pass_ends_before_the_pod_is_killed(
    chart: helm_python.Chart, values: dict[str, Any], deadline: str | None
) -> None:
    sweep = env(render(chart, with_required(**values)).get("CronJob"))
    assert sweep.get("JOB_FALLBACK_PASS_DEADLINE_SECONDS", {}).get("value") == deadline


def test_extra_env_reaches_every_container(chart: helm_python.Chart) -> None:
    rendered = render(chart, with_required(configs=[CONFIG], **VALUE_SETS["extra-env"]))
    workloads = _workloads(rendered)
    assert len(workloads) == 3
    for workload in workloads:
        for one in [container(workload), *init_containers(workload).values()]:
            assert env_of(one)["HTTPS_PROXY"] == {
                "name": "HTTPS_PROXY",
                "value": "http://proxy:3128",
            }


def test_pod_placement_labels_and_image_options(chart: helm_python.Chart) -> None:
    values = VALUE_SETS["everything"]
    rendered = render(chart, values)
    assert rendered.kinds() == ["CronJob", "Pod", "PrometheusRule", "Secret"]
    for obj in rendered.objects:
        assert obj["metadata"]["labels"]["team"] == "platform"
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
    cronjob = rendered.get("CronJob")
    assert cronjob["spec"]["timeZone"] == "Europe/Berlin"
    metadata = _pod_template_metadata(cronjob)
    assert metadata["labels"]["sidecar.istio.io/inject"] == "false"
    assert metadata["annotations"]["prometheus.io/scrape"] == "false"
    assert "checksum/config" in metadata["annotations"]
    spec = pod_spec(cronjob)
    placement = ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints")
    for key in (*placement, "imagePullSecrets", "priorityClassName"):
        assert spec[key] == values[key], key
    assert spec["serviceAccountName"] == "shared"
    assert container(cronjob)["image"] == "ghcr.io/jobfallback/jobfallback@sha256:" + "a" * 64


def test_image_tag_overrides_the_app_version(chart: helm_python.Chart) -> None:
    cronjob = render(chart, with_required(image={"tag": "0.2.0-rc1"})).get("CronJob")
    assert container(cronjob)["image"] == "ghcr.io/jobfallback/jobfallback:0.2.0-rc1"


def test_notes_say_how_to_run_now_and_dry_run(chart: helm_python.Chart) -> None:
    notes = render(chart, with_required()).notes
    assert f"kubectl -n ns create job --from=cronjob/{FULLNAME} {FULLNAME}-manual-" in notes
    assert 'args += ["--dry-run"]' in notes
    assert "--set dryRun=true" in notes
    assert "--set enabled=true" in notes


def test_names_stay_valid_dns_labels_for_the_longest_release_name(
    chart: helm_python.Chart,
) -> None:
    release = "r" * 53  # Helm's limit for a release name
    manifests = chart.render(
        values=with_required(configs=[CONFIG]), name=release, namespace="ns", is_install=True
    )
    rendered = parse(manifests)
    names = {(obj["kind"], obj["metadata"]["name"]) for obj in rendered.objects}
    assert len(names) == len(rendered.objects) == 6
    for _, name in names:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name), name
    # The CronJob controller appends 11 characters to name each Job.
    cronjob_name = rendered.find("CronJob")[0]["metadata"]["name"]
    assert len(cronjob_name) <= 52
    # The manual-run command in the notes names a Job that fits in 63 characters too.
    manual = re.search(r"create job --from=cronjob/\S+ (\S+)-\$\(date", rendered.notes)
    assert manual
    assert len(manual.group(1)) + len("-1700000000") <= 63

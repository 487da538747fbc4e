"""The chart's side of the metrics and the webhook: the sweep's environment (read back through
jobfallback's own settings), the webhook URL in the Secret, the Pushgateway's egress."""

from __future__ import annotations

import base64
from typing import Any

import helm_python
import pytest

from jobfallback.settings import Settings
from tests.chart.helm import (
    CONFIG,
    FULLNAME,
    INSTANCE,
    PUSHGATEWAY_URL,
    VALUE_SETS,
    WEBHOOK_URL,
    container,
    env,
    env_of,
    init_containers,
    render,
    sweep_settings,
    with_required,
)

pytestmark = pytest.mark.chart

WEBHOOK_REF = {"name": FULLNAME, "key": "JOB_FALLBACK_WEBHOOK_URL", "optional": True}


def _literal_env(obj: dict[str, Any]) -> dict[str, str]:
    return {name: v["value"] for name, v in env(obj).items() if "value" in v}


def test_every_variable_the_chart_sets_is_a_setting(chart: helm_python.Chart) -> None:
    known = {name.upper() for name in Settings.model_fields}
    for value_set in ("defaults", "metrics", "everything"):
        names = set(env(render(chart, VALUE_SETS[value_set]).get("CronJob")))
        assert names <= known, f"{value_set}: {sorted(names - known)} are no settings"


def test_metrics_and_webhook_reach_the_sweep(
    chart: helm_python.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(chart, VALUE_SETS["metrics"])
    cronjob = rendered.get("CronJob")
    literal = _literal_env(cronjob)
    assert literal["JOB_FALLBACK_PUSHGATEWAY_URL"] == PUSHGATEWAY_URL
    assert literal["JOB_FALLBACK_PUSHGATEWAY_TIMEOUT_SECONDS"] == "5"
    assert literal["JOB_FALLBACK_METRICS_INSTANCE"] == INSTANCE == "ns/rel"
    assert literal["JOB_FALLBACK_WEBHOOK_FORMAT"] == "slack"
    assert literal["JOB_FALLBACK_WEBHOOK_TIMEOUT_SECONDS"] == "10"
    assert env(cronjob)["JOB_FALLBACK_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"] == WEBHOOK_REF
    # ...and jobfallback reads them as meant.
    settings = sweep_settings(rendered, monkeypatch)
    assert settings.job_fallback_pushgateway_url == PUSHGATEWAY_URL
    assert settings.job_fallback_pushgateway_timeout_seconds == 5
    assert settings.job_fallback_metrics_instance == INSTANCE
    assert settings.job_fallback_webhook_url is not None
    assert settings.job_fallback_webhook_url.get_secret_value() == WEBHOOK_URL
    assert settings.job_fallback_webhook_format == "slack"
    assert settings.job_fallback_webhook_timeout_seconds == 10


def test_every_metrics_value_reaches_the_sweep(
    chart: helm_python.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(chart, VALUE_SETS["everything"])
    settings = sweep_settings(rendered, monkeypatch)
    assert settings.job_fallback_pushgateway_url == "https://pushgateway.example.com"
    assert settings.job_fallback_pushgateway_timeout_seconds == 2.5
    assert settings.job_fallback_metrics_instance == "acme/prod"
    assert settings.job_fallback_webhook_url is None  # no key in the Secret
    assert settings.job_fallback_webhook_format == "json"
    assert settings.job_fallback_webhook_timeout_seconds == 20


def test_by_default_no_push_and_an_optional_webhook(
    chart: helm_python.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(chart, with_required())
    variables = env(rendered.get("CronJob"))
    assert "JOB_FALLBACK_PUSHGATEWAY_URL" not in variables
    assert "JOB_FALLBACK_PUSHGATEWAY_TIMEOUT_SECONDS" not in variables
    # The instance names webhook messages too, and the URL may sit in a Secret the chart
    # does not see: both are always there.
    assert variables["JOB_FALLBACK_METRICS_INSTANCE"]["value"] == INSTANCE
    assert variables["JOB_FALLBACK_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"] == WEBHOOK_REF
    assert "JOB_FALLBACK_WEBHOOK_URL" not in rendered.get("Secret")["data"]
    settings = sweep_settings(rendered, monkeypatch)
    assert settings.job_fallback_pushgateway_url is None
    assert settings.job_fallback_webhook_url is None


def test_webhook_url_is_in_the_rendered_secret_when_set(chart: helm_python.Chart) -> None:
    secret = render(chart, VALUE_SETS["metrics"]).get("Secret")
    assert base64.b64decode(secret["data"]["JOB_FALLBACK_WEBHOOK_URL"]).decode() == WEBHOOK_URL


def test_webhook_url_from_an_existing_secret_under_its_own_key(chart: helm_python.Chart) -> None:
    values = {
        **VALUE_SETS["existing-secret"],
        "secretKeys": {"serviceToken": "token", "databaseUrl": "dsn", "webhookUrl": "slack"},
    }
    rendered = render(chart, values)
    assert rendered.find("Secret") == []
    ref = env(rendered.get("CronJob"))["JOB_FALLBACK_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "jobfallback-credentials", "key": "slack", "optional": True}


def test_webhook_url_beside_an_existing_secret_is_refused(chart: helm_python.Chart) -> None:
    values = {**VALUE_SETS["existing-secret"], "secret": {"webhookUrl": WEBHOOK_URL}}
    with pytest.raises(helm_python.HelmRenderError) as caught:
        render(chart, values)
    assert "secret.webhookUrl: ignored when existingSecret is set" in str(caught.value)
    assert WEBHOOK_URL not in str(caught.value)


def test_only_the_sweep_and_the_helm_test_see_the_webhook(chart: helm_python.Chart) -> None:
    rendered = render(chart, {**VALUE_SETS["metrics"], "configs": [CONFIG]})
    for name, workload in [
        ("CronJob", rendered.get("CronJob")),
        ("Job", rendered.get("Job", f"{FULLNAME}-configs-import")),
        ("Pod", rendered.get("Pod", f"{FULLNAME}-test")),
    ]:
        for one in init_containers(workload).values():
            assert "JOB_FALLBACK_WEBHOOK_URL" not in env_of(one), name
        sees = "JOB_FALLBACK_WEBHOOK_URL" in env_of(container(workload))
        assert sees == (name != "Job"), name


@pytest.mark.parametrize(
    ("url", "port"),
    [
        (PUSHGATEWAY_URL, 9091),
        ("pushgateway.monitoring:9091", 9091),  # a bare host:port is http, as the sweep reads it
        ("http://pushgateway.monitoring", 80),
        ("https://pushgateway.example.com", 443),
        ("https://pushgateway.example.com:8443/prefix", 8443),
        ("http://10.0.0.5:9091/", 9091),
    ],
)
def test_network_policy_lets_the_push_out_on_the_urls_port(
    chart: helm_python.Chart, url: str, port: int
) -> None:
    values = with_required(networkPolicy={"enabled": True}, metrics={"pushgateway": {"url": url}})
    egress = render(chart, values).get("NetworkPolicy")["spec"]["egress"]
    assert egress[-1] == {"ports": [{"protocol": "TCP", "port": port}]}


def test_network_policy_narrows_the_pushgateway_to_its_peers(chart: helm_python.Chart) -> None:
    peers = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus-pushgateway"}},
        }
    ]
    values = {**VALUE_SETS["metrics"], "networkPolicy": {"enabled": True, "pushgateway": peers}}
    egress = render(chart, values).get("NetworkPolicy")["spec"]["egress"]
    assert egress[-1] == {"to": peers, "ports": [{"protocol": "TCP", "port": 9091}]}


def test_network_policy_without_a_pushgateway_has_no_rule_for_it(
    chart: helm_python.Chart,
) -> None:
    values = with_required(networkPolicy={"enabled": True, "pushgateway": [{"podSelector": {}}]})
    egress = render(chart, values).get("NetworkPolicy")["spec"]["egress"]
    # DNS, the control plane, the database: the webhook rides on the control plane's 443.
    assert len(egress) == 3


def test_notes_say_where_the_metrics_go(chart: helm_python.Chart) -> None:
    notes = render(chart, VALUE_SETS["metrics"]).notes
    assert f'pushes its metrics to {PUSHGATEWAY_URL} as job="jobfallback"' in notes
    assert f'instance="{INSTANCE}"' in notes
    assert "honorLabels: true" in notes
    assert f"PrometheusRule {FULLNAME}" in notes
    assert "Pushgateway" not in render(chart, with_required()).notes

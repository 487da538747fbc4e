"""Wrong values fail at install time, with Helm's message naming the value."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from tests.chart.helm import CONFIG, TOKEN, render, with_required

pytestmark = pytest.mark.chart


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"schedule": None}, "missing property 'schedule'"),
        ({"schedule": 5}, "at '/schedule': got number, want string"),
        ({"stuckThresholdMinutes": "60"}, "at '/stuckThresholdMinutes': got string, want integer"),
        ({"stuckThresholdMinutes": 0}, "at '/stuckThresholdMinutes': minimum"),
        ({"concurrency": 1000}, "at '/concurrency': maximum"),
        ({"enabled": "yes"}, "at '/enabled': got string, want boolean"),
        # Forbid is fixed in the template: there is no value to change it.
        ({"concurrencyPolicy": "Allow"}, "additional properties 'concurrencyPolicy' not allowed"),
        ({"tfyHost": "acme.truefoundry.cloud"}, "at '/tfyHost'"),
        ({"successfulJobsHistoryLimit": -1}, "at '/successfulJobsHistoryLimit': minimum"),
        ({"logFormat": "xml"}, "at '/logFormat'"),
        ({"configs": [{**CONFIG, "sourceWorkspace": "x"}]}, "'sourceWorkspace' not allowed"),
        ({"configs": [{"sourceClusterId": "a"}]}, "missing properties"),
        ({"secret": {"databaseUrl": "mysql://db"}}, "at '/secret/databaseUrl'"),
        # A config without its destination FQN would be skipped by every sweep.
        (
            {"configs": [{k: v for k, v in CONFIG.items() if k != "destinationWorkspaceFqn"}]},
            "missing property 'destinationWorkspaceFqn'",
        ),
        # Values of an older chart: the migration is no hook any more (database.upgrade).
        ({"hooks": {"dbUpgrade": True}}, "additional properties 'dbUpgrade' not allowed"),
        ({"database": {"existingSecretKey": "uri", "upgrade": "yes"}}, "at '/database/upgrade'"),
        ({"maxMoves": 0}, "at '/maxMoves': minimum"),
        ({"maxMovesPerDestination": 0}, "at '/maxMovesPerDestination': minimum"),
        ({"maxMovesPerSource": 1.5}, "at '/maxMovesPerSource': got number, want null or integer"),
        ({"cooldownMinutes": -1}, "at '/cooldownMinutes': minimum"),
        ({"maxHops": 11}, "at '/maxHops': maximum"),
        ({"breaker": {"failureRatio": 0}}, "at '/breaker/failureRatio'"),
        ({"breaker": {"failureRatio": 1.5}}, "at '/breaker/failureRatio': maximum"),
        ({"breaker": {"minMoves": 0}}, "at '/breaker/minMoves': minimum"),
        ({"breaker": {"quietMinutes": 10081}}, "at '/breaker/quietMinutes': maximum"),
        ({"breaker": {"ratio": 0.5}}, "additional properties 'ratio' not allowed"),
        ({"shards": 0}, "at '/shards': minimum"),
        # Null would drop the key (Helm's way to unset a default): it is required instead.
        ({"shards": None}, "missing property 'shards'"),
        ({"extraVolumeMounts": [{"name": "ca"}]}, "missing property 'mountPath'"),
        ({"networkPolicy": {"databasePort": 70000}}, "at '/networkPolicy/databasePort'"),
        # Metrics and notifications: what jobfallback's settings would refuse at run time.
        ({"metrics": {"pushgateway": {"url": "ftp://pg:9091"}}}, "at '/metrics/pushgateway/url'"),
        (
            {"metrics": {"pushgateway": {"url": "http://user:pw@pg:9091"}}},
            "at '/metrics/pushgateway/url'",
        ),
        (
            {"metrics": {"pushgateway": {"timeoutSeconds": 0}}},
            "at '/metrics/pushgateway/timeoutSeconds'",
        ),
        (
            {"metrics": {"pushgateway": {"timeoutSeconds": 61}}},
            "at '/metrics/pushgateway/timeoutSeconds'",
        ),
        ({"metrics": {"pushgatewayUrl": "http://pg:9091"}}, "'pushgatewayUrl' not allowed"),
        # It goes into PromQL as is: no quote may end the string early.
        ({"metrics": {"instance": 'a"} or vector(1) #'}}, "at '/metrics/instance'"),
        (
            {"metrics": {"prometheusRule": {"enabled": "yes"}}},
            "at '/metrics/prometheusRule/enabled'",
        ),
        (
            {"metrics": {"prometheusRule": {"disabledFor": "1 day"}}},
            "at '/metrics/prometheusRule/disabledFor'",
        ),
        (
            {"metrics": {"prometheusRule": {"tokenMissingFor": ""}}},
            "at '/metrics/prometheusRule/tokenMissingFor'",
        ),
        (
            {"metrics": {"prometheusRule": {"noSuccessForSeconds": 30}}},
            "at '/metrics/prometheusRule/noSuccessForSeconds'",
        ),
        (
            {"metrics": {"prometheusRule": {"additionalAlertLabels": {"team-name": "x"}}}},
            "invalid propertyName 'team-name'",
        ),
        ({"metrics": {"prometheusRule": {"rules": []}}}, "'rules' not allowed"),
        ({"notifications": {"webhook": {"format": "teams"}}}, "at '/notifications/webhook/format'"),
        (
            {"notifications": {"webhook": {"timeoutSeconds": 120}}},
            "at '/notifications/webhook/timeoutSeconds'",
        ),
        ({"notifications": {"webhook": {"url": "https://x"}}}, "'url' not allowed"),
        (
            {"secret": {"serviceToken": TOKEN, "webhookUrl": "ftp://hooks"}},
            "at '/secret/webhookUrl'",
        ),
        (
            {"secret": {"serviceToken": TOKEN, "webhookUrl": "https://u:p@hooks.example.com/x"}},
            "at '/secret/webhookUrl'",
        ),
        ({"secretKeys": {"webhookUrl": "a key"}}, "at '/secretKeys/webhookUrl'"),
        (
            {"networkPolicy": {"pushgateway": {"podSelector": {}}}},
            "at '/networkPolicy/pushgateway'",
        ),
    ],
)
def test_schema_rejects_wrong_values(
    chart: helm_python.Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError) as caught:
        render(chart, with_required(**values))
    assert "values don't meet the specifications of the schema" in str(caught.value)
    assert message in str(caught.value)


def test_schema_accepts_every_default(chart: helm_python.Chart) -> None:
    chart.validate_schema(chart.values)


def test_missing_required_values_are_all_reported_at_once(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmRenderError) as caught:
        render(chart, {})
    message = str(caught.value)
    for field in ("tfyHost:", "secret.serviceToken:", "secret.databaseUrl:"):
        assert field in message


def test_a_database_secret_with_a_literal_url_is_refused(chart: helm_python.Chart) -> None:
    values = with_required(database={"existingSecret": "pg-app"})
    with pytest.raises(helm_python.HelmRenderError) as caught:
        render(chart, values)
    assert "secret.databaseUrl: ignored when existingSecret or database.existingSecret" in str(
        caught.value
    )


def test_existing_secret_with_literal_secrets_is_refused_without_echoing_them(
    chart: helm_python.Chart,
) -> None:
    with pytest.raises(helm_python.HelmRenderError) as caught:
        render(chart, with_required(existingSecret="mine"))
    assert "ignored when existingSecret is set" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_prune_needs_configs(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmRenderError, match="configsPrune: needs a non-empty"):
        render(chart, with_required(configsPrune=True))

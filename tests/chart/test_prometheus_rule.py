"""The PrometheusRule: its structure against prometheus-operator's CRD schema (kubernetes-validate
has no custom resources), each alert's PromQL parsed (tests/chart/promql.py) and reading only
series that jobfallback/metrics.py publishes, for this install's instance, and the same alerts as
the README's.

Not checked here, for want of a Prometheus: that Prometheus itself accepts the expressions
(`promtool check rules`), what they evaluate to on real series, and the CRD's server-side
defaulting and admission webhook."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml

from jobfallback import metrics
from jobfallback.move import Outcome
from tests.chart import promql
from tests.chart.helm import FULLNAME, INSTANCE, REPO, VALUE_SETS, render, with_required

pytestmark = pytest.mark.chart

RULE_SETS = sorted(
    name for name, values in VALUE_SETS.items() if values.get("metrics", {}).get("prometheusRule")
)
ALERTS = [
    "JobfallbackNoSuccessfulSweep",
    "JobfallbackMovesFailing",
    "JobfallbackMoveNeedsAPerson",
    "JobfallbackDisabled",
    "JobfallbackTokenMissing",
    "JobfallbackMetricsMissing",
]

# prometheus-operator's CRD (monitoring.coreos.com_prometheusrules.yaml, v1) as JSON Schema, with
# additionalProperties false where the CRD would prune an unknown field without a word: a
# misspelt `for` would otherwise vanish on the server and the alert fire at once.
_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "properties": {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "for": {"type": "string", "pattern": _DURATION},
        "keep_firing_for": {"type": "string", "minLength": 1, "pattern": _DURATION},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
}
PROMETHEUS_RULE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object"},  # checked as an ObjectMeta in test_kubernetes.py
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": _DURATION},
                            "labels": _STRING_MAP,
                            "limit": {"type": "integer"},
                            "partial_response_strategy": {"type": "string"},
                            "query_offset": {"type": "string", "pattern": _DURATION},
                            "rules": {"type": "array", "items": _RULE},
                        },
                    },
                }
            },
        },
    },
}
# Prometheus's own rules: a label name, and an alert name (a label value, by convention a name).
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def published_series() -> set[str]:
    """The series jobfallback/metrics.py publishes: the names its _Series.set/by calls give,
    read from the source (building them would need a whole sweep's results)."""
    tree = ast.parse(Path(metrics.__file__).read_text())
    names = {
        metrics.PREFIX + node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("set", "by")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }
    assert "jobfallback_moves" in names, "metrics.py changed shape: teach this reader"
    return names


def rule_of(values: dict[str, Any], chart: helm_python.Chart) -> dict[str, Any]:
    return render(chart, values).get("PrometheusRule")


def alerts_of(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (group,) = rule["spec"]["groups"]
    return {alert["alert"]: alert for alert in group["rules"]}


def seconds(duration: str) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"([0-9]+)(ms|[smhdwy])", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return int(sum(int(n) * units[u] for n, u in parts))


def readme_alerts() -> dict[str, dict[str, Any]]:
    """The alerts in the README's "Metrics and alerts" YAML block."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Metrics and alerts", 1)[1].split("\n## ", 1)[0]
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL) if "- alert:" in b]
    assert len(blocks) == 1, "expected one YAML block of alerts in README 'Metrics and alerts'"
    return {alert["alert"]: alert for alert in yaml.safe_load(blocks[0])}


def test_no_rule_unless_asked(chart: helm_python.Chart) -> None:
    assert render(chart, with_required()).find("PrometheusRule") == []
    pushed_only = with_required(metrics={"pushgateway": {"url": "http://pg:9091"}})
    assert render(chart, pushed_only).find("PrometheusRule") == []


@pytest.mark.parametrize("value_set", RULE_SETS)
def test_rule_matches_the_crd_schema(chart: helm_python.Chart, value_set: str) -> None:
    rule = rule_of(VALUE_SETS[value_set], chart)
    jsonschema.Draft7Validator(PROMETHEUS_RULE_SCHEMA).validate(rule)
    assert list(alerts_of(rule)) == ALERTS
    for name, alert in alerts_of(rule).items():
        assert _LABEL_NAME.fullmatch(name)
        assert "severity" in alert["labels"]
        assert all(_LABEL_NAME.fullmatch(label) for label in alert["labels"])
        assert set(alert["annotations"]) == {"summary", "description"}


@pytest.mark.parametrize("value_set", RULE_SETS)
def test_every_expression_parses_and_reads_published_series_of_this_instance(
    chart: helm_python.Chart, value_set: str
) -> None:
    values = VALUE_SETS[value_set]
    instance = values["metrics"].get("instance") or INSTANCE
    series = published_series()
    outcomes = {outcome.value for outcome in Outcome}
    for name, alert in alerts_of(rule_of(values, chart)).items():
        tree = promql.parse(alert["expr"])
        read = promql.selectors(tree)
        assert read, name
        for selector in read:
            assert selector.metric in series, f"{name} reads {selector.metric}, never published"
            matchers = {label: (op, value) for label, op, value in selector.matchers}
            # Every selector, so another install's series never fire this install's alert.
            assert matchers.pop("instance") == ("=", instance), name
            if "outcome" in matchers:
                op, value = matchers.pop("outcome")
                assert set(value.split("|") if op == "=~" else [value]) <= outcomes, name
            assert matchers == {}, f"{name}: a label metrics.py does not set: {matchers}"


def test_alerts_are_the_readmes_with_the_instance_selector(chart: helm_python.Chart) -> None:
    # The defaults: schedule */5 gives the README's 900 seconds.
    chart_alerts = alerts_of(rule_of(VALUE_SETS["metrics"], chart))
    documented = readme_alerts()
    assert list(documented) == list(chart_alerts) == ALERTS
    for name, alert in chart_alerts.items():
        ours = promql.without_matcher(promql.parse(alert["expr"]), "instance")
        assert ours == promql.parse(documented[name]["expr"]), name
        assert alert["labels"]["severity"] == documented[name]["labels"]["severity"], name
        written = documented[name].get("for")
        assert (seconds(alert["for"]) if "for" in alert else None) == (
            seconds(written) if written else None
        ), name


def test_alert_labels_and_rule_labels(chart: helm_python.Chart) -> None:
    values = VALUE_SETS["metrics"]
    rule = rule_of(
        {
            **values,
            "metrics": {
                **values["metrics"],
                "prometheusRule": {
                    **values["metrics"]["prometheusRule"],
                    # severity stays each alert's own
                    "additionalAlertLabels": {"team": "platform", "severity": "page"},
                },
            },
        },
        chart,
    )
    assert rule["metadata"]["name"] == FULLNAME
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
    severities = {name: a["labels"]["severity"] for name, a in alerts_of(rule).items()}
    assert severities == {
        "JobfallbackNoSuccessfulSweep": "critical",
        "JobfallbackMovesFailing": "warning",
        "JobfallbackMoveNeedsAPerson": "critical",
        "JobfallbackDisabled": "warning",
        "JobfallbackTokenMissing": "critical",
        "JobfallbackMetricsMissing": "warning",
    }
    for alert in alerts_of(rule).values():
        assert alert["labels"]["team"] == "platform"


def test_annotations_keep_prometheus_templates_for_prometheus(chart: helm_python.Chart) -> None:
    alerts = alerts_of(rule_of(VALUE_SETS["metrics"], chart))
    # Helm must not have eaten Prometheus's {{ $labels.instance }}.
    summary = alerts["JobfallbackNoSuccessfulSweep"]["annotations"]["summary"]
    assert "{{ $labels.instance }}" in summary
    assert "{{ $value }}" in alerts["JobfallbackMovesFailing"]["annotations"]["summary"]
    description = alerts["JobfallbackNoSuccessfulSweep"]["annotations"]["description"]
    assert "kubectl -n ns get jobs -l app.kubernetes.io/instance=rel" in description


def test_thresholds_come_from_the_values(chart: helm_python.Chart) -> None:
    alerts = alerts_of(rule_of(VALUE_SETS["everything"], chart))
    assert alerts["JobfallbackDisabled"]["for"] == "12h"
    assert alerts["JobfallbackTokenMissing"]["for"] == "5m"
    assert seconds(alerts["JobfallbackMetricsMissing"]["for"]) == 1800
    expr = promql.parse(alerts["JobfallbackNoSuccessfulSweep"]["expr"])
    assert promql.Number(1800) in _numbers(expr)


def _numbers(node: promql.Node) -> list[promql.Number]:
    if isinstance(node, promql.Number):
        return [node]
    if isinstance(node, promql.Binary):
        return _numbers(node.lhs) + _numbers(node.rhs)
    if isinstance(node, promql.Aggregation):
        return _numbers(node.expr)
    if isinstance(node, promql.Call):
        return [n for arg in node.args for n in _numbers(arg)]
    return []


@pytest.mark.parametrize(
    ("schedule", "threshold"),
    [
        ("*/5 * * * *", 900),
        ("*/10 * * * *", 1800),
        ("*/1 * * * *", 180),
        ("17 * * * *", 10800),  # hourly
    ],
)
def test_no_success_threshold_is_three_schedule_intervals(
    chart: helm_python.Chart, schedule: str, threshold: int
) -> None:
    values = {**VALUE_SETS["metrics"], "schedule": schedule}
    alerts = alerts_of(rule_of(values, chart))
    expr = promql.parse(alerts["JobfallbackNoSuccessfulSweep"]["expr"])
    assert promql.Number(threshold) in _numbers(expr)
    assert seconds(alerts["JobfallbackMetricsMissing"]["for"]) == threshold


def test_another_schedule_needs_the_threshold_spelt_out(chart: helm_python.Chart) -> None:
    values = {**VALUE_SETS["metrics"], "schedule": "0 3 * * *"}
    with pytest.raises(helm_python.HelmRenderError) as caught:
        render(chart, values)
    assert "metrics.prometheusRule.noSuccessForSeconds: set it to 3 schedule intervals" in str(
        caught.value
    )
    rule = {**values["metrics"]["prometheusRule"], "noSuccessForSeconds": 259200}
    metrics_values = {**values["metrics"], "prometheusRule": rule}
    alerts = alerts_of(rule_of({**values, "metrics": metrics_values}, chart))
    assert seconds(alerts["JobfallbackMetricsMissing"]["for"]) == 259200


def test_the_rule_needs_a_pushgateway(chart: helm_python.Chart) -> None:
    values = with_required(metrics={"prometheusRule": {"enabled": True}})
    with pytest.raises(helm_python.HelmRenderError, match=r"needs metrics\.pushgateway\.url"):
        render(chart, values)


@pytest.mark.parametrize(
    "expr",
    [
        "max by (instance) (jobfallback_enabled",  # unbalanced
        "max by (instance) (jobfallback_enabled)) == 0",
        'jobfallback_moves{outcome="failed}',  # unterminated string
        "jobfallback_moves{outcome=failed}",
        "max_over_time(jobfallback_moves)",  # needs a range
        "max by (instance) (jobfallback_moves[1h])",  # aggregating a range
        "maximum(jobfallback_enabled)",  # no such function
        "jobfallback_enabled == == 1",
        "jobfallback_enabled and 1",
        "time() - ",
    ],
)
def test_the_expression_checker_refuses_malformed_promql(expr: str) -> None:
    with pytest.raises(promql.PromQLError):
        promql.parse(expr)

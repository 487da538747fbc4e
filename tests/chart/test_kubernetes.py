"""Every rendered object is valid Kubernetes, and `helm lint` has nothing to say.

kubernetes-validate knows the built-in kinds only: the PrometheusRule (a prometheus-operator CRD)
gets its metadata checked here as an ObjectMeta and its spec in test_prometheus_rule.py."""

from __future__ import annotations

import helm_python
import kubernetes_validate
import pytest

from tests.chart.helm import CHART_DIR, VALUE_SETS, render

pytestmark = pytest.mark.chart

# The chart's kubeVersion floor (CronJob timeZone is GA from 1.27) and the newest schemas shipped.
KUBE_VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
# Shards need backoffLimitPerIndex (beta, on by default, from 1.29): the chart refuses older.
SHARDS_FLOOR = "1.29.0"
# API groups of custom resources the chart may render: no schema in kubernetes-validate.
CUSTOM_GROUPS = ("monitoring.coreos.com/",)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_chart_lints_clean(value_set: str) -> None:
    report = helm_python.lint(CHART_DIR, VALUE_SETS[value_set], strict=True, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == []
    assert problems == []


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_objects_match_the_kubernetes_schemas(
    chart: helm_python.Chart, value_set: str, kube_version: str
) -> None:
    if value_set == "shards" and kube_version == KUBE_VERSIONS[0]:
        kube_version = SHARDS_FLOOR
    rendered = render(chart, VALUE_SETS[value_set])
    assert rendered.objects
    for obj in rendered.objects:
        if obj["apiVersion"].startswith(CUSTOM_GROUPS):
            # Its ObjectMeta at least (names, labels, annotations), as a ConfigMap's.
            stand_in = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
            kubernetes_validate.validate(stand_in, kube_version, strict=True)
            continue
        # strict: an unknown (misspelt) field is an error, not silently dropped by the API server.
        kubernetes_validate.validate(obj, kube_version, strict=True)

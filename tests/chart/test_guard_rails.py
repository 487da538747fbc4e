"""The chart's guard rails and shards, read back through jobfallback's own settings: what the
sweep in the CronJob's pod would plan under."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from jobfallback.breaker import BreakerPolicy
from jobfallback.plan import Limits
from jobfallback.settings import Settings
from jobfallback.shard import Shard
from tests.chart.helm import VALUE_SETS, container, env, render, sweep_settings, with_required

pytestmark = pytest.mark.chart

# Chart value -> the setting it becomes.
GUARD_RAILS = {
    ("maxMoves",): "job_fallback_max_moves",
    ("maxMovesPerDestination",): "job_fallback_max_moves_per_destination",
    ("maxMovesPerSource",): "job_fallback_max_moves_per_source",
    ("cooldownMinutes",): "job_fallback_cooldown_minutes",
    ("maxHops",): "job_fallback_max_hops",
    ("breaker", "failureRatio"): "job_fallback_breaker_failure_ratio",
    ("breaker", "minMoves"): "job_fallback_breaker_min_moves",
    ("breaker", "failedPasses"): "job_fallback_breaker_failed_passes",
    ("breaker", "quietMinutes"): "job_fallback_breaker_quiet_minutes",
}


def _value(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        values = values[key]
    return values


def test_the_charts_defaults_are_the_sweeps(chart: helm_python.Chart) -> None:
    # values.yaml shows each default; the sweep's settings own it: the two must agree.
    for path, field in GUARD_RAILS.items():
        assert _value(chart.values, path) == Settings.model_fields[field].default, path


def test_the_guard_rails_reach_the_sweep(
    chart: helm_python.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sweep_settings(render(chart, VALUE_SETS["everything"]), monkeypatch)
    # maxMovesPerSource and breaker.failedPasses are null there: the sweep's defaults.
    assert settings.limits == Limits(
        max_moves=10, per_destination=5, per_source=50, cooldown_minutes=0, max_hops=3
    )
    assert settings.breaker == BreakerPolicy(
        failure_ratio=0.25, min_moves=8, failed_passes=3, quiet_minutes=90
    )


def test_null_guard_rails_leave_the_sweeps_defaults(
    chart: helm_python.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    nulls = dict.fromkeys(("maxMoves", "maxMovesPerDestination", "maxMovesPerSource"))
    breaker = dict.fromkeys(("failureRatio", "minMoves", "failedPasses", "quietMinutes"))
    rendered = render(
        chart, with_required(**nulls, cooldownMinutes=None, maxHops=None, breaker=breaker)
    )
    assert not any(
        name in env(rendered.get("CronJob")) for name in map(str.upper, GUARD_RAILS.values())
    )
    settings = sweep_settings(rendered, monkeypatch)
    assert (settings.limits, settings.breaker) == (Limits(), BreakerPolicy())


def test_a_large_cap_reaches_the_sweep_as_a_whole_number(
    chart: helm_python.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sweep_settings(render(chart, with_required(maxMoves=10**6)), monkeypatch)
    assert settings.job_fallback_max_moves == 10**6


def test_one_shard_is_a_plain_job(chart: helm_python.Chart) -> None:
    cronjob = render(chart, VALUE_SETS["defaults"]).get("CronJob")
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert "completionMode" not in job
    assert job["backoffLimit"] == 0
    assert "JOB_FALLBACK_SHARD_COUNT" not in env(cronjob)


def test_shards_run_as_an_indexed_job(
    chart: helm_python.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(chart, VALUE_SETS["shards"])
    job = rendered.get("CronJob")["spec"]["jobTemplate"]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 4, 4)
    # Each shard fails alone: a Job-wide backoffLimit would stop the others' passes.
    assert (job["backoffLimitPerIndex"], "backoffLimit" in job) == (0, False)
    # Kubernetes sets the index in each pod of an Indexed Job.
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    assert sweep_settings(rendered, monkeypatch).shard == Shard(3, 4)


def test_the_helm_test_checks_settings_without_a_shard(chart: helm_python.Chart) -> None:
    # Its pod is no Indexed Job's: a shard count without an index would be a bad setting there.
    rendered = render(chart, VALUE_SETS["shards"])
    (pod,) = rendered.find("Pod")
    assert "JOB_FALLBACK_SHARD_COUNT" not in env(pod)
    assert env(rendered.get("CronJob"))["JOB_FALLBACK_SHARD_COUNT"]["value"] == "4"
    assert container(pod)["args"][0] == "doctor"

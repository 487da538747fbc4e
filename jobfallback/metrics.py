"""The Prometheus series of one `jobfallback sweep`, derived here and only here from what it
observed (its pass's report and outcomes, its configs, its API counters); pushed to a
Pushgateway and/or written for node-exporter's textfile collector.

Every series is a gauge about the last invocation or the last pass. Counters would be wrong:
each process starts from zero, so a counter pushed once per run would read as a reset or a flat
line to rate() and increase().

A run leaves out what it did not measure (a disabled run has no pass figures, a failed one no
success time), and both sinks keep the earlier value of what is left out: the push is a
Pushgateway POST, which replaces only the families it carries, and the textfile keeps the
families of its previous content that this run did not write. So
`jobfallback_last_success_timestamp_seconds` stays at the last successful pass, and the pass
figures at the last pass that ran, while a disabled, token-less or locked-out run updates only
what it knows.

Shards (`--shard INDEX/COUNT`) run side by side and each publishes its own series: each pushes
to a group of its own (a `shard` label in the grouping key) and writes a file of its own with a
`shard` label on every sample, so neither sink lets one shard replace another's figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from jobfallback.models import FallbackConfig
from jobfallback.move import Outcome
from jobfallback.plan import Hold, skipped_configs
from jobfallback.shard import Shard

if TYPE_CHECKING:
    from jobfallback.publish import ApiCounters, SweepFacts
    from jobfallback.sweep import SweepResult

JOB = "jobfallback"  # the Pushgateway's job label
PREFIX = "jobfallback_"
NO_ANSWER = "none"  # status_class of an attempt that got no HTTP answer (refused, reset, timeout)


class _Series:
    """Gauges in a registry of their own (never the process-wide default registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

    def set(self, name: str, documentation: str, value: float) -> None:
        Gauge(PREFIX + name, documentation, registry=self.registry).set(value)

    def by(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        values: Mapping[tuple[str, ...], float],
    ) -> None:
        gauge = Gauge(PREFIX + name, documentation, labels, registry=self.registry)
        for label_values, value in values.items():
            gauge.labels(*label_values).set(value)


def build(facts: SweepFacts, *, exit_code: int, now: float) -> CollectorRegistry:
    """The series of one invocation that ended at `now` (Unix time) with `exit_code`."""
    series = _Series()
    series.set("last_run_timestamp_seconds", "When the last sweep ended (Unix time).", now)
    series.set("last_exit_code", "Exit code of the last sweep (README: exit codes).", exit_code)
    series.set("enabled", "1 when JOB_FALLBACK_ENABLED lets sweeps move runs.", facts.enabled)
    series.set("dry_run", "1 when the last sweep was a dry run.", facts.dry_run)
    series.set("token_configured", "1 when TF_SERVICE_API_TOKEN is set.", facts.token_configured)
    series.set(
        "lock_held_by_other",
        "1 when the last sweep found another sweep holding the lock and did nothing.",
        facts.lock_held_by_other,
    )
    if facts.api is not None:
        _api(series, facts.api)
    if facts.result is not None:
        if exit_code == 0:
            series.set(
                "last_success_timestamp_seconds",
                "When a sweep last ran its pass to the end with exit code 0 (Unix time).",
                now,
            )
        _pass(series, facts.result, facts.configs)
    return series.registry


def _pass(series: _Series, result: SweepResult, configs: Sequence[FallbackConfig]) -> None:
    report = result.report
    series.set("sweep_duration_seconds", "How long the last pass took.", report.duration_seconds)
    series.set("sources", "Source workspaces the last pass had to list.", report.sources_total)
    series.set("sources_scanned", "Sources the last pass listed.", report.sources_scanned)
    series.set("sources_failed", "Sources the last pass could not list.", report.sources_failed)
    series.set(
        "sources_refused",
        "Source workspaces named under two clusters, not acted on.",
        report.sources_refused,
    )
    series.set(
        "sources_missing",
        "Source workspaces the API does not list (or lists in another cluster), not acted on.",
        report.sources_missing,
    )
    series.by(
        "configs_skipped",
        "Enabled configs the last pass could not use, by reason.",
        ["reason"],
        {(reason,): count for reason, count in skipped_configs(configs).items()},
    )
    series.set("jobs_listed", "Jobs the last pass listed.", report.jobs_listed)
    series.set("runs_seen", "CREATED runs the last pass saw.", report.runs_seen)
    series.set("runs_unreadable", "Listed items the last pass could not read.", report.unreadable)
    series.set("runs_stuck", "Runs past their threshold in the last pass.", report.stuck)
    series.set("runs_planned", "Stuck runs the last pass set out to move.", report.planned)
    series.set(
        "runs_deferred",
        "Stuck runs over a cap (per pass, destination or source), left for the next pass.",
        len(result.plan.deferred),
    )
    # Every reason, 0 included: a pass that held nothing replaces an earlier pass's figures.
    series.by(
        "runs_held",
        "Stuck runs the last pass did not move, by reason (README: Guard rails).",
        ["reason"],
        {(hold.value,): report.held.get(hold.value, 0) for hold in Hold},
    )
    series.set(
        "breaker_open",
        "1 when the circuit breaker was open in the last pass: no new move started.",
        report.breaker_open,
    )
    series.set(
        "destinations_saturated",
        "Destination workspaces the last pass skipped: their own runs are stuck.",
        report.destinations_saturated,
    )
    outcomes = Counter(outcome.outcome for outcome in result.outcomes)
    series.by(
        "moves",
        "Moves of the last pass by outcome (a dry run moves nothing: all 0).",
        ["outcome"],
        {(outcome.value,): outcomes[outcome] for outcome in Outcome},
    )
    series.set(
        "moves_resumed",
        "Unfinished moves of earlier passes that the last pass picked up.",
        report.resumed,
    )


def _api(series: _Series, api: ApiCounters) -> None:
    requests: Counter[tuple[str, ...]] = Counter(api.answered)
    for endpoint, calls in api.calls.items():
        unanswered = calls - sum(n for (e, _), n in api.answered.items() if e == endpoint)
        if unanswered:
            requests[endpoint, NO_ANSWER] = unanswered
    series.by(
        "api_requests",
        "API request attempts of the last sweep by endpoint and status class (none: no answer).",
        ["endpoint", "status_class"],
        requests,
    )
    # Every endpoint called, 0 included: a pass without retries replaces an earlier pass's.
    series.by(
        "api_retries",
        "API request attempts of the last sweep that were retries, by endpoint.",
        ["endpoint"],
        {(endpoint,): api.retries[endpoint] for endpoint in api.calls},
    )


def push(
    url: str,
    instance: str,
    registry: CollectorRegistry,
    timeout: float,
    shard: Shard | None = None,
) -> None:
    """POST (see the module's doc) under the grouping key job + instance (+ shard)."""
    pushadd_to_gateway(
        url, job=JOB, registry=registry, grouping_key=grouping_key(instance, shard), timeout=timeout
    )


def grouping_key(instance: str, shard: Shard | None) -> dict[str, str]:
    # prometheus_client encodes a "/" in a value ("0/4", "ns/release") for the URL path.
    return {"instance": instance} if shard is None else {"instance": instance, "shard": str(shard)}


def shard_path(path: str, shard: Shard | None) -> str:
    """The textfile of `shard`: PATH with `.shard-I-of-N` before `.prom` (two shards on one node
    must not write one file: the last would replace the other's families)."""
    if shard is None:
        return path
    return str(Path(path).with_suffix(f".shard-{shard.index}-of-{shard.count}.prom"))


def _labelled(family: Metric, shard: Shard | None) -> Metric:
    """`family` with the shard's label on every sample: what the push's grouping key adds, so
    node-exporter can serve every shard's file side by side."""
    if shard is not None:
        family.samples = [
            sample._replace(labels={**sample.labels, "shard": str(shard)})
            for sample in family.samples
        ]
    return family


class _Families:
    """A fixed set of families, as write_to_textfile collects them."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def write_textfile(path: str, registry: CollectorRegistry, shard: Shard | None = None) -> None:
    """Replace the file (the shard's own: `shard_path`) atomically, keeping what this run left
    out (see the module's doc). A family without samples counts as left out, as the
    Pushgateway drops it too. `registry` is left as it is: the push must not carry the file's
    old families."""
    path = shard_path(path, shard)
    fresh = [_labelled(family, shard) for family in registry.collect() if family.samples]
    written = {family.name for family in fresh}
    kept = [family for family in _previous(path) if family.name not in written]
    write_to_textfile(path, _Families([*fresh, *kept]))


def _previous(path: str) -> list[Metric]:
    try:
        text = Path(path).read_text(encoding="utf-8")
        return [f for f in text_string_to_metric_families(text) if f.name.startswith(PREFIX)]
    # The first run; or a file not in the format (edited by hand): start afresh, not fail.
    except (FileNotFoundError, ValueError):
        return []

"""What a sweep tells the outside on its way out: its metrics (a Pushgateway, a textfile for
node-exporter) and its webhook message.

`jobfallback sweep` fills a SweepFacts as it goes and calls `publish` with its exit code,
whatever the exit (but bad settings: then the metrics settings themselves may be what is
wrong). Nothing here costs anything when nothing is configured: prometheus_client, slow to
import, is imported only when metrics are asked for.

Each network delivery runs in a thread of its own with its own timeout: once the report is out,
the process waits at most the longest timeout, then abandons what is still under way (a daemon
thread ends with the process). A failed or late delivery is one warning line; none changes the
exit code.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from jobfallback.logs import event, get_logger
from jobfallback.models import FallbackConfig
from jobfallback.redact import scrub
from jobfallback.settings import Settings

if TYPE_CHECKING:
    from jobfallback.sweep import SweepResult

log = get_logger("publish")


class ApiCounters(Protocol):
    """What the API client counted (TrueFoundryClient has these)."""

    calls: Counter[str]  # attempts by endpoint
    retries: Counter[str]
    answered: Counter[tuple[str, str]]  # (endpoint, status class) of answered attempts


@dataclass
class SweepFacts:
    """What one `jobfallback sweep` observed, filled in as it gets that far."""

    enabled: bool
    dry_run: bool
    token_configured: bool
    lock_held_by_other: bool = False
    configs: Sequence[FallbackConfig] = ()
    api: ApiCounters | None = None  # set as the pass starts: counts until the end
    result: SweepResult | None = None  # the pass ran to the end

    @classmethod
    def of(cls, settings: Settings, *, dry_run: bool) -> SweepFacts:
        return cls(
            enabled=settings.job_fallback_enabled,
            dry_run=dry_run,
            token_configured=settings.service_token is not None,
        )


def instance(settings: Settings) -> str:
    """The `instance` the metrics and the message name: set, or the control plane's host (one
    jobfallback per control plane), stable across runs, unlike a pod name."""
    if settings.job_fallback_metrics_instance:
        return settings.job_fallback_metrics_instance
    if settings.tfy_host:
        return urlsplit(settings.tfy_host).netloc
    return "default"


@dataclass(frozen=True)
class _Delivery:
    key: str  # the events' prefix: `<key>.done`, `<key>.failed`, `<key>.timeout`
    what: str  # for the log line
    send: Callable[[], None]  # raises when it did not go through
    timeout: float


def publish(settings: Settings, facts: SweepFacts, *, exit_code: int) -> None:
    deliveries = _metrics(settings, facts, exit_code)
    webhook = settings.job_fallback_webhook_url
    url = webhook.get_secret_value() if webhook else None
    if url is not None and facts.result is not None:
        deliveries += _notification(settings, facts.result, facts.configs, url)
    _deliver(deliveries, secret=url)


def _metrics(settings: Settings, facts: SweepFacts, exit_code: int) -> list[_Delivery]:
    url, path = settings.job_fallback_pushgateway_url, settings.job_fallback_metrics_file
    if url is None and path is None:
        return []
    from jobfallback import metrics

    registry = metrics.build(facts, exit_code=exit_code, now=time.time())
    if path is not None:
        try:  # a local file: written here, not in a thread
            metrics.write_textfile(path, registry, settings.shard)
        except OSError as exc:
            event(
                log,
                logging.WARNING,
                "metrics.file_failed",
                "could not write the metrics file",
                path=path,
                error=str(exc),
            )
    if url is None:
        return []
    timeout = settings.job_fallback_pushgateway_timeout_seconds
    push = functools.partial(
        metrics.push, url, instance(settings), registry, timeout, settings.shard
    )
    return [_Delivery("metrics.push", "metrics push to the Pushgateway", push, timeout)]


def _notification(
    settings: Settings, result: SweepResult, configs: Sequence[FallbackConfig], url: str
) -> list[_Delivery]:
    from jobfallback import notify

    if not notify.notable(result):
        return []
    body = notify.message(
        result,
        configs,
        instance=instance(settings),
        body_format=settings.job_fallback_webhook_format,
        token=settings.service_token,
    )
    timeout = settings.job_fallback_webhook_timeout_seconds
    send = functools.partial(notify.post, url, body, timeout)
    return [_Delivery("webhook", "webhook notification", send, timeout)]


def _deliver(deliveries: Iterable[_Delivery], *, secret: str | None) -> None:
    failures: dict[str, Exception] = {}

    def attempt(delivery: _Delivery) -> None:
        try:
            delivery.send()
        except Exception as exc:  # any failure is the one warning line, never a traceback
            failures[delivery.what] = exc

    started = []
    for delivery in deliveries:
        thread = threading.Thread(target=attempt, args=(delivery,), daemon=True)
        thread.start()
        started.append((delivery, thread, time.monotonic() + delivery.timeout))
    for delivery, thread, deadline in started:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            event(
                log,
                logging.WARNING,
                f"{delivery.key}.timeout",
                _MESSAGES[delivery.key, "timeout"],
                timeout_seconds=delivery.timeout,
            )
        elif delivery.what in failures:
            error = scrub(str(failures[delivery.what]), secret)
            event(
                log,
                logging.WARNING,
                f"{delivery.key}.failed",
                _MESSAGES[delivery.key, "failed"],
                error=error,
            )
        else:
            event(log, logging.INFO, f"{delivery.key}.done", _MESSAGES[delivery.key, "done"])


# Each delivery's fixed messages, by (key, what happened).
_MESSAGES = {
    ("metrics.push", "timeout"): "metrics push to the Pushgateway: no answer in time; "
    "not waiting for it",
    ("metrics.push", "failed"): "metrics push to the Pushgateway failed",
    ("metrics.push", "done"): "metrics push to the Pushgateway: done",
    ("webhook", "timeout"): "webhook notification: no answer in time; not waiting for it",
    ("webhook", "failed"): "webhook notification failed",
    ("webhook", "done"): "webhook notification: done",
}

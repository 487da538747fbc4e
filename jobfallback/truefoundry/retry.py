"""When a failed call is tried again, and how long to wait first.

Retried: connect errors, timeouts, resets, 429, 500, 502, 503, 504 and a 2xx whose body is not
JSON (a proxy hiccup). Never retried: other statuses (400, 401, 403, 404, 409, 417, 422, ...).
A call that is not idempotent (trigger), or whose answer must speak for its one attempt
(terminate), is retried only when the failure proves the request had no effect: it never
reached the server, or the server refused it (429); after a read timeout or a 5xx it may have
run, so it is surfaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from jobfallback.truefoundry.errors import ApiError, BadResponse, TransportError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The connection was never established, so the server cannot have acted on the request.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 10.0
    max_total_seconds: float = 60.0


def parse_retry_after(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, else `Retry-After` (seconds or an
    HTTP date); None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_retryable(exc: BaseException, *, idempotent: bool) -> bool:
    if not isinstance(exc, ApiError):
        return False
    # Transport and body failures are raised `from` the underlying httpx/JSON error.
    if isinstance(exc.__cause__, _NEVER_SENT) or exc.status == 429:
        return True
    if not idempotent:
        return False
    if isinstance(exc, TransportError):
        return isinstance(exc.__cause__, _TRANSIENT)
    if isinstance(exc, BadResponse):
        # A garbled or wrong-shaped answer (a proxy's page, a broken server): ask again.
        return True
    return exc.status in RETRY_STATUSES


async def sleep(seconds: float) -> None:
    """The backoff sleep; looked up at call time so tests record the waits instead."""
    await asyncio.sleep(seconds)


async def _sleep(seconds: float) -> None:
    await sleep(seconds)


def retrying(
    policy: RetryPolicy,
    *,
    idempotent: bool,
    before_sleep: Callable[[RetryCallState], None],
) -> AsyncRetrying:
    jitter = wait_random_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = exc.retry_after if isinstance(exc, ApiError) else None
        return min(hint, policy.max_backoff) if hint is not None else jitter(state)

    return AsyncRetrying(
        sleep=_sleep,
        stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_total_seconds),
        wait=wait,
        retry=retry_if_exception(partial(is_retryable, idempotent=idempotent)),
        before_sleep=before_sleep,
        reraise=True,
    )

"""Fault injection: which requests fail, and the bytes a failed request gets.

Decisions come from one seeded random.Random under a lock, so a run of sequential requests
fails the same way every time. Kinds:

    500, 502, 503   an error answer (502 comes as HTML, like a proxy's; 503 with Retry-After)
    429             rate limited, with `Retry-After: 0` or `retry-after-ms: 10`
    timeout         no answer at all: the connection is held, then closed
    reset           headers with the full Content-Length, half the body, then a closed socket
    badjson         200 with a truncated JSON body
    wrongshape      200 with JSON of the wrong shape
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from jobfallback_sandbox.api import ENDPOINTS, WRITE_ENDPOINTS, RawReply

FAULT_KINDS = ("500", "502", "503", "429", "timeout", "reset", "badjson", "wrongshape")
# The kinds that can lose the answer of a write the server already applied.
LOST_ANSWER_KINDS = frozenset({"timeout", "reset"})
_RETRY_HEADERS = (("Retry-After", "0"), ("retry-after-ms", "10"))


@dataclass(frozen=True)
class FaultPolicy:
    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    endpoints: frozenset[str] | None = None  # None: every API endpoint

    @classmethod
    def of(cls, rate: float, kinds: Sequence[str], endpoints: Sequence[str] | None) -> FaultPolicy:
        """A checked policy; ValueError names the bad value and what is allowed."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate {rate} must be between 0 and 1")
        unknown = sorted(set(kinds) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; use {', '.join(FAULT_KINDS)}")
        if rate > 0 and not kinds:
            raise ValueError("a fault rate above 0 needs at least one fault kind")
        unknown = sorted(set(endpoints or ()) - set(ENDPOINTS))
        if unknown:
            raise ValueError(f"unknown fault endpoints {unknown}; use {', '.join(ENDPOINTS)}")
        return cls(rate, tuple(kinds), None if endpoints is None else frozenset(endpoints))


@dataclass(frozen=True)
class Fault:
    kind: str
    retry_header: tuple[str, str] | None = None

    def loses_answer_after_effect(self, endpoint: str, enabled: bool) -> bool:
        """True when the write is applied first and only its answer is lost."""
        return enabled and self.kind in LOST_ANSWER_KINDS and endpoint in WRITE_ENDPOINTS


class FaultInjector:
    def __init__(self, policy: FaultPolicy, seed: int | None) -> None:
        self.counts: Counter[str] = Counter()  # faults injected, per kind
        self._policy = policy
        self._rng = random.Random(seed)  # noqa: S311  (reproducible, not secret)
        self._lock = threading.Lock()

    def set_policy(self, policy: FaultPolicy) -> None:
        with self._lock:
            self._policy = policy

    def decide(self, endpoint: str) -> Fault | None:
        with self._lock:
            policy = self._policy
            if policy.rate <= 0 or (
                policy.endpoints is not None and endpoint not in policy.endpoints
            ):
                return None
            if self._rng.random() >= policy.rate:
                return None
            kind = self._rng.choice(policy.kinds)
            header = {"429": self._rng.choice(_RETRY_HEADERS), "503": _RETRY_HEADERS[0]}.get(kind)
            self.counts[kind] += 1
            return Fault(kind, header)


def _error(status: int, message: str, header: tuple[str, str] | None) -> RawReply:
    body = {"statusCode": status, "message": message, "code": "SANDBOX_FAULT"}
    return RawReply(status, json.dumps(body).encode(), headers=(header,) if header else ())


_FILLER = RawReply(
    200, json.dumps({"data": {"sandbox": "this answer is cut off halfway"}}).encode()
)


def fault_reply(fault: Fault, answer: RawReply | None) -> RawReply | None:
    """What a faulted request gets: None for "timeout" (no answer at all). `answer` is the real
    answer when the effect was applied first; "reset" cuts that one in half."""
    match fault.kind:
        case "timeout":
            return None
        case "reset":
            base = answer or _FILLER
            return replace(base, send_bytes=len(base.body) // 2)
        case "502":
            html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return RawReply(502, html, content_type="text/html")
        case "badjson":
            return RawReply(200, b'{"data": [{"id": "trunc')
        case "wrongshape":
            return RawReply(200, b'{"items": 1}')
        case "429":
            return _error(429, "too many requests (injected)", fault.retry_header)
        case _:
            return _error(int(fault.kind), "injected server error", fault.retry_header)

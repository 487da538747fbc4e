"""The circuit breaker: when moves keep failing, stop starting new ones.

Open when, in this pass, at least `min_moves` moves finished and the share that failed reached
`failure_ratio`; or when the last `failed_passes` passes each had a failed move. While open a pass
finishes the moves under way (their journal rows must settle) and starts no new one; it closes by
itself once `quiet_minutes` passed without a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobfallback.store.journal import PassRecord


@dataclass(frozen=True)
class BreakerPolicy:
    failure_ratio: float = 0.5
    min_moves: int = 4
    failed_passes: int = 3
    quiet_minutes: int = 30


def opened_by(passes: Sequence[PassRecord], policy: BreakerPolicy, now: datetime) -> str | None:
    """Why the breaker is open at the start of a pass (`passes`: this shard's last ones, newest
    first), or None. It stays open until `quiet_minutes` passed since the last failing pass."""
    if not passes:
        return None
    latest = passes[0]
    quiet_until = latest.finished_at + timedelta(minutes=policy.quiet_minutes)
    if now >= quiet_until or not latest.failed:
        return None
    until = f"closes at {quiet_until:%Y-%m-%d %H:%M:%S} UTC if no move fails meanwhile"
    if latest.breaker_tripped:
        return (
            f"the last pass tripped it ({latest.failed} of {latest.started} moves failed); {until}"
        )
    recent = passes[: policy.failed_passes]
    if len(recent) == policy.failed_passes and all(p.failed for p in recent):
        return f"each of the last {policy.failed_passes} passes had failed moves; {until}"
    return None


class PassBreaker:
    """The breaker within one pass: trips once enough moves finished and too many failed."""

    def __init__(self, policy: BreakerPolicy, opened: str | None) -> None:
        self._policy = policy
        self.reason = opened
        self.finished = 0
        self.failed = 0
        self.tripped = False

    def record(self, failed: bool) -> None:
        self.finished += 1
        self.failed += failed
        policy = self._policy
        if (
            self.reason is None
            and self.finished >= policy.min_moves
            and self.failed >= policy.failure_ratio * self.finished
        ):
            self.tripped = True
            self.reason = (
                f"{self.failed} of the {self.finished} moves finished in this pass failed "
                f"(--breaker-failure-ratio {policy.failure_ratio})"
            )

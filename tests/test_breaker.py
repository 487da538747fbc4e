"""The circuit breaker: when it opens, and when it closes by itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobfallback.breaker import BreakerPolicy, PassBreaker, opened_by
from jobfallback.store.journal import PassRecord

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POLICY = BreakerPolicy(failure_ratio=0.5, min_moves=4, failed_passes=3, quiet_minutes=30)


def ago(minutes: float, *, failed: int = 0, tripped: bool = False) -> PassRecord:
    return PassRecord(NOW - timedelta(minutes=minutes), 10, failed, tripped)


def test_closed_without_history() -> None:
    assert opened_by([], POLICY, NOW) is None


def test_a_tripped_pass_opens_it_for_the_quiet_period() -> None:
    passes = [ago(5, failed=6, tripped=True)]
    assert opened_by(passes, POLICY, NOW) == (
        "the last pass tripped it (6 of 10 moves failed); "
        "closes at 2026-11-30 12:25:00 UTC if no move fails meanwhile"
    )
    assert opened_by([ago(30, failed=6, tripped=True)], POLICY, NOW) is None  # quiet long enough


def test_consecutive_failing_passes_open_it() -> None:
    failing = [ago(5, failed=1), ago(10, failed=1), ago(15, failed=2)]
    assert opened_by(failing, POLICY, NOW) == (
        "each of the last 3 passes had failed moves; "
        "closes at 2026-11-30 12:25:00 UTC if no move fails meanwhile"
    )
    assert opened_by(failing[:2], POLICY, NOW) is None  # two are not three
    assert opened_by([ago(5, failed=1), ago(10), ago(15, failed=2)], POLICY, NOW) is None


def test_a_quiet_last_pass_closes_it() -> None:
    assert opened_by([ago(1), ago(5, failed=6, tripped=True)], POLICY, NOW) is None


@pytest.mark.parametrize(
    ("outcomes", "tripped"),
    [
        ([True, True, True], False),  # fewer than min_moves finished
        ([True, False, True, False], True),  # 2 of 4 failed: the ratio is reached
        ([True, False, False, False], False),
        ([False, False, False, False, True, True, True, True], True),
    ],
)
def test_a_pass_trips_it_once_enough_moves_finished_and_too_many_failed(
    outcomes: list[bool], tripped: bool
) -> None:
    breaker = PassBreaker(POLICY, None)
    for failed in outcomes:
        breaker.record(failed)
    assert breaker.tripped is tripped
    assert (breaker.reason is not None) is tripped
    assert (breaker.finished, breaker.failed) == (len(outcomes), sum(outcomes))


def test_a_pass_that_starts_open_does_not_count_as_tripping_it() -> None:
    breaker = PassBreaker(POLICY, "each of the last 3 passes had failed moves")
    for _ in range(4):
        breaker.record(True)
    assert not breaker.tripped
    assert breaker.reason == "each of the last 3 passes had failed moves"

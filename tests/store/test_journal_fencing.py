"""Two passes racing for one move, each on its own Store (its own connections), as two sweep
processes would: the row's owner decides who may write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import psycopg
import pytest

from jobfallback.models import MoveState
from jobfallback.store import Claim, OwnershipLost, Store, open_store
from jobfallback.store.journal import NOW
from tests.store.test_journal import record

pytestmark = pytest.mark.embedded


@pytest.fixture
def other(database_url: str) -> Iterator[Store]:
    """A second Store on the same database: another sweep process."""
    with open_store(database_url) as opened:
        yield opened


def test_a_pass_taken_over_by_a_claim_can_no_longer_write(store: Store, other: Store) -> None:
    a = store.journal.claim(record(owner="pass-a"))
    assert a.inserted
    store.journal.update("run-1", owner="pass-a", state=MoveState.DEPLOYED, trigger_sent_at=None)

    b = other.journal.claim(record(owner="pass-b"))
    assert (b.inserted, b.record.owner, b.record.state) == (False, "pass-b", MoveState.DEPLOYED)

    with pytest.raises(OwnershipLost):
        store.journal.update("run-1", owner="pass-a", state=MoveState.DEPLOYED, trigger_sent_at=NOW)
    assert other.journal.get("run-1") == b.record  # A's intent mark was not written

    triggered = other.journal.update(
        "run-1", owner="pass-b", state=MoveState.TRIGGERED, destination_run_name="d-run-b"
    )
    assert store.journal.get("run-1") == triggered


def test_a_pass_taken_over_by_take_can_no_longer_write(store: Store, other: Store) -> None:
    store.journal.claim(record(owner="pass-a"))
    store.journal.update("run-1", owner="pass-a", state=MoveState.FAILED, error="api down")

    taken = other.journal.take("run-1", "pass-b")

    with pytest.raises(OwnershipLost):
        store.journal.update("run-1", owner="pass-a", state=MoveState.DONE)
    assert store.journal.get("run-1") == taken
    other.journal.update("run-1", owner="pass-b", state=MoveState.SKIPPED, error="gone")


def test_the_first_owner_claiming_back_fences_the_second(store: Store, other: Store) -> None:
    store.journal.claim(record(owner="pass-a"))
    other.journal.claim(record(owner="pass-b"))
    store.journal.claim(record(owner="pass-a"))
    with pytest.raises(OwnershipLost):
        other.journal.update("run-1", owner="pass-b", state=MoveState.DONE)
    done = store.journal.update("run-1", owner="pass-a", state=MoveState.DONE)
    assert done.state is MoveState.DONE


def test_concurrent_claims_end_with_one_row_and_one_holder(
    database_url: str,
) -> None:
    owners = [f"pass-{i}" for i in range(8)]
    start = threading.Barrier(len(owners))
    with ExitStack() as stack:
        stores = [stack.enter_context(open_store(database_url)) for _ in owners]

        def claim(index: int) -> Claim:
            start.wait()
            return stores[index].journal.claim(record(owner=owners[index]))

        with ThreadPoolExecutor(max_workers=len(owners)) as pool:
            claims = list(pool.map(claim, range(len(owners))))

        assert sum(c.inserted for c in claims) == 1
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT owner FROM moves").fetchall()
        assert len(rows) == 1
        holder = rows[0][0]
        assert holder in owners

        # Only the holder may write; every other pass is fenced out.
        written = []
        for index, owner in enumerate(owners):
            try:
                stores[index].journal.update("run-1", owner=owner, state=MoveState.DEPLOYED)
            except OwnershipLost:
                continue
            written.append(owner)
        assert written == [holder]

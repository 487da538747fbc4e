from __future__ import annotations

import time

import psycopg
import pytest

from jobfallback.shard import Shard
from jobfallback.store import Store, open_store
from jobfallback.store.lock import SWEEP_LOCK_KEY, LockLost, SweepLock, lock_key, sweep_lock

pytestmark = pytest.mark.embedded


def holder_pid(database_url: str) -> int | None:
    """The backend holding the sweep lock, seen from another session (pg_locks splits the
    bigint key into its high and low 32 bits; objsubid 1 marks a bigint key)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid = %s AND l.objid = %s AND a.datname = current_database()",
            (SWEEP_LOCK_KEY >> 32, SWEEP_LOCK_KEY & 0xFFFF_FFFF),
        ).fetchone()
    return None if row is None else row[0]


def terminate(database_url: str, pid: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert row == (True,)


def wait_until_released(database_url: str) -> None:
    # pg_terminate_backend only signals the backend: it releases its locks as it exits.
    deadline = time.monotonic() + 10
    while holder_pid(database_url) is not None:
        assert time.monotonic() < deadline, "the terminated backend still holds the lock"
        time.sleep(0.05)


def test_second_holder_gets_a_falsy_lock_until_the_first_releases(
    store: Store, database_url: str
) -> None:
    with open_store(database_url) as other:
        with store.sweep_lock() as first:
            assert isinstance(first, SweepLock)
            assert first
            assert first.held
            with other.sweep_lock() as second:
                assert not second
                assert second.held is False
            first.check()  # the refused attempt did not disturb the holder
        with other.sweep_lock() as after_release:
            assert after_release
            after_release.check()


def test_the_lock_is_held_by_a_database_session_other_sessions_see(database_url: str) -> None:
    assert holder_pid(database_url) is None
    with sweep_lock(database_url) as lock:
        assert lock
        assert holder_pid(database_url) is not None
    assert holder_pid(database_url) is None


def test_a_falsy_lock_fails_its_check(database_url: str) -> None:
    with sweep_lock(database_url) as first, sweep_lock(database_url) as second:
        assert first
        assert not second
        with pytest.raises(LockLost, match="no longer holds"):
            second.check()


def test_check_passes_while_held_and_raises_once_released(database_url: str) -> None:
    with sweep_lock(database_url) as lock:
        lock.check()
        lock.check()  # a check is a read: it does not release anything
    with pytest.raises(LockLost):
        lock.check()


def test_check_raises_after_the_session_unlocks(database_url: str) -> None:
    with sweep_lock(database_url) as lock:
        lock.check()
        # The session itself gives the lock up (the check must ask the server, not a flag),
        # while holding other advisory locks (the check must look for the sweep's key).
        lock._conn.execute("SELECT pg_advisory_lock(%s)", (SWEEP_LOCK_KEY + 1,))
        lock._conn.execute("SELECT pg_advisory_lock(%s)", (SWEEP_LOCK_KEY + (1 << 32),))
        lock._conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK_KEY,))
        with pytest.raises(LockLost, match="no longer holds the sweep lock"):
            lock.check()
        with sweep_lock(database_url) as next_sweep:
            assert next_sweep


def test_check_raises_after_the_session_is_terminated(database_url: str) -> None:
    with sweep_lock(database_url) as lock:
        lock.check()
        pid = holder_pid(database_url)
        assert pid is not None
        terminate(database_url, pid)
        wait_until_released(database_url)

        with pytest.raises(LockLost, match="database session is gone"):
            lock.check()
        with pytest.raises(LockLost):
            lock.check()  # stays lost

        with sweep_lock(database_url) as next_sweep:
            assert next_sweep
            next_sweep.check()


def test_leaving_the_block_after_the_session_died_does_not_raise(database_url: str) -> None:
    # A sweep with nothing left to do may never call check(); its exit must not fail on the
    # unlock of a session whose lock the server has already released.
    with sweep_lock(database_url) as lock:
        assert lock
        pid = holder_pid(database_url)
        assert pid is not None
        terminate(database_url, pid)
        wait_until_released(database_url)


def test_lock_is_released_when_the_block_raises(store: Store, database_url: str) -> None:
    held = []

    def sweep_that_crashes() -> None:
        with store.sweep_lock() as lock:
            held.append(bool(lock))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        sweep_that_crashes()
    assert held == [True]
    assert holder_pid(database_url) is None
    with store.sweep_lock() as again:
        assert again


def test_a_session_holding_the_key_elsewhere_blocks_the_sweep(database_url: str) -> None:
    # The key is the shared contract between processes (and differs from the migrations' key).
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SWEEP_LOCK_KEY,))
        with sweep_lock(database_url) as lock:
            assert not lock
        conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK_KEY,))
    with sweep_lock(database_url) as lock:
        assert lock


def test_shards_sweep_side_by_side_and_each_shard_once(database_url: str) -> None:
    with (
        sweep_lock(database_url, Shard(0, 2)) as zero,
        sweep_lock(database_url, Shard(1, 2)) as one,
    ):
        assert zero
        assert one
        with sweep_lock(database_url, Shard(1, 2)) as one_again:
            assert not one_again  # a second process of the same shard waits for the next pass
        zero.check()
        one.check()
    with sweep_lock(database_url, Shard(1, 2)) as after_release:
        assert after_release


def test_a_shard_lock_does_not_stand_for_the_unsharded_lock(database_url: str) -> None:
    with sweep_lock(database_url, Shard(0, 2)) as shard:
        assert holder_pid(database_url) is None  # the unsharded key is free
        with sweep_lock(database_url) as unsharded:
            assert unsharded
        shard.check()  # the unsharded sweep's unlock released its own key only


def test_one_shard_of_one_is_the_unsharded_sweep(database_url: str) -> None:
    # Both take every source: they must exclude each other.
    with sweep_lock(database_url) as unsharded, sweep_lock(database_url, Shard(0, 1)) as whole:
        assert unsharded
        assert not whole


def test_every_shard_has_a_key_of_its_own() -> None:
    keys = [lock_key(Shard(i, n)) for n in (2, 3, 4, 1000) for i in range(n)]
    assert len(set(keys)) == len(keys)
    assert SWEEP_LOCK_KEY not in keys
    assert all(0 < key < 2**63 for key in keys)  # a PostgreSQL bigint


def test_a_shard_checks_its_own_key(database_url: str) -> None:
    with sweep_lock(database_url, Shard(2, 4)) as lock:
        lock.check()
        lock._conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(Shard(2, 4)),))
        with pytest.raises(LockLost, match="no longer holds the sweep lock"):
            lock.check()

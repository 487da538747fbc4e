"""The sweep lock: one sweep of each shard at a time across every process and host using the
database (an unsharded sweep is one shard of all the sources)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from jobfallback.errors import JobFallbackError, StoreError
from jobfallback.shard import Shard
from jobfallback.store.connection import Connection, connect, translate_errors

# Any fixed bigints work; they only have to differ from the migrations' key (store/migrations.py,
# "jobf" + 1) and from each other.
_JOBF = 0x6A6F_6266 << 32  # "jobf"
SWEEP_LOCK_KEY = _JOBF | 2
# A shard's key: 3 above bit 20, then COUNT (< 1024) and INDEX (< COUNT) in 10 bits each, so
# every INDEX/COUNT has a key of its own.
_SHARD_KEYS = _JOBF | 3 << 20
# pg_locks shows a bigint advisory key as its high and low 32 bits.
_HELD = """
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
      AND classid = %s AND objid = %s AND objsubid = 1
) AS held
"""


def lock_key(shard: Shard | None) -> int:
    """The advisory lock key of the sweeps of `shard` (None: unsharded). 0/1 is every source,
    so it shares the unsharded sweep's key; shards of different counts overlap in sources and
    do not exclude each other (the journal still gives each run one move)."""
    if shard is None or shard.count == 1:
        return SWEEP_LOCK_KEY
    return _SHARD_KEYS | shard.count << 10 | shard.index


class LockLost(JobFallbackError):
    """This pass no longer holds the sweep lock: another sweep may be acting."""


class SweepLock:
    """Whether this process holds the sweep lock, and a check it still does."""

    def __init__(self, conn: Connection, dsn: str, key: int, held: bool) -> None:
        self._conn = conn
        self._dsn = dsn
        self._key = key
        self._guard = threading.Lock()  # the check runs from the sweep's worker threads
        self.held = held

    def __bool__(self) -> bool:
        return self.held

    def check(self) -> None:
        """Raise LockLost unless this session still holds the lock (a dead session does not)."""
        try:
            with self._guard, translate_errors(self._dsn):
                row = self._conn.execute(
                    _HELD, (self._key >> 32, self._key & 0xFFFF_FFFF)
                ).fetchone()
        except StoreError as exc:
            raise LockLost(f"the sweep lock's database session is gone ({exc})") from exc
        if not (row and row["held"]):
            raise LockLost("this sweep no longer holds the sweep lock")


@contextmanager
def sweep_lock(dsn: str, shard: Shard | None = None) -> Iterator[SweepLock]:
    """Yield the SweepLock of `shard` (None: unsharded), held for the block when nobody else
    holds it.

    The lock is a session advisory lock on a dedicated connection: it is released when the block
    ends, and also if this process dies (the server closes the session).
    """
    key = lock_key(shard)
    with connect(dsn) as conn:
        with translate_errors(dsn):
            row = conn.execute("SELECT pg_try_advisory_lock(%s) AS acquired", (key,)).fetchone()
        lock = SweepLock(conn, dsn, key, bool(row and row["acquired"]))
        try:
            yield lock
        finally:
            if lock.held and not conn.closed:
                # Closing the session releases it too, but only once the server has noticed
                # the close: unlock explicitly so the next sweep never sees a stale holder. A
                # session that died has released it already.
                with suppress(StoreError), translate_errors(dsn):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

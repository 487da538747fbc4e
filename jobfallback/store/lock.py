"""The sweep lock: one sweep at a time across every process and host using the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from jobfallback.errors import JobFallbackError, StoreError
from jobfallback.store.connection import Connection, connect, translate_errors

# Any fixed bigint works; it only has to differ from the migrations' key (store/migrations.py).
SWEEP_LOCK_KEY = 0x6A6F_6266_0002  # "jobf" + 2
# pg_locks shows a bigint advisory key as its high and low 32 bits.
_HELD = """
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
      AND classid = %s AND objid = %s AND objsubid = 1
) AS held
"""


class LockLost(JobFallbackError):
    """This pass no longer holds the sweep lock: another sweep may be acting."""


class SweepLock:
    """Whether this process holds the sweep lock, and a check it still does."""

    def __init__(self, conn: Connection, dsn: str, held: bool) -> None:
        self._conn = conn
        self._dsn = dsn
        self._guard = threading.Lock()  # the check runs from the sweep's worker threads
        self.held = held

    def __bool__(self) -> bool:
        return self.held

    def check(self) -> None:
        """Raise LockLost unless this session still holds the lock (a dead session does not)."""
        try:
            with self._guard, translate_errors(self._dsn):
                row = self._conn.execute(
                    _HELD, (SWEEP_LOCK_KEY >> 32, SWEEP_LOCK_KEY & 0xFFFF_FFFF)
                ).fetchone()
        except StoreError as exc:
            raise LockLost(f"the sweep lock's database session is gone ({exc})") from exc
        if not (row and row["held"]):
            raise LockLost("this sweep no longer holds the sweep lock")


@contextmanager
def sweep_lock(dsn: str) -> Iterator[SweepLock]:
    """Yield a SweepLock, held for the block when nobody else holds it.

    The lock is a session advisory lock on a dedicated connection: it is released when the block
    ends, and also if this process dies (the server closes the session).
    """
    with connect(dsn) as conn:
        with translate_errors(dsn):
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s) AS acquired", (SWEEP_LOCK_KEY,)
            ).fetchone()
        lock = SweepLock(conn, dsn, bool(row and row["acquired"]))
        try:
            yield lock
        finally:
            if lock.held and not conn.closed:
                # Closing the session releases it too, but only once the server has noticed
                # the close: unlock explicitly so the next sweep never sees a stale holder. A
                # session that died has released it already.
                with suppress(StoreError), translate_errors(dsn):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK_KEY,))

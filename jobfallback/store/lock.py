"""The sweep lock: one sweep at a time across every process and host using the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jobfallback.store.connection import connect, translate_errors

# Any fixed bigint works; it only has to differ from the migrations' key (store/migrations.py).
SWEEP_LOCK_KEY = 0x6A6F_6266_0002  # "jobf" + 2


@contextmanager
def sweep_lock(dsn: str) -> Iterator[bool]:
    """Yield True when this process holds the lock for the block, False when another one does.

    The lock is a session advisory lock on a dedicated connection: it is released when the block
    ends, and also if this process dies (the server closes the session).
    """
    with connect(dsn) as conn:
        with translate_errors(dsn):
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s) AS acquired", (SWEEP_LOCK_KEY,)
            ).fetchone()
        acquired = bool(row and row["acquired"])
        try:
            yield acquired
        finally:
            if acquired:
                # Closing the session releases it too, but only once the server has noticed
                # the close: unlock explicitly so the next sweep never sees a stale holder.
                with translate_errors(dsn):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK_KEY,))

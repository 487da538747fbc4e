"""One embedded PostgreSQL cluster: its data, its private socket directory, who may connect, and
the processes sharing it (the last one out stops it).

What keeps it private:
- the server listens on a Unix socket only, in a directory of its own user with mode 0700 (never
  a shared temporary directory), so no other local user can even reach the socket;
- pg_hba.conf allows local connections by `peer` authentication only, mapped to the users in
  `clients` (the owner, and root when root runs it): even a user who reached the socket could
  not log in as someone else;
- the lock that serialises start and stop, and the list of processes using the server, live in
  that same private directory: per user, never a file in /tmp that one user's run can block.

Every program runs as `owner` (PostgreSQL refuses to run as root; see embedded.py for where root's
clusters live).
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from jobfallback.errors import StoreUnavailable

PORT = 5432  # names the socket file; nothing listens on TCP
SOCKET_NAME = f".s.PGSQL.{PORT}"
SUPERUSER = "postgres"
# sun_path holds 108 bytes on Linux (104 on macOS); keep a margin.
MAX_SOCKET_PATH = 100
_START_TIMEOUT = 60


@dataclass(frozen=True)
class Cluster:
    pgdata: Path
    rundir: Path  # the socket, the lock and the list of processes using the server
    bin_dir: Path
    owner: pwd.struct_passwd  # the OS user the server runs as
    clients: tuple[str, ...]  # OS users allowed to connect (as the superuser)

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@/{SUPERUSER}?host={quote(str(self.rundir), safe='/')}"

    @property
    def log(self) -> Path:
        return self.pgdata / "log"

    # ------------------------------------------------------------ lifecycle

    def join(self) -> None:
        """Count this process as a user of the server; start it (initialise it first) when it
        is not running."""
        with self._locked():
            self._set_users({*self._users(), os.getpid()})
            if not (self.pgdata / "PG_VERSION").exists():
                self._run(
                    "initdb",
                    "--auth-local=peer",
                    "--auth-host=reject",
                    "--encoding=utf8",
                    "-U",
                    SUPERUSER,
                    "-D",
                    str(self.pgdata),
                )
            if self._running_elsewhere():
                self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.pgdata))
            if not (self.rundir / SOCKET_NAME).is_socket() or not self._running():
                self._write_access_rules()
                options = (
                    f"-h '' -k {shlex.quote(str(self.rundir))} -p {PORT}"
                    " -c unix_socket_permissions=0700"
                )
                self._run(
                    "pg_ctl", "start", "-w", "-t", str(_START_TIMEOUT),
                    "-D", str(self.pgdata), "-l", str(self.log), "-o", options,
                )  # fmt: skip

    def leave(self, *, delete: bool) -> None:
        """This process no longer uses the server; the last user stops it (and with `delete`
        removes its data)."""
        with self._locked():
            users = self._users() - {os.getpid()}
            self._set_users(users)
            if users:
                return
            if self._running():
                self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.pgdata))
            if delete:
                shutil.rmtree(self.pgdata, ignore_errors=True)
                with suppress(OSError):  # root's per-cluster directory, now empty
                    self.pgdata.parent.rmdir()

    # ------------------------------------------------------------ pieces

    def _write_access_rules(self) -> None:
        hba = (
            "# Written by jobfallback at every start: Unix socket only, peer-authenticated,\n"
            "# mapped to the OS users allowed in. No TCP, no trust.\n"
            "local all all peer map=jobfallback\n"
        )
        ident = "".join(f"jobfallback {user} {SUPERUSER}\n" for user in self.clients)
        for name, text in (("pg_hba.conf", hba), ("pg_ident.conf", ident)):
            path = self.pgdata / name
            path.write_text(text, encoding="utf-8")
            os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
            path.chmod(0o600)

    def _running(self) -> bool:
        done = self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False)
        return done.returncode == 0

    def _running_elsewhere(self) -> bool:
        """A server of an earlier version, listening where this one does not."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists() or not self._running():
            return False
        lines = pid_file.read_text(encoding="utf-8").splitlines()
        return len(lines) < 5 or Path(lines[4].strip()) != self.rundir

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        as_other = self.owner.pw_uid != os.geteuid()
        done = subprocess.run(
            [str(self.bin_dir / program), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.rundir,  # the owner may not be able to enter ours
            user=self.owner.pw_uid if as_other else None,
            group=self.owner.pw_gid if as_other else None,
            extra_groups=[] if as_other else None,
            env={**os.environ, "LC_ALL": "C"},
        )
        if check and done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"exit {done.returncode}"
            raise StoreUnavailable(
                f"the embedded PostgreSQL in {self.pgdata}: {program} failed: {reason}; "
                f"see {self.log}"
            )
        return done

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.rundir / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _users(self) -> set[int]:
        path = self.rundir / "users"
        try:
            pids = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        return {pid for pid in pids if isinstance(pid, int) and _alive(pid)}

    def _set_users(self, pids: set[int]) -> None:
        (self.rundir / "users").write_text(json.dumps(sorted(pids)), encoding="utf-8")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def private_dir(path: Path, owner: pwd.struct_passwd) -> Path:
    """`path` as a directory only `owner` can enter (created when missing). One that exists
    but is a symlink, someone else's or open to others is refused, not repaired: it may have
    been planted to catch the socket."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        if info.st_uid != owner.pw_uid and info.st_uid == os.geteuid() == 0:
            os.chown(path, owner.pw_uid, owner.pw_gid)  # root made it for the owner just now
            info = path.lstat()
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create the embedded PostgreSQL's directory {path}: {exc.strerror}"
        ) from None
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != owner.pw_uid
        or stat.S_IMODE(info.st_mode) & 0o077
    ):
        raise StoreUnavailable(
            f"{path} is not a private directory of user {owner.pw_name} (mode 0700); "
            "remove it and run again"
        )
    return path

"""The processes a benchmark run drives: the sandbox server, a fresh database, the CLI.

Everything listens on and talks to 127.0.0.1 only. Each child runs under a deadline, so a hung
run fails the benchmark instead of stalling it.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from jobfallback.store.embedded import embedded_server
from tests.fixtures import cli
from tests.fixtures.cli import CLI as CLI  # re-exported: shard_bench starts its shards with it
from tests.fixtures.db import TEST_DATABASE_ENV, create_database, drop_database
from tests.fixtures.guard_rails import NO_GUARD_RAILS

THRESHOLD_MINUTES = 60


@dataclass(frozen=True)
class Sandbox:
    url: str
    token: str
    pid: int  # its server process, whose CPU time the shard benchmark reads

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (from the kernel)."""
        return process_cpu_seconds(self.pid)

    def state(self) -> dict[str, Any]:
        """The sandbox's objects and its request counts per endpoint."""
        with urllib.request.urlopen(f"{self.url}/_sandbox/state", timeout=120) as answer:
            state: dict[str, Any] = json.load(answer)
        return state


def _first_line(stream: IO[str], timeout: float) -> str:
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    if not selector.select(timeout):
        raise TimeoutError(f"the sandbox printed nothing within {timeout:.0f}s")
    return stream.readline()


@contextmanager
def sandbox(fleet: str, *, latency_ms: float, seed: int) -> Iterator[Sandbox]:
    """`jobfallback sandbox serve --fleet ...` in its own process, stopped on exit."""
    args = ["sandbox", "serve", "--fleet", fleet, "--latency-ms", str(latency_ms)]
    server = subprocess.Popen(
        cli.command([*args, "--seed", str(seed)]), stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        first = dict(part.split("=", 1) for part in _first_line(server.stdout, 120).split())
        yield Sandbox(first["url"], first["token"], server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def process_cpu_seconds(pid: int) -> float:
    # /proc/PID/stat: utime and stime are fields 14 and 15, in clock ticks; the command name
    # (field 2) may hold spaces, so count from its closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def admin_url() -> Iterator[str]:
    """The PostgreSQL server named by JOBFALLBACK_TEST_DATABASE_URL, else an embedded one."""
    url = os.environ.get(TEST_DATABASE_ENV)
    if url:
        yield url
        return
    # Not a private TemporaryDirectory: run as root, the server drops to its own system user.
    root = Path(tempfile.gettempdir()) / f"jobfallback-bench-{os.getpid()}"
    with embedded_server(root, delete=True) as embedded:
        yield embedded
    with contextlib.suppress(OSError):
        root.rmdir()


@contextmanager
def fresh_database(admin: str) -> Iterator[str]:
    name = f"jobfallback_bench_{uuid.uuid4().hex[:12]}"
    url = create_database(admin, name)
    try:
        yield url
    finally:
        drop_database(admin, name)


@dataclass(frozen=True)
class Finished:
    exit_code: int
    wall_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str


def run_cli(args: list[str], env: dict[str, str], *, timeout: float) -> Finished:
    """Run the CLI once (tests/fixtures/cli.py), measuring its wall time and peak RSS."""
    done = cli.run(*args, env=env, timeout=timeout, measure_rss=True)
    if done.timed_out:
        raise TimeoutError(f"jobfallback {' '.join(args)} killed after {timeout:.0f}s")
    return Finished(done.returncode, done.seconds, done.peak_rss_mb, done.stdout, done.stderr)


# Variables the CLI reads: the benchmark sets each one it needs and inherits none.
_APP_ENV = ("DATABASE_URL", "TFY_HOST", "TF_SERVICE_API_TOKEN", "TF_USER_API_TOKEN")


def sweep_env(box: Sandbox, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOB") and k not in _APP_ENV}
    return {
        **env,
        "TFY_HOST": box.url,
        "TF_SERVICE_API_TOKEN": box.token,
        "DATABASE_URL": database_url,
        "JOB_FALLBACK_ENABLED": "true",
        "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": str(THRESHOLD_MINUTES),
        # ... and to its end: the sequential sweeps take far longer than the 200 s default.
        "JOB_FALLBACK_PASS_DEADLINE_SECONDS": "86400",
        # A benchmark times whole passes: every stuck run moves in one pass (the caps, 100
        # moves by default, would leave most of a fleet to later passes).
        **NO_GUARD_RAILS,
    }


def import_configs(configs: list[dict[str, Any]], env: dict[str, str]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(configs, file)
        file.flush()
        for args in (["db", "upgrade"], ["configs", "import", file.name]):
            done = run_cli(args, env, timeout=120)
            if done.exit_code != 0:
                raise RuntimeError(f"jobfallback {' '.join(args)} failed: {done.stderr.strip()}")

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
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from jobfallback.store.embedded import embedded_server
from tests.fixtures.db import TEST_DATABASE_ENV, create_database, drop_database

CLI = [sys.executable, "-m", "jobfallback"]


@dataclass(frozen=True)
class Sandbox:
    url: str
    token: str

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
    server = subprocess.Popen([*CLI, *args, "--seed", str(seed)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        first = dict(part.split("=", 1) for part in _first_line(server.stdout, 120).split())
        yield Sandbox(first["url"], first["token"])
    finally:
        server.terminate()
        server.wait(timeout=30)


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


def _peak_rss_kib(pid: int, done: threading.Event, peak: list[int]) -> None:
    """Poll the child's high-water mark (VmHWM) until it exits. Not wait4's ru_maxrss: Linux
    carries a forked child's pre-exec peak over exec, so the child would inherit this (large)
    process's RSS."""
    status = Path(f"/proc/{pid}/status")
    while not done.wait(0.05):
        try:
            text = status.read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak[0] = max(peak[0], int(line.split()[1]))


def run_cli(args: list[str], env: dict[str, str], *, timeout: float) -> Finished:
    """Run the CLI once, measuring its wall time and peak RSS."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([*CLI, *args], env=env, stdout=out, stderr=err, text=True)
        exited, peak = threading.Event(), [0]
        poller = threading.Thread(target=_peak_rss_kib, args=(child.pid, exited, peak))
        poller.start()
        try:
            exit_code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise TimeoutError(
                f"jobfallback {' '.join(args)} killed after {timeout:.0f}s"
            ) from None
        finally:
            exited.set()
            poller.join()
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return Finished(exit_code, wall, peak[0] / 1024, out.read(), err.read())

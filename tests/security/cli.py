"""The real `jobfallback` in a subprocess, measured: exit code, output, wall time and peak RSS.

Every output is checked for the session's secrets (tests/fixtures/secrets.py, escaped and partial
forms too) and for a traceback: an input error is one line, never a stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.secrets import assert_no_secrets

CLI = (sys.executable, "-m", "jobfallback")
# What a child may inherit: nothing of the app's settings or a proxy unless a test sets it.
_DROPPED = ("TF_", "TFY_", "JOB_FALLBACK_", "JOBFALLBACK_", "DATABASE_URL", "PG")
_PROXIES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float

    def __str__(self) -> str:  # shown when an assertion on a run fails
        return (
            f"exit {self.returncode} in {self.seconds:.1f}s\n{self.stdout}\n{self.stderr[-3000:]}"
        )


def clean_env(**env: str) -> dict[str, str]:
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_DROPPED) and name.lower() not in _PROXIES
    }
    return {**base, **env}


def _sample_peak_rss(pid: int, exited: threading.Event, peak_kb: list[int]) -> None:
    """The child's VmHWM, read until it exits: a high-water mark of its own memory since exec, so
    the last read is its peak. Not wait4's ru_maxrss: Linux carries the RSS a child had at fork
    (a copy of its parent, a pytest worker of several hundred MB late in a run) across exec."""
    status = Path(f"/proc/{pid}/status")
    while not exited.is_set():
        try:
            lines = status.read_text().splitlines()
        except OSError:
            return
        for line in lines:
            if line.startswith("VmHWM:"):  # absent once the child has exited (a zombie)
                peak_kb[0] = int(line.split()[1])
        exited.wait(0.01)


def run_cli(*args: str, env: Mapping[str, str], timeout: float = 120) -> Run:
    started = time.monotonic()
    process = subprocess.Popen(
        [*CLI, *args], env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out: dict[str, bytes] = {}

    def drain(name: str) -> None:
        stream = getattr(process, name)
        out[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n,)) for n in ("stdout", "stderr")]
    for reader in readers:
        reader.start()
    exited = threading.Event()
    peak_kb = [0]
    sampler = threading.Thread(target=_sample_peak_rss, args=(process.pid, exited, peak_kb))
    sampler.start()
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        _, status, _ = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
        exited.set()
        sampler.join()
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    run = Run(
        process.returncode,
        out["stdout"].decode("utf-8", "replace"),
        out["stderr"].decode("utf-8", "replace"),
        time.monotonic() - started,
        peak_kb[0] / 1024,
    )
    assert_no_secrets(run.stdout, f"the stdout of jobfallback {' '.join(args)}")
    assert_no_secrets(run.stderr, f"the stderr of jobfallback {' '.join(args)}")
    assert "Traceback" not in run.stderr, run
    return run

"""The real `jobfallback` in a subprocess, measured: exit code, output, wall time and peak RSS.

Every output is checked for the session's secrets (tests/fixtures/secrets.py, escaped and partial
forms too) and for a traceback: an input error is one line, never a stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tests.fixtures import cli
from tests.fixtures.secrets import assert_no_secrets

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


def run_cli(*args: str, env: Mapping[str, str], timeout: float = 120) -> Run:
    """Run the CLI (tests/fixtures/cli.py), killed after `timeout` seconds, its peak RSS
    measured."""
    done = cli.run(*args, env=env, timeout=timeout, measure_rss=True)
    run = Run(done.returncode, done.stdout, done.stderr, done.seconds, done.peak_rss_mb)
    assert_no_secrets(run.stdout, f"the stdout of jobfallback {' '.join(args)}")
    assert_no_secrets(run.stderr, f"the stderr of jobfallback {' '.join(args)}")
    assert "Traceback" not in run.stderr, run
    return run

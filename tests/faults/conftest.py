"""Fixtures of the fault tests: the fault-free request counts of the matrix's fleet under each
server profile (the baseline retries are measured against), and the summary written to
.bench/faults.json when JOBFALLBACK_FAULT_REPORT is set."""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobfallback_sandbox import SandboxServer
from tests.faults.harness import (
    converged,
    fleet,
    import_configs,
    journal_rows,
    sweep,
    sweep_env,
)
from tests.fixtures.db import create_database, drop_database

REPORT_ENV = "JOBFALLBACK_FAULT_REPORT"
REPORT_PATH = Path(__file__).resolve().parents[2] / ".bench" / "faults.json"

FLEET_SEED = 1  # one fleet for every case (so one baseline per profile); the faults vary by case


@pytest.fixture(scope="session")
def baseline_requests(pg_admin_url: str, template_database: str) -> Callable[[str], int]:
    """baseline(profile): the requests one fault-free sweep of the fleet makes under that
    profile (it must converge the fleet), measured once per profile and worker."""
    measured: dict[str, int] = {}

    def baseline(profile: str) -> int:
        if profile not in measured:
            name = f"jf_base_{uuid.uuid4().hex}"
            url = create_database(pg_admin_url, name, template=template_database)
            try:
                state = fleet(FLEET_SEED, profile=profile)
                import_configs(url, state)
                with SandboxServer(state) as server:
                    run = sweep(sweep_env(server, url))
                    assert run.code == 0, run.stderr[-3000:]
                    assert converged(state, url), journal_rows(url)
                    measured[profile] = sum(server.request_counts.values())
            finally:
                drop_database(pg_admin_url, name)
        return measured[profile]

    return baseline


@pytest.fixture
def fault_report(testrun_uid: str) -> Callable[[str, dict[str, Any]], None]:
    """record(case, summary): merged into .bench/faults.json (xdist workers share the file).
    The file holds one test run's cases: the first case a new run records starts it afresh
    (.bench/faults.run names the run), so renamed or deselected cases leave nothing stale."""
    enabled = bool(os.environ.get(REPORT_ENV))
    run_path = REPORT_PATH.with_suffix(".run")

    def record(case: str, summary: dict[str, Any]) -> None:
        if not enabled:
            return
        REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
        with open(REPORT_PATH.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            same_run = REPORT_PATH.exists() and run_path.exists()
            same_run = same_run and run_path.read_text() == testrun_uid
            cases = json.loads(REPORT_PATH.read_text()) if same_run else {}
            run_path.write_text(testrun_uid)
            cases[case] = summary
            REPORT_PATH.write_text(json.dumps(dict(sorted(cases.items())), indent=2) + "\n")

    return record

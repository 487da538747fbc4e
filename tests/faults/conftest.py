"""Fixtures of the fault tests: a fleet in a started sandbox with its configs imported, the
fault-free request counts of the same fleet (the baseline retries are measured against), and
the summary written to .bench/faults.json when JOBFALLBACK_FAULT_REPORT is set."""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobfallback.sandbox import SandboxServer
from tests.faults.harness import fleet, import_configs, sweep, sweep_env
from tests.fixtures.db import create_database, drop_database

REPORT_ENV = "JOBFALLBACK_FAULT_REPORT"
REPORT_PATH = Path(__file__).resolve().parents[2] / ".bench" / "faults.json"

FLEET_SEED = 1  # one fleet for every case (so one baseline); the faults vary by case


@pytest.fixture(scope="session")
def baseline_requests(pg_admin_url: str, template_database: str) -> int:
    """Requests a fault-free sweep of the fleet makes: the matrix measures retries against it."""
    name = f"jf_base_{uuid.uuid4().hex}"
    url = create_database(pg_admin_url, name, template=template_database)
    try:
        state = fleet(FLEET_SEED)
        import_configs(url, state)
        with SandboxServer(state) as server:
            assert sweep(sweep_env(server, url)).code == 0
            return sum(server.request_counts.values())
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def fault_report() -> Callable[[str, dict[str, Any]], None]:
    """record(case, summary): merged into .bench/faults.json (xdist workers share the file)."""
    enabled = bool(os.environ.get(REPORT_ENV))

    def record(case: str, summary: dict[str, Any]) -> None:
        if not enabled:
            return
        REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
        with open(REPORT_PATH.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cases = json.loads(REPORT_PATH.read_text()) if REPORT_PATH.exists() else {}
            cases[case] = summary
            REPORT_PATH.write_text(json.dumps(dict(sorted(cases.items())), indent=2) + "\n")

    return record

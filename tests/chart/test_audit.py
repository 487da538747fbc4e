"""`make audit` (deploy/audit.py): what a pip-audit run means, offline included."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.chart.helm import REPO

pytestmark = pytest.mark.chart


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit", REPO / "deploy" / "audit.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def report(*packages: dict[str, Any]) -> str:
    return json.dumps({"dependencies": list(packages), "fixes": []})


CLEAN = {"name": "httpx", "version": "0.28.1", "vulns": []}
UNKNOWN = {"name": "h11", "skip_reason": "Dependency not found on PyPI and could not be audited"}
VULNERABLE = {
    "name": "h11",
    "version": "0.14.0",
    "vulns": [{"id": "GHSA-vqfr-h8mv-ghfj", "fix_versions": ["0.16.0"], "aliases": []}],
}


def test_clean_packages_pass(audit: ModuleType) -> None:
    verdict = audit.judge(0, report(CLEAN, CLEAN), "")
    assert verdict.outcome is audit.Outcome.PASSED
    assert verdict.message == "2 packages, no known vulnerabilities"


def test_a_known_vulnerability_fails_naming_the_fix(audit: ModuleType) -> None:
    verdict = audit.judge(1, report(CLEAN, VULNERABLE), "")
    assert verdict.outcome is audit.Outcome.FAILED
    assert "h11 0.14.0: GHSA-vqfr-h8mv-ghfj (fixed in 0.16.0)" in verdict.message


def test_no_package_judged_is_a_skip_that_says_so(audit: ModuleType) -> None:
    # A package mirror without vulnerability data answers "not found" for every package.
    verdict = audit.judge(0, report(UNKNOWN, UNKNOWN), "")
    assert verdict.outcome is audit.Outcome.SKIPPED
    assert "judged none of the 2 packages" in verdict.message


def test_an_unreachable_service_is_a_skip(audit: ModuleType) -> None:
    stderr = "Traceback ...\nrequests.exceptions.ConnectionError: Max retries exceeded"
    verdict = audit.judge(1, "", stderr)
    assert verdict.outcome is audit.Outcome.SKIPPED
    assert "unreachable" in verdict.message


def test_some_packages_unjudged_fails(audit: ModuleType) -> None:
    verdict = audit.judge(0, report(CLEAN, UNKNOWN), "")
    assert verdict.outcome is audit.Outcome.FAILED
    assert verdict.message.startswith("not audited: h11")


def test_any_other_error_fails(audit: ModuleType) -> None:
    verdict = audit.judge(2, "", "pip-audit: error: invalid requirement")
    assert verdict.outcome is audit.Outcome.FAILED
    assert verdict.message == "pip-audit failed: pip-audit: error: invalid requirement"

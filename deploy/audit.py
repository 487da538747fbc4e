"""`make audit`: known vulnerabilities in the locked requirements, by pip-audit.

    .venv/bin/python deploy/audit.py

pip-audit asks a vulnerability service about every release pinned in requirements/*.txt. Where
that service cannot be reached (no network, or a package mirror that serves files but no
vulnerability data) it either fails to connect or judges no package at all: both are reported as
a skip, in so many words, and exit 0, so an offline machine can still run the target. A known
vulnerability fails, and so does a package the service could not judge while it judged others.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"
# The image's requirements carry hashes, which is what lets pip-audit skip resolving them; the
# development lock is a constraints file without hashes, so it says --no-deps: the lock is
# complete, there is nothing left to resolve.
LOCKS = {"requirements/runtime.txt": [], "requirements/dev.txt": ["--no-deps"]}
# What requests says when the service's host cannot be resolved or connected to.
_OFFLINE = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "timed out")


class Outcome(Enum):
    PASSED = "passed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str


def judge(returncode: int, stdout: str, stderr: str) -> Verdict:
    """What one pip-audit run (`--format json`) means."""
    try:
        report: dict[str, Any] = json.loads(stdout)
    except json.JSONDecodeError:
        last = stderr.strip().splitlines()[-1:] or [f"pip-audit exited {returncode}"]
        if any(marker in stderr for marker in _OFFLINE):
            return Verdict(Outcome.SKIPPED, f"the vulnerability service is unreachable ({last[0]})")
        return Verdict(Outcome.FAILED, f"pip-audit failed: {last[0]}")
    packages = report["dependencies"]
    vulnerable = [p for p in packages if p.get("vulns")]
    unjudged = [p for p in packages if "skip_reason" in p]
    if vulnerable:
        found = "; ".join(
            f"{p['name']} {p['version']}: "
            + ", ".join(
                f"{v['id']} (fixed in {', '.join(v['fix_versions']) or 'no release'})"
                for v in p["vulns"]
            )
            for p in vulnerable
        )
        return Verdict(Outcome.FAILED, f"known vulnerabilities: {found}")
    if packages and len(unjudged) == len(packages):
        return Verdict(
            Outcome.SKIPPED,
            f"the vulnerability service judged none of the {len(packages)} packages "
            "(no network, or a package mirror without vulnerability data)",
        )
    if unjudged:
        names = ", ".join(f"{p['name']} ({p['skip_reason']})" for p in unjudged)
        return Verdict(Outcome.FAILED, f"not audited: {names}")
    return Verdict(Outcome.PASSED, f"{len(packages)} packages, no known vulnerabilities")


def audit(lock: str, extra_args: list[str]) -> Verdict:
    result = subprocess.run(
        [
            str(PIP_AUDIT),
            "--disable-pip",
            *extra_args,
            *("--requirement", lock, "--format", "json", "--progress-spinner", "off"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return judge(result.returncode, result.stdout, result.stderr)


def main() -> int:
    verdicts = {lock: audit(lock, args) for lock, args in LOCKS.items()}
    for lock, verdict in verdicts.items():
        label = "AUDIT SKIPPED" if verdict.outcome is Outcome.SKIPPED else verdict.outcome.value
        print(f"{lock}: {label}: {verdict.message}")
    return 1 if any(v.outcome is Outcome.FAILED for v in verdicts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: the whole story on one machine with nothing but this repository.

Starts the sandbox control plane (demo scenario) and uses the embedded PostgreSQL in a fresh
temporary data directory, then: import configs -> dry-run plan -> real sweep -> history, and
finally proves the outcome from the sandbox's own state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from jobfallback.truefoundry import run_alias

CLI = [sys.executable, "-m", "jobfallback"]


def step(title: str) -> None:
    print(f"\n\033[1m==> {title}\033[0m", flush=True)


def run(args: list[str], env: dict[str, str], check: bool = True) -> int:
    print("$ jobfallback " + " ".join(args), flush=True)
    return subprocess.run([*CLI, *args], env=env, check=check).returncode


def main() -> int:
    data_dir = tempfile.mkdtemp(prefix="jobfallback-demo-")
    server = subprocess.Popen(
        [*CLI, "sandbox", "serve", "--scenario", "demo"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = dict(part.split("=", 1) for part in server.stdout.readline().split())
        url, token = first["url"], first["token"]
        env = {
            **os.environ,
            "TFY_HOST": url,
            "TF_SERVICE_API_TOKEN": token,
            "JOBFALLBACK_DATA_DIR": data_dir,
            "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": "60",
        }
        env.pop("DATABASE_URL", None)
        step(f"sandbox control plane at {url}; embedded PostgreSQL in {data_dir}")
        configs = Path(data_dir) / "configs.yaml"
        configs.write_text(
            subprocess.run(
                [*CLI, "sandbox", "configs", "--scenario", "demo"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        step("import the fallback configs")
        run(["configs", "import", str(configs)], env)
        run(["configs", "list"], env)
        run(["configs", "validate"], env)
        step("dry run: what would move (JOB_FALLBACK_ENABLED is still false)")
        run(["sweep", "--dry-run", "--log-format", "text"], env)
        step("a real sweep with JOB_FALLBACK_ENABLED=false only says it is disabled")
        run(["sweep", "--log-format", "text"], env)
        step("the real sweep")
        run(["sweep", "--log-format", "text"], {**env, "JOB_FALLBACK_ENABLED": "true"})
        step("history")
        run(["history"], env)
        step("a second sweep finds nothing left to move")
        run(["sweep", "--log-format", "text"], {**env, "JOB_FALLBACK_ENABLED": "true"})
        step("proof from the sandbox's own state")
        with urllib.request.urlopen(f"{url}/_sandbox/state") as answer:  # noqa: S310 (loopback)
            state = json.load(answer)
        return prove(state)
    finally:
        server.terminate()
        server.wait(timeout=10)


def prove(state: dict[str, Any]) -> int:
    """Every terminated source has exactly one destination run (named by its alias)."""
    runs: list[dict[str, Any]] = state["runs"]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_name.setdefault(r["name"], []).append(r)
    sources = [r for r in runs if r["status"] == "TERMINATION_REQUESTED"]
    ok = bool(sources)
    for source in sources:
        copies = by_name.get(run_alias(source["id"]), [])
        ok = ok and len(copies) == 1
        where = ", ".join(f"{c['applicationName']}/{c['name']} ({c['status']})" for c in copies)
        print(
            f"  source {source['applicationName']}/{source['name']}: TERMINATION_REQUESTED"
            f" -> {len(copies)} destination run(s): {where}"
        )
    print("\nOK: every stuck run moved exactly once." if ok else "\nFAILED: see above.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

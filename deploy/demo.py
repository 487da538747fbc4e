"""`make demo`: the whole story on one machine with nothing but this repository.

Starts the sandbox control plane (demo scenario) and uses the embedded PostgreSQL in a fresh
temporary data directory, then: import configs -> dry-run plan -> real sweep -> history, and
finally proves the outcome from the sandbox's own state.

    python deploy/demo.py [--profile NAME[,NAME]] [--database-url URL]

--profile       the sandbox's server profiles (`jobfallback sandbox serve --profile`), e.g.
                generated-names,search-lag; default: the sandbox's default (alias-name)
--database-url  an empty PostgreSQL database to use instead of the embedded one (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The CLI runs the way the tests and benchmarks run it: tests/fixtures/cli.py (standard library
# only; in the repository, never in the product wheel). `python deploy/demo.py` puts deploy/ on
# the path, not the repository's root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobfallback.move import LABEL_SOURCE_RUN
from tests.fixtures import cli

ALIVE = ("CREATED", "SCHEDULED", "RUNNING")


def step(title: str) -> None:
    print(f"\n\033[1m==> {title}\033[0m", flush=True)


def run(args: list[str], env: dict[str, str], check: bool = True) -> int:
    print("$ jobfallback " + " ".join(args), flush=True)
    done = cli.run(*args, env=env, timeout=None, capture=False)
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, cli.command(args))
    return done.returncode


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo.py", description="The whole story against the sandbox, proved at the end."
    )
    parser.add_argument(
        "--profile",
        default="",
        metavar="NAME[,NAME]",
        help="server profiles of the sandbox (see `jobfallback sandbox serve --help`)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="an empty PostgreSQL database instead of the embedded one",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = tempfile.mkdtemp(prefix="jobfallback-demo-")
    serve = cli.command(["sandbox", "serve", "--scenario", "demo"])
    if args.profile:
        serve += ["--profile", args.profile]
    server = subprocess.Popen(serve, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if "=" not in line:  # it refused (a bad --profile): its error is on stderr already
            return server.wait(timeout=10) or 2
        first = dict(part.split("=", 1) for part in line.split())
        url, token = first["url"], first["token"]
        env = {
            **os.environ,
            "TFY_HOST": url,
            "TF_SERVICE_API_TOKEN": token,
            "JOB_FALLBACK_DATA_DIR": data_dir,
            "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": "60",
        }
        env.pop("DATABASE_URL", None)
        database = f"embedded PostgreSQL in {data_dir}"
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
            database = "the PostgreSQL given by --database-url"
        profiles = f" (server profiles: {args.profile})" if args.profile else ""
        step(f"sandbox control plane at {url}{profiles}; {database}")
        configs = Path(data_dir) / "configs.yaml"
        listed = cli.run("sandbox", "configs", "--scenario", "demo", env=env, timeout=None)
        if listed.returncode != 0:
            raise subprocess.CalledProcessError(
                listed.returncode, cli.command(listed.args), listed.stdout, listed.stderr
            )
        configs.write_text(listed.stdout)
        step("import the fallback configs")
        run(["configs", "import", str(configs)], env)
        run(["configs", "list"], env)
        run(["configs", "validate"], env)
        step("dry run: what would move (JOB_FALLBACK_ENABLED is still false)")
        run(["sweep", "--dry-run", "--log-format", "text", "--output", "text"], env)
        step("a real sweep with JOB_FALLBACK_ENABLED=false only says it is disabled")
        run(["sweep", "--log-format", "text", "--output", "text"], env)
        step("the real sweep")
        run(
            ["sweep", "--log-format", "text", "--output", "text"],
            {**env, "JOB_FALLBACK_ENABLED": "true"},
        )
        step("history")
        run(["history"], env)
        step("a second sweep finds nothing left to move")
        run(
            ["sweep", "--log-format", "text", "--output", "text"],
            {**env, "JOB_FALLBACK_ENABLED": "true"},
        )
        step("proof from the sandbox's own state")
        with urllib.request.urlopen(f"{url}/_sandbox/state") as answer:  # noqa: S310 (loopback)
            state = json.load(answer)
        return prove(state)
    finally:
        server.terminate()
        server.wait(timeout=10)


def prove(state: dict[str, Any]) -> int:
    """Every terminated source has exactly one destination run, and it is alive. A copy is a
    run on a deployment version labelled with its source run (whatever the server named it),
    so this holds under every server profile."""
    source_of = {
        deployment["id"]: (deployment["manifest"].get("labels") or {}).get(LABEL_SOURCE_RUN)
        for app in state["applications"]
        for deployment in app["deployments"]
    }
    runs: list[dict[str, Any]] = state["runs"]
    copies: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        source_id = source_of.get(r["deploymentId"])
        if source_id is not None:
            copies.setdefault(source_id, []).append(r)
    copy_ids = {c["id"] for found in copies.values() for c in found}
    sources = [
        r for r in runs if r["status"] == "TERMINATION_REQUESTED" and r["id"] not in copy_ids
    ]
    # Copies only of terminated sources, one each, and each copy alive.
    ok = bool(sources) and set(copies) <= {s["id"] for s in sources}
    for source in sources:
        found = copies.get(source["id"], [])
        ok = ok and len(found) == 1 and found[0]["status"] in ALIVE
        where = ", ".join(f"{c['applicationName']}/{c['name']} ({c['status']})" for c in found)
        print(
            f"  source {source['applicationName']}/{source['name']}: TERMINATION_REQUESTED"
            f" -> {len(found)} destination run(s): {where}"
        )
    print("\nOK: every stuck run moved exactly once." if ok else "\nFAILED: see above.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

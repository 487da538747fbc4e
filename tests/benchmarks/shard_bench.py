"""Shards side by side: one fleet swept by 1, 2 and 4 `jobfallback sweep --shard I/N` processes
running at once against one sandbox and one database (`make bench` runs it after the fleet
sweeps).

For each N, in a fresh sandbox and a fresh database holding the same fleet (the same seed gives
the same runs and ids), it starts the N shards together (N = 1: one unsharded sweep) and records
the wall time from their start to the last exit, each shard's own pass, the CPU time the sandbox
server and the sweeps used meanwhile, and the runs each shard moved. It checks what sharding
must keep: the shards' moves are disjoint, their union is the unsharded sweep's (no run moved
twice, none missed), and the sandbox saw one trigger per moved run.

    python -m tests.benchmarks.shard_bench [--fleet 1000] [--jobs 20] [--shards 1,2,4]
        [--latency-ms 50] [--concurrency 16]

The results go to .bench/shards.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.benchmarks.harness import (
    CLI,
    admin_url,
    fresh_database,
    import_configs,
    sandbox,
    sweep_env,
)

RESULTS = Path(".bench") / "shards.json"


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sweep_shards(
    fleet: str, shards: int, *, concurrency: int, latency_ms: float, seed: int, admin: str
) -> dict[str, Any]:
    """`shards` sweeps of one fresh fleet started at once; what they moved and how long."""
    with sandbox(fleet, latency_ms=latency_ms, seed=seed) as box, fresh_database(admin) as db:
        env = sweep_env(box, db)
        import_configs(box.state()["configs"], env)
        base = ["sweep", "--output", "json", "--log-format", "json"]
        base += ["--concurrency", str(concurrency)]
        commands = (
            [base] if shards == 1 else [[*base, f"--shard={i}/{shards}"] for i in range(shards)]
        )
        with tempfile.TemporaryDirectory() as tmp:
            outputs = [Path(tmp, f"shard-{i}.json") for i in range(shards)]
            logs = [Path(tmp, f"shard-{i}.log") for i in range(shards)]
            sandbox_cpu, sweeps_cpu = box.cpu_seconds(), _children_cpu_seconds()
            started = time.perf_counter()
            processes = []
            for args, out, err in zip(commands, outputs, logs, strict=True):
                with out.open("w") as stdout, err.open("w") as stderr:
                    processes.append(
                        subprocess.Popen([*CLI, *args], env=env, stdout=stdout, stderr=stderr)
                    )
            ends = []
            for process in processes:
                process.wait(timeout=3600)
                ends.append(time.perf_counter() - started)
            sandbox_cpu = box.cpu_seconds() - sandbox_cpu
            sweeps_cpu = _children_cpu_seconds() - sweeps_cpu
            for process, err in zip(processes, logs, strict=True):
                if process.returncode != 0:
                    tail = err.read_text()[-2000:]
                    raise RuntimeError(f"a shard of {shards} exited {process.returncode}: {tail}")
            reports = [json.loads(out.read_text()) for out in outputs]
        triggers = box.state()["requestCounts"].get("trigger", 0)
    moved = [
        sorted(m["sourceRunId"] for m in r["moves"] if m.get("outcome") == "moved") for r in reports
    ]
    wall = max(ends)
    return {
        "fleet": fleet,
        "shards": shards,
        "wall_s": round(wall, 2),
        "shard_wall_s": [round(end, 2) for end in ends],
        "pass_s": [r["report"]["durationSeconds"] for r in reports],
        "sources": [r["report"]["sourcesTotal"] for r in reports],
        "moved": moved,
        "api_calls": sum(r["report"]["apiCalls"] for r in reports),
        "triggers": triggers,
        "sandbox_cpu_s": round(sandbox_cpu, 1),
        "sandbox_cores": round(sandbox_cpu / wall, 2),
        "sweeps_cpu_s": round(sweeps_cpu, 1),
    }


def check(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Sharding's promise, against the unsharded sweep's moves: raises if it is broken."""
    if runs[0]["shards"] != 1 or not runs[0]["moved"][0]:
        raise RuntimeError("the first run must be one unsharded sweep that moved runs")
    whole = set(runs[0]["moved"][0])
    verdict: dict[str, Any] = {}
    for run in runs[1:]:
        counts = Counter(run_id for moved in run["moved"] for run_id in moved)
        twice = sorted(r for r, n in counts.items() if n > 1)
        missed = sorted(whole - set(counts))
        extra = sorted(set(counts) - whole)
        ok = not (twice or missed or extra) and run["triggers"] == len(counts)
        verdict[str(run["shards"])] = {
            "union_equals_unsharded": ok,
            "moved_twice": len(twice),
            "missed": len(missed),
            "not_in_unsharded": len(extra),
        }
        assert ok, (
            f"{run['shards']} shards: twice {twice[:5]}, missed {missed[:5]}, extra {extra[:5]}"
        )
    return verdict


def table(runs: list[dict[str, Any]]) -> str:
    one = runs[0]["wall_s"]
    rows = [
        "| shards | wall s | each shard's pass s | wall / 1 shard | sources per shard | moved "
        "| API calls | sandbox CPU s (cores busy) | sweeps' CPU s |",
        "|" + "---|" * 9,
    ]
    for r in runs:
        rows.append(
            f"| {r['shards']} | {r['wall_s']:.1f} | {' / '.join(f'{p:.1f}' for p in r['pass_s'])}"
            f" | {r['wall_s'] / one:.2f} | {' / '.join(map(str, r['sources']))}"
            f" | {sum(map(len, r['moved']))} | {r['api_calls']}"
            f" | {r['sandbox_cpu_s']:.1f} ({r['sandbox_cores']:.2f}) | {r['sweeps_cpu_s']:.1f} |"
        )
    return "\n".join(rows)


def bench_shards(
    *,
    sources: int,
    jobs: int,
    counts: list[int],
    latency_ms: float,
    concurrency: int,
    seed: int,
    admin: str,
) -> dict[str, Any]:
    fleet = f"{sources}x{jobs}"
    runs = []
    for shards in [1, *(n for n in counts if n != 1)]:
        print(f"sweep {fleet} with {shards} shard(s) at once ...", flush=True)
        run = sweep_shards(
            fleet, shards, concurrency=concurrency, latency_ms=latency_ms, seed=seed, admin=admin
        )
        print(f"  wall {run['wall_s']:.1f}s, moved {sum(map(len, run['moved']))}", flush=True)
        runs.append(run)
    return {
        "command": "python -m tests.benchmarks.shard_bench  # also part of make bench",
        "settings": {
            "fleet": fleet,
            "latency_ms": latency_ms,
            "concurrency": concurrency,
            "seed": seed,
            "guard_rails": "off (tests/fixtures/guard_rails.py)",
        },
        "cpus": os.cpu_count(),
        "runs": runs,
        "check": check(runs),
    }


def _counts(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", type=_counts, default=[1, 2, 4], help="shard counts")
    parser.add_argument("--shard-fleet", type=int, default=1000, help="source workspaces")


def shards_from(args: argparse.Namespace, admin: str) -> dict[str, Any]:
    """The shard benchmark as the command line asked for it (this module's or sweep_bench's)."""
    return bench_shards(
        sources=args.shard_fleet,
        jobs=args.jobs,
        counts=args.shards,
        latency_ms=args.latency_ms,
        concurrency=args.concurrency,
        seed=args.seed,
        admin=admin,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--jobs", type=int, default=20, help="jobs per source workspace")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with admin_url() as admin:
        results = shards_from(args, admin)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results["runs"]))
    print(json.dumps(results["check"], indent=2))


if __name__ == "__main__":
    main()

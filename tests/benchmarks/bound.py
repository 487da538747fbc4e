"""The lower bound: the fewest API calls that answer a sweep's question, and their time.

Calls, from the fleet's own state before the sweep:
- per pass: ceil(workspaces / page) pages of `list_workspaces` (do the sources exist, in the
  clusters their configs name?), before any source is listed;
- per source workspace: ceil(jobs / page) pages of `list_apps` (at least one);
- per job listed: ceil(CREATED runs / page) `list_runs` calls (at least one);
- per stuck run, the move protocol: `list_apps` (is the destination application ours, or
  already this move's?), `put_app` (this move's labelled version), `trigger` (that version),
  `get_run` (re-read the source as late as possible) and `terminate`; the manifest comes
  embedded in the apps list (for a run on the listed version), and a config carries the
  destination FQN, so no workspace look-up is needed;
- per stuck run whose job already has a copy in the destination (every stuck run of a job but
  its first, as the moves of one destination application run one at a time): one
  `list_deployments`, which proves no earlier move of this run left a version there.

Time, with every call taking `latency` and `concurrency` calls in flight:
max(ceil(calls / concurrency), depth) * latency, where depth is the longest chain of calls that
must wait for each other (workspaces page -> apps page -> runs -> find app -> put -> trigger ->
get_run -> terminate). Nothing else (client CPU, database, process start) is counted: it is
the floor, not an estimate.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

MOVE_CALLS = ("list_apps", "put_app", "trigger", "get_run", "terminate")


@dataclass(frozen=True)
class Bound:
    calls: dict[str, int]
    depth: int

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def seconds(self, *, concurrency: int, latency_s: float) -> float:
        return max(math.ceil(self.total / concurrency), self.depth) * latency_s


def _pages(items: int, page: int) -> int:
    return max(1, math.ceil(items / page))


def lower_bound(state: dict[str, Any], *, threshold_minutes: int, page: int = 100) -> Bound:
    """The bound for a sweep over every configured source of a sandbox state snapshot."""
    sources = {c["sourceWorkspaceId"] for c in state["configs"] if c.get("enabled", True)}
    jobs = {
        a["id"]: a["workspaceId"]
        for a in state["applications"]
        if a["type"] == "job" and a["workspaceId"] in sources
    }
    threshold_ms = threshold_minutes * 60_000
    created: Counter[str] = Counter()
    stuck_per_job: Counter[str] = Counter()
    for run in state["runs"]:
        if run["applicationId"] in jobs and run["status"] == "CREATED":
            created[run["applicationId"]] += 1
            stuck_per_job[run["applicationId"]] += state["nowMs"] - run["createdAt"] >= threshold_ms
    stuck = sum(stuck_per_job.values())
    jobs_per_source = Counter(jobs.values())
    calls = Counter(
        {
            "list_workspaces": _pages(len(state["workspaces"]), page) if sources else 0,
            "list_apps": sum(_pages(jobs_per_source[s], page) for s in sources),
            "list_runs": sum(_pages(created[j], page) for j in jobs),
        }
    )
    calls.update(dict.fromkeys(MOVE_CALLS, stuck))
    calls["list_deployments"] = sum(k - 1 for k in stuck_per_job.values() if k)
    return Bound(calls=+calls, depth=3 + (len(MOVE_CALLS) if stuck else 0))

"""The labels a fallback copy carries: whose copy it is, where the job has been, and a person's
opt-out. They are how a later pass (or another jobfallback) tells a copy from a job, follows a
chain without going back, and leaves alone a job that must not run elsewhere.

Workspaces are named by FQN with ':' written '.', so every value stays a valid Kubernetes label
value should the platform pass labels on to pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABEL_SOURCE_RUN = "jobfallback.io/source-run-id"
LABEL_SOURCE_JOB = "jobfallback.io/source-application-id"
# The job the chain started from: copies of it made along different paths share it.
LABEL_ORIGIN_JOB = "jobfallback.io/origin-application-id"
# `jobfallback.io/hop-N`: the workspace the job left on its N-th move.
_HOP = "jobfallback.io/hop-"
# A person's opt-out: a job with side effects that must not run anywhere else.
LABEL_MOVE = "jobfallback.io/move"
NEVER = "never"


def workspace_label(fqn: str) -> str:
    return fqn.replace(":", ".")


def visited(labels: Mapping[str, Any]) -> list[str]:
    """The workspaces (label spelling) the job left, in order; its hop count is their number."""
    hops: dict[int, str] = {}
    for key, value in labels.items():
        number = key.removeprefix(_HOP)
        if key.startswith(_HOP) and number.isdigit() and isinstance(value, str):
            hops[int(number)] = value
    return [hops[n] for n in sorted(hops)]


def opted_out(labels: Mapping[str, Any]) -> bool:
    value = labels.get(LABEL_MOVE)
    return isinstance(value, str) and value.strip().lower() == NEVER


def origin_job(labels: Mapping[str, Any], application_id: str) -> str:
    origin = labels.get(LABEL_ORIGIN_JOB)
    return origin if isinstance(origin, str) and origin else application_id


def copy_labels(
    labels: Mapping[str, Any],
    *,
    source_run_id: str,
    source_application_id: str,
    source_workspace_fqn: str | None,
) -> dict[str, Any]:
    """The source's labels plus this move's provenance: the hops so far and one more."""
    hops = visited(labels)
    copied = {**labels}
    if source_workspace_fqn is not None:
        copied[f"{_HOP}{len(hops) + 1}"] = workspace_label(source_workspace_fqn)
    copied[LABEL_SOURCE_RUN] = source_run_id
    copied[LABEL_SOURCE_JOB] = source_application_id
    copied[LABEL_ORIGIN_JOB] = origin_job(labels, source_application_id)
    return copied

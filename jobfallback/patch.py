"""Per-destination manifest changes: a JSON Merge Patch (RFC 7386) a config applies to the job's
manifest for its destination (another GPU or node selector, spot capacity, an env var saying
the job runs on a fallback).

The move owns the fields that make a copy safe (its workspace, a manual trigger, no trigger on
deploy, its name and the `jobfallback.io/` provenance labels), so a patch may not touch them; what
a patch produces must still be a job manifest. Both are checked when a config is written (on a
sample job) and again on the real manifest before the copy is deployed.
"""

from __future__ import annotations

import copy
from typing import Any

LABEL_PREFIX = "jobfallback.io/"
# The move sets these on every copy: a patch changing them could make a copy run at once, run
# on a schedule, land in another workspace or stop being recognised as ours.
OWNED_FIELDS = ("name", "type", "workspace_fqn", "trigger", "trigger_on_deploy")
# Fields whose value must keep a shape, with the shape named in the message.
_OBJECTS = ("image", "resources", "labels", "env")
_WHOLE_NUMBERS = ("retries", "timeout", "concurrency_limit")

# What a patch is checked against when a config is written: a job as small as TrueFoundry accepts.
_SAMPLE_JOB: dict[str, Any] = {
    "type": "job",
    "name": "sample-job",
    "image": {"type": "image", "image_uri": "example/job:1"},
    "workspace_fqn": "cluster:workspace",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def check_patch(patch: Any) -> None:
    """Refuse a patch the move cannot apply safely; the message names the field."""
    if not isinstance(patch, dict):
        raise ValueError("must be a JSON object (a JSON Merge Patch of the job manifest)")
    for field in OWNED_FIELDS:
        if field in patch:
            raise ValueError(f"{field}: set by the move on every copy; remove it from the patch")
    labels = patch.get("labels")
    if isinstance(labels, dict):
        for key in labels:
            if str(key).startswith(LABEL_PREFIX):
                raise ValueError(
                    f"labels.{key}: {LABEL_PREFIX} labels are the move's provenance; "
                    "remove it from the patch"
                )
    check_manifest(merge_patch(_SAMPLE_JOB, patch))


def check_manifest(manifest: dict[str, Any]) -> None:
    """The shape a patched manifest must keep to still be a job TrueFoundry can deploy."""
    if manifest.get("type") != "job":
        raise ValueError("type: must stay job")
    if not isinstance(manifest.get("name"), str):
        raise ValueError("name: must stay a text")
    if "image" not in manifest:
        raise ValueError("image: a job needs one; do not remove it")
    for field in _OBJECTS:
        if field in manifest and not isinstance(manifest[field], dict):
            raise ValueError(f"{field}: must be an object")
    for field in ("labels", "env"):
        for key, value in manifest.get(field, {}).items():
            if not isinstance(value, str):
                raise ValueError(f"{field}.{key}: must be a text")
    for field in _WHOLE_NUMBERS:
        value = manifest.get(field)
        if field in manifest and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{field}: must be a whole number")

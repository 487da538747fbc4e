"""What each named constraint of the schema means: one line naming the field and the fix.

The names match the migrations in jobfallback/store/migrations/; a constraint missing here still
produces a ConstraintViolation, with a generic message naming the constraint.
"""

from __future__ import annotations

from pydantic.alias_generators import to_camel

from jobfallback.models import CONFIG_TEXT_FIELDS

MESSAGES: dict[str, str] = {
    **{
        f"fallback_configs_{column}_not_blank": (
            f"field {to_camel(column)}: must not be empty; give it a non-blank value"
        )
        for column in CONFIG_TEXT_FIELDS
    },
    "fallback_configs_distinct_workspaces": (
        "field destinationWorkspaceId: must differ from sourceWorkspaceId; "
        "a config cannot move runs into the workspace they are stuck in"
    ),
    "fallback_configs_threshold_range": (
        "field stuckThresholdMinutes: must be from 1 to 525600 minutes; "
        "leave it out to use JOB_FALLBACK_STUCK_THRESHOLD_MINUTES"
    ),
    "fallback_configs_job_key": (
        "field sourceJobId: a config for this source workspace, job and destination workspace "
        "already exists; "
        "change it with `jobfallback configs update ID` (see `jobfallback configs list`)"
    ),
    "fallback_configs_generic_key": (
        "field destinationWorkspaceId: a generic config from this source workspace to this "
        "destination workspace already exists; change it with `jobfallback configs update ID` "
        "(see `jobfallback configs list`)"
    ),
    "fallback_configs_priority_range": "field priority: must be from 0 to 1000",
    "fallback_configs_manifest_patch_object": (
        "field manifestPatch: must be a JSON object (a JSON Merge Patch of the job manifest)"
    ),
    "moves_state_valid": (
        "field state: must be one of planned, created, triggered, done, failed, skipped"
    ),
    "moves_attempts_non_negative": "field attempts: must not be negative",
}

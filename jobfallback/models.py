"""Domain models: fallback configs, TrueFoundry objects, moves and the sweep report.

TrueFoundry objects ignore unknown fields and keep unknown enum values as plain strings
(a new run status or application type must never crash a sweep).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """camelCase on the wire and in config files, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# ---------------------------------------------------------------- fallback configs


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _non_empty(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be empty")
    return stripped


def _printable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a line break would split one-line messages.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (NUL, line breaks, tabs)")
    return value


# The text fields of a config: never blank when set, never control characters (the database
# checks the same; store/constraints.py names them in its messages).
CONFIG_TEXT_FIELDS = (
    "name",
    "source_cluster_id",
    "source_workspace_id",
    "source_job_id",
    "destination_cluster_id",
    "destination_workspace_id",
    "destination_workspace_fqn",
)


class FallbackConfigSpec(CamelModel):
    """What a person writes: one fallback rule. Files use the camelCase aliases."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=True
    )

    name: str | None = None
    source_cluster_id: str = Field(min_length=1)
    source_workspace_id: str = Field(min_length=1)
    source_job_id: str | None = None
    destination_cluster_id: str = Field(min_length=1)
    destination_workspace_id: str = Field(min_length=1)
    destination_workspace_fqn: str | None = None
    enabled: bool = True
    stuck_threshold_minutes: int | None = Field(default=None, ge=1, le=525600)

    @field_validator("name", "source_job_id", "destination_workspace_fqn", mode="before")
    @classmethod
    def _blank_is_error(cls, value: Any) -> Any:
        return _non_empty(value) if isinstance(value, str) else value

    @field_validator(*CONFIG_TEXT_FIELDS, mode="after")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        return None if value is None else _printable(value)

    @property
    def natural_key(self) -> tuple[str, str, str]:
        """Identity used by import: a job-specific config is one per (source workspace, job);
        a generic one is one per (source workspace, destination workspace)."""
        if self.source_job_id is not None:
            return (self.source_workspace_id, "job", self.source_job_id)
        return (self.source_workspace_id, "generic", self.destination_workspace_id)


class FallbackConfig(FallbackConfigSpec):
    """A stored config. Generic configs are ordered by (id): the oldest one is "first"."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )

    id: int
    created_at: datetime
    updated_at: datetime

    def spec(self) -> FallbackConfigSpec:
        return FallbackConfigSpec.model_validate(
            self.model_dump(exclude={"id", "created_at", "updated_at"})
        )


# ---------------------------------------------------------------- TrueFoundry objects


class RunStatus(StrEnum):
    CREATED = "CREATED"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    TERMINATION_REQUESTED = "TERMINATION_REQUESTED"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    UNKNOWN = "UNKNOWN"


class Workspace(CamelModel):
    id: str
    fqn: str
    name: str | None = None
    cluster_id: str
    tenant_name: str | None = None
    created_at: Any = None
    updated_at: Any = None


class Deployment(CamelModel):
    id: str
    version: int | None = None
    fqn: str | None = None
    application_id: str
    manifest: dict[str, Any] = Field(default_factory=dict)


class Application(CamelModel):
    id: str
    fqn: str | None = None
    name: str
    type: str  # "job", "service", ...: unknown values are kept, never rejected
    workspace_id: str | None = None
    workspace_fqn: str | None = None
    active_deployment_id: str | None = None
    last_deployment_id: str | None = None
    deployment: Deployment | None = None
    created_at: Any = None
    updated_at: Any = None


class JobRun(CamelModel):
    id: str
    name: str
    application_name: str | None = None
    application_id: str | None = None
    deployment_id: str | None = None
    deployment_version: int | None = None
    created_at: int  # epoch milliseconds
    end_time: int | None = None
    command: str | None = None
    params: dict[str, Any] | None = None
    status: str  # compare with RunStatus; unknown values mean "not stuck"
    triggered_by: str | None = None
    tenant_name: str | None = None

    def created_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.created_at / 1000, tz=UTC)


# ---------------------------------------------------------------- moves


class MoveState(StrEnum):
    PLANNED = "planned"
    CREATED = "created"
    TRIGGERED = "triggered"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class PlannedMove(BaseModel):
    """One stuck run matched to a config: the unit of the plan (data only, no I/O)."""

    run: JobRun
    application: Application
    config: FallbackConfig
    age_minutes: float
    threshold_minutes: int
    reason: str  # why this config matched: "job-specific" or "generic (first of N)"

    @property
    def destination_workspace_fqn(self) -> str:
        # The planner only emits moves whose config has an FQN.
        assert self.config.destination_workspace_fqn is not None
        return self.config.destination_workspace_fqn


class MoveRecord(CamelModel):
    """A row of the move journal, keyed by the source run id (camelCase in JSON output)."""

    source_run_id: str
    source_run_name: str
    source_application_id: str
    source_application_name: str
    source_deployment_id: str | None = None
    config_id: int | None = None
    destination_workspace_fqn: str
    destination_application_id: str | None = None
    destination_deployment_id: str | None = None
    destination_run_name: str | None = None
    state: MoveState
    error: str | None = None
    attempts: int = 0
    created_at: datetime
    updated_at: datetime


class SweepReport(CamelModel):
    """Counters of one pass; rendered as the summary and as JSON (camelCase, like the moves)."""

    dry_run: bool = False
    sources_total: int = 0
    sources_scanned: int = 0
    sources_failed: int = 0
    jobs_listed: int = 0
    runs_seen: int = 0
    stuck: int = 0
    planned: int = 0
    deferred: int = 0  # over --max-moves, left for the next pass
    resumed: int = 0  # unfinished moves of earlier passes picked up again
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    api_calls: int = 0
    duration_seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)

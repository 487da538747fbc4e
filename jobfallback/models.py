"""Domain models: fallback configs, TrueFoundry objects, moves and the sweep report.

TrueFoundry objects ignore unknown fields and keep unknown enum values as plain strings
(a new run status or application type must never crash a sweep).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from jobfallback.patch import check_patch
from jobfallback.printable import has_unsafe


class CamelModel(BaseModel):
    """camelCase on the wire and in config files, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# ---------------------------------------------------------------- fallback configs


def _non_empty(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be empty")
    return stripped


def _printable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, a line break would split one-line messages, and escape
    # sequences or bidi overrides would drive the terminal that lists the configs.
    if has_unsafe(value):
        raise ValueError(
            "must not contain control or format characters (NUL, line breaks, tabs, ESC, "
            "bidi overrides)"
        )
    return value


def _not_a_dot_segment(value: str) -> str:
    # Ids become API path segments: "." and ".." would name another endpoint.
    if value in (".", ".."):
        raise ValueError("must not be . or ..; give the id the API shows")
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
CONFIG_ID_FIELDS = (
    "source_cluster_id",
    "source_workspace_id",
    "source_job_id",
    "destination_cluster_id",
    "destination_workspace_id",
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
    # A source's configs are a chain tried in order: lowest priority first, then lowest id.
    priority: int = Field(default=0, ge=0, le=1000)
    # Jobs of the source this generic config never moves (README "Opting out").
    exclude_job_ids: list[str] = Field(default_factory=list)
    # A JSON Merge Patch applied to the job's manifest for this destination (jobfallback.patch).
    manifest_patch: dict[str, Any] | None = None

    @field_validator("name", "source_job_id", "destination_workspace_fqn", mode="before")
    @classmethod
    def _blank_is_error(cls, value: Any) -> Any:
        return _non_empty(value) if isinstance(value, str) else value

    @field_validator(*CONFIG_TEXT_FIELDS, mode="after")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        return None if value is None else _printable(value)

    @field_validator(*CONFIG_ID_FIELDS, mode="after")
    @classmethod
    def _no_dot_ids(cls, value: str | None) -> str | None:
        return None if value is None else _not_a_dot_segment(value)

    @field_validator("exclude_job_ids", mode="after")
    @classmethod
    def _job_ids(cls, value: list[str]) -> list[str]:
        ids = [_not_a_dot_segment(_printable(_non_empty(job) or "")) for job in value]
        return sorted(set(ids))

    @field_validator("manifest_patch", mode="after")
    @classmethod
    def _applicable_patch(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_patch(value)
        return value

    @model_validator(mode="after")
    def _exclusions_are_generic(self) -> FallbackConfigSpec:
        if self.exclude_job_ids and self.source_job_id is not None:
            raise ValueError(
                "excludeJobIds: only a generic config (no sourceJobId) excludes jobs; "
                "remove one of the two"
            )
        return self

    def file_entry(self) -> dict[str, Any]:
        """The spec as a config file writes it: camelCase, unset and empty fields left out
        (priority 0 and no exclusions are the defaults, so older files and exports match)."""
        entry = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not self.exclude_job_ids:
            del entry["excludeJobIds"]
        if not self.priority:
            del entry["priority"]
        return entry

    @property
    def natural_key(self) -> tuple[str, ...]:
        """Identity used by import: a job-specific config is one per (source workspace, job,
        destination workspace); a generic one is one per (source workspace, destination
        workspace). So a job, or a whole source, may fall back along a chain of destinations."""
        if self.source_job_id is not None:
            return (
                self.source_workspace_id,
                "job",
                self.source_job_id,
                self.destination_workspace_id,
            )
        return (self.source_workspace_id, "generic", self.destination_workspace_id)


def workspace_conflicts(configs: Iterable[tuple[str, FallbackConfigSpec]]) -> dict[str, str]:
    """Source workspaces named under more than one cluster id, each with one line that names
    the configs involved (`configs`: each with the label a message names it by). A workspace id
    is unique across clusters, so two cluster ids for one workspace is a typo, and acting on
    both would list (and move) its runs twice."""
    clusters: dict[str, dict[str, list[str]]] = {}
    for label, config in configs:
        if not (config.source_cluster_id or "").strip():
            continue  # a config without a cluster is refused on its own account
        by_cluster = clusters.setdefault(config.source_workspace_id, {})
        by_cluster.setdefault(config.source_cluster_id, []).append(label)
    return {
        workspace: (
            f"source workspace {workspace} is named under clusters "
            + " and ".join(
                f"{cluster} ({', '.join(labels)})" for cluster, labels in sorted(by_cluster.items())
            )
            + "; a workspace belongs to one cluster: fix the sourceClusterId of the wrong one"
        )
        for workspace, by_cluster in clusters.items()
        if len(by_cluster) > 1
    }


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


class Deployment(CamelModel):
    """A version of an application. The vendor's model makes id, version and applicationId
    optional; the move checks for what it needs and fails closed when one is missing."""

    id: str | None = None
    version: float | None = None  # a number in the vendor's models (float), an int in practice
    fqn: str | None = None
    application_id: str | None = None
    manifest: dict[str, Any] = Field(default_factory=dict)

    @property
    def labels(self) -> dict[str, Any]:
        labels = self.manifest.get("labels")
        return labels if isinstance(labels, dict) else {}


class Application(CamelModel):
    # Optional in the vendor's model; an application without an id or a name cannot be moved,
    # so the reader skips it with a warning that names it.
    id: str
    fqn: str | None = None
    name: str
    type: str | None = None  # "job", "service", ...: unknown values are kept, never rejected
    workspace_id: str | None = None
    workspace_fqn: str | None = None
    active_deployment_id: str | None = None
    last_deployment_id: str | None = None
    last_version: float | None = None
    deployment: Deployment | None = None

    @property
    def is_job(self) -> bool:
        return self.type == "job"


def version_text(version: float) -> str:
    """One spelling per deployment version, whether it came as 3, 3.0 or "3" (exact for any
    whole number, unlike a fixed number of significant digits)."""
    number = float(version)
    return str(int(number)) if number.is_integer() else repr(number)


class JobRun(CamelModel):
    """A run, read as widely as the vendor's models type it: `createdAt` and `endTime` any JSON
    number (float in the SDK, int in the vendor's CLI), `deploymentVersion` a string or a
    number. `status` stays a plain string: an unknown value is kept and never taken for
    CREATED."""

    id: str
    name: str
    application_name: str | None = None
    application_id: str | None = None
    deployment_id: str | None = None
    deployment_version: str | None = None
    created_at: float  # epoch milliseconds
    end_time: float | None = None
    command: str | None = None
    params: dict[str, Any] | None = None  # not in the vendor's model: passed on when served
    status: str
    triggered_by: str | None = None
    tenant_name: str | None = None

    @field_validator("deployment_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # The SDK says string, the CLI says int: a number is kept as its text.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return version_text(value)
        return value

    def on_version(self, version: float) -> bool | None:
        """Whether this run is on deployment version `version`; None when it does not say
        (or says it in a way that is not a number)."""
        if self.deployment_version is None:
            return None
        try:
            return float(self.deployment_version) == version
        except ValueError:
            return None

    def created_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.created_at / 1000, tz=UTC)


# ---------------------------------------------------------------- moves


class MoveState(StrEnum):
    """Where a move stands in the journal. The step it resumes from is derived from what the
    row records (move.next_step), not from this name alone."""

    CLAIMED = "claimed"  # journal row written; nothing at the destination yet
    DEPLOYED = "deployed"  # the destination version of this move exists
    TRIGGERED = "triggered"  # the destination run is known
    WAITING = "waiting"  # a look-up could not prove absence yet; retried at next_attempt_at
    FAILED = "failed"  # an attempt failed; retried at next_attempt_at (backing off)
    DONE = "done"  # the copy runs and the source was terminated
    SKIPPED = "skipped"  # nothing to do (the source left CREATED on its own), no copy alive
    PARKED = "parked"  # a person must decide: the sweep no longer touches it
    ABANDONED = "abandoned"  # a person gave up on it; the source stays where it is


# A sweep resumes these (when their next attempt is due); the others are settled or parked.
RESUMABLE_STATES = (
    MoveState.CLAIMED,
    MoveState.DEPLOYED,
    MoveState.TRIGGERED,
    MoveState.WAITING,
    MoveState.FAILED,
)


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
    destination_version: float | None = None
    destination_run_name: str | None = None
    manifest_patch: dict[str, Any] | None = None  # the config's, as it was when claimed
    state: MoveState
    error: str | None = None
    attempts: int = 0
    owner: str | None = None  # the pass that holds the row; every write is fenced by it
    trigger_sent_at: datetime | None = None  # intent marks: written before the POST
    terminate_sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def has_destination_run(self) -> bool:
        """A copy may exist: one was recorded, or a trigger may have reached the server."""
        return self.destination_run_name is not None or self.trigger_sent_at is not None


class SweepReport(CamelModel):
    """Counters of one pass; rendered as the summary and as JSON (camelCase, like the moves)."""

    dry_run: bool = False
    sources_total: int = 0
    sources_scanned: int = 0
    sources_failed: int = 0
    sources_refused: int = 0  # config sets it will not act on (one workspace, two clusters)
    sources_missing: int = 0  # workspace not found, or in another cluster than its configs say
    configs_total: int = 0  # enabled configs
    configs_skipped: int = 0  # enabled configs it could not use (plan.skipped_configs says why)
    jobs_listed: int = 0
    runs_seen: int = 0
    stuck: int = 0
    planned: int = 0
    deferred: int = 0  # over a cap (--max-moves...), or backing off after a failure
    # Stuck runs this pass did not move, by reason (plan.Hold: cap_total, cap_destination,
    # cap_source, breaker_open, cooldown, opted_out, destinations_saturated, hop_limit).
    held: dict[str, int] = Field(default_factory=dict)
    destinations_saturated: int = 0  # destination workspaces skipped: their own runs are stuck
    breaker_open: bool = False  # no new move started (README "Guard rails")
    breaker_reason: str | None = None
    shard: str | None = None  # "INDEX/COUNT" when the pass took one shard of the sources
    resumed: int = 0  # unfinished moves of earlier passes picked up again
    moved: int = 0
    skipped: int = 0
    waiting: int = 0  # a look-up could not prove absence yet: no action this pass
    failed: int = 0
    parked: int = 0  # left for a person (`jobfallback moves`)
    flagged: int = 0  # journal and API disagree (e.g. a done move whose source reads CREATED)
    unreadable: int = 0  # listed items that could not be read (each named in warnings)
    api_calls: int = 0
    duration_seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)

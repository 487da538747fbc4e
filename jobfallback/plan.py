"""The pure part of a sweep: group configs by source, find stuck runs, match them, plan moves.

Data in, data out: no I/O and no clock reads (`now` is passed in), so every rule here is
tested exhaustively without servers.

Matching rules (documented in the README):
- A job-specific config (one with `sourceJobId`) governs that job in its source workspace.
- Otherwise the first generic config of the source wins, "first" being the lowest config id
  (the oldest config); `configs list` shows configs in that order.
- The matched config's `stuckThresholdMinutes` applies, else the global threshold; a run is
  stuck when it is in CREATED and `now - createdAt >= threshold`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from jobfallback.models import (
    Application,
    FallbackConfig,
    JobRun,
    PlannedMove,
    RunStatus,
    workspace_conflicts,
)


@dataclass(frozen=True, order=True)
class Source:
    cluster_id: str
    workspace_id: str

    def __str__(self) -> str:
        return f"{self.cluster_id}/{self.workspace_id}"

    @classmethod
    def parse(cls, text: str) -> Source:
        parts = [part.strip() for part in text.split("/")]
        if len(parts) != 2 or not all(parts):
            raise ValueError("expected CLUSTER/WORKSPACE, e.g. gpu-east/ws-ml")
        return cls(*parts)


@dataclass
class SourceGroup:
    """The enabled configs of one source, split the way matching uses them."""

    source: Source
    job_specific: dict[str, FallbackConfig] = field(default_factory=dict)
    generic: list[FallbackConfig] = field(default_factory=list)  # ordered by id

    @property
    def job_ids(self) -> list[str] | None:
        """The jobs to list, or None for every job of the source (a generic config covers all)."""
        return None if self.generic else sorted(self.job_specific)


@dataclass
class Listing:
    """What the API answered for one job of a source: the application and its CREATED runs."""

    application: Application
    runs: list[JobRun]


@dataclass
class Plan:
    moves: list[PlannedMove]
    deferred: list[PlannedMove]  # stuck and matched, but over --max-moves
    runs_seen: int
    stuck: int
    warnings: list[str]


def usable_configs(configs: Iterable[FallbackConfig]) -> tuple[list[FallbackConfig], list[str]]:
    """Enabled configs that can drive a move; a config without a destination FQN is skipped."""
    usable: list[FallbackConfig] = []
    warnings: list[str] = []
    for config in sorted(configs, key=lambda c: c.id):
        if not config.enabled:
            continue
        if config.destination_workspace_fqn is None:
            warnings.append(
                f"config {config.id} has no destinationWorkspaceFqn and is skipped; "
                "run `jobfallback configs backfill-fqn` to fill it"
            )
            continue
        usable.append(config)
    return usable, warnings


def skipped_configs(configs: Iterable[FallbackConfig]) -> dict[str, int]:
    """Enabled configs a pass cannot use, by reason: no destination FQN, or a source workspace
    named under two clusters (the sweep's report and its metrics both read this)."""
    configs = list(configs)
    usable, _ = usable_configs(configs)
    refused = workspace_conflicts((f"config {c.id}", c) for c in usable)
    return {
        "no_destination_fqn": sum(c.enabled for c in configs) - len(usable),
        "source_conflict": sum(c.source_workspace_id in refused for c in usable),
    }


def group_by_source(
    configs: Iterable[FallbackConfig], *, only: Source | None = None
) -> list[SourceGroup]:
    """Group usable configs by source workspace, sources in sorted order. A workspace named
    under two clusters is left out (see workspace_conflicts: the sweep reports it)."""
    configs = sorted(configs, key=lambda c: c.id)
    refused = workspace_conflicts((f"config {c.id}", c) for c in configs)
    groups: dict[str, SourceGroup] = {}
    for config in configs:
        source = Source(config.source_cluster_id, config.source_workspace_id)
        if config.source_workspace_id in refused or (only is not None and source != only):
            continue
        group = groups.setdefault(config.source_workspace_id, SourceGroup(source))
        if config.source_job_id is None:
            group.generic.append(config)
        else:
            group.job_specific.setdefault(config.source_job_id, config)
    return sorted(groups.values(), key=lambda g: g.source)


def age_minutes(run: JobRun, now: datetime) -> float:
    return (now.timestamp() * 1000 - run.created_at) / 60000


def is_stuck(run: JobRun, now: datetime, threshold_minutes: int) -> bool:
    # Unknown statuses are never stuck: only CREATED is.
    return run.status == RunStatus.CREATED and age_minutes(run, now) >= threshold_minutes


def match(group: SourceGroup, application_id: str) -> tuple[FallbackConfig, str] | None:
    """The config that governs a job of this source, and why it matched."""
    specific = group.job_specific.get(application_id)
    if specific is not None:
        return specific, f"job-specific config {specific.id}"
    if group.generic:
        first = group.generic[0]
        others = len(group.generic) - 1
        which = f"the oldest of {others + 1}" if others else "the only one"
        return first, f"generic config {first.id} ({which} for this source)"
    return None


@dataclass
class SourcePlan:
    """The matched stuck runs of one source: all a sweep keeps of its listing."""

    moves: list[PlannedMove]
    runs_seen: int
    warnings: list[str]


def plan_source(
    group: SourceGroup,
    listings: Sequence[Listing],
    *,
    now: datetime,
    default_threshold_minutes: int,
) -> SourcePlan:
    """Match every stuck run of one source to its config."""
    moves: list[PlannedMove] = []
    runs_seen = 0
    warnings: list[str] = []
    seen: set[str] = set()  # a listing that shifted while paged may repeat a run
    for listing in listings:
        app = listing.application
        if app.workspace_id is not None and app.workspace_id != group.source.workspace_id:
            warnings.append(
                f"job {app.id} is in workspace {app.workspace_id}, "
                f"not {group.source.workspace_id}; skipped"
            )
            continue
        matched = match(group, app.id)
        for run in listing.runs:
            if run.id in seen:
                continue
            seen.add(run.id)
            runs_seen += 1
            if matched is None:
                continue
            if run.application_id is not None and run.application_id != app.id:
                warnings.append(
                    f"run {run.id} claims job {run.application_id}, listed under {app.id}; skipped"
                )
                continue
            config, reason = matched
            threshold = config.stuck_threshold_minutes or default_threshold_minutes
            if not is_stuck(run, now, threshold):
                continue
            moves.append(
                PlannedMove(
                    run=run,
                    application=app,
                    config=config,
                    age_minutes=round(age_minutes(run, now), 1),
                    threshold_minutes=threshold,
                    reason=reason,
                )
            )
    return SourcePlan(moves=moves, runs_seen=runs_seen, warnings=warnings)


def merge_plans(parts: Iterable[SourcePlan], *, max_moves: int | None = None) -> Plan:
    """One plan from every source's: oldest runs first, so a cap defers the newest."""
    candidates: list[PlannedMove] = []
    runs_seen = 0
    warnings: list[str] = []
    seen: set[str] = set()
    for part in parts:
        for move in part.moves:
            if move.run.id not in seen:  # one run, one move, whatever the listings repeated
                seen.add(move.run.id)
                candidates.append(move)
        runs_seen += part.runs_seen
        warnings += part.warnings
    candidates.sort(key=lambda m: (m.run.created_at, m.run.id))
    cut = len(candidates) if max_moves is None else max_moves
    return Plan(
        moves=candidates[:cut],
        deferred=candidates[cut:],
        runs_seen=runs_seen,
        stuck=len(candidates),
        warnings=warnings,
    )

"""The pure part of a sweep: group configs by source, find stuck runs, match them, plan moves.

Data in, data out: no I/O and no clock reads (`now` is passed in), so every rule here is
tested exhaustively without servers.

Matching rules (documented in the README):
- A job's own configs (those with its `sourceJobId`) govern it in its source workspace;
  otherwise the source's generic configs do. Either set is a chain tried in order: lowest
  `priority` first, then the lowest config id (the oldest config); `configs list` shows that
  order. With equal priorities the first (oldest) config wins, as before chains existed.
- The chain head's `stuckThresholdMinutes` applies, else the global threshold; a run is stuck
  when it is in CREATED and `now - createdAt >= threshold`.
- Each stuck run, oldest first, is then held or moved (`decide`): opted out (a generic config's
  `excludeJobIds`, or the label `jobfallback.io/move: never` on its version), hop limit (the job
  already moved --max-hops times), cooldown (another run of the job moved recently); else the
  first destination of its chain the job was never in and that is not saturated; then the
  breaker, and the caps per source, per destination and in all.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from jobfallback.models import (
    Application,
    FallbackConfig,
    FallbackConfigSpec,
    JobRun,
    PlannedMove,
    RunStatus,
    workspace_conflicts,
)
from jobfallback.provenance import LABEL_MOVE, NEVER, opted_out, visited, workspace_label
from jobfallback.shard import Shard


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


def chain_order(config: FallbackConfig) -> tuple[int, int]:
    """A source's configs are tried lowest priority first, then oldest (lowest id) first."""
    return (config.priority, config.id)


@dataclass
class SourceGroup:
    """The enabled configs of one source, split the way matching uses them: each job's own
    chain, and the source's generic chain, each in chain order."""

    source: Source
    job_specific: dict[str, list[FallbackConfig]] = field(default_factory=dict)
    generic: list[FallbackConfig] = field(default_factory=list)

    @property
    def job_ids(self) -> list[str] | None:
        """The jobs to list, or None for every job of the source (a generic config covers all)."""
        return None if self.generic else sorted(self.job_specific)

    @property
    def configs(self) -> list[FallbackConfig]:
        return sorted(
            [*self.generic, *itertools.chain(*self.job_specific.values())], key=chain_order
        )

    def excluded_by(self, job_id: str) -> FallbackConfig | None:
        """The first generic config that excludes this job (so no config of the source moves it)."""
        return next((c for c in self.generic if job_id in c.exclude_job_ids), None)


@dataclass(frozen=True)
class Limits:
    """The guard rails a pass plans under (each a setting, a flag and a chart value; README
    "Guard rails"). None: no cap."""

    max_moves: int | None = 100  # moves started per pass, in all
    per_destination: int | None = 50  # ... into one destination workspace
    per_source: int | None = 50  # ... out of one source workspace
    cooldown_minutes: int = 60  # a job one of whose runs was moved is left alone this long
    max_hops: int = 2  # a copy may move on until the job has moved this many times in all


@dataclass
class Listing:
    """What the API answered for one job of a source: the application and its CREATED runs."""

    application: Application
    runs: list[JobRun]


class Hold(StrEnum):
    """Why a stuck run was not moved this pass, in the order the plan checks them."""

    OPTED_OUT = "opted_out"
    HOP_LIMIT = "hop_limit"
    COOLDOWN = "cooldown"
    SATURATED = "destinations_saturated"
    BREAKER_OPEN = "breaker_open"
    CAP_SOURCE = "cap_source"
    CAP_DESTINATION = "cap_destination"
    CAP_TOTAL = "cap_total"


CAPS = (Hold.CAP_SOURCE, Hold.CAP_DESTINATION, Hold.CAP_TOTAL)


@dataclass
class Held:
    """A stuck run left where it is this pass: the move it would have been, and why not."""

    move: PlannedMove
    hold: Hold
    detail: str


@dataclass
class Plan:
    moves: list[PlannedMove]
    held: list[Held]
    runs_seen: int
    stuck: int
    warnings: list[str]

    @property
    def deferred(self) -> list[PlannedMove]:
        """Runs over a cap: the next pass takes them, oldest first."""
        return [h.move for h in self.held if h.hold in CAPS]

    def held_counts(self) -> dict[str, int]:
        return dict(sorted(collections.Counter(str(h.hold) for h in self.held).items()))


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


def config_cycles(configs: Iterable[FallbackConfigSpec], *, limit: int = 20) -> list[list[str]]:
    """The cycles of the config graph (source workspace -> destination workspace), each once,
    as the workspaces around it from its smallest id back to it; at most `limit` (a dense graph
    has very many). A cycle is allowed (a copy never moves back to a workspace it was in), but
    it is worth a second look."""
    edges: dict[str, set[str]] = collections.defaultdict(set)
    for config in configs:
        if config.enabled:
            edges[config.source_workspace_id].add(config.destination_workspace_id)
    cycles: set[tuple[str, ...]] = set()

    def walk(path: list[str]) -> None:
        for nxt in sorted(edges.get(path[-1], ())):
            if len(cycles) >= limit:
                return
            if nxt == path[0]:
                cycles.add(tuple(path))
            elif nxt not in path and nxt > path[0]:  # each cycle found from its smallest node
                walk([*path, nxt])

    for start in sorted(edges):
        walk([start])
    return [[*cycle, cycle[0]] for cycle in sorted(cycles)]


def group_by_source(
    configs: Iterable[FallbackConfig], *, only: Source | None = None, shard: Shard | None = None
) -> list[SourceGroup]:
    """Group usable configs by source workspace, sources in sorted order (only this shard's,
    when given). A workspace named under two clusters is left out (see workspace_conflicts:
    the sweep reports it)."""
    configs = sorted(configs, key=chain_order)
    refused = workspace_conflicts((f"config {c.id}", c) for c in configs)
    groups: dict[str, SourceGroup] = {}
    for config in configs:
        source = Source(config.source_cluster_id, config.source_workspace_id)
        if config.source_workspace_id in refused or (only is not None and source != only):
            continue
        if shard is not None and not shard.owns(config.source_workspace_id):
            continue
        group = groups.setdefault(config.source_workspace_id, SourceGroup(source))
        if config.source_job_id is None:
            group.generic.append(config)
        else:
            group.job_specific.setdefault(config.source_job_id, []).append(config)
    return sorted(groups.values(), key=lambda g: g.source)


def age_minutes(run: JobRun, now: datetime) -> float:
    return (now.timestamp() * 1000 - run.created_at) / 60000


def is_stuck(run: JobRun, now: datetime, threshold_minutes: int) -> bool:
    # Unknown statuses are never stuck: only CREATED is.
    return run.status == RunStatus.CREATED and age_minutes(run, now) >= threshold_minutes


def match(group: SourceGroup, application_id: str) -> tuple[list[FallbackConfig], str] | None:
    """The chain of configs that governs a job of this source (its own configs, else the
    source's generic ones), and why."""
    own = group.job_specific.get(application_id)
    chain = own or group.generic
    if not chain:
        return None
    kind = "job-specific" if own else "generic"
    if len(chain) == 1:
        which = "the only one" if own is None else ""
    elif len({c.priority for c in chain}) == 1:
        which = f"the oldest of {len(chain)}"
    else:
        which = f"first by priority of {len(chain)}"
    where = f" ({which} for this {'job' if own else 'source'})" if which else ""
    return chain, f"{kind} config {chain[0].id}{where}"


@dataclass
class Candidate:
    """A stuck run and the chain of configs that may move it."""

    run: JobRun
    application: Application
    chain: list[FallbackConfig]
    reason: str
    age_minutes: float
    threshold_minutes: int
    source: Source
    excluded_by: FallbackConfig | None


@dataclass
class Sighting:
    """What the listing showed of the one run `jobfallback explain` asks about."""

    run: JobRun
    application: Application
    group: SourceGroup
    chain: list[FallbackConfig]  # the configs that govern its job, in chain order
    reason: str  # why that chain governs it
    age_minutes: float
    threshold_minutes: int
    stuck: bool


@dataclass
class SourcePlan:
    """The stuck runs of one source: all a sweep keeps of its listing."""

    source: Source
    candidates: list[Candidate]
    runs_seen: int
    warnings: list[str]
    # Whether every job of the workspace was listed, and its oldest CREATED run's creation
    # (epoch ms; None: none): as a destination, whether it is itself saturated.
    listed_whole: bool = False
    oldest_created: float | None = None
    sighting: Sighting | None = None


def plan_source(
    group: SourceGroup,
    listings: Sequence[Listing],
    *,
    now: datetime,
    default_threshold_minutes: int,
    focus: str | None = None,
) -> SourcePlan:
    """Every stuck run of one source with the chain that governs it; and the run named `focus`
    (id or name), stuck or not, when it is listed."""
    candidates: list[Candidate] = []
    runs_seen = 0
    warnings: list[str] = []
    oldest: float | None = None
    sighting: Sighting | None = None
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
            if run.status == RunStatus.CREATED:
                oldest = run.created_at if oldest is None else min(oldest, run.created_at)
            if matched is None:
                continue
            if run.application_id is not None and run.application_id != app.id:
                warnings.append(
                    f"run {run.id} claims job {run.application_id}, listed under {app.id}; skipped"
                )
                continue
            chain, reason = matched
            threshold = chain[0].stuck_threshold_minutes or default_threshold_minutes
            age = round(age_minutes(run, now), 1)
            stuck = is_stuck(run, now, threshold)
            if focus is not None and focus in (run.id, run.name):
                sighting = Sighting(run, app, group, chain, reason, age, threshold, stuck)
            if not stuck:
                continue
            excluded = None if chain is not group.generic else group.excluded_by(app.id)
            candidates.append(
                Candidate(run, app, chain, reason, age, threshold, group.source, excluded)
            )
    return SourcePlan(
        source=group.source,
        candidates=candidates,
        runs_seen=runs_seen,
        warnings=warnings,
        listed_whole=group.job_ids is None,
        oldest_created=oldest,
        sighting=sighting,
    )


@dataclass(frozen=True)
class Facts:
    """What the sweep learned beyond the listings, for the decisions of `decide`."""

    # run id -> the labels of the version the run is on (absent: could not be read; the
    # move checks the manifest it copies in any case)
    labels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # job (application id) -> its runs moved within the cooldown: run id -> when
    moved_recently: Mapping[str, Mapping[str, datetime]] = field(default_factory=dict)
    # destination workspace id -> why it counts as saturated this pass
    saturated: Mapping[str, str] = field(default_factory=dict)
    breaker: str | None = None  # why the breaker is open; None: closed

    def other_moves(self, application_id: str, run_id: str) -> dict[str, datetime]:
        """The job's moves within the cooldown but this run's own (its earlier attempt is no
        cooldown): run id -> when."""
        moved = self.moved_recently.get(application_id, {})
        return {run: at for run, at in moved.items() if run != run_id}


def _hold(candidate: Candidate, facts: Facts, limits: Limits) -> tuple[Hold, str] | PlannedMove:
    """One candidate's decision before the caps: held (and why), or its move."""
    labels = facts.labels.get(candidate.run.id, {})
    if candidate.excluded_by is not None:
        config = candidate.excluded_by
        return Hold.OPTED_OUT, f"config {config.id} excludes job {candidate.application.id}"
    if opted_out(labels):
        return Hold.OPTED_OUT, f"the job is labelled {LABEL_MOVE}: {NEVER}"
    hops = visited(labels)
    if len(hops) >= limits.max_hops:
        return Hold.HOP_LIMIT, f"moved {len(hops)} time(s) already; --max-hops is {limits.max_hops}"
    others = facts.other_moves(candidate.application.id, candidate.run.id)
    last = max(others.values(), default=None)
    if last is not None:
        until = last + timedelta(minutes=limits.cooldown_minutes)
        return Hold.COOLDOWN, (
            f"a run of this job was moved at {last:%Y-%m-%d %H:%M:%S} UTC; "
            f"cooling down until {until:%Y-%m-%d %H:%M:%S} UTC"
        )
    notes: list[str] = []
    for position, config in enumerate(candidate.chain):
        fqn = config.destination_workspace_fqn
        assert fqn is not None  # usable_configs keeps only configs with an FQN
        if workspace_label(fqn) in hops:
            notes.append(f"config {config.id}: the job was already in {fqn}")
            continue
        saturated = facts.saturated.get(config.destination_workspace_id)
        if saturated is not None:
            notes.append(f"config {config.id}: {fqn} is saturated ({saturated})")
            continue
        reason = candidate.reason
        if position:
            reason = f"config {config.id}, number {position + 1} in the chain; " + "; ".join(notes)
        return PlannedMove(
            run=candidate.run,
            application=candidate.application,
            config=config,
            age_minutes=candidate.age_minutes,
            threshold_minutes=candidate.threshold_minutes,
            reason=reason,
        )
    if all("saturated" in note for note in notes):
        return Hold.SATURATED, "; ".join(notes)
    return Hold.HOP_LIMIT, "no destination left that the job was not in: " + "; ".join(notes)


def decide(
    parts: Iterable[SourcePlan],
    *,
    limits: Limits = Limits(),
    facts: Facts = Facts(),
) -> Plan:
    """One plan from every source's: each stuck run once, oldest first, so the caps defer the
    newest. A run is held (opted out, hop limit, cooldown, every destination saturated, breaker
    open, over a cap) or moved to the first destination of its chain it may go to."""
    candidates: list[Candidate] = []
    runs_seen = 0
    warnings: list[str] = []
    seen: set[str] = set()
    for part in parts:
        for candidate in part.candidates:
            if candidate.run.id not in seen:  # one run, one move, whatever the listings repeated
                seen.add(candidate.run.id)
                candidates.append(candidate)
        runs_seen += part.runs_seen
        warnings += part.warnings
    candidates.sort(key=lambda c: (c.run.created_at, c.run.id))
    moves: list[PlannedMove] = []
    held: list[Held] = []
    per_source: collections.Counter[str] = collections.Counter()
    per_destination: collections.Counter[str] = collections.Counter()
    for candidate in candidates:
        decision = _hold(candidate, facts, limits)
        if not isinstance(decision, PlannedMove):
            held.append(Held(_first_choice(candidate), *decision))
            continue
        source = candidate.source.workspace_id
        destination = decision.config.destination_workspace_id
        cap = _over_cap(
            limits,
            len(moves),
            per_source[source],
            per_destination[destination],
            facts.breaker,
        )
        if cap is not None:
            held.append(Held(decision, *cap))
            continue
        moves.append(decision)
        per_source[source] += 1
        per_destination[destination] += 1
    return Plan(
        moves=moves, held=held, runs_seen=runs_seen, stuck=len(candidates), warnings=warnings
    )


def _over_cap(
    limits: Limits, total: int, from_source: int, into_destination: int, breaker: str | None
) -> tuple[Hold, str] | None:
    if breaker is not None:
        return Hold.BREAKER_OPEN, breaker
    if limits.per_source is not None and from_source >= limits.per_source:
        return (
            Hold.CAP_SOURCE,
            f"{from_source} moves from this source already (--max-moves-per-source)",
        )
    if limits.per_destination is not None and into_destination >= limits.per_destination:
        return Hold.CAP_DESTINATION, (
            f"{into_destination} moves into this destination already (--max-moves-per-destination)"
        )
    if limits.max_moves is not None and total >= limits.max_moves:
        return Hold.CAP_TOTAL, f"{total} moves this pass already (--max-moves)"
    return None


def _first_choice(candidate: Candidate) -> PlannedMove:
    """The move a held run would be: to the head of its chain."""
    return PlannedMove(
        run=candidate.run,
        application=candidate.application,
        config=candidate.chain[0],
        age_minutes=candidate.age_minutes,
        threshold_minutes=candidate.threshold_minutes,
        reason=candidate.reason,
    )


def saturated_destinations(
    oldest_created: Mapping[str, float], *, now: datetime, threshold_minutes: int
) -> dict[str, str]:
    """Destination workspaces whose own oldest CREATED run is stuck past the threshold."""
    saturated = {}
    for workspace_id, created in oldest_created.items():
        age = (now.timestamp() * 1000 - created) / 60000
        if age >= threshold_minutes:
            saturated[workspace_id] = (
                f"its oldest CREATED run waits {age:.0f} min, past {threshold_minutes}"
            )
    return saturated

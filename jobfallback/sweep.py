"""One pass of the sweeper: configs -> sources -> CREATED runs -> stuck -> plan -> moves -> report.

The I/O stages live here; the decisions live in `plan` (pure) and `move` (the state machine).
Sources are listed concurrently (each listing planned as it arrives, so only stuck runs are
kept), with the destinations a chain may use (a destination whose own runs are stuck is
skipped); then every stuck run is decided at once, oldest first (opt-out, hops, cooldown, chain,
breaker, caps) and its move started. The client bounds the requests in flight, so the pass is
as fast as the API allows and never floods it.

A pass has a deadline (below the CronJob's, so it reports before Kubernetes kills it): a source
not listed by then counts as failed, a move not started by then does not start, and a move
still under way is stopped and fails; its journal row lets the next pass resume it. A request
to stop (`Stop`, which `jobfallback sweep` sends on SIGTERM) brings that same deadline forward to
now, so a stopped pass ends the same way and still returns its report. A store error on one move
(a text the database refuses) fails that move, not the pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobfallback.breaker import BreakerPolicy, PassBreaker, opened_by
from jobfallback.errors import StoreError
from jobfallback.logs import event, get_logger
from jobfallback.models import (
    FallbackConfig,
    JobRun,
    MoveRecord,
    PlannedMove,
    RunStatus,
    SweepReport,
    workspace_conflicts,
)
from jobfallback.move import MoveOutcome, MovePolicy, Mover, Outcome, preview
from jobfallback.plan import (
    Candidate,
    Facts,
    Held,
    Hold,
    Limits,
    Listing,
    Plan,
    Sighting,
    Source,
    SourceGroup,
    SourcePlan,
    decide,
    group_by_source,
    plan_source,
    saturated_destinations,
    skipped_configs,
    usable_configs,
)
from jobfallback.shard import Shard
from jobfallback.store import MoveJournal
from jobfallback.truefoundry import ApiError, AuthError, TrueFoundryClient
from jobfallback.versions import Versions, VersionUnknown

log = get_logger("sweep")

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# A pass stopped before its end (SIGTERM): 128 + 15, what a shell and Kubernetes show for a
# process SIGTERM ended, and no clash with 0-3.
STOPPED_EXIT_CODE = 143
# Sources listed at once. Enough to keep every connection busy (each source queues a runs call
# per job), few enough that 500 sources do not hold 10,000 waiting requests in memory at once.
SOURCES_IN_FLIGHT = 32
# Moves under way at once: each waits on its calls one after another, so a few per connection
# keep every connection busy without thousands of half-done moves held in memory.
MOVES_IN_FLIGHT = 64


def no_progress(stage: str, done: int, total: int) -> None:
    """Used when nobody watches (not a terminal)."""


def _unguarded() -> None:
    """A pass run without the sweep lock (tests of the pass alone)."""


class Stop:
    """A request to end the pass now (SIGTERM): it stops like at its deadline. Safe to call
    from a signal handler or another thread, before, during or after the pass."""

    def __init__(self) -> None:
        self.reason: str | None = None  # e.g. "SIGTERM"; None: not asked to stop
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def on_request(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` when a stop is requested (at once if it already was); returns the
        function that unregisters it."""
        with self._lock:
            already = self.reason is not None
            if not already:
                self._listeners.append(listener)
        if already:
            listener()

        def forget() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return forget


class _Deadline:
    """The pass's deadline on the event loop's clock, and every timeout bound to it: a stop
    request moves it to now, and every timeout under way expires at once."""

    def __init__(self, seconds: float | None, stop: Stop) -> None:
        self._loop = asyncio.get_running_loop()
        self._at = None if seconds is None else self._loop.time() + seconds
        self._stop = stop
        self._live: set[asyncio.Timeout] = set()
        self.forget = stop.on_request(self._stop_requested)

    def _stop_requested(self) -> None:
        # From a signal handler or another thread: the timeouts are the loop's to change.
        self._loop.call_soon_threadsafe(self._expire_now)

    def _expire_now(self) -> None:
        self._at = self._loop.time()
        for timeout in self._live:
            if not timeout.expired():
                timeout.reschedule(self._at)

    @property
    def passed(self) -> bool:
        return self._stop.requested or (self._at is not None and self._loop.time() >= self._at)

    def why(self, deadline_text: str, stop_text: str) -> str:
        """Why the pass stopped something: a stop request, or the deadline."""
        return f"{stop_text} ({self._stop.reason})" if self._stop.requested else deadline_text

    @asynccontextmanager
    async def bound(self) -> AsyncIterator[None]:
        """Raises TimeoutError in the block once the deadline passes (or a stop comes)."""
        at = self._loop.time() if self._stop.requested else self._at
        async with asyncio.timeout_at(at) as timeout:
            self._live.add(timeout)
            try:
                yield
            finally:
                self._live.discard(timeout)


@dataclass
class SweepOptions:
    threshold_minutes: int
    dry_run: bool = False
    limits: Limits = field(default_factory=Limits)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    shard: Shard | None = None  # None: every source
    source: Source | None = None
    policy: MovePolicy = field(default_factory=MovePolicy)
    owner: str = field(default_factory=lambda: f"pass-{uuid.uuid4()}")  # fences journal writes
    guard: Callable[[], None] | None = None  # raises when this pass lost the sweep lock
    deadline_seconds: float | None = None  # the whole pass; None: no deadline
    stop: Stop = field(default_factory=Stop)  # a request brings the deadline forward to now
    focus: str | None = None  # a run id or name to report on whatever its state (explain)


@dataclass
class SweepResult:
    report: SweepReport
    plan: Plan
    outcomes: list[MoveOutcome] = field(default_factory=list)
    resumes: list[MoveRecord] = field(default_factory=list)  # unfinished moves of earlier passes
    decisions: dict[str, str] = field(
        default_factory=dict
    )  # dry run: run id -> what a pass would do
    auth_refused: bool = False
    stopped: str | None = None  # what stopped the pass early (e.g. "SIGTERM"), if anything
    source_errors: list[str] = field(default_factory=list)  # why each failed source failed
    facts: Facts = field(default_factory=Facts)  # what the decisions were taken on
    sighting: Sighting | None = None  # the focus run, when a listing showed it

    @property
    def exit_code(self) -> int:
        """0 done; 1 some moves or sources failed or were parked, refused or missing, the
        circuit breaker held a move, or every config was skipped; 3 nothing could be fetched or
        auth refused; 143 (128 + SIGTERM) the pass was stopped before its end."""
        report = self.report
        if self.stopped is not None:
            return STOPPED_EXIT_CODE
        if self.auth_refused or (
            report.sources_total and report.sources_failed == report.sources_total
        ):
            return 3
        if (
            report.failed
            or report.held.get(Hold.BREAKER_OPEN)
            or report.parked
            or report.sources_failed
            or report.sources_refused
            or report.sources_missing
        ):
            return 1
        if report.configs_skipped and report.configs_skipped == report.configs_total:
            return 1  # configs exist and none can move anything: not a quiet success
        return 0


async def fetch_source(
    client: TrueFoundryClient, workspace_id: str, wanted: Sequence[str] | None
) -> list[Listing]:
    """The job applications of one workspace (all, or only the `wanted` ones) and the CREATED
    runs of each."""
    apps = [
        app
        async for app in client.list_applications(workspace_id=workspace_id)
        if app.is_job and (wanted is None or app.id in wanted)
    ]

    async def runs_of(app_id: str) -> list[JobRun]:
        return [run async for run in client.list_job_runs(app_id, status=RunStatus.CREATED)]

    runs = await asyncio.gather(*(runs_of(app.id) for app in apps))
    return [Listing(app, app_runs) for app, app_runs in zip(apps, runs, strict=True)]


async def _existing_sources(
    client: TrueFoundryClient,
    groups: Sequence[SourceGroup],
    report: SweepReport,
    deadline: _Deadline,
) -> list[SourceGroup]:
    """The sources whose workspace exists in the cluster their configs name, from one workspace
    listing per pass; each config of another source gets a `source.missing` warning, and the
    source is counted in `sources_missing` and not listed (its configs cannot be right). When
    the listing itself fails, every source is listed as before (`source.unchecked`)."""
    if not groups:
        return []
    unreadable = len(client.skipped_items)
    try:
        async with deadline.bound():
            clusters = {w.id: w.cluster_id async for w in client.list_workspaces()}
    except (ApiError, TimeoutError) as exc:
        event(
            log,
            logging.WARNING,
            "source.unchecked",
            "the workspace listing failed: sources listed without checking they exist",
            error=str(exc) or type(exc).__name__,
        )
        return list(groups)
    partial = len(client.skipped_items) > unreadable
    found: list[SourceGroup] = []
    for group in groups:
        source = group.source
        cluster = clusters.get(source.workspace_id)
        # A workspace the listing does not show may be one of its unreadable items: not missing.
        if cluster == source.cluster_id or (cluster is None and partial):
            found.append(group)
            continue
        if cluster is None:
            detail = f"source workspace {source.workspace_id} not found"
        else:
            detail = (
                f"source workspace {source.workspace_id} is in cluster {cluster}, "
                f"not {source.cluster_id}"
            )
        report.sources_missing += 1
        for config in sorted(group.configs, key=lambda c: c.id):
            event(
                log,
                logging.WARNING,
                "source.missing",
                "config skipped: its source workspace is not where it says",
                config_id=config.id,
                source=str(source),
                detail=detail,
            )
            report.warnings.append(f"config {config.id}: {detail}")
    return found


async def _fetch_and_plan(
    client: TrueFoundryClient,
    groups: Sequence[SourceGroup],
    report: SweepReport,
    progress: Progress,
    *,
    now: datetime,
    threshold_minutes: int,
    deadline: _Deadline,
    focus: str | None,
) -> tuple[list[SourcePlan], bool, list[str]]:
    """Each source's listing is planned as soon as it arrives and then dropped: only stuck runs
    are kept, so memory follows the number of stuck runs, not the size of the fleet."""
    parts: list[SourcePlan] = []
    errors: list[str] = []  # why each failed source failed, for the report's text
    auth_refused = False
    done = 0

    in_flight = asyncio.Semaphore(SOURCES_IN_FLIGHT)

    async def one(group: SourceGroup) -> None:
        nonlocal done, auth_refused
        try:
            async with deadline.bound(), in_flight:
                listings = await fetch_source(client, group.source.workspace_id, group.job_ids)
            report.sources_scanned += 1
            report.jobs_listed += len(listings)
            part = plan_source(
                group,
                listings,
                now=now,
                default_threshold_minutes=threshold_minutes,
                focus=focus,
            )
            parts.append(part)
        except AuthError as exc:
            auth_refused = True
            report.sources_failed += 1
            errors.append("token refused")
            event(
                log,
                logging.ERROR,
                "source.token_refused",
                "the API refused the token",
                source=str(group.source),
                error=str(exc),
            )
        except ApiError as exc:
            report.sources_failed += 1
            errors.append(str(exc))
            event(
                log,
                logging.WARNING,
                "source.failed",
                "source not listed",
                source=str(group.source),
                error=str(exc),
            )
        except TimeoutError:
            report.sources_failed += 1
            errors.append(deadline.why("pass deadline", "stopped"))
            event(
                log,
                logging.WARNING,
                "source.stopped",
                "source not listed: the pass stopped first",
                source=str(group.source),
                detail=deadline.why(_DEADLINE_SOURCE, _STOPPED_SOURCE),
            )
        done += 1
        progress("sources", done, len(groups))

    await asyncio.gather(*(one(g) for g in groups))
    return parts, auth_refused, errors


_DEADLINE_SOURCE = "the pass deadline came before this source was listed"
_DEADLINE_MOVE = "the pass deadline came while this move was under way; the next pass resumes it"
_STOPPED_SOURCE = "the pass was stopped before this source was listed"
_STOPPED_MOVE = "the pass was stopped while this move was under way; the next pass resumes it"
_DEADLINE_UNSTARTED = "the pass deadline came before this move started; the next pass takes it up"
_STOPPED_UNSTARTED = "the pass was stopped before this move started; the next pass takes it up"


class _Moves:
    """Moves under way, each started as soon as it is known; at most MOVES_IN_FLIGHT at once."""

    def __init__(
        self, mover: Mover, progress: Progress, deadline: _Deadline, breaker: PassBreaker
    ) -> None:
        self._mover = mover
        self._breaker = breaker
        self.held: list[Held] = []  # planned moves the breaker stopped before they started
        self._progress = progress
        self._deadline = deadline
        self._in_flight = asyncio.Semaphore(MOVES_IN_FLIGHT)
        self._tasks: list[asyncio.Task[MoveOutcome | None]] = []
        self._done = 0

    def _start(
        self,
        run_id: str,
        work: Callable[[], Awaitable[MoveOutcome]],
        planned: PlannedMove | None = None,
    ) -> None:
        self._tasks.append(asyncio.ensure_future(self._tracked(run_id, work, planned)))

    def start_moves(self, planned: Iterable[PlannedMove]) -> None:
        for move in planned:
            self._start(move.run.id, functools.partial(self._mover.move, move), move)

    def start_resumes(
        self, records: Iterable[MoveRecord], configs: Mapping[int, FallbackConfig]
    ) -> None:
        for record in records:
            config = None if record.config_id is None else configs.get(record.config_id)
            self._start(record.source_run_id, functools.partial(self._mover.resume, record, config))

    async def _tracked(
        self,
        run_id: str,
        work: Callable[[], Awaitable[MoveOutcome]],
        planned: PlannedMove | None,
    ) -> MoveOutcome | None:
        """The move's outcome; None when the breaker opened before a new move started (moves
        under way, resumes included, always finish)."""
        deadline = self._deadline
        started = False
        try:
            async with deadline.bound(), self._in_flight:
                # No move starts once the pass is over (a late listing, a stop while queued).
                if deadline.passed:
                    raise TimeoutError
                if planned is not None and self._breaker.reason is not None:
                    self.held.append(Held(planned, Hold.BREAKER_OPEN, self._breaker.reason))
                    return None
                started = True
                outcome = await work()
        except TimeoutError:
            if started:
                outcome = _failed(run_id, deadline.why(_DEADLINE_MOVE, _STOPPED_MOVE))
            else:
                outcome = _failed(run_id, deadline.why(_DEADLINE_UNSTARTED, _STOPPED_UNSTARTED))
        except StoreError as exc:
            outcome = _failed(run_id, f"the journal refused a write: {exc}")
        self._done += 1
        self._progress("moves", self._done, len(self._tasks))
        if started:
            self._breaker.record(outcome.outcome in (Outcome.FAILED, Outcome.PARKED))
        return outcome

    async def finish(self, report: SweepReport) -> list[MoveOutcome]:
        outcomes = [o for o in await asyncio.gather(*self._tasks) if o is not None]
        for outcome in outcomes:
            # Every outcome has a counter of the same name (moved, skipped, waiting, ...).
            field = outcome.outcome.value
            setattr(report, field, getattr(report, field) + 1)
        return outcomes

    def cancel(self) -> None:
        # Safe at any step: a cancelled move is resumed from its journal row by the next pass.
        for task in self._tasks:
            task.cancel()


def _failed(run_id: str, reason: str) -> MoveOutcome:
    """A move this pass gave up on outside the move's own steps (logged here, since the mover
    never got to report it)."""
    event(log, logging.WARNING, "move.failed", "move failed", source_run_id=run_id, detail=reason)
    return MoveOutcome(run_id, Outcome.FAILED, reason)


async def run_pass(
    client: TrueFoundryClient,
    configs: Sequence[FallbackConfig],
    journal: MoveJournal | None,
    options: SweepOptions,
    *,
    now: datetime,
    progress: Progress = no_progress,
) -> SweepResult:
    """One full pass. A dry run writes nothing anywhere: it only reads the journal (if given) to
    show which unfinished moves a real pass would resume."""
    started = time.monotonic()
    deadline = _Deadline(options.deadline_seconds, options.stop)
    try:
        return await _run_pass(client, configs, journal, options, now, progress, deadline, started)
    finally:
        deadline.forget()


async def _run_pass(
    client: TrueFoundryClient,
    configs: Sequence[FallbackConfig],
    journal: MoveJournal | None,
    options: SweepOptions,
    now: datetime,
    progress: Progress,
    deadline: _Deadline,
    started: float,
) -> SweepResult:
    report = SweepReport(dry_run=options.dry_run)
    report.shard = None if options.shard is None else str(options.shard)
    usable, warnings = usable_configs(configs)
    for warning in warnings:
        event(log, logging.WARNING, "config.skipped", "config skipped", detail=warning)
    refused = workspace_conflicts((f"config {c.id}", c) for c in usable)
    for message in refused.values():
        event(log, logging.ERROR, "source.refused", "source refused", detail=message)
    warnings += refused.values()
    groups = group_by_source(usable, only=options.source, shard=options.shard)
    report.sources_total = len(groups)
    groups = await _existing_sources(client, groups, report, deadline)
    report.sources_refused = len(refused)
    report.configs_total = sum(c.enabled for c in configs)
    report.configs_skipped = sum(skipped_configs(configs).values())

    shard_key = "" if options.shard is None else str(options.shard)
    # Earlier passes' unfinished moves (this shard's), read before this pass begins its own.
    unfinished = [] if journal is None else await asyncio.to_thread(journal.due)
    by_id = {c.id: c for c in usable}
    unfinished = [r for r in unfinished if _in_shard(r, by_id, options.shard)]
    passes = (
        []
        if journal is None
        else await asyncio.to_thread(journal.last_passes, shard_key, options.breaker.failed_passes)
    )
    breaker = PassBreaker(options.breaker, opened_by(passes, options.breaker, now))

    parts, auth_refused, source_errors = await _fetch_and_plan(
        client,
        groups,
        report,
        progress,
        now=now,
        threshold_minutes=options.threshold_minutes,
        deadline=deadline,
        focus=options.focus,
    )
    saturated = await _saturated(client, groups, parts, now, options, deadline)
    versions = Versions(client)
    facts = Facts(
        labels=await _labels(versions, parts, deadline),
        moved_recently=await _moved_recently(journal, parts, now, options.limits),
        saturated=saturated,
        breaker=breaker.reason,
    )
    plan = decide(parts, limits=options.limits, facts=facts)
    # A stuck run whose move an earlier pass left unfinished is resumed below, whatever the
    # plan would hold it for (a move under way is always finished).
    resuming = {r.source_run_id for r in unfinished}
    plan.held = [h for h in plan.held if h.move.run.id not in resuming]
    for warning in plan.warnings:
        event(log, logging.WARNING, "plan.item_skipped", "listed item skipped", detail=warning)
    report.warnings = warnings + report.warnings + plan.warnings + client.skipped_items
    report.unreadable = len(client.skipped_items)
    report.runs_seen, report.stuck = plan.runs_seen, plan.stuck
    report.planned, report.deferred = len(plan.moves), len(plan.deferred)
    report.destinations_saturated = len(saturated)
    for held in plan.held:
        event(
            log,
            logging.INFO,
            "plan.held",
            "stuck run not moved this pass",
            source_run=held.move.run.name,
            job=held.move.application.name,
            hold=str(held.hold),
            detail=held.detail,
        )

    planned_ids = {m.run.id for m in plan.moves}
    leftovers = [r for r in unfinished if r.source_run_id not in planned_ids]
    report.resumed = len(leftovers)

    outcomes: list[MoveOutcome] = []
    decisions: dict[str, str] = {}
    if options.dry_run or journal is None:
        claims = (
            {} if journal is None else await asyncio.to_thread(journal.claims, sorted(planned_ids))
        )
        decisions = {run_id: preview(claims.get(run_id)) for run_id in planned_ids}
        for record in leftovers:
            event(
                log,
                logging.INFO,
                "dry_run.resume",
                "DRY-RUN: would resume an unfinished move",
                source_run=record.source_run_name,
                job=record.source_application_name,
                destination=record.destination_workspace_fqn,
                state=record.state.value,
            )
        for planned in plan.moves:
            event(
                log,
                logging.INFO,
                "dry_run.move",
                "DRY-RUN: what a pass would do with a stuck run",
                decision=decisions[planned.run.id],
                source_run=planned.run.name,
                job=planned.application.name,
                destination=planned.destination_workspace_fqn,
                reason=planned.reason,
            )
    else:
        mover = Mover(
            client,
            journal,
            owner=options.owner,
            guard=options.guard or _unguarded,
            policy=dataclasses.replace(options.policy, max_hops=options.limits.max_hops),
            versions=versions,
        )
        moves = _Moves(mover, progress, deadline, breaker)
        moves.start_resumes(leftovers, by_id)
        moves.start_moves(plan.moves)
        outcomes = await moves.finish(report)
        plan.held += moves.held
        await asyncio.to_thread(
            journal.record_pass,
            shard_key,
            started=breaker.finished,
            failed=breaker.failed,
            tripped=breaker.tripped,
        )
    report.held = plan.held_counts()
    report.breaker_open = breaker.reason is not None
    report.breaker_reason = breaker.reason
    if breaker.reason is not None:
        event(
            log,
            logging.ERROR,
            "breaker.open",
            "circuit breaker open: no new move started",
            detail=breaker.reason,
        )

    report.api_calls = sum(client.calls.values())
    report.duration_seconds = round(time.monotonic() - started, 3)
    return SweepResult(
        report=report,
        plan=plan,
        outcomes=outcomes,
        resumes=leftovers,
        decisions=decisions,
        auth_refused=auth_refused,
        stopped=options.stop.reason,
        source_errors=source_errors,
        facts=facts,
        sighting=next((p.sighting for p in parts if p.sighting is not None), None),
    )


def _in_shard(
    record: MoveRecord, configs: Mapping[int, FallbackConfig], shard: Shard | None
) -> bool:
    """Whether this shard resumes a move: the shard of its config's source; a move whose config
    is gone goes to shard 0 (any shard would be safe: the row's owner fences every write)."""
    if shard is None:
        return True
    config = None if record.config_id is None else configs.get(record.config_id)
    return shard.index == 0 if config is None else shard.owns(config.source_workspace_id)


async def _saturated(
    client: TrueFoundryClient,
    groups: Sequence[SourceGroup],
    parts: Sequence[SourcePlan],
    now: datetime,
    options: SweepOptions,
    deadline: _Deadline,
) -> dict[str, str]:
    """The destination workspaces whose own CREATED runs are stuck: from a source's listing when
    this pass listed all of that workspace's jobs anyway, else from a listing of its own."""
    destinations = {c.destination_workspace_id for g in groups for c in g.configs}
    whole = [p for p in parts if p.listed_whole and p.source.workspace_id in destinations]
    oldest = {p.source.workspace_id: p.oldest_created for p in whole}
    wanted = sorted(destinations - set(oldest))

    async def one(workspace_id: str) -> None:
        try:
            async with deadline.bound():
                listings = await fetch_source(client, workspace_id, None)
        except (ApiError, TimeoutError) as exc:
            event(
                log,
                logging.WARNING,
                "destination.unchecked",
                "destination not listed: taken as not saturated",
                workspace=workspace_id,
                error=str(exc) or type(exc).__name__,
            )
            return
        runs = [r for listing in listings for r in listing.runs]
        oldest[workspace_id] = min(
            (r.created_at for r in runs if r.status == RunStatus.CREATED), default=None
        )

    await asyncio.gather(*(one(w) for w in wanted))
    saturated = saturated_destinations(
        {w: t for w, t in oldest.items() if t is not None},
        now=now,
        threshold_minutes=options.threshold_minutes,
    )
    for workspace_id, why in sorted(saturated.items()):
        event(
            log,
            logging.WARNING,
            "destination.saturated",
            "destination skipped this pass: its own runs are stuck",
            workspace=workspace_id,
            detail=why,
        )
    return saturated


async def _labels(
    versions: Versions, parts: Sequence[SourcePlan], deadline: _Deadline
) -> dict[str, Mapping[str, Any]]:
    """The labels of the version each stuck run is on (opt-out, hops); one read per version the
    listing did not carry, shared with the moves. A version that cannot be read is left out:
    the move reads it again and checks what it copies."""
    labels: dict[str, Mapping[str, Any]] = {}

    async def one(candidate: Candidate) -> None:
        run = candidate.run
        versions.seed(candidate.application)
        try:
            async with deadline.bound():
                version = await versions.of(
                    application_id=candidate.application.id,
                    application_name=candidate.application.name,
                    run_name=run.name,
                    deployment_id=run.deployment_id,
                    deployment_version=run.deployment_version,
                )
        except (ApiError, VersionUnknown, TimeoutError):
            return
        labels[run.id] = version.labels

    await asyncio.gather(*(one(c) for part in parts for c in part.candidates))
    return labels


async def _moved_recently(
    journal: MoveJournal | None, parts: Sequence[SourcePlan], now: datetime, limits: Limits
) -> Mapping[str, Mapping[str, datetime]]:
    jobs = sorted({c.application.id for part in parts for c in part.candidates})
    if journal is None or not jobs or not limits.cooldown_minutes:
        return {}
    since = now - timedelta(minutes=limits.cooldown_minutes)
    return await asyncio.to_thread(journal.moved_since, jobs, since)

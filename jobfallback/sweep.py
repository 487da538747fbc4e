"""One pass of the sweeper: configs -> sources -> CREATED runs -> stuck -> plan -> moves -> report.

The I/O stages live here; the decisions live in `plan` (pure) and `move` (the state machine).
Sources are fetched concurrently, and a source's moves start as soon as it is planned, while
the others are still being listed (unless --max-moves must first see them all to pick the
oldest); the client bounds the requests in flight, so the pass is as fast as the API allows and
never floods it.

A pass has a deadline (below the CronJob's, so it reports before Kubernetes kills it): a source
not listed by then counts as failed, and a move still under way is stopped and fails; its
journal row lets the next pass resume it. A store error on one move (a text the database
refuses) fails that move, not the pass.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

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
    Listing,
    Plan,
    Source,
    SourceGroup,
    SourcePlan,
    group_by_source,
    merge_plans,
    plan_source,
    usable_configs,
)
from jobfallback.store import MoveJournal
from jobfallback.truefoundry import ApiError, AuthError, TrueFoundryClient

log = get_logger("sweep")

Progress = Callable[[str, int, int], None]  # (stage, done, total)
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


@dataclass
class SweepOptions:
    threshold_minutes: int
    dry_run: bool = False
    max_moves: int | None = None
    source: Source | None = None
    policy: MovePolicy = field(default_factory=MovePolicy)
    owner: str = field(default_factory=lambda: f"pass-{uuid.uuid4()}")  # fences journal writes
    guard: Callable[[], None] | None = None  # raises when this pass lost the sweep lock
    deadline_seconds: float | None = None  # the whole pass; None: no deadline


def _deadline_at(options: SweepOptions) -> float | None:
    """The pass's deadline on the event loop's clock."""
    if options.deadline_seconds is None:
        return None
    return asyncio.get_running_loop().time() + options.deadline_seconds


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

    @property
    def exit_code(self) -> int:
        """0 done, 1 some moves or sources failed or were parked or refused, 3 nothing could be
        fetched or auth refused."""
        report = self.report
        if self.auth_refused or (
            report.sources_total and report.sources_failed == report.sources_total
        ):
            return 3
        if report.failed or report.parked or report.sources_failed or report.sources_refused:
            return 1
        return 0


async def fetch_source(client: TrueFoundryClient, group: SourceGroup) -> list[Listing]:
    """The job applications of one source (all, or only those its configs name) and the
    CREATED runs of each."""
    wanted = group.job_ids
    apps = [
        app
        async for app in client.list_applications(workspace_id=group.source.workspace_id)
        if app.is_job and (wanted is None or app.id in wanted)
    ]

    async def runs_of(app_id: str) -> list[JobRun]:
        return [run async for run in client.list_job_runs(app_id, status=RunStatus.CREATED)]

    runs = await asyncio.gather(*(runs_of(app.id) for app in apps))
    return [Listing(app, app_runs) for app, app_runs in zip(apps, runs, strict=True)]


async def _fetch_and_plan(
    client: TrueFoundryClient,
    groups: Sequence[SourceGroup],
    report: SweepReport,
    progress: Progress,
    on_plan: Callable[[SourcePlan], None],
    *,
    now: datetime,
    threshold_minutes: int,
    deadline_at: float | None,
) -> tuple[list[SourcePlan], bool]:
    """Each source's listing is planned as soon as it arrives and then dropped: only stuck runs
    are kept, so memory follows the number of moves, not the size of the fleet."""
    parts: list[SourcePlan] = []
    auth_refused = False
    done = 0

    in_flight = asyncio.Semaphore(SOURCES_IN_FLIGHT)

    async def one(group: SourceGroup) -> None:
        nonlocal done, auth_refused
        try:
            async with asyncio.timeout_at(deadline_at), in_flight:
                listings = await fetch_source(client, group)
            report.sources_scanned += 1
            report.jobs_listed += len(listings)
            part = plan_source(
                group, listings, now=now, default_threshold_minutes=threshold_minutes
            )
            parts.append(part)
            on_plan(part)
        except AuthError as exc:
            auth_refused = True
            report.sources_failed += 1
            event(log, logging.ERROR, "token refused", source=str(group.source), error=str(exc))
        except ApiError as exc:
            report.sources_failed += 1
            event(log, logging.WARNING, "source failed", source=str(group.source), error=str(exc))
        except TimeoutError:
            report.sources_failed += 1
            event(log, logging.WARNING, _DEADLINE_SOURCE, source=str(group.source))
        done += 1
        progress("sources", done, len(groups))

    await asyncio.gather(*(one(g) for g in groups))
    return parts, auth_refused


_DEADLINE_SOURCE = "the pass deadline came before this source was listed"
_DEADLINE_MOVE = "the pass deadline came while this move was under way; the next pass resumes it"


class _Moves:
    """Moves under way, each started as soon as it is known; at most MOVES_IN_FLIGHT at once."""

    def __init__(self, mover: Mover, progress: Progress, deadline_at: float | None) -> None:
        self._mover = mover
        self._progress = progress
        self._deadline_at = deadline_at
        self._in_flight = asyncio.Semaphore(MOVES_IN_FLIGHT)
        self._tasks: list[asyncio.Task[MoveOutcome]] = []
        self._done = 0

    def _start(self, run_id: str, work: Callable[[], Awaitable[MoveOutcome]]) -> None:
        self._tasks.append(asyncio.ensure_future(self._tracked(run_id, work)))

    def start_moves(self, planned: Iterable[PlannedMove]) -> None:
        for move in planned:
            self._start(move.run.id, functools.partial(self._mover.move, move))

    def start_resumes(
        self, records: Iterable[MoveRecord], configs: Mapping[int, FallbackConfig]
    ) -> None:
        for record in records:
            config = None if record.config_id is None else configs.get(record.config_id)
            self._start(record.source_run_id, functools.partial(self._mover.resume, record, config))

    async def _tracked(
        self, run_id: str, work: Callable[[], Awaitable[MoveOutcome]]
    ) -> MoveOutcome:
        try:
            async with asyncio.timeout_at(self._deadline_at), self._in_flight:
                outcome = await work()
        except TimeoutError:
            outcome = _failed(run_id, _DEADLINE_MOVE)
        except StoreError as exc:
            outcome = _failed(run_id, f"the journal refused a write: {exc}")
        self._done += 1
        self._progress("moves", self._done, len(self._tasks))
        return outcome

    async def finish(self, report: SweepReport) -> list[MoveOutcome]:
        outcomes = list(await asyncio.gather(*self._tasks))
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
    event(log, logging.WARNING, "move failed", source_run_id=run_id, why=reason)
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
    deadline_at = _deadline_at(options)
    report = SweepReport(dry_run=options.dry_run)
    usable, warnings = usable_configs(configs)
    for warning in warnings:
        event(log, logging.WARNING, warning)
    refused = workspace_conflicts((f"config {c.id}", c) for c in usable)
    for message in refused.values():
        event(log, logging.ERROR, f"source refused: {message}")
    warnings += refused.values()
    groups = group_by_source(usable, only=options.source)
    report.sources_total = len(groups)
    report.sources_refused = len(refused)

    # Earlier passes' unfinished moves, read before this pass begins any of its own.
    unfinished = [] if journal is None else await asyncio.to_thread(journal.due)
    moves = None
    if not options.dry_run and journal is not None:
        mover = Mover(
            client,
            journal,
            owner=options.owner,
            guard=options.guard or _unguarded,
            policy=options.policy,
        )
        moves = _Moves(mover, progress, deadline_at)
    # Without a cap every stuck run moves, so a source's moves start as soon as it is planned,
    # alongside the listing of the others; a cap must see every source first to pick the oldest.
    streaming = moves is not None and options.max_moves is None

    def on_plan(part: SourcePlan) -> None:
        if moves is not None and streaming:
            moves.start_moves(part.moves)

    try:
        parts, auth_refused = await _fetch_and_plan(
            client,
            groups,
            report,
            progress,
            on_plan,
            now=now,
            threshold_minutes=options.threshold_minutes,
            deadline_at=deadline_at,
        )
    except BaseException:
        if moves is not None:
            moves.cancel()
        raise
    plan = merge_plans(parts, max_moves=options.max_moves)
    for warning in plan.warnings:
        event(log, logging.WARNING, warning)
    report.warnings = warnings + plan.warnings + client.skipped_items
    report.unreadable = len(client.skipped_items)
    report.runs_seen, report.stuck = plan.runs_seen, plan.stuck
    report.planned, report.deferred = len(plan.moves), len(plan.deferred)
    if plan.deferred:
        event(
            log,
            logging.INFO,
            "moves over --max-moves left for the next pass",
            deferred=len(plan.deferred),
        )

    planned_ids = {m.run.id for m in plan.moves}
    leftovers = [r for r in unfinished if r.source_run_id not in planned_ids]
    report.resumed = len(leftovers)

    outcomes: list[MoveOutcome] = []
    decisions: dict[str, str] = {}
    if moves is None:
        claims = (
            {} if journal is None else await asyncio.to_thread(journal.claims, sorted(planned_ids))
        )
        decisions = {run_id: preview(claims.get(run_id)) for run_id in planned_ids}
        for record in leftovers:
            event(
                log,
                logging.INFO,
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
                f"DRY-RUN: {decisions[planned.run.id]}",
                source_run=planned.run.name,
                job=planned.application.name,
                destination=planned.destination_workspace_fqn,
                reason=planned.reason,
            )
    else:
        if not streaming:
            moves.start_moves(plan.moves)
        moves.start_resumes(leftovers, {c.id: c for c in usable})
        outcomes = await moves.finish(report)

    report.api_calls = sum(client.calls.values())
    report.duration_seconds = round(time.monotonic() - started, 3)
    return SweepResult(
        report=report,
        plan=plan,
        outcomes=outcomes,
        resumes=leftovers,
        decisions=decisions,
        auth_refused=auth_refused,
    )

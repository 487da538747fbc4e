"""The move state machine: one stuck run to its destination, exactly once.

    DEPLOY ----------> TRIGGER -----------> TERMINATE --> done
      |  (our labelled    | trigger sent,      |  source started on its own: copy stopped, skipped
      |   version found)  v answer unknown     |  source terminated (by us or anyone): done
      +-------------> FIND_TRIGGERED ----------+
                       (adopt the run on our version; none after the settle window: TRIGGER)

The step to resume from is derived from what the journal row records (`next_step`), so a move
killed anywhere resumes where it stopped. The rules (docs/truefoundry-api.md says why each is
needed against the real API):
- Every PUT carries provenance labels (source run, source job), so each move has a deployment
  version of its own; the move triggers that version by its deployment id, and finds a run it
  may have triggered by listing that version's runs, never by trusting the alias.
- Intent marks: `trigger_sent_at` and `terminate_sent_at` are written before the POST, so a
  resumed move knows what may have happened. A definite refusal (4xx) clears the mark again.
- Fail closed: a look-up that cannot prove absence makes the move wait; an empty look-up counts
  as proof only once the trigger mark is older than the settle window.
- Never touch what is not ours: a destination application whose latest version is not a copy
  of the same source job is not overwritten (the move is parked); a copy is always `manual`.
- One executor: every journal write is fenced by the row's owner, and the sweep lock is checked
  before every irreversible step.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from jobfallback.errors import JobFallbackError
from jobfallback.logs import event, get_logger
from jobfallback.models import (
    Application,
    Deployment,
    FallbackConfig,
    JobRun,
    MoveRecord,
    MoveState,
    PlannedMove,
    RunStatus,
)
from jobfallback.patch import check_manifest, merge_patch
from jobfallback.provenance import (
    LABEL_ORIGIN_JOB,
    LABEL_SOURCE_JOB,
    LABEL_SOURCE_RUN,
    copy_labels,
    opted_out,
    origin_job,
    visited,
    workspace_label,
)
from jobfallback.store import Claim, MoveJournal, OwnershipLost
from jobfallback.store.journal import NOW, FieldValue
from jobfallback.store.lock import LockLost
from jobfallback.times import utc_time
from jobfallback.truefoundry import (
    ApiError,
    NotFoundError,
    TerminateOutcome,
    TrueFoundryClient,
    run_alias,
)
from jobfallback.versions import Versions, VersionUnknown

log = get_logger("move")


# A source in one of these states was terminated (by us, in a pass whose answer was lost, or by
# someone else): the job now lives only in the destination.
_TERMINATED = frozenset(
    {RunStatus.TERMINATION_REQUESTED, RunStatus.TERMINATING, RunStatus.TERMINATED}
)
# A source in one of these states ran, or is about to, on its own.
_STARTED = frozenset({RunStatus.SCHEDULED, RunStatus.RUNNING, RunStatus.FINISHED})


class Step(StrEnum):
    DEPLOY = "deploy"
    TRIGGER = "trigger"
    FIND_TRIGGERED = "find-triggered"
    TERMINATE = "terminate"


def next_step(record: MoveRecord) -> Step:
    """The step a move resumes from: the one place that reads progress off a journal row."""
    if record.destination_run_name is not None:
        return Step.TERMINATE
    if record.trigger_sent_at is not None:
        return Step.FIND_TRIGGERED
    if record.destination_deployment_id is not None:
        return Step.TRIGGER
    return Step.DEPLOY


class Outcome(StrEnum):
    MOVED = "moved"
    SKIPPED = "skipped"
    WAITING = "waiting"
    DEFERRED = "deferred"  # backing off after a failure: not attempted this pass
    FAILED = "failed"
    PARKED = "parked"
    FLAGGED = "flagged"


@dataclass(frozen=True)
class MoveOutcome:
    source_run_id: str
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True)
class MovePolicy:
    # A trigger's run must show in its version's listing by then; until it does, a move whose
    # trigger answer was lost waits instead of triggering again.
    settle: timedelta = timedelta(minutes=10)
    max_attempts: int = 8  # failed or unproven attempts before the move is parked
    backoff: timedelta = timedelta(minutes=5)
    backoff_cap: timedelta = timedelta(hours=2)
    # A copy is not moved on once the job moved this many times (the sweep sets it from Limits).
    max_hops: int = 2

    @classmethod
    def of(cls, *, settle_seconds: int, max_attempts: int, backoff_seconds: int) -> MovePolicy:
        backoff = timedelta(seconds=backoff_seconds)
        return cls(
            settle=timedelta(seconds=settle_seconds),
            max_attempts=max_attempts,
            backoff=backoff,
            backoff_cap=backoff * 24,
        )

    def delay(self, attempts: int) -> timedelta:
        """Wait before attempt `attempts + 1`: doubling from `backoff`, capped."""
        doubled: timedelta = self.backoff * 2 ** max(attempts - 1, 0)
        return min(doubled, self.backoff_cap)


class MoveError(JobFallbackError):
    """This attempt cannot go on; the move is retried after a backoff."""


class Refusal(MoveError):
    """Going on could harm something that is not ours: a person must decide (parked)."""


class Wait(MoveError):
    """No proof yet either way: try again after `delay`. `counts`: the attempt counts towards
    parking (an answer that could not be read), or not (a trigger still settling)."""

    def __init__(self, message: str, *, delay: timedelta | None = None, counts: bool) -> None:
        super().__init__(message)
        self.delay = delay
        self.counts = counts


@dataclass(frozen=True)
class _Settled:
    state: MoveState
    outcome: Outcome
    detail: str


def destination_manifest(
    manifest: dict[str, Any], workspace_fqn: str, record: MoveRecord
) -> dict[str, Any]:
    """The source job's manifest for the destination: the config's patch applied (the one the
    row recorded), then its workspace, labels that say whose copy it is and where the job has
    been, and a manual trigger (a scheduled job's copy must not become a second cron, and a copy
    must not start a run by itself on deploy). ValueError when the patch breaks the manifest."""
    moved = copy.deepcopy(manifest)
    if record.manifest_patch:
        moved = merge_patch(moved, record.manifest_patch)
        check_manifest(moved)
    source_fqn = manifest.get("workspace_fqn")
    moved["workspace_fqn"] = workspace_fqn
    moved["trigger"] = {"type": "manual"}
    moved["trigger_on_deploy"] = False
    labels = moved.get("labels")
    moved["labels"] = copy_labels(
        labels if isinstance(labels, dict) else {},
        source_run_id=record.source_run_id,
        source_application_id=record.source_application_id,
        source_workspace_fqn=source_fqn if isinstance(source_fqn, str) else None,
    )
    return moved


def declined(labels: dict[str, Any], destination_fqn: str, max_hops: int) -> str | None:
    """Why a job with these labels must not move to this destination, or None. The plan says
    the same before a move starts; this is the last word, on the manifest actually copied."""
    if opted_out(labels):
        return "the job is labelled jobfallback.io/move: never; it is not moved"
    hops = visited(labels)
    if workspace_label(destination_fqn) in hops:
        return f"the job was already in {destination_fqn}; a copy never moves back"
    if len(hops) >= max_hops:
        return f"the job moved {len(hops)} time(s) already, the most allowed (--max-hops)"
    return None


def _no_guard() -> None:
    """Used where no lock needs checking (tests that hold none)."""


class Mover:
    """Executes moves against the API, recording each step in the journal."""

    def __init__(
        self,
        client: TrueFoundryClient,
        journal: MoveJournal,
        *,
        owner: str,
        guard: Callable[[], None] = _no_guard,
        policy: MovePolicy = MovePolicy(),
        clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
        versions: Versions | None = None,
    ) -> None:
        self._client = client
        self._journal = journal
        self._owner = owner
        self._guard = guard
        self._policy = policy
        self._clock = clock
        self._versions = versions or Versions(client)
        self._active: set[str] = set()
        # One deploy at a time per destination application name: two moves of this pass must
        # not both find "no application" and PUT one name (another job's manifest on top).
        self._deploying: collections.defaultdict[tuple[str, str], asyncio.Lock] = (
            collections.defaultdict(asyncio.Lock)
        )

    # ------------------------------------------------------------ entry points

    async def move(self, planned: PlannedMove) -> MoveOutcome:
        """Start (or continue) the move of a run the plan found stuck."""
        run, app = planned.run, planned.application
        self._versions.seed(app)
        now = self._clock()
        claim = await asyncio.to_thread(
            self._journal.claim,
            MoveRecord(
                source_run_id=run.id,
                source_run_name=run.name,
                source_application_id=app.id,
                source_application_name=app.name,
                source_deployment_id=run.deployment_id,
                config_id=planned.config.id,
                destination_workspace_fqn=planned.destination_workspace_fqn,
                manifest_patch=planned.config.manifest_patch,
                state=MoveState.CLAIMED,
                owner=self._owner,
                created_at=now,
                updated_at=now,
            ),
        )
        early = before_acting(claim)
        if early is not None:
            return self._report(claim.record, early)
        return await self._run(claim.record, inserted=claim.inserted, listed=run)

    async def resume(self, record: MoveRecord, config: FallbackConfig | None) -> MoveOutcome:
        """Finish a move an earlier pass left unfinished (its source may no longer be listed).

        `config`: the usable config the row names, None when it was removed or disabled. A move
        that did nothing at the destination yet follows it: dropped, or sent to its new place.
        """
        record = await asyncio.to_thread(self._journal.take, record.source_run_id, self._owner)
        if next_step(record) == Step.DEPLOY:
            if config is None:
                reason = (
                    f"its config {record.config_id} was removed or disabled before anything "
                    "was created; dropped"
                )
                await self._record(record, MoveState.SKIPPED, error=reason)
                return self._report(
                    record, MoveOutcome(record.source_run_id, Outcome.SKIPPED, reason)
                )
            fqn = config.destination_workspace_fqn
            if fqn is not None and fqn != record.destination_workspace_fqn:
                record = await self._record(
                    record, record.state, error=record.error, destination_workspace_fqn=fqn
                )
        return await self._run(record, inserted=False, listed=None)

    # ------------------------------------------------------------ the machine

    async def _run(
        self, record: MoveRecord, *, inserted: bool, listed: JobRun | None
    ) -> MoveOutcome:
        if record.source_run_id in self._active:
            return self._report(
                record,
                MoveOutcome(
                    record.source_run_id, Outcome.SKIPPED, "already under way in this pass"
                ),
            )
        self._active.add(record.source_run_id)
        try:
            outcome = await self._attempt(record, inserted=inserted, listed=listed)
        except (OwnershipLost, LockLost) as exc:
            # Another pass may be acting on this move: record nothing, touch nothing more.
            outcome = MoveOutcome(record.source_run_id, Outcome.FAILED, str(exc))
        finally:
            self._active.discard(record.source_run_id)
        return self._report(record, outcome)

    async def _attempt(
        self, record: MoveRecord, *, inserted: bool, listed: JobRun | None
    ) -> MoveOutcome:
        """One attempt, and what the journal says after it."""
        try:
            settled = await self._advance(record, inserted=inserted, listed=listed)
        except _SourceGone as exc:
            await self._record(record, MoveState.SKIPPED, error=str(exc))
            return MoveOutcome(record.source_run_id, Outcome.SKIPPED, str(exc))
        except Wait as exc:
            return await self._retry_later(
                record, MoveState.WAITING, exc, counts=exc.counts, delay=exc.delay
            )
        except Refusal as exc:
            await self._record(record, MoveState.PARKED, error=str(exc))
            return MoveOutcome(record.source_run_id, Outcome.PARKED, str(exc))
        except (ApiError, MoveError, VersionUnknown) as exc:
            return await self._retry_later(record, MoveState.FAILED, exc, counts=True, delay=None)
        error = None if settled.state == MoveState.DONE else settled.detail
        await self._record(record, settled.state, error=error)
        return MoveOutcome(record.source_run_id, settled.outcome, settled.detail)

    async def _advance(
        self, record: MoveRecord, *, inserted: bool, listed: JobRun | None
    ) -> _Settled:
        """The steps from where the row stands; a fresh move's listing is its first read."""
        source = listed
        if next_step(record) == Step.DEPLOY:
            source = source or await self._read_source(record)
            if source.status != RunStatus.CREATED:
                return _left_created(source)
            record = await self._deploy(record, source, inserted=inserted)
        if next_step(record) == Step.FIND_TRIGGERED:
            record = await self._find_triggered(record)
        if next_step(record) == Step.TRIGGER:
            source = source or await self._read_source(record)
            if source.status != RunStatus.CREATED:
                return _left_created(source)
            record = await self._trigger(record, source)
        return await self._terminate(record)

    # ------------------------------------------------------------ the steps

    async def _deploy(self, record: MoveRecord, source: JobRun, *, inserted: bool) -> MoveRecord:
        """Create this move's version of the job in the destination, or adopt the one an earlier
        attempt created (its answer, or the journal row, was lost)."""
        version = await self._source_deployment(record, source)
        name = str(version.manifest.get("name") or record.source_application_name)
        async with self._deploying[(record.destination_workspace_fqn, name)]:
            return await self._deploy_locked(record, version, name, inserted=inserted)

    async def _deploy_locked(
        self, record: MoveRecord, version: Deployment, name: str, *, inserted: bool
    ) -> MoveRecord:
        manifest = version.manifest
        fqn = record.destination_workspace_fqn
        why_not = declined(version.labels, fqn, self._policy.max_hops)
        if why_not is not None:
            raise _SourceGone(why_not)
        # This database had no row for the run, yet an earlier move may have created (and
        # triggered) its version: found by its label, it is adopted, never deployed again.
        origin = origin_job(version.labels, record.source_application_id)
        adopted = await self._own_version(
            record, name, version.id, origin, trigger_may_be_sent=inserted
        )
        if adopted is not None:
            return adopted
        try:
            moved = destination_manifest(manifest, fqn, record)
        except ValueError as exc:
            raise Refusal(
                f"config {record.config_id}'s manifestPatch breaks this job's manifest: {exc}; "
                f"fix the patch, then `jobfallback moves retry {record.source_run_id}`"
            ) from exc
        self._guard()
        answer = await self._client.put_application(moved)
        if answer.id is not None and answer.application_id is not None:
            return await self._deployed(
                record, answer.application_id, answer.id, answer.version, version.id
            )
        # The answer does not say where it went: the version's label does.
        adopted = await self._own_version(
            record, name, version.id, origin, trigger_may_be_sent=False
        )
        if adopted is None:
            raise MoveError(
                "the answer to the PUT names no deployment or application, and no version in "
                f"{fqn} carries this move's label yet; the next attempt looks again"
            )
        return adopted

    async def _own_version(
        self,
        record: MoveRecord,
        name: str,
        source_deployment_id: str | None,
        origin: str,
        *,
        trigger_may_be_sent: bool,
    ) -> MoveRecord | None:
        """This move's version in the destination, if the application of that name has one
        (any version carrying this run's label: an earlier move of the run got there even when
        other runs of the job were deployed since); None when there is no such application or
        none of its versions is this move's. Another job's application is refused; copies of
        one origin job (made along different chains) share theirs."""
        fqn = record.destination_workspace_fqn
        existing = await self._client.find_application(fqn, name)
        if existing is None:
            return None
        versions = [d async for d in self._client.list_deployments(existing.id)]
        newest = _newest(existing, versions).labels
        owner = newest.get(LABEL_SOURCE_JOB)
        ours_by_origin = owner == record.source_application_id or (
            owner is not None and newest.get(LABEL_ORIGIN_JOB) == origin
        )
        if not existing.is_job or not ours_by_origin:
            whose = f"a fallback copy of job {owner}" if owner else "not a fallback copy"
            raise Refusal(
                f"destination {fqn} already has an application {name!r} ({existing.id}) that "
                f"is {whose}, not of job {record.source_application_name} "
                f"({record.source_application_id}); it was left untouched: rename one of the "
                "jobs or point the config at another workspace, then `jobfallback moves retry "
                f"{record.source_run_id}`"
            )
        ours = [
            d
            for d in versions
            if d.id is not None and d.labels.get(LABEL_SOURCE_RUN) == record.source_run_id
        ]
        if not ours:
            return None
        mine = _newest(existing, ours)
        assert mine.id is not None
        return await self._deployed(
            record,
            existing.id,
            mine.id,
            mine.version,
            source_deployment_id,
            trigger_may_be_sent=trigger_may_be_sent,
        )

    async def _deployed(
        self,
        record: MoveRecord,
        application_id: str,
        deployment_id: str,
        version: float | None,
        source_deployment_id: str | None,
        *,
        trigger_may_be_sent: bool = False,
    ) -> MoveRecord:
        return await self._record(
            record,
            MoveState.DEPLOYED,
            source_deployment_id=source_deployment_id or record.source_deployment_id,
            destination_application_id=application_id,
            destination_deployment_id=deployment_id,
            destination_version=version,
            trigger_sent_at=NOW if trigger_may_be_sent else None,
        )

    async def _find_triggered(self, record: MoveRecord) -> MoveRecord:
        """A trigger may have reached the server: adopt its run, or prove there is none."""
        assert record.destination_application_id is not None
        assert record.trigger_sent_at is not None
        runs = await self._runs_of_version(record)
        if not runs:
            # The alias is only a second signal: a server may name runs itself.
            runs = [
                run
                for run in await self._runs_of_version(
                    record, alias=run_alias(record.source_run_id)
                )
                if run.name.startswith(run_alias(record.source_run_id))
            ]
        if runs:
            oldest = min(runs, key=lambda r: (r.created_at, r.id))
            if len(runs) > 1:
                event(
                    log,
                    logging.WARNING,
                    "move.runs_adopted",
                    "more than one run on a move's version: adopting the oldest",
                    source_run_id=record.source_run_id,
                    runs=",".join(r.name for r in runs),
                )
            return await self._record(record, MoveState.TRIGGERED, destination_run_name=oldest.name)
        settled_at = record.trigger_sent_at + self._policy.settle
        now = self._clock()
        if now < settled_at:
            raise Wait(
                f"a trigger was sent at {record.trigger_sent_at:%H:%M:%S} and its run is not "
                f"listed yet; looking again after {settled_at:%H:%M:%S}",
                delay=settled_at - now,
                counts=False,
            )
        # Listed in full, readable, and long enough after the mark: that trigger made no run.
        return await self._record(record, MoveState.DEPLOYED, trigger_sent_at=None)

    async def _trigger(self, record: MoveRecord, source: JobRun) -> MoveRecord:
        record = await self._record(record, MoveState.DEPLOYED, trigger_sent_at=NOW)
        assert record.destination_deployment_id is not None
        self._guard()
        try:
            run = await self._client.trigger_job(
                record.destination_deployment_id,
                command=source.command,
                params=source.params,
                alias=run_alias(record.source_run_id),
            )
        except ApiError as exc:
            if exc.refused:
                await self._record(record, MoveState.DEPLOYED, trigger_sent_at=None)
            raise
        learnt = record.destination_version
        if learnt is None and run.deployment_version is not None:
            with suppress(ValueError):  # the run says which version it is on
                learnt = float(run.deployment_version)
        return await self._record(
            record, MoveState.TRIGGERED, destination_run_name=run.name, destination_version=learnt
        )

    async def _terminate(self, record: MoveRecord) -> _Settled:
        """Terminate the source, re-read as late as the protocol allows."""
        source = await self._read_source(record)
        if source.status == RunStatus.CREATED:
            first = record.terminate_sent_at is None
            deployment_id = (
                record.source_deployment_id
                or source.deployment_id
                or (await self._source_deployment(record, source)).id
            )
            if deployment_id is None:
                raise MoveError(
                    f"run {record.source_run_name} names no deployment; cannot terminate it"
                )
            record = await self._record(record, MoveState.TRIGGERED, terminate_sent_at=NOW)
            self._guard()
            try:
                answer = await self._client.terminate_job_run(deployment_id, record.source_run_name)
            except ApiError as exc:
                if exc.refused and first:
                    await self._record(record, MoveState.TRIGGERED, terminate_sent_at=None)
                raise
            if answer == TerminateOutcome.REQUESTED:
                return _Settled(
                    MoveState.DONE, Outcome.MOVED, f"destination run {record.destination_run_name}"
                )
            if first:
                # A refusal proves this terminate did nothing, and no earlier one was sent.
                record = await self._record(record, MoveState.TRIGGERED, terminate_sent_at=None)
            source = await self._read_source(record)
            if source.status == RunStatus.CREATED:
                raise MoveError(
                    "terminate answered 417 while the source still reads CREATED; "
                    "trying again later"
                )
        return await self._settle(record, source)

    async def _settle(self, record: MoveRecord, source: JobRun) -> _Settled:
        """The source left CREATED while a copy exists: keep exactly one of them alive."""
        status = source.status
        if status in _TERMINATED:
            return _Settled(MoveState.DONE, Outcome.MOVED, f"source run is {status}")
        if record.terminate_sent_at is not None:
            if status in _STARTED:
                raise Refusal(
                    f"source run {record.source_run_name} is {status} although a terminate was "
                    f"sent, and its copy {record.destination_run_name} exists too: keep one "
                    f"(terminate the other by hand), then `jobfallback moves abandon "
                    f"{record.source_run_id}`"
                )
            # Our terminate may have applied with its answer lost: the copy carries the job.
            return _Settled(
                MoveState.DONE, Outcome.MOVED, f"source reads {status} after our terminate"
            )
        if status in _STARTED:
            return await self._stop_copy(record, status)
        if status == RunStatus.FAILED:
            return _Settled(
                MoveState.DONE, Outcome.MOVED, "source failed on its own; the copy carries the job"
            )
        raise Wait(
            f"source run reads {status}, which says neither that it ran nor that it ended; "
            "waiting for a status that does",
            counts=True,
        )

    async def _stop_copy(self, record: MoveRecord, source_status: str) -> _Settled:
        """The source started on its own before any terminate of ours: stop our copy."""
        assert record.destination_deployment_id is not None
        assert record.destination_run_name is not None
        self._guard()
        answer = await self._client.terminate_job_run(
            record.destination_deployment_id, record.destination_run_name
        )
        detail = f"source run is {source_status} on its own; "
        if answer == TerminateOutcome.REQUESTED:
            return _Settled(
                MoveState.SKIPPED, Outcome.SKIPPED, detail + "the destination copy was terminated"
            )
        assert record.destination_application_id is not None
        copy_run = await self._client.get_job_run(
            record.destination_application_id, record.destination_run_name
        )
        if copy_run.status in (RunStatus.CREATED, RunStatus.SCHEDULED, RunStatus.RUNNING):
            raise MoveError(
                f"terminating the copy {copy_run.name} answered 417 while it reads "
                f"{copy_run.status}; trying again later"
            )
        return _Settled(
            MoveState.SKIPPED,
            Outcome.SKIPPED,
            detail + f"the copy had already ended ({copy_run.status})",
        )

    # ------------------------------------------------------------ reads

    async def _read_source(self, record: MoveRecord) -> JobRun:
        try:
            return await self._client.get_job_run(
                record.source_application_id, record.source_run_name
            )
        except NotFoundError as exc:
            if record.has_destination_run:
                # One 404 is no proof the source is gone for good; its copy may be running.
                raise MoveError(
                    f"source run not found ({exc}); its copy exists, so retrying"
                ) from exc
            raise _SourceGone("source run no longer exists; nothing was triggered") from exc

    async def _runs_of_version(
        self, record: MoveRecord, *, alias: str | None = None
    ) -> list[JobRun]:
        """The destination runs on this move's version, each read (strict) and checked."""
        app_id = record.destination_application_id
        assert app_id is not None
        seen: dict[str, JobRun] = {}
        async for run in self._client.list_job_runs(
            app_id,
            version=None if alias else record.destination_version,
            search_prefix=alias,
            strict=True,
        ):
            seen.setdefault(run.id, run)
        # Which deployment each version number is, asked only where a run names no deployment
        # and the move does not know its own version number (answers that leave both out).
        deployments: dict[str, set[str | None]] = {}
        ours = []
        for run in seen.values():
            same = _on_version(record, run)
            if same is None and run.deployment_version is not None:
                number = run.deployment_version
                if number not in deployments:
                    listed = self._client.list_deployments(app_id, version=number)
                    deployments[number] = {d.id async for d in listed}
                same = record.destination_deployment_id in deployments[number]
            if same is None:
                raise Wait(
                    f"run {run.name} names neither its deployment nor its version; "
                    "cannot tell whose it is",
                    counts=True,
                )
            if same:
                ours.append(run)
        return ours

    async def _source_deployment(self, record: MoveRecord, source: JobRun) -> Deployment:
        """The version the source run runs on: its manifest is what is copied, its id what the
        terminate names."""
        return await self._versions.of(
            application_id=record.source_application_id,
            application_name=record.source_application_name,
            run_name=record.source_run_name,
            deployment_id=record.source_deployment_id or source.deployment_id,
            deployment_version=source.deployment_version,
        )

    # ------------------------------------------------------------ the journal

    async def _record(
        self,
        record: MoveRecord,
        state: MoveState,
        *,
        error: str | None = None,
        attempts: int | None = None,
        **fields: FieldValue,
    ) -> MoveRecord:
        return await asyncio.to_thread(
            self._journal.update,
            record.source_run_id,
            owner=self._owner,
            state=state,
            error=error,
            attempts=attempts,
            **fields,
        )

    async def _retry_later(
        self,
        record: MoveRecord,
        state: MoveState,
        exc: Exception,
        *,
        counts: bool,
        delay: timedelta | None,
    ) -> MoveOutcome:
        # The row's attempts cannot have changed since it was claimed: any other writer (a
        # person's `moves retry`, another pass) takes the row, and this pass's writes then fail.
        attempts = record.attempts + int(counts)
        if attempts >= self._policy.max_attempts:
            reason = f"parked after {attempts} attempts; last: {exc}"
            await self._record(record, MoveState.PARKED, error=reason, attempts=attempts)
            return MoveOutcome(record.source_run_id, Outcome.PARKED, reason)
        wait = delay if delay is not None else self._policy.delay(attempts)
        await self._record(record, state, error=str(exc), attempts=attempts, next_attempt_at=wait)
        outcome = Outcome.WAITING if state == MoveState.WAITING else Outcome.FAILED
        return MoveOutcome(record.source_run_id, outcome, str(exc))

    def _report(self, record: MoveRecord, outcome: MoveOutcome) -> MoveOutcome:
        quiet = outcome.outcome in (Outcome.MOVED, Outcome.SKIPPED, Outcome.DEFERRED)
        event(
            log,
            # A person must look at a parked or flagged move: an error, like the sweep's exit.
            logging.INFO
            if quiet
            else logging.ERROR
            if outcome.outcome in (Outcome.PARKED, Outcome.FLAGGED)
            else logging.WARNING,
            # move.done, move.skipped, move.waiting, move.deferred, move.failed, ...: the key
            # follows the outcome (its names are fixed); the message stays the same.
            "move.done" if outcome.outcome == Outcome.MOVED else f"move.{outcome.outcome.value}",
            "move ended",
            source_run=record.source_run_name,
            source_run_id=record.source_run_id,
            job=record.source_application_name,
            destination=record.destination_workspace_fqn,
            outcome=outcome.outcome.value,
            detail=outcome.detail,
        )
        return outcome


def _on_version(record: MoveRecord, run: JobRun) -> bool | None:
    """Whether a listed run is on this move's version (a server may ignore the filter); None
    when neither the run's deployment id nor the version numbers tell."""
    if run.deployment_id is not None:
        return run.deployment_id == record.destination_deployment_id
    if record.destination_version is None:
        return None
    return run.on_version(record.destination_version)


def _newest(app: Application, versions: list[Deployment]) -> Deployment:
    """The newest of an application's versions: the one it names as its last, else the highest
    version number, else the first listed (the vendor lists versions newest first)."""
    if not versions:
        raise MoveError(
            f"destination application {app.id} lists no version; cannot tell whose it is"
        )
    named = [d for d in versions if d.id is not None and d.id == app.last_deployment_id]
    if named:
        return named[0]
    numbered = {d.version: d for d in versions if d.version is not None}
    return numbered[max(numbered)] if numbered else versions[0]


def _left_created(source: JobRun) -> _Settled:
    """Nothing was triggered yet and the source left CREATED on its own: it needs no copy."""
    detail = f"source run is {source.status} now; no copy was triggered"
    return _Settled(MoveState.SKIPPED, Outcome.SKIPPED, detail)


class _SourceGone(MoveError):
    """The source run is gone, or must not move, and nothing was triggered for it."""


def preview(claim: Claim | None) -> str:
    """What a real pass would do with a planned run, told by its journal row (dry runs)."""
    if claim is None:
        return "would move"
    early = before_acting(claim)
    if early is not None:
        return f"{early.outcome.value}: {early.detail}"
    return f"would resume at {next_step(claim.record).value} (was {claim.record.state.value})"


def before_acting(claim: Claim) -> MoveOutcome | None:
    """What a claimed row says before any call: settled, parked or backing off."""
    record = claim.record
    state = record.state
    if state in (MoveState.DONE, MoveState.SKIPPED):
        return MoveOutcome(
            record.source_run_id,
            Outcome.FLAGGED,
            f"the journal says {state.value} but the source run is listed CREATED again; "
            "check it by hand (nothing was done)",
        )
    if state == MoveState.PARKED:
        return MoveOutcome(record.source_run_id, Outcome.PARKED, record.error or "parked")
    if state == MoveState.ABANDONED:
        return MoveOutcome(record.source_run_id, Outcome.SKIPPED, "abandoned by a person")
    if not claim.due:  # a row is due unless it names its next attempt (journal.Claim)
        assert record.next_attempt_at is not None
        return MoveOutcome(
            record.source_run_id,
            Outcome.DEFERRED,
            f"backing off until {utc_time(record.next_attempt_at)}",
        )
    return None

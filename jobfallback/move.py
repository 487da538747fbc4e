"""The move state machine: one stuck run to its destination, exactly once.

    planned --PUT manifest--> created --trigger (alias)--> triggered --terminate--> done
       \\ source left CREATED on its own: skipped      any API error: failed (resumable)

The journal row (keyed by the source run id) is written before any API call, and every step is
recorded before the next one starts. The step to resume from is derived from what the row holds
(destination run recorded -> terminate; destination application recorded -> trigger; else PUT),
so a `failed` row or a sweep killed anywhere resumes where it stopped:
- the source is terminated only after the destination run exists (no job lost);
- a row resumed at "trigger" first looks for a run already triggered under the deterministic
  alias, because the previous pass may have died after the trigger reached the server (no job
  runs twice). A fresh move needs no such look-up: nothing was triggered for it yet.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jobfallback.errors import JobFallbackError
from jobfallback.logs import event, get_logger
from jobfallback.models import JobRun, MoveRecord, MoveState, PlannedMove, RunStatus
from jobfallback.store import MoveJournal
from jobfallback.truefoundry import (
    ApiError,
    NotFoundError,
    TerminateOutcome,
    TrueFoundryClient,
    run_alias,
)

log = get_logger("move")

# A source in one of these states was terminated (by us, in a pass whose answer was lost, or by
# someone else): the job now lives only in the destination.
_TERMINATED = {
    RunStatus.TERMINATION_REQUESTED,
    RunStatus.TERMINATING,
    RunStatus.TERMINATED,
}


class MoveError(JobFallbackError):
    """A move cannot proceed for a reason in the data (not the transport)."""


@dataclass(frozen=True)
class MoveOutcome:
    source_run_id: str
    state: MoveState
    detail: str = ""


def destination_manifest(manifest: dict[str, Any], workspace_fqn: str) -> dict[str, Any]:
    """The source job's manifest, unchanged but for the workspace it deploys to."""
    moved = copy.deepcopy(manifest)
    moved["workspace_fqn"] = workspace_fqn
    return moved


def _progress(record: MoveRecord) -> MoveState:
    if record.destination_run_name:
        return MoveState.TRIGGERED
    if record.destination_application_id:
        return MoveState.CREATED
    return MoveState.PLANNED


class Mover:
    """Executes moves against the API, recording each step in the journal."""

    def __init__(self, client: TrueFoundryClient, journal: MoveJournal) -> None:
        self._client = client
        self._journal = journal
        self._manifests: dict[str, dict[str, Any]] = {}

    async def _record(self, source_run_id: str, state: MoveState, **fields: Any) -> MoveRecord:
        return await asyncio.to_thread(self._journal.update, source_run_id, state=state, **fields)

    async def move(self, planned: PlannedMove) -> MoveOutcome:
        """Start (or continue) the move of a planned stuck run."""
        run, app = planned.run, planned.application
        now = datetime.now(tz=UTC)
        record, inserted = await asyncio.to_thread(
            self._journal.begin,
            MoveRecord(
                source_run_id=run.id,
                source_run_name=run.name,
                source_application_id=app.id,
                source_application_name=app.name,
                source_deployment_id=run.deployment_id or app.active_deployment_id,
                config_id=planned.config.id,
                destination_workspace_fqn=planned.destination_workspace_fqn,
                state=MoveState.PLANNED,
                created_at=now,
                updated_at=now,
            ),
        )
        if record.state in (MoveState.DONE, MoveState.SKIPPED):
            return MoveOutcome(run.id, record.state, "already finished in an earlier pass")
        if app.deployment is not None and app.deployment.manifest:
            self._manifests.setdefault(app.id, app.deployment.manifest)
        return await self._run(record, resumed=not inserted)

    async def resume(self, record: MoveRecord) -> MoveOutcome:
        """Finish a move an earlier pass left unfinished (its source may no longer be listed)."""
        return await self._run(record, resumed=True)

    async def _run(self, record: MoveRecord, *, resumed: bool) -> MoveOutcome:
        try:
            outcome = await self._advance(record, resumed=resumed)
        except (ApiError, MoveError) as exc:
            await self._record(
                record.source_run_id, MoveState.FAILED, error=str(exc), increment_attempts=True
            )
            outcome = MoveOutcome(record.source_run_id, MoveState.FAILED, str(exc))
        level = logging.WARNING if outcome.state == MoveState.FAILED else logging.INFO
        event(
            log,
            level,
            f"move {outcome.state.value}",
            source_run=record.source_run_name,
            source_run_id=record.source_run_id,
            job=record.source_application_name,
            destination=record.destination_workspace_fqn,
            outcome=outcome.state.value,
            detail=outcome.detail,
        )
        return outcome

    async def _advance(self, record: MoveRecord, *, resumed: bool) -> MoveOutcome:
        run_id = record.source_run_id
        step = _progress(record)
        try:
            current = await self._client.get_job_run(
                record.source_application_id, record.source_run_name
            )
        except NotFoundError:
            await self._record(run_id, MoveState.SKIPPED, error="source run no longer exists")
            return MoveOutcome(run_id, MoveState.SKIPPED, "source run no longer exists")

        if step == MoveState.CREATED and resumed and record.destination_application_id:
            found = await self._client.find_run_by_alias(
                record.destination_application_id, run_alias(run_id)
            )
            if found is not None:
                record = await self._record(
                    run_id, MoveState.TRIGGERED, destination_run_name=found.name
                )
                step = MoveState.TRIGGERED

        if current.status != RunStatus.CREATED:
            return await self._source_moved_on(record, current, step)

        if step == MoveState.PLANNED:
            manifest = await self._source_manifest(record)
            deployment = await self._client.put_application(
                destination_manifest(manifest, record.destination_workspace_fqn)
            )
            record = await self._record(
                run_id,
                MoveState.CREATED,
                destination_application_id=deployment.application_id,
                destination_deployment_id=deployment.id,
            )
            step = MoveState.CREATED

        if step == MoveState.CREATED:
            assert record.destination_application_id is not None
            triggered = await self._client.trigger_job(
                record.destination_application_id,
                command=current.command,
                params=current.params,
                alias=run_alias(run_id),
            )
            record = await self._record(
                run_id, MoveState.TRIGGERED, destination_run_name=triggered.name
            )

        deployment_id = record.source_deployment_id or current.deployment_id
        if deployment_id is None:
            raise MoveError(
                f"run {record.source_run_name} has no deployment id; cannot terminate it"
            )
        outcome = await self._client.terminate_job_run(deployment_id, record.source_run_name)
        if outcome == TerminateOutcome.ALREADY_FINISHED:
            # The source left CREATED after we read it: terminated (then the job lives on in
            # the copy) or run on its own (then the copy must stop). Its status tells which.
            ended = await self._client.get_job_run(
                record.source_application_id, record.source_run_name
            )
            return await self._source_moved_on(record, ended, MoveState.TRIGGERED)
        await self._record(run_id, MoveState.DONE, error=None)
        return MoveOutcome(run_id, MoveState.DONE, f"destination run {record.destination_run_name}")

    async def _source_moved_on(
        self, record: MoveRecord, current: JobRun, step: MoveState
    ) -> MoveOutcome:
        run_id = record.source_run_id
        if step == MoveState.TRIGGERED and current.status in _TERMINATED:
            # Our terminate reached the server but its answer (or our record) was lost.
            await self._record(run_id, MoveState.DONE, error=None)
            return MoveOutcome(run_id, MoveState.DONE, "source already terminated")
        reason = f"source run is {current.status} now"
        if step == MoveState.TRIGGERED:
            # The source started on its own after we triggered a copy: stop our copy so the
            # job does not run twice.
            await self._terminate_destination(record)
            reason += "; the destination copy was terminated"
        await self._record(run_id, MoveState.SKIPPED, error=reason)
        return MoveOutcome(run_id, MoveState.SKIPPED, reason)

    async def _terminate_destination(self, record: MoveRecord) -> None:
        assert record.destination_application_id is not None
        assert record.destination_run_name is not None
        copy_run = await self._client.get_job_run(
            record.destination_application_id, record.destination_run_name
        )
        deployment_id = copy_run.deployment_id or record.destination_deployment_id
        if deployment_id is not None:
            await self._client.terminate_job_run(deployment_id, copy_run.name)

    async def _source_manifest(self, record: MoveRecord) -> dict[str, Any]:
        app_id = record.source_application_id
        if app_id not in self._manifests:
            full = await self._client.get_application(app_id)
            if full.deployment is None or not full.deployment.manifest:
                raise MoveError(f"job {full.name} has no deployment manifest to copy")
            self._manifests[app_id] = full.deployment.manifest
        return self._manifests[app_id]

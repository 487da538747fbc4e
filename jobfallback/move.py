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
    """Executes planned moves against the API, recording each step in the journal."""

    def __init__(self, client: TrueFoundryClient, journal: MoveJournal) -> None:
        self._client = client
        self._journal = journal
        self._manifests: dict[str, dict[str, Any]] = {}

    async def _record(self, source_run_id: str, state: MoveState, **fields: Any) -> MoveRecord:
        return await asyncio.to_thread(self._journal.update, source_run_id, state=state, **fields)

    async def move(self, planned: PlannedMove) -> MoveOutcome:
        run = planned.run
        now = datetime.now(tz=UTC)
        record, inserted = await asyncio.to_thread(
            self._journal.begin,
            MoveRecord(
                source_run_id=run.id,
                source_run_name=run.name,
                source_application_id=planned.application.id,
                source_application_name=planned.application.name,
                source_deployment_id=run.deployment_id or planned.application.active_deployment_id,
                config_id=planned.config.id,
                destination_workspace_fqn=planned.destination_workspace_fqn,
                state=MoveState.PLANNED,
                created_at=now,
                updated_at=now,
            ),
        )
        if record.state in (MoveState.DONE, MoveState.SKIPPED):
            return MoveOutcome(run.id, record.state, "already finished in an earlier pass")
        try:
            outcome = await self._advance(planned, record, resumed=not inserted)
        except (ApiError, MoveError) as exc:
            await self._record(run.id, MoveState.FAILED, error=str(exc), increment_attempts=True)
            outcome = MoveOutcome(run.id, MoveState.FAILED, str(exc))
        level = logging.WARNING if outcome.state == MoveState.FAILED else logging.INFO
        event(
            log,
            level,
            f"move {outcome.state.value}",
            source_run=run.name,
            source_run_id=run.id,
            job=planned.application.name,
            destination=planned.destination_workspace_fqn,
            outcome=outcome.state.value,
            detail=outcome.detail,
        )
        return outcome

    async def _advance(
        self, planned: PlannedMove, record: MoveRecord, *, resumed: bool
    ) -> MoveOutcome:
        run = planned.run
        step = _progress(record)
        try:
            current = await self._client.get_job_run(planned.application.id, run.name)
        except NotFoundError:
            await self._record(run.id, MoveState.SKIPPED, error="source run no longer exists")
            return MoveOutcome(run.id, MoveState.SKIPPED, "source run no longer exists")

        if step == MoveState.CREATED and resumed and record.destination_application_id:
            found = await self._client.find_run_by_alias(
                record.destination_application_id, run_alias(run.id)
            )
            if found is not None:
                record = await self._record(
                    run.id, MoveState.TRIGGERED, destination_run_name=found.name
                )
                step = MoveState.TRIGGERED

        if current.status != RunStatus.CREATED:
            return await self._source_moved_on(planned, record, current, step)

        if step == MoveState.PLANNED:
            manifest = await self._source_manifest(planned)
            deployment = await self._client.put_application(
                destination_manifest(manifest, planned.destination_workspace_fqn)
            )
            record = await self._record(
                run.id,
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
                alias=run_alias(run.id),
            )
            record = await self._record(
                run.id, MoveState.TRIGGERED, destination_run_name=triggered.name
            )

        await self._terminate_source(planned, record)
        await self._record(run.id, MoveState.DONE, error=None)
        return MoveOutcome(run.id, MoveState.DONE, f"destination run {record.destination_run_name}")

    async def _source_moved_on(
        self, planned: PlannedMove, record: MoveRecord, current: JobRun, step: MoveState
    ) -> MoveOutcome:
        run = planned.run
        if step == MoveState.TRIGGERED and current.status in _TERMINATED:
            # Our terminate reached the server but its answer (or our record) was lost.
            await self._record(run.id, MoveState.DONE, error=None)
            return MoveOutcome(run.id, MoveState.DONE, "source already terminated")
        reason = f"source run is {current.status} now"
        if step == MoveState.TRIGGERED and record.destination_application_id:
            # The source started on its own after we triggered a copy: stop our copy so the
            # job does not run twice.
            await self._terminate_destination(record)
            reason += "; the destination copy was terminated"
        await self._record(run.id, MoveState.SKIPPED, error=reason)
        return MoveOutcome(run.id, MoveState.SKIPPED, reason)

    async def _terminate_source(self, planned: PlannedMove, record: MoveRecord) -> None:
        deployment_id = record.source_deployment_id or planned.application.active_deployment_id
        if deployment_id is None:
            raise MoveError(
                f"job {planned.application.name} has no deployment id; cannot terminate source run"
            )
        await self._client.terminate_job_run(deployment_id, planned.run.name)

    async def _terminate_destination(self, record: MoveRecord) -> None:
        assert record.destination_application_id is not None
        assert record.destination_run_name is not None
        dest = await self._client.get_job_run(
            record.destination_application_id, record.destination_run_name
        )
        if dest.deployment_id is not None:
            await self._client.terminate_job_run(dest.deployment_id, dest.name)

    async def _source_manifest(self, planned: PlannedMove) -> dict[str, Any]:
        app = planned.application
        if app.deployment is not None and app.deployment.manifest:
            return app.deployment.manifest
        if app.id not in self._manifests:
            full = await self._client.get_application(app.id)
            if full.deployment is None or not full.deployment.manifest:
                raise MoveError(f"job {app.name} has no deployment manifest to copy")
            self._manifests[app.id] = full.deployment.manifest
        return self._manifests[app.id]

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from jobfallback.errors import StoreError
from jobfallback.models import MoveRecord, MoveState
from jobfallback.store import Store

pytestmark = pytest.mark.embedded


def record(run_id: str = "run-1", **overrides: Any) -> MoveRecord:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "source_run_id": run_id,
        "source_run_name": f"{run_id}-name",
        "source_application_id": "app-1",
        "source_application_name": "nightly",
        "source_deployment_id": "dep-1",
        "config_id": 3,
        "destination_workspace_fqn": "c-dst:team",
        "state": MoveState.PLANNED,
        "created_at": now,
        "updated_at": now,
    }
    return MoveRecord(**{**values, **overrides})


def test_begin_inserts_once_and_then_returns_the_stored_row(store: Store) -> None:
    stored, inserted = store.journal.begin(record())
    assert inserted
    assert stored.model_dump(exclude={"created_at", "updated_at"}) == record().model_dump(
        exclude={"created_at", "updated_at"}
    )
    store.journal.update("run-1", state=MoveState.CREATED, destination_application_id="d-app")

    again, inserted = store.journal.begin(record(state=MoveState.PLANNED))
    assert not inserted
    assert again.state is MoveState.CREATED
    assert again.destination_application_id == "d-app"


def test_update_sets_state_fields_error_and_attempts(store: Store) -> None:
    store.journal.begin(record())
    failed = store.journal.update(
        "run-1", state=MoveState.FAILED, error="boom", increment_attempts=True
    )
    assert (failed.state, failed.error, failed.attempts) == (MoveState.FAILED, "boom", 1)

    moved = store.journal.update(
        "run-1",
        state=MoveState.TRIGGERED,
        increment_attempts=True,
        destination_application_id="d-app",
        destination_deployment_id="d-dep",
        destination_run_name="d-run",
    )
    assert moved.error is None  # a later success clears the error
    assert moved.attempts == 2
    assert (moved.destination_deployment_id, moved.destination_run_name) == ("d-dep", "d-run")
    assert moved.updated_at > failed.updated_at
    assert store.journal.get("run-1") == moved


def test_update_refuses_other_fields_and_unknown_runs(store: Store) -> None:
    store.journal.begin(record())
    with pytest.raises(TypeError, match="config_id"):
        store.journal.update("run-1", state=MoveState.DONE, config_id="9")
    with pytest.raises(StoreError, match="no move recorded for source run nope"):
        store.journal.update("nope", state=MoveState.DONE)


def test_get_unknown_run_is_none(store: Store) -> None:
    assert store.journal.get("nope") is None


def test_history_is_newest_first_filtered_and_limited(store: Store) -> None:
    for run_id in ("a", "b", "c"):
        store.journal.begin(record(run_id))
    store.journal.update("a", state=MoveState.DONE)  # now the most recently updated
    store.journal.update("b", state=MoveState.FAILED, error="x")

    assert [r.source_run_id for r in store.journal.history()] == ["b", "a", "c"]
    assert [r.source_run_id for r in store.journal.history(limit=1)] == ["b"]
    done = store.journal.history(state=MoveState.DONE)
    assert [r.source_run_id for r in done] == ["a"]


def test_unfinished_lists_moves_to_resume_oldest_first(store: Store) -> None:
    for run_id, state in [
        ("done", MoveState.DONE),
        ("late", MoveState.TRIGGERED),
        ("failed", MoveState.FAILED),
        ("skipped", MoveState.SKIPPED),
        ("early", MoveState.CREATED),
    ]:
        store.journal.begin(record(run_id))
        store.journal.update(run_id, state=state)
    store.journal.begin(record("new"))
    store.journal.update("late", state=MoveState.TRIGGERED)  # touched last of the three
    assert [r.source_run_id for r in store.journal.unfinished()] == [
        "failed",
        "early",
        "new",
        "late",
    ]


def test_journal_is_safe_from_many_threads(store: Store) -> None:
    runs = [f"run-{i}" for i in range(16)]

    def move(run_id: str) -> None:
        store.journal.begin(record(run_id))
        for state in (MoveState.CREATED, MoveState.TRIGGERED, MoveState.DONE):
            store.journal.update(run_id, state=state, increment_attempts=True)
            store.journal.update("shared", state=state, increment_attempts=True)

    store.journal.begin(record("shared"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(move, runs))

    for run_id in runs:
        stored = store.journal.get(run_id)
        assert stored is not None
        assert (stored.state, stored.attempts) == (MoveState.DONE, 3)
    shared = store.journal.get("shared")
    assert shared is not None
    assert shared.attempts == 3 * len(runs)

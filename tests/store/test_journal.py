"""The move journal (jobfallback.store.journal): claims, fenced updates, due rows, people's
commands. Racing passes and owner fencing across connections: test_journal_fencing.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from jobfallback.errors import StoreError, UsageError
from jobfallback.models import RESUMABLE_STATES, MoveRecord, MoveState
from jobfallback.store import Store
from jobfallback.store.journal import NOW, UPDATABLE_FIELDS, OwnershipLost

pytestmark = pytest.mark.embedded

OWNER = "pass-a"
SETTLED_STATES = (MoveState.DONE, MoveState.SKIPPED, MoveState.ABANDONED)


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
        "state": MoveState.CLAIMED,
        "owner": OWNER,
        "created_at": now,
        "updated_at": now,
    }
    return MoveRecord(**{**values, **overrides})


def put(
    store: Store, run_id: str, state: MoveState, *, error: str | None = None, **fields: Any
) -> MoveRecord:
    """A row of `run_id` in `state`, claimed by OWNER."""
    store.journal.claim(record(run_id))
    return store.journal.update(run_id, owner=OWNER, state=state, error=error, **fields)


def force(database_url: str, run_id: str, **columns: Any) -> None:
    """Set columns the journal sets from the database clock (updated_at, ...) to chosen values."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in columns
    )
    query = sql.SQL("UPDATE moves SET {} WHERE source_run_id = %(run_id)s").format(assignments)
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute(query, {**columns, "run_id": run_id}).rowcount == 1


def db_now(database_url: str) -> datetime:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    assert isinstance(row[0], datetime)
    return row[0]


def ids(records: list[MoveRecord]) -> list[str]:
    return [r.source_run_id for r in records]


# ---------------------------------------------------------------- claim


def test_claim_inserts_once_then_keeps_progress_under_the_new_owner(store: Store) -> None:
    first = store.journal.claim(record())
    assert (first.inserted, first.due) == (True, True)
    assert first.record.model_dump(exclude={"created_at", "updated_at"}) == record().model_dump(
        exclude={"created_at", "updated_at"}
    )
    deployed = store.journal.update(
        "run-1",
        owner=OWNER,
        state=MoveState.DEPLOYED,
        attempts=2,
        destination_application_id="d-app",
        destination_deployment_id="d-dep",
        destination_version=4,
    )

    again = store.journal.claim(
        record(owner="pass-b", config_id=9, destination_workspace_fqn="c-new:team")
    )
    assert again.inserted is False
    assert again.record.owner == "pass-b"
    # What the row recorded stays: the new pass resumes from it.
    assert again.record.model_dump(exclude={"owner"}) == deployed.model_dump(exclude={"owner"})
    assert store.journal.get("run-1") == again.record


@pytest.mark.parametrize("state", [MoveState.CLAIMED, MoveState.FAILED, MoveState.WAITING])
def test_claim_of_a_row_with_nothing_at_the_destination_follows_the_new_config(
    store: Store, state: MoveState
) -> None:
    before = put(store, "run-1", state, error="api down", attempts=3)

    claim = store.journal.claim(
        record(owner="pass-b", config_id=9, destination_workspace_fqn="c-new:team")
    )

    assert (claim.record.config_id, claim.record.destination_workspace_fqn) == (9, "c-new:team")
    assert claim.record.model_dump(
        exclude={"owner", "config_id", "destination_workspace_fqn"}
    ) == before.model_dump(exclude={"owner", "config_id", "destination_workspace_fqn"})
    assert claim.record.owner == "pass-b"


@pytest.mark.parametrize(
    ("state", "fields"),
    [
        (MoveState.DEPLOYED, {"destination_application_id": "d-app"}),
        (MoveState.FAILED, {"destination_application_id": "d-app"}),
        (MoveState.FAILED, {"trigger_sent_at": NOW}),
        (MoveState.WAITING, {"trigger_sent_at": NOW}),
        (MoveState.WAITING, {"destination_run_name": "d-run"}),
        (MoveState.CLAIMED, {"destination_run_name": "d-run"}),
        (MoveState.TRIGGERED, {"destination_run_name": "d-run"}),
        # Nothing recorded, but the state says the move went past the claim or is settled.
        (MoveState.DEPLOYED, {}),
        (MoveState.TRIGGERED, {}),
        (MoveState.PARKED, {}),
        (MoveState.DONE, {}),
        (MoveState.SKIPPED, {}),
        (MoveState.ABANDONED, {}),
    ],
)
def test_claim_of_a_row_that_acted_at_the_destination_keeps_its_destination(
    store: Store, state: MoveState, fields: dict[str, Any]
) -> None:
    before = put(store, "run-1", state, **fields)

    claim = store.journal.claim(
        record(owner="pass-b", config_id=9, destination_workspace_fqn="c-new:team")
    )

    assert claim.inserted is False
    assert (claim.record.config_id, claim.record.destination_workspace_fqn) == (3, "c-dst:team")
    assert claim.record.model_dump(exclude={"owner"}) == before.model_dump(exclude={"owner"})


def test_claim_is_due_only_once_the_next_attempt_has_come(store: Store) -> None:
    put(store, "run-1", MoveState.FAILED, next_attempt_at=timedelta(hours=1))
    assert store.journal.claim(record()).due is False

    store.journal.update(
        "run-1", owner=OWNER, state=MoveState.FAILED, next_attempt_at=timedelta(seconds=-1)
    )
    assert store.journal.claim(record()).due is True

    store.journal.update("run-1", owner=OWNER, state=MoveState.FAILED, next_attempt_at=None)
    assert store.journal.claim(record()).due is True


def test_claim_does_not_touch_updated_at(store: Store, database_url: str) -> None:
    # due() orders by updated_at: a claim alone is not progress.
    put(store, "run-1", MoveState.FAILED)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    force(database_url, "run-1", updated_at=long_ago)
    assert store.journal.claim(record(owner="pass-b")).record.updated_at == long_ago


# ---------------------------------------------------------------- take, get, require


def test_take_makes_the_owner_the_holder_and_keeps_everything_else(store: Store) -> None:
    before = put(store, "run-1", MoveState.TRIGGERED, destination_run_name="d-run")
    taken = store.journal.take("run-1", "pass-b")
    assert taken.owner == "pass-b"
    assert taken.model_dump(exclude={"owner"}) == before.model_dump(exclude={"owner"})
    with pytest.raises(OwnershipLost):
        store.journal.update("run-1", owner=OWNER, state=MoveState.DONE)


def test_take_of_an_unknown_run_raises(store: Store) -> None:
    with pytest.raises(StoreError, match="no move recorded for source run nope"):
        store.journal.take("nope", OWNER)
    assert store.journal.get("nope") is None


def test_get_and_require(store: Store) -> None:
    assert store.journal.get("nope") is None
    with pytest.raises(UsageError, match="no move recorded for source run nope"):
        store.journal.require("nope")
    claimed = store.journal.claim(record()).record
    assert store.journal.get("run-1") == claimed
    assert store.journal.require("run-1") == claimed


# ---------------------------------------------------------------- update


def test_update_by_the_owner_sets_state_error_attempts_and_fields(store: Store) -> None:
    claimed = store.journal.claim(record()).record
    failed = store.journal.update(
        "run-1", owner=OWNER, state=MoveState.FAILED, error="boom", attempts=1
    )
    assert (failed.state, failed.error, failed.attempts) == (MoveState.FAILED, "boom", 1)
    assert failed.updated_at > claimed.updated_at
    assert failed.created_at == claimed.created_at

    moved = store.journal.update(
        "run-1",
        owner=OWNER,
        state=MoveState.TRIGGERED,
        destination_application_id="d-app",
        destination_run_name="d-run",
    )
    assert moved.error is None  # error=None is the default: a later success clears it
    assert moved.attempts == 1  # attempts=None keeps the count
    assert (moved.destination_application_id, moved.destination_run_name) == ("d-app", "d-run")
    assert store.journal.get("run-1") == moved


def test_update_sets_every_updatable_field(store: Store) -> None:
    store.journal.claim(record())
    values: dict[str, Any] = {
        "config_id": 11,
        "source_deployment_id": "s-dep",
        "destination_workspace_fqn": "c-other:team",
        "destination_application_id": "d-app",
        "destination_deployment_id": "d-dep",
        "destination_version": 7,
        "destination_run_name": "d-run",
        "trigger_sent_at": NOW,
        "terminate_sent_at": NOW,
        "next_attempt_at": NOW,
    }
    assert set(values) == UPDATABLE_FIELDS
    updated = store.journal.update("run-1", owner=OWNER, state=MoveState.TRIGGERED, **values)
    stored = store.journal.get("run-1")
    assert stored == updated
    for name, value in values.items():
        expected = updated.updated_at if value is NOW else value
        assert getattr(stored, name) == expected, name


def test_update_with_the_wrong_owner_raises_and_changes_nothing(store: Store) -> None:
    before = store.journal.claim(record()).record
    with pytest.raises(OwnershipLost, match="source run run-1"):
        store.journal.update(
            "run-1",
            owner="pass-b",
            state=MoveState.TRIGGERED,
            error="x",
            attempts=5,
            destination_run_name="d-run",
            trigger_sent_at=NOW,
        )
    assert store.journal.get("run-1") == before


def test_update_of_a_row_nobody_holds_is_refused_to_a_pass(store: Store, database_url: str) -> None:
    # Rows written before owners existed (migration 0003) have none: a pass must take them first.
    before = store.journal.claim(record()).record
    force(database_url, "run-1", owner=None)
    with pytest.raises(OwnershipLost):
        store.journal.update("run-1", owner=OWNER, state=MoveState.DONE)
    assert store.journal.get("run-1") == before.model_copy(update={"owner": None})


def test_update_without_owner_is_a_person_and_writes_over_any_holder(store: Store) -> None:
    store.journal.claim(record())
    written = store.journal.update("run-1", owner=None, state=MoveState.PARKED, error="checked")
    assert (written.state, written.error) == (MoveState.PARKED, "checked")
    assert written.owner is None  # a person's write takes the row from any pass
    with pytest.raises(OwnershipLost):
        store.journal.update("run-1", owner=OWNER, state=MoveState.DEPLOYED)
    assert store.journal.get("run-1") == written


@pytest.mark.parametrize("owner", [OWNER, None])
def test_update_of_an_unknown_run_raises_store_error(store: Store, owner: str | None) -> None:
    store.journal.claim(record())
    with pytest.raises(StoreError, match="no move recorded for source run nope") as caught:
        store.journal.update("nope", owner=owner, state=MoveState.DONE)
    assert not isinstance(caught.value, OwnershipLost)
    assert store.journal.get("nope") is None


def test_update_now_is_the_database_clock(store: Store, database_url: str) -> None:
    store.journal.claim(record())
    before = db_now(database_url)
    marked = store.journal.update(
        "run-1", owner=OWNER, state=MoveState.DEPLOYED, trigger_sent_at=NOW, terminate_sent_at=NOW
    )
    after = db_now(database_url)
    assert marked.trigger_sent_at is not None
    assert before <= marked.trigger_sent_at <= after
    # The same statement's now(): the mark and updated_at are the same instant.
    assert marked.trigger_sent_at == marked.terminate_sent_at == marked.updated_at


@pytest.mark.parametrize(
    "delta", [timedelta(minutes=5), timedelta(hours=26, microseconds=3), timedelta(seconds=-30)]
)
def test_update_timedelta_is_database_now_plus_it(store: Store, delta: timedelta) -> None:
    store.journal.claim(record())
    backing_off = store.journal.update(
        "run-1", owner=OWNER, state=MoveState.FAILED, next_attempt_at=delta
    )
    assert backing_off.next_attempt_at is not None
    assert backing_off.next_attempt_at - backing_off.updated_at == delta


def test_update_none_clears_a_mark_and_omitted_fields_stay(store: Store) -> None:
    store.journal.claim(record())
    store.journal.update(
        "run-1",
        owner=OWNER,
        state=MoveState.WAITING,
        error="look-up failed",
        attempts=2,
        destination_application_id="d-app",
        destination_run_name="d-run",
        trigger_sent_at=NOW,
        next_attempt_at=timedelta(hours=1),
    )
    cleared = store.journal.update(
        "run-1",
        owner=OWNER,
        state=MoveState.DEPLOYED,
        trigger_sent_at=None,
        destination_run_name=None,
        next_attempt_at=None,
    )
    assert (cleared.trigger_sent_at, cleared.destination_run_name, cleared.next_attempt_at) == (
        None,
        None,
        None,
    )
    assert cleared.error is None
    assert cleared.destination_application_id == "d-app"
    assert cleared.attempts == 2
    reset = store.journal.update("run-1", owner=OWNER, state=MoveState.DEPLOYED, attempts=0)
    assert reset.attempts == 0


@pytest.mark.parametrize(
    "name", ["owner", "created_at", "updated_at", "source_run_id", "destination", "bogus"]
)
def test_update_refuses_unknown_fields_before_writing(store: Store, name: str) -> None:
    before = store.journal.claim(record()).record
    unknown: dict[str, Any] = {name: "x"}
    with pytest.raises(TypeError, match=name):
        store.journal.update("run-1", owner=OWNER, state=MoveState.DONE, **unknown)
    assert store.journal.get("run-1") == before


# ---------------------------------------------------------------- due


def test_due_lists_resumable_rows_whose_attempt_has_come_least_recently_updated_first(
    store: Store, database_url: str
) -> None:
    base = datetime(2024, 5, 1, tzinfo=UTC)
    future, past = timedelta(hours=1), timedelta(seconds=-1)
    rows: list[tuple[str, MoveState, timedelta | None, int]] = [
        # (run, state, next attempt relative to now, minutes after `base` it was updated)
        ("claimed-new", MoveState.CLAIMED, None, 50),
        ("deployed", MoveState.DEPLOYED, None, 10),
        ("triggered", MoveState.TRIGGERED, past, 30),
        ("waiting-due", MoveState.WAITING, past, 20),
        ("waiting-later", MoveState.WAITING, future, 1),
        ("failed-due", MoveState.FAILED, None, 40),
        ("failed-later", MoveState.FAILED, future, 2),
        ("done", MoveState.DONE, None, 3),
        ("skipped", MoveState.SKIPPED, past, 4),
        ("parked", MoveState.PARKED, None, 5),
        ("abandoned", MoveState.ABANDONED, past, 6),
    ]
    for run_id, state, next_attempt, minutes in rows:
        put(store, run_id, state, next_attempt_at=next_attempt)
        force(database_url, run_id, updated_at=base + timedelta(minutes=minutes))

    due = store.journal.due()

    assert ids(due) == ["deployed", "waiting-due", "triggered", "failed-due", "claimed-new"]
    assert all(r.state in RESUMABLE_STATES for r in due)


def test_due_breaks_ties_by_run_id_and_is_empty_without_rows(
    store: Store, database_url: str
) -> None:
    assert store.journal.due() == []
    same = datetime(2024, 5, 1, tzinfo=UTC)
    for run_id in ("b", "c", "a"):
        put(store, run_id, MoveState.FAILED)
        force(database_url, run_id, updated_at=same)
    assert ids(store.journal.due()) == ["a", "b", "c"]


def test_due_follows_next_attempt_as_it_passes(store: Store, database_url: str) -> None:
    put(store, "run-1", MoveState.WAITING, next_attempt_at=timedelta(hours=1))
    assert store.journal.due() == []
    force(database_url, "run-1", next_attempt_at=db_now(database_url) - timedelta(seconds=1))
    assert ids(store.journal.due()) == ["run-1"]


# ---------------------------------------------------------------- history


def test_history_is_newest_first_filtered_by_states_and_limited(
    store: Store, database_url: str
) -> None:
    base = datetime(2024, 5, 1, tzinfo=UTC)
    for run_id, state, minutes in [
        ("e", MoveState.FAILED, 3),  # same instant as "a": the run id breaks the tie
        ("b", MoveState.FAILED, 5),
        ("c", MoveState.CLAIMED, 1),
        ("d", MoveState.PARKED, 4),
        ("a", MoveState.DONE, 3),
    ]:
        put(store, run_id, state)
        force(database_url, run_id, updated_at=base + timedelta(minutes=minutes))

    assert ids(store.journal.history()) == ["b", "d", "a", "e", "c"]
    assert ids(store.journal.history(limit=2)) == ["b", "d"]
    assert ids(store.journal.history(states=(MoveState.FAILED,))) == ["b", "e"]
    assert ids(store.journal.history(states=(MoveState.PARKED, MoveState.DONE))) == ["d", "a"]
    assert ids(store.journal.history(states=(MoveState.FAILED,), limit=1)) == ["b"]
    assert store.journal.history(states=(MoveState.ABANDONED,)) == []
    assert store.journal.history(states=()) == []


# ---------------------------------------------------------------- retry_now


def test_retry_now_puts_a_parked_move_back_as_failed_and_due(store: Store) -> None:
    put(
        store,
        "run-1",
        MoveState.PARKED,
        error="parked after 5 attempts; last: boom",
        attempts=5,
        destination_run_name="d-run",
        next_attempt_at=timedelta(days=1),
    )
    assert store.journal.due() == []

    retried = store.journal.retry_now("run-1")

    assert (retried.state, retried.attempts) == (MoveState.FAILED, 0)
    assert retried.error == "parked after 5 attempts; last: boom"
    assert retried.next_attempt_at == retried.updated_at
    assert retried.destination_run_name == "d-run"
    assert retried.owner is None  # taken from any pass: the next one claims it afresh
    assert ids(store.journal.due()) == ["run-1"]
    assert store.journal.claim(record()).due is True


@pytest.mark.parametrize("state", RESUMABLE_STATES)
def test_retry_now_of_an_unfinished_move_keeps_its_state_and_makes_it_due(
    store: Store, state: MoveState
) -> None:
    put(store, "run-1", state, error="x", attempts=3, next_attempt_at=timedelta(hours=2))
    retried = store.journal.retry_now("run-1")
    assert (retried.state, retried.attempts, retried.error) == (state, 0, "x")
    assert ids(store.journal.due()) == ["run-1"]


@pytest.mark.parametrize("state", SETTLED_STATES)
def test_retry_now_refuses_a_settled_move(store: Store, state: MoveState) -> None:
    before = put(store, "run-1", state, attempts=2)
    with pytest.raises(UsageError, match=f"is {state.value}"):
        store.journal.retry_now("run-1")
    assert store.journal.get("run-1") == before


def test_retry_now_of_an_unknown_run_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError, match="no move recorded for source run nope"):
        store.journal.retry_now("nope")


# ---------------------------------------------------------------- abandon


@pytest.mark.parametrize(
    ("state", "fields"),
    [
        (MoveState.TRIGGERED, {"destination_run_name": "d-run"}),
        (MoveState.DEPLOYED, {"trigger_sent_at": NOW}),
        (MoveState.FAILED, {"destination_run_name": "d-run"}),
        (MoveState.FAILED, {"trigger_sent_at": NOW}),
        (MoveState.WAITING, {"trigger_sent_at": NOW, "destination_application_id": "d-app"}),
        (MoveState.CLAIMED, {"destination_run_name": "d-run"}),
    ],
)
def test_abandon_is_refused_while_a_copy_may_exist(
    store: Store, state: MoveState, fields: dict[str, Any]
) -> None:
    before = put(store, "run-1", state, **fields)
    with pytest.raises(UsageError, match="may exist at the destination"):
        store.journal.abandon("run-1")
    assert store.journal.get("run-1") == before


@pytest.mark.parametrize(
    "fields", [{}, {"destination_run_name": "d-run"}, {"trigger_sent_at": NOW}]
)
def test_abandon_of_a_parked_move_is_allowed_even_with_a_copy(
    store: Store, fields: dict[str, Any]
) -> None:
    put(store, "run-1", MoveState.PARKED, error="two copies found", **fields)
    abandoned = store.journal.abandon("run-1")
    assert (abandoned.state, abandoned.error) == (MoveState.ABANDONED, "abandoned by a person")
    assert store.journal.get("run-1") == abandoned


@pytest.mark.parametrize(
    ("state", "fields"),
    [
        (MoveState.CLAIMED, {}),
        (MoveState.FAILED, {}),
        (MoveState.WAITING, {"next_attempt_at": timedelta(hours=1)}),
        (MoveState.DEPLOYED, {"destination_application_id": "d-app"}),
    ],
)
def test_abandon_of_a_move_without_a_copy_settles_it(
    store: Store, state: MoveState, fields: dict[str, Any]
) -> None:
    put(store, "run-1", state, **fields)
    abandoned = store.journal.abandon("run-1")
    assert abandoned.state is MoveState.ABANDONED
    assert store.journal.due() == []
    assert ids(store.journal.history(states=(MoveState.ABANDONED,))) == ["run-1"]


@pytest.mark.parametrize("state", SETTLED_STATES)
def test_abandon_of_a_settled_move_is_refused(store: Store, state: MoveState) -> None:
    before = put(store, "run-1", state, error="settled")
    with pytest.raises(UsageError, match=f"already {state.value}"):
        store.journal.abandon("run-1")
    assert store.journal.get("run-1") == before


def test_a_pass_cannot_write_over_an_abandon(store: Store) -> None:
    store.journal.claim(record(owner=OWNER))
    store.journal.abandon("run-1")
    with pytest.raises(OwnershipLost):
        store.journal.update("run-1", owner=OWNER, state=MoveState.DEPLOYED, trigger_sent_at=NOW)
    assert store.journal.require("run-1").state == MoveState.ABANDONED


def test_abandon_of_an_unknown_run_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError, match="no move recorded for source run nope"):
        store.journal.abandon("nope")


# ---------------------------------------------------------------- threads


def test_journal_is_safe_from_many_threads(store: Store) -> None:
    runs = [f"run-{i}" for i in range(16)]

    def move(run_id: str) -> None:
        store.journal.claim(record(run_id))
        for state in (MoveState.DEPLOYED, MoveState.TRIGGERED, MoveState.DONE):
            current = store.journal.get(run_id)
            assert current is not None
            store.journal.update(run_id, owner=OWNER, state=state, attempts=current.attempts + 1)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(move, runs))

    for run_id in runs:
        stored = store.journal.get(run_id)
        assert stored is not None
        assert (stored.state, stored.attempts, stored.owner) == (MoveState.DONE, 3, OWNER)
    assert len(store.journal.history(limit=100)) == len(runs)

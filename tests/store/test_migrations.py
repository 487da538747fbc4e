from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from jobfallback.errors import SchemaOutdated, UsageError
from jobfallback.models import MoveState
from jobfallback.store import migrations, open_store
from tests.store.test_journal import record

pytestmark = pytest.mark.embedded

ALL = [f"{m.version:04d}_{m.name}" for m in migrations.available()]


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in migrations.available()]
    assert versions == list(range(1, len(versions) + 1))
    assert all(m.sql.strip() for m in migrations.available())


def test_no_shipped_migration_locks_out_the_release_before_it() -> None:
    # docs/migrations.md: code N runs on schema N+1, so a contract names an older release.
    for migration in migrations.available():
        assert migration.requires_code is None or migration.requires_code < migration.version


def test_empty_database_reports_every_migration_pending(empty_database_url: str) -> None:
    with open_store(empty_database_url, require_schema=False) as store:
        status = store.migration_status()
    assert [s.version for s in status] == [m.version for m in migrations.available()]
    assert all(s.applied_at is None for s in status)


def test_upgrade_applies_in_order_once_and_records_them(empty_database_url: str) -> None:
    with open_store(empty_database_url, require_schema=False) as store:
        assert store.upgrade() == ALL
        assert store.upgrade() == []
        status = store.migration_status()
    assert all(s.applied_at is not None for s in status)
    applied = [s.applied_at for s in status]
    assert applied == sorted(applied)  # type: ignore[type-var]


def test_schema_required_on_an_empty_database_says_how_to_fix(empty_database_url: str) -> None:
    with pytest.raises(SchemaOutdated) as caught, open_store(empty_database_url):
        pass
    needs = migrations.available()[-1].version
    assert str(caught.value) == (
        f"database schema is at version 0, this jobfallback needs {needs}: "
        "run `jobfallback db upgrade`"
    )


def test_partially_migrated_database_names_its_version(empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM jobfallback_schema_migrations WHERE version > 1")
    with (
        pytest.raises(SchemaOutdated, match="schema is at version 1, "),
        open_store(empty_database_url),
    ):
        pass


def test_open_store_with_upgrade_migrates_first(empty_database_url: str) -> None:
    with open_store(empty_database_url, upgrade=True) as store:
        assert store.configs.list() == []


def test_concurrent_upgrades_apply_each_migration_once(empty_database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(migrations.upgrade, [empty_database_url] * 4))
    assert sorted(label for result in results for label in result) == ALL
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute("SELECT version FROM jobfallback_schema_migrations").fetchall()
    assert len(rows) == len(ALL)


# ---------------------------------------------------------------- 0003: the move protocol

# (run, legacy state, destination run, error) -> (state after 0003, error after 0003)
LEGACY_MOVES = {
    "planned": (("planned", None, None), ("claimed", None)),
    "created": (("created", None, "api down"), ("deployed", "api down")),
    "triggered": (("triggered", "d-run-1", None), ("triggered", None)),
    "done": (("done", "d-run-2", None), ("done", None)),
    "failed": (("failed", None, "boom"), ("failed", "boom")),
    "skipped-gone": (
        ("skipped", "d-run-3", "source run no longer exists"),
        ("failed", "reconcile: skipped while its copy may be running"),
    ),
    "skipped-no-error": (
        ("skipped", "d-run-4", None),
        ("failed", "reconcile: skipped while its copy may be running"),
    ),
    "skipped-terminated": (
        ("skipped", "d-run-5", "source already running; destination copy was terminated"),
        ("skipped", "source already running; destination copy was terminated"),
    ),
    "skipped-nothing-triggered": (
        ("skipped", None, "source run no longer exists"),
        ("skipped", "source run no longer exists"),
    ),
}


@pytest.fixture
def database_at_0002(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database upgraded by the real `upgrade` while only 0001 and 0002 shipped."""
    shipped = migrations.available()
    monkeypatch.setattr(migrations, "available", lambda: shipped[:2])
    assert migrations.upgrade(empty_database_url) == ALL[:2]
    monkeypatch.setattr(migrations, "available", lambda: shipped)
    return empty_database_url


def insert_legacy_moves(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for run_id, ((state, destination_run, error), _) in LEGACY_MOVES.items():
            conn.execute(
                "INSERT INTO moves (source_run_id, source_run_name, source_application_id, "
                "source_application_name, config_id, destination_workspace_fqn, "
                "destination_run_name, state, error, attempts) "
                "VALUES (%s, %s, 'app-1', 'nightly', 3, 'c-dst:team', %s, %s, %s, 2)",
                (run_id, f"{run_id}-name", destination_run, state, error),
            )


def test_0003_is_the_move_protocol() -> None:
    assert ALL[2] == "0003_move_protocol"


def test_0003_renames_states_and_resumes_skipped_moves_whose_copy_may_run(
    database_at_0002: str,
) -> None:
    insert_legacy_moves(database_at_0002)

    assert migrations.upgrade(database_at_0002) == ALL[2:]

    with open_store(database_at_0002) as store:
        stored = {r.source_run_id: r for r in store.journal.history(limit=100)}
        due = [r.source_run_id for r in store.journal.due()]
    assert {run_id: (r.state.value, r.error) for run_id, r in stored.items()} == {
        run_id: after for run_id, (_, after) in LEGACY_MOVES.items()
    }
    for run_id, ((_, destination_run, _), _) in LEGACY_MOVES.items():
        moved = stored[run_id]
        assert moved.destination_run_name == destination_run
        assert moved.attempts == 2
        assert (moved.config_id, moved.destination_workspace_fqn) == (3, "c-dst:team")
        # The new columns start empty: no owner, no intent marks, no backoff.
        assert moved.owner is None
        assert moved.trigger_sent_at is moved.terminate_sent_at is None
        assert moved.next_attempt_at is None
        assert moved.destination_version is None
    # Every unfinished legacy move, including the reconciled ones, is resumed by the next sweep.
    assert sorted(due) == sorted(
        ["planned", "created", "triggered", "failed", "skipped-gone", "skipped-no-error"]
    )


def test_0003_reconciled_rows_keep_their_destination_when_claimed(database_at_0002: str) -> None:
    insert_legacy_moves(database_at_0002)
    migrations.upgrade(database_at_0002)
    with open_store(database_at_0002) as store:
        before = store.journal.require("skipped-gone")
        claim = store.journal.claim(
            record("skipped-gone", config_id=9, destination_workspace_fqn="c-new:team")
        )
        assert (claim.inserted, claim.due, claim.record.owner) == (False, True, "pass-a")
        assert claim.record.model_dump(exclude={"owner"}) == before.model_dump(exclude={"owner"})
        assert claim.record.has_destination_run
        with pytest.raises(UsageError, match="may exist at the destination"):
            store.journal.abandon("skipped-gone")


@pytest.mark.parametrize("state", ["planned", "created", "finished", ""])
def test_0003_refuses_old_and_unknown_state_names(database_url: str, state: str) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.CheckViolation, match="moves_state_valid"),
    ):
        conn.execute(
            "INSERT INTO moves (source_run_id, source_run_name, source_application_id, "
            "source_application_name, destination_workspace_fqn, state) "
            "VALUES ('r', 'r', 'a', 'a', 'c:w', %s)",
            (state,),
        )


def test_0003_accepts_every_state_the_code_knows(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for state in MoveState:
            conn.execute(
                "INSERT INTO moves (source_run_id, source_run_name, source_application_id, "
                "source_application_name, destination_workspace_fqn, state) "
                "VALUES (%s, 'r', 'a', 'a', 'c:w', %s)",
                (f"run-{state.value}", state.value),
            )


def test_0003_on_an_empty_journal_applies_cleanly(database_at_0002: str) -> None:
    assert migrations.upgrade(database_at_0002) == ALL[2:]
    with open_store(database_at_0002) as store:
        assert store.journal.history() == []
        assert [s.version for s in store.migration_status() if s.applied_at] == [
            int(name[:4]) for name in ALL
        ]

"""Code N on a schema migrated past N: `helm rollback`, or an atomic upgrade undone after its
migration ran, must keep every sweep working.

The next release's migrations are scratch ones written here by the rule in docs/migrations.md:
an expand (new column, new table, new index) that this code ignores, and a later contract that
declares the oldest code it still supports.
"""

from __future__ import annotations

import psycopg
import pytest

from jobfallback.errors import StoreError
from jobfallback.store import migrations, open_store
from jobfallback.store.migrations import Migration
from tests.e2e import harness
from tests.e2e.harness import Jobfallback
from tests.store.test_configs import spec
from tests.store.test_journal import record

bare_jf, jf = harness.bare_jf, harness.jf  # the fixtures, visible to this module

SHIPPED = migrations.available()
CURRENT = SHIPPED[-1].version
EXPAND = Migration(
    CURRENT + 1,
    "scratch_expand",
    """
    ALTER TABLE moves ADD COLUMN destination_cluster_id text;
    ALTER TABLE fallback_configs ADD COLUMN weight integer NOT NULL DEFAULT 0;
    CREATE TABLE move_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source_run_id text NOT NULL REFERENCES moves ON DELETE CASCADE,
        at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX moves_destination_cluster ON moves (destination_cluster_id);
    """,
)
# Drops a column this code writes: only code that has EXPAND (and stopped writing it) may run.
CONTRACT = Migration(
    CURRENT + 2,
    "scratch_contract",
    f"-- requires code >= {EXPAND.version}\nALTER TABLE moves DROP COLUMN source_deployment_id;\n",
)


def migrate_ahead(url: str, monkeypatch: pytest.MonkeyPatch, *ahead: Migration) -> str:
    """Migrate `url` with the shipped migrations plus `ahead`, as the next release would; this
    process then goes back to being the current code."""
    with monkeypatch.context() as patched:
        patched.setattr(migrations, "available", lambda: (*SHIPPED, *ahead))
        migrations.upgrade(url)
    return url


@pytest.fixture
def database_url(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's database at the next release's schema (overrides the fixture of tests/fixtures
    for the CLI harness of this module)."""
    return migrate_ahead(empty_database_url, monkeypatch, EXPAND)


def test_the_scratch_migrations_follow_the_rule() -> None:
    assert EXPAND.requires_code is None
    assert CONTRACT.requires_code == EXPAND.version < CONTRACT.version


@pytest.mark.e2e
def test_code_sweeps_configures_and_upgrades_on_the_next_schema(jf: Jobfallback) -> None:
    swept = jf.sweep()
    assert swept.returncode == 0, swept
    jf.assert_moved_once()
    # The chart's init container: the older image's `db upgrade` after a rollback is a no-op.
    upgraded = jf.run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded
    with psycopg.connect(jf.database_url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM jobfallback_schema_migrations")]
    assert sorted(versions) == [*(m.version for m in SHIPPED), EXPAND.version]
    # `helm test` runs doctor: the newer schema is not a failure.
    doctor = jf.run("doctor")
    assert doctor.returncode == 0, doctor
    listed = jf.run("configs", "list", "--output", "json")
    assert listed.returncode == 0, listed


@pytest.mark.embedded
def test_code_writes_moves_and_configs_on_the_next_schema(database_url: str) -> None:
    with open_store(database_url) as store:
        added = store.configs.add(spec())
        claim = store.journal.claim(record("run-1", config_id=added.id))
        assert claim.inserted
        assert store.configs.list() == [added]
        assert store.journal.require("run-1").config_id == added.id
        statuses = store.migration_status()
    assert [s.version for s in statuses][-1] == EXPAND.version
    assert all(s.applied_at is not None for s in statuses)


@pytest.mark.embedded
def test_a_contract_migration_refuses_the_code_it_declares_too_old(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate_ahead(empty_database_url, monkeypatch, EXPAND, CONTRACT)
    with pytest.raises(StoreError) as caught, open_store(empty_database_url):
        pass
    assert str(caught.value) == (
        f"database schema is at version {CONTRACT.version}: migration {CONTRACT.version} needs "
        f"jobfallback with migration {EXPAND.version} or newer, this one has {CURRENT}: "
        "upgrade jobfallback"
    )
    # The code that has the expand runs on it.
    with monkeypatch.context() as patched:
        patched.setattr(migrations, "available", lambda: (*SHIPPED, EXPAND))
        with open_store(empty_database_url) as store:
            assert store.configs.list() == []


@pytest.mark.embedded
def test_a_migrations_table_older_than_requires_code_reads_and_upgrades(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations.upgrade(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        # As the table was before the column existed.
        conn.execute("ALTER TABLE jobfallback_schema_migrations DROP COLUMN requires_code")
    with open_store(empty_database_url) as store:
        assert store.configs.list() == []
    migrate_ahead(empty_database_url, monkeypatch, EXPAND, CONTRACT)
    with (
        pytest.raises(StoreError, match=f"needs jobfallback with migration {EXPAND.version}"),
        open_store(empty_database_url),
    ):
        pass

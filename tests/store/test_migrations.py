from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from jobfallback.errors import SchemaOutdated, StoreError
from jobfallback.store import migrations, open_store

pytestmark = pytest.mark.embedded

ALL = [f"{m.version:04d}_{m.name}" for m in migrations.available()]


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in migrations.available()]
    assert versions == list(range(1, len(versions) + 1))
    assert all(m.sql.strip() for m in migrations.available())


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


def test_schema_newer_than_the_code_is_refused(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO jobfallback_schema_migrations (version, name) VALUES (9999, 'future')"
        )
    with pytest.raises(StoreError, match="newer than this jobfallback"), open_store(database_url):
        pass


def test_concurrent_upgrades_apply_each_migration_once(empty_database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(migrations.upgrade, [empty_database_url] * 4))
    assert sorted(label for result in results for label in result) == ALL
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute("SELECT version FROM jobfallback_schema_migrations").fetchall()
    assert len(rows) == len(ALL)

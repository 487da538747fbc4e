"""Schema migrations: numbered plain-SQL files applied in order and recorded in a table.

`upgrade` holds a session advisory lock on its own connection for the whole run, so several
processes upgrading at once apply each migration exactly once; each migration is one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources

from jobfallback.errors import SchemaOutdated, StoreError
from jobfallback.models import CamelModel
from jobfallback.store.connection import Cursor, connect, translate_errors

# Any fixed bigint works; it only has to differ from the sweep lock's key (jobfallback.store.lock).
_LOCK_KEY = 0x6A6F_6266_0001  # "jobf" + 1
_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>\w+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS jobfallback_schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_APPLIED = """
SELECT version, name, applied_at FROM jobfallback_schema_migrations ORDER BY version
"""
_RECORD = "INSERT INTO jobfallback_schema_migrations (version, name) VALUES (%s, %s)"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


class MigrationStatus(CamelModel):
    version: int
    name: str
    applied_at: datetime | None  # None: pending


@cache
def available() -> tuple[Migration, ...]:
    """The migrations shipped with this jobfallback, in version order."""
    found = []
    for entry in (resources.files("jobfallback.store") / "migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match["version"]), match["name"], entry.read_text("utf-8")))
    return tuple(sorted(found, key=lambda m: m.version))


def _applied(cur: Cursor) -> list[MigrationStatus]:
    cur.execute("SELECT to_regclass('jobfallback_schema_migrations') IS NOT NULL AS present")
    row = cur.fetchone()
    if row is None or not row["present"]:
        return []
    cur.execute(_APPLIED)
    return [MigrationStatus.model_validate(r) for r in cur.fetchall()]


def status(cur: Cursor) -> list[MigrationStatus]:
    """Every migration known to the code or recorded in the database, applied or pending."""
    applied = {m.version: m for m in _applied(cur)}
    pending = [
        MigrationStatus(version=m.version, name=m.name, applied_at=None)
        for m in available()
        if m.version not in applied
    ]
    return sorted([*applied.values(), *pending], key=lambda m: m.version)


def check_current(cur: Cursor) -> None:
    """Raise unless the database has exactly the migrations this code ships."""
    applied = {m.version for m in _applied(cur)}
    known = {m.version for m in available()}
    at, needs = max(applied, default=0), max(known, default=0)
    if applied - known:
        raise StoreError(
            f"database schema is at version {at}, newer than this jobfallback ({needs}): "
            "upgrade jobfallback"
        )
    if known - applied:
        raise SchemaOutdated(
            f"database schema is at version {at}, this jobfallback needs {needs}: "
            "run `jobfallback db upgrade`"
        )


def upgrade(dsn: str) -> list[str]:
    """Apply the pending migrations; return their labels (empty when the schema is current)."""
    applied: list[str] = []
    with connect(dsn) as conn, translate_errors(dsn):
        # Session-level: held across the per-migration transactions, released when conn closes.
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        conn.execute(_CREATE_TABLE)
        with conn.cursor() as cur:
            done = {m.version for m in _applied(cur)}
        for migration in available():
            if migration.version in done:
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(_RECORD, (migration.version, migration.name))
            applied.append(migration.label)
    return applied

"""Schema migrations: numbered plain-SQL files applied in order and recorded in a table.

`upgrade` holds a session advisory lock on its own connection for the whole run, so several
processes upgrading at once apply each migration exactly once; each migration is one transaction.

Code runs on a schema newer than itself (a rollback, an upgrade that failed after migrating) as
long as every newer migration is an *expand*: it only adds what older code ignores. A *contract*
migration (dropping or renaming what older code uses, tightening a constraint it writes against)
says so on a line of its own, `-- requires code >= N`: code whose newest migration is older than
N then refuses the schema. docs/migrations.md has the rule for writing them.
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
_REQUIRES_CODE = re.compile(r"^-- requires code >= (\d+)\s*$", re.MULTILINE)

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS jobfallback_schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    requires_code integer
)
"""
# Tables created before requires_code existed get it when the next migration is recorded.
_ADD_REQUIRES_CODE = """
ALTER TABLE jobfallback_schema_migrations ADD COLUMN IF NOT EXISTS requires_code integer
"""
_APPLIED = """
SELECT version, name, applied_at FROM jobfallback_schema_migrations ORDER BY version
"""
_RECORD = """
INSERT INTO jobfallback_schema_migrations (version, name, requires_code) VALUES (%s, %s, %s)
"""
# Through jsonb so that a table without the column (written by older code) reads as NULL.
_REQUIREMENTS = """
SELECT version, (to_jsonb(m) ->> 'requires_code')::integer AS requires_code
FROM jobfallback_schema_migrations m WHERE version > %s ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def requires_code(self) -> int | None:
        """The oldest code (by its newest migration) that runs on this schema; None: any."""
        match = _REQUIRES_CODE.search(self.sql)
        return int(match[1]) if match else None

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
    """Raise unless the database has every migration this code ships, and no newer migration
    that declares this code too old for it."""
    applied = {m.version for m in _applied(cur)}
    known = {m.version for m in available()}
    at, needs = max(applied, default=0), max(known, default=0)
    if applied - known:
        cur.execute(_REQUIREMENTS, (needs,))
        for row in cur.fetchall():
            if row["requires_code"] is not None and row["requires_code"] > needs:
                raise StoreError(
                    f"database schema is at version {at}: migration {row['version']} needs "
                    f"jobfallback with migration {row['requires_code']} or newer, this one has "
                    f"{needs}: upgrade jobfallback"
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
        pending = [m for m in available() if m.version not in done]
        if pending:
            conn.execute(_ADD_REQUIRES_CODE)
        for migration in pending:
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(_RECORD, (migration.version, migration.name, migration.requires_code))
            applied.append(migration.label)
    return applied

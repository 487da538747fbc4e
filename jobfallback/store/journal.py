"""The move journal: one row per source run, recording how far its move got.

Safe to call from several threads at once (the sweep calls it through asyncio.to_thread): it owns
one autocommit connection that runs one statement block at a time. Timestamps come from the
database clock.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from jobfallback.errors import StoreError
from jobfallback.models import MoveRecord, MoveState
from jobfallback.store.connection import Cursor, Database

# What begin() writes; the rest (attempts, timestamps) starts from the column defaults.
_BEGIN_COLUMNS = (
    "source_run_id",
    "source_run_name",
    "source_application_id",
    "source_application_name",
    "source_deployment_id",
    "config_id",
    "destination_workspace_fqn",
    "destination_application_id",
    "destination_deployment_id",
    "destination_run_name",
    "state",
    "error",
)
# What update() may set besides state and error.
UPDATABLE_FIELDS = frozenset(
    {"destination_application_id", "destination_deployment_id", "destination_run_name"}
)

_INSERT = sql.SQL(
    "INSERT INTO moves ({columns}) VALUES ({values}) "
    "ON CONFLICT (source_run_id) DO NOTHING RETURNING *"
).format(
    columns=sql.SQL(", ").join(map(sql.Identifier, _BEGIN_COLUMNS)),
    values=sql.SQL(", ").join(sql.Placeholder(c) for c in _BEGIN_COLUMNS),
)
_GET = "SELECT * FROM moves WHERE source_run_id = %s"
# A pass that died or failed left these behind; the next pass resumes them from what they
# recorded. Failed rows are included: a copy may exist at the destination even when the source
# is no longer listed as CREATED, and only resuming the row settles it (done or skipped).
UNFINISHED = (MoveState.PLANNED, MoveState.CREATED, MoveState.TRIGGERED, MoveState.FAILED)
_UNFINISHED = "SELECT * FROM moves WHERE state = ANY(%s) ORDER BY updated_at, source_run_id"
_HISTORY = """
SELECT * FROM moves
WHERE %(state)s::text IS NULL OR state = %(state)s
ORDER BY updated_at DESC, source_run_id
LIMIT %(limit)s
"""


def _record(row: dict[str, Any]) -> MoveRecord:
    return MoveRecord.model_validate(row)


def _fetch(cur: Cursor, source_run_id: str) -> MoveRecord | None:
    cur.execute(_GET, (source_run_id,))
    row = cur.fetchone()
    return _record(row) if row else None


class MoveJournal:
    def __init__(self, db: Database) -> None:
        self._db = db

    def begin(self, record: MoveRecord) -> tuple[MoveRecord, bool]:
        """Record a move unless its source run already has one.

        Returns the stored row and True when this call inserted it; an existing row is returned
        unchanged (False), so the caller resumes from its state.
        """
        with self._db.transaction() as cur:
            # mode="json": plain values (psycopg would store an enum member by its name).
            cur.execute(_INSERT, record.model_dump(mode="json", include=set(_BEGIN_COLUMNS)))
            inserted = cur.fetchone()
            if inserted is not None:
                return _record(inserted), True
            existing = _fetch(cur, record.source_run_id)
        assert existing is not None  # the insert conflicted with it, and rows are never deleted
        return existing, False

    def update(
        self,
        source_run_id: str,
        *,
        state: MoveState,
        error: str | None = None,
        increment_attempts: bool = False,
        **fields: str | None,
    ) -> MoveRecord:
        """Move a row to `state`, set `error` (None clears it) and any destination ids given."""
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown:
            raise TypeError(f"MoveJournal.update() cannot set {sorted(unknown)}")
        assignments = [
            sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
            for name in fields
        ]
        query = sql.SQL(
            "UPDATE moves SET state = %(state)s, error = %(error)s, "
            "attempts = attempts + %(increment)s, updated_at = now(){extra} "
            "WHERE source_run_id = %(source_run_id)s RETURNING *"
        ).format(extra=sql.SQL("").join(sql.SQL(", ") + a for a in assignments))
        params = {
            **fields,
            "state": str(state),
            "error": error,
            "increment": int(increment_attempts),
            "source_run_id": source_run_id,
        }
        with self._db.transaction() as cur:
            cur.execute(query, params)
            row = cur.fetchone()
        if row is None:
            raise StoreError(f"no move recorded for source run {source_run_id}; begin() it first")
        return _record(row)

    def get(self, source_run_id: str) -> MoveRecord | None:
        with self._db.transaction() as cur:
            return _fetch(cur, source_run_id)

    def history(self, *, limit: int = 50, state: MoveState | None = None) -> list[MoveRecord]:
        """The most recently updated moves first, optionally only those in `state`."""
        with self._db.transaction() as cur:
            cur.execute(_HISTORY, {"state": str(state) if state else None, "limit": limit})
            return [_record(row) for row in cur.fetchall()]

    def unfinished(self) -> list[MoveRecord]:
        """Moves still planned, created, triggered or failed, least recently touched first."""
        with self._db.transaction() as cur:
            cur.execute(_UNFINISHED, ([str(state) for state in UNFINISHED],))
            return [_record(row) for row in cur.fetchall()]

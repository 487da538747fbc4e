"""The move journal: one row per source run, recording how far its move got.

Every row carries its owner, the pass that holds it: a pass claims a row before it acts on it,
and every later write is fenced by that owner, so a pass that lost its lock (a second pass has
claimed the row since) cannot record anything and stops before its next irreversible step.

Safe to call from several threads at once (the sweep calls it through asyncio.to_thread): it owns
one autocommit connection that runs one statement block at a time. Timestamps come from the
database clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

from psycopg import sql
from psycopg.types.json import Jsonb

from jobfallback.errors import JobFallbackError, StoreError, UsageError
from jobfallback.models import RESUMABLE_STATES, MoveRecord, MoveState
from jobfallback.printable import escape
from jobfallback.store.connection import Database


class OwnershipLost(JobFallbackError):
    """Another pass claimed the row: this pass must not act on the move any more."""


class Claim(NamedTuple):
    record: MoveRecord
    inserted: bool  # no row existed: nothing this database knows of was done for the run
    due: bool  # its next attempt has come (not backing off)


class _Now:
    """Stands for the database's now() in an update (intent marks use the database clock)."""

    def __repr__(self) -> str:
        return "NOW"


NOW: Final = _Now()
FieldValue = str | float | timedelta | _Now | None

# What claim() writes; the rest starts from the column defaults.
_CLAIM_COLUMNS = (
    "source_run_id",
    "source_run_name",
    "source_application_id",
    "source_application_name",
    "source_deployment_id",
    "config_id",
    "destination_workspace_fqn",
    "manifest_patch",
    "state",
    "owner",
)
# What update() may set besides state, error and attempts.
UPDATABLE_FIELDS = frozenset(
    {
        "config_id",
        "source_deployment_id",
        "destination_workspace_fqn",
        "destination_application_id",
        "destination_deployment_id",
        "destination_version",
        "destination_run_name",
        "trigger_sent_at",
        "terminate_sent_at",
        "next_attempt_at",
    }
)
_RESUMABLE = [str(state) for state in RESUMABLE_STATES]

# A row that has nothing at the destination yet follows the current plan (its config may have
# changed since it failed); any other row keeps the destination it already acted on.
_CLAIM = sql.SQL(
    """
    INSERT INTO moves AS m ({columns}) VALUES ({values})
    ON CONFLICT (source_run_id) DO UPDATE SET
        owner = excluded.owner,
        config_id = CASE WHEN {untouched} THEN excluded.config_id ELSE m.config_id END,
        destination_workspace_fqn = CASE WHEN {untouched}
            THEN excluded.destination_workspace_fqn ELSE m.destination_workspace_fqn END,
        manifest_patch = CASE WHEN {untouched}
            THEN excluded.manifest_patch ELSE m.manifest_patch END
    RETURNING *, (xmax = 0) AS inserted,
        (m.next_attempt_at IS NULL OR m.next_attempt_at <= now()) AS due
    """
).format(
    columns=sql.SQL(", ").join(map(sql.Identifier, _CLAIM_COLUMNS)),
    values=sql.SQL(", ").join(sql.Placeholder(c) for c in _CLAIM_COLUMNS),
    untouched=sql.SQL(
        "m.destination_application_id IS NULL AND m.trigger_sent_at IS NULL "
        "AND m.destination_run_name IS NULL AND m.state IN ('claimed', 'failed', 'waiting')"
    ),
)
_ABANDON = """
UPDATE moves SET state = 'abandoned', error = 'abandoned by a person', owner = NULL,
    updated_at = now()
WHERE source_run_id = %s
  AND state NOT IN ('done', 'skipped', 'abandoned')
  AND (state = 'parked' OR (trigger_sent_at IS NULL AND destination_run_name IS NULL))
RETURNING *
"""
_TAKE = "UPDATE moves SET owner = %s WHERE source_run_id = %s RETURNING *"
_GET = "SELECT * FROM moves WHERE source_run_id = %s"
_PEEK = """
SELECT *, (next_attempt_at IS NULL OR next_attempt_at <= now()) AS due
FROM moves WHERE source_run_id = ANY(%s)
"""
_DUE = """
SELECT * FROM moves
WHERE state = ANY(%s) AND (next_attempt_at IS NULL OR next_attempt_at <= now())
ORDER BY updated_at, source_run_id
"""
_HISTORY = """
SELECT * FROM moves
WHERE %(states)s::text[] IS NULL OR state = ANY(%(states)s)
ORDER BY updated_at DESC, source_run_id
LIMIT %(limit)s
"""


_NAMED = "SELECT * FROM moves WHERE source_run_name = %s ORDER BY updated_at DESC, source_run_id"
# Cooldown: each job's moves since `since`, other than moves that did nothing.
_MOVED_SINCE = """
SELECT source_application_id, source_run_id, created_at FROM moves
WHERE source_application_id = ANY(%s) AND created_at > %s
  AND state NOT IN ('skipped', 'abandoned')
"""
_SAVE_SWEEP = """
INSERT INTO sweep_passes (shard, started, failed, breaker_tripped) VALUES (%s, %s, %s, %s)
"""
_LAST_PASSES = """
SELECT finished_at, started, failed, breaker_tripped FROM sweep_passes
WHERE shard = %s ORDER BY finished_at DESC, id DESC LIMIT %s
"""


class PassRecord(NamedTuple):
    """One real pass, as the circuit breaker reads it."""

    finished_at: datetime
    started: int  # moves and resumes that ran
    failed: int  # of those, failed or parked
    breaker_tripped: bool


def _jsonb(value: dict[str, Any] | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _record(row: dict[str, Any]) -> MoveRecord:
    return MoveRecord.model_validate(row)


def _value(name: str, value: FieldValue) -> sql.Composable:
    if isinstance(value, _Now):
        return sql.SQL("now()")
    if isinstance(value, timedelta):
        return sql.SQL("now() + {}").format(sql.Placeholder(name))
    return sql.Placeholder(name)


class MoveJournal:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, record: MoveRecord) -> Claim:
        """Record a move for `record.owner`, or take over the existing row of its source run.

        An existing row keeps what it recorded (so the caller resumes from it), but follows the
        new config and destination while nothing was done at the destination yet.
        """
        params = record.model_dump(mode="json", include=set(_CLAIM_COLUMNS))
        params["manifest_patch"] = _jsonb(record.manifest_patch)
        with self._db.transaction() as cur:
            cur.execute(_CLAIM, params)
            row = cur.fetchone()
        assert row is not None  # an upsert always returns its row
        inserted, due = bool(row.pop("inserted")), bool(row.pop("due"))
        return Claim(_record(row), inserted=inserted, due=due)

    def take(self, source_run_id: str, owner: str) -> MoveRecord:
        """Make `owner` the holder of an existing row (a resumed move)."""
        with self._db.transaction() as cur:
            cur.execute(_TAKE, (owner, source_run_id))
            row = cur.fetchone()
        if row is None:
            raise StoreError(f"no move recorded for source run {source_run_id}")
        return _record(row)

    def update(
        self,
        source_run_id: str,
        *,
        owner: str | None,
        state: MoveState,
        error: str | None = None,
        attempts: int | None = None,
        **fields: FieldValue,
    ) -> MoveRecord:
        """Move a row to `state`, set `error` (None clears it), `attempts` and any field given.

        With an `owner`, only a row that owner still holds is written (else OwnershipLost); a
        person's command (`jobfallback moves ...`) passes None. A timedelta sets a timestamp
        to the database's now() plus it, NOW to now().
        """
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown:
            raise TypeError(f"MoveJournal.update() cannot set {sorted(unknown)}")
        assignments = [
            sql.SQL("{} = {}").format(sql.Identifier(name), _value(name, value))
            for name, value in fields.items()
        ]
        query = sql.SQL(
            "UPDATE moves SET state = %(state)s, error = %(error)s, "
            "attempts = coalesce(%(attempts)s, attempts), updated_at = now(), "
            # A person's write (no owner) takes the row from any pass, so a pass still acting
            # on it cannot write over what the person decided.
            "owner = CASE WHEN %(owner)s::text IS NULL THEN NULL ELSE owner END{extra} "
            "WHERE source_run_id = %(source_run_id)s "
            "AND (%(owner)s::text IS NULL OR owner = %(owner)s) RETURNING *"
        ).format(extra=sql.SQL("").join(sql.SQL(", ") + a for a in assignments))
        params: dict[str, Any] = {
            name: value for name, value in fields.items() if not isinstance(value, _Now)
        }
        params.update(
            state=str(state),
            # An error often quotes the API: a NUL there is refused by PostgreSQL, and what is
            # stored is later printed (`history`), so control characters are kept escaped.
            error=None if error is None else escape(error),
            attempts=attempts,
            source_run_id=source_run_id,
            owner=owner,
        )
        with self._db.transaction() as cur:
            cur.execute(query, params)
            row = cur.fetchone()
        if row is not None:
            return _record(row)
        if owner is not None and self.get(source_run_id) is not None:
            raise OwnershipLost(
                f"another sweep took over the move of source run {source_run_id}; "
                "this pass stops acting on it"
            )
        raise StoreError(f"no move recorded for source run {source_run_id}; claim it first")

    def get(self, source_run_id: str) -> MoveRecord | None:
        with self._db.transaction() as cur:
            cur.execute(_GET, (source_run_id,))
            row = cur.fetchone()
        return _record(row) if row else None

    def claims(self, source_run_ids: list[str]) -> dict[str, Claim]:
        """The rows of these source runs as a claim would see them, without claiming (a dry
        run shows what a real pass would decide)."""
        with self._db.transaction() as cur:
            cur.execute(_PEEK, (source_run_ids,))
            rows = cur.fetchall()
        found: dict[str, Claim] = {}
        for row in rows:
            due = bool(row.pop("due"))
            found[row["source_run_id"]] = Claim(_record(row), inserted=False, due=due)
        return found

    def require(self, source_run_id: str) -> MoveRecord:
        """The row of a source run, or a usage error naming it (for people's commands)."""
        record = self.get(source_run_id)
        if record is None:
            raise UsageError(
                f"no move recorded for source run {source_run_id}; "
                "`jobfallback moves list` shows the moves"
            )
        return record

    def history(
        self, *, limit: int = 50, states: tuple[MoveState, ...] | None = None
    ) -> list[MoveRecord]:
        """The most recently updated moves first, optionally only those in `states`."""
        wanted = None if states is None else [str(state) for state in states]
        with self._db.transaction() as cur:
            cur.execute(_HISTORY, {"states": wanted, "limit": limit})
            return [_record(row) for row in cur.fetchall()]

    def retry_now(self, source_run_id: str) -> MoveRecord:
        """A person's retry: a failed, waiting or parked move is attempted by the next sweep,
        with its attempts counted from zero. A settled move (done, skipped, abandoned) is not."""
        record = self.require(source_run_id)
        if record.state not in (*RESUMABLE_STATES, MoveState.PARKED):
            raise UsageError(
                f"the move of source run {source_run_id} is {record.state.value}; "
                "only an unfinished, failed or parked move can be retried"
            )
        state = MoveState.FAILED if record.state == MoveState.PARKED else record.state
        return self.update(
            source_run_id,
            owner=None,
            state=state,
            error=record.error,
            attempts=0,
            next_attempt_at=NOW,
        )

    def abandon(self, source_run_id: str) -> MoveRecord:
        """A person gives up on a move: the source stays where it is. Refused while a copy may
        exist at the destination (unless parked: a person has checked it), since abandoning
        then could leave the job running twice. The check and the write are one statement, and
        the row is taken from any pass, so a pass cannot record a trigger in between."""
        with self._db.transaction() as cur:
            cur.execute(_ABANDON, (source_run_id,))
            row = cur.fetchone()
        if row is not None:
            return _record(row)
        record = self.require(source_run_id)
        if record.state in (MoveState.DONE, MoveState.SKIPPED, MoveState.ABANDONED):
            raise UsageError(
                f"the move of source run {source_run_id} is already {record.state.value}"
            )
        raise UsageError(
            f"a copy of source run {source_run_id} may exist at the destination "
            f"({record.destination_run_name or 'trigger sent, run not yet known'}); "
            "the sweep finishes it; a parked move can be abandoned once you have checked it"
        )

    def named(self, source_run_name: str) -> list[MoveRecord]:
        """The moves of runs of this name (names are unique per job, not across jobs)."""
        with self._db.transaction() as cur:
            cur.execute(_NAMED, (source_run_name,))
            return [_record(row) for row in cur.fetchall()]

    def moved_since(
        self, application_ids: list[str], since: datetime
    ) -> dict[str, dict[str, datetime]]:
        """For each of these jobs that had a move since `since`: source run id -> when."""
        with self._db.transaction() as cur:
            cur.execute(_MOVED_SINCE, (application_ids, since))
            rows = cur.fetchall()
        moved: dict[str, dict[str, datetime]] = {}
        for row in rows:
            moved.setdefault(row["source_application_id"], {})[row["source_run_id"]] = row[
                "created_at"
            ]
        return moved

    def record_pass(self, shard: str, *, started: int, failed: int, tripped: bool) -> None:
        with self._db.transaction() as cur:
            cur.execute(_SAVE_SWEEP, (shard, started, failed, tripped))

    def last_passes(self, shard: str, count: int) -> list[PassRecord]:
        """This shard's last `count` real passes, newest first ('' = unsharded)."""
        with self._db.transaction() as cur:
            cur.execute(_LAST_PASSES, (shard, count))
            return [PassRecord(**row) for row in cur.fetchall()]

    def due(self) -> list[MoveRecord]:
        """Unfinished moves whose next attempt has come, least recently touched first."""
        with self._db.transaction() as cur:
            cur.execute(_DUE, (_RESUMABLE,))
            return [_record(row) for row in cur.fetchall()]

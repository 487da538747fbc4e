"""The Store: one object per command or sweep, opened with `open_store`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from jobfallback.shard import Shard
from jobfallback.store import migrations
from jobfallback.store.configs import ConfigRepository
from jobfallback.store.connection import Database
from jobfallback.store.embedded import embedded_database
from jobfallback.store.journal import MoveJournal
from jobfallback.store.lock import SweepLock, sweep_lock
from jobfallback.store.migrations import MigrationStatus


class Store:
    """Configs and journal each on their own connection, so journal calls from worker threads
    never wait behind a config transaction."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._db = Database(dsn)
        self.configs = ConfigRepository(self._db)
        journal_db = Database(dsn)
        self.journal = MoveJournal(journal_db)
        self._databases = (self._db, journal_db)

    def sweep_lock(self, shard: Shard | None = None) -> AbstractContextManager[SweepLock]:
        """Enter to try the sweep lock of `shard` (None: unsharded): true if this process now
        holds it, false if another does."""
        return sweep_lock(self._dsn, shard)

    def migration_status(self) -> list[MigrationStatus]:
        with self._db.transaction() as cur:
            return migrations.status(cur)

    def check_schema(self) -> None:
        with self._db.transaction() as cur:
            migrations.check_current(cur)

    def upgrade(self) -> list[str]:
        return migrations.upgrade(self._dsn)

    def close(self) -> None:
        for db in self._databases:
            db.close()


@contextmanager
def open_store(
    database_url: str | None, *, upgrade: bool = False, require_schema: bool = True
) -> Iterator[Store]:
    """A Store on `database_url`, or on the embedded server when it is None.

    require_schema: raise SchemaOutdated when migrations are pending, unless `upgrade` applies
    them first. The embedded server upgrades itself whenever the schema is required.
    """
    if database_url is None:
        upgrade = upgrade or require_schema
    url: AbstractContextManager[str] = (
        embedded_database() if database_url is None else nullcontext(database_url)
    )
    with url as dsn:
        if upgrade:
            migrations.upgrade(dsn)
        store = Store(dsn)
        try:
            if require_schema:
                store.check_schema()
            yield store
        finally:
            store.close()

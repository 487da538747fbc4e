"""PostgreSQL storage: schema migrations, fallback configs, the move journal and the sweep lock.

Nothing outside this package writes SQL. Open a Store with `open_store(database_url)`; a None URL
uses the embedded PostgreSQL (jobfallback.store.embedded).
"""

from jobfallback.store.config_files import InvalidImport, parse_import, parse_spec
from jobfallback.store.configs import ConfigRepository, ConfigUpdate, ImportDiff
from jobfallback.store.journal import Claim, MoveJournal, OwnershipLost
from jobfallback.store.migrations import MigrationStatus
from jobfallback.store.store import Store, open_store

__all__ = [
    "Claim",
    "ConfigRepository",
    "ConfigUpdate",
    "ImportDiff",
    "InvalidImport",
    "MigrationStatus",
    "MoveJournal",
    "OwnershipLost",
    "Store",
    "open_store",
    "parse_import",
    "parse_spec",
]

"""The fallback config repository: every read and write of `fallback_configs`.

Each public method is one transaction.
"""

from __future__ import annotations

import builtins
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import Field
from pydantic.alias_generators import to_camel

from jobfallback.errors import UsageError
from jobfallback.models import (
    CamelModel,
    FallbackConfig,
    FallbackConfigSpec,
    workspace_conflicts,
)
from jobfallback.store.config_files import duplicate_problems, entry_label, parse_spec
from jobfallback.store.connection import Cursor, Database

# The spec's fields are exactly the table's writable columns.
_COLUMNS = tuple(FallbackConfigSpec.model_fields)

_LIST = "SELECT * FROM fallback_configs WHERE enabled OR NOT %s ORDER BY id"
_GET = "SELECT * FROM fallback_configs WHERE id = %s"
_DELETE = "DELETE FROM fallback_configs WHERE id = %s RETURNING id"
_INSERT = sql.SQL("INSERT INTO fallback_configs ({columns}) VALUES ({values}) RETURNING *").format(
    columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
    values=sql.SQL(", ").join(map(sql.Placeholder, _COLUMNS)),
)
_UPDATE = sql.SQL(
    "UPDATE fallback_configs SET {assignments}, updated_at = now() WHERE id = %(id)s RETURNING *"
).format(
    assignments=sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in _COLUMNS
    )
)
# Import reads, diffs and writes in one transaction: keep concurrent writers out meanwhile.
_LOCK = "LOCK TABLE fallback_configs IN SHARE ROW EXCLUSIVE MODE"


class ConfigUpdate(CamelModel):
    """A config an import changes: its id, name and each changed field as [old, new]."""

    id: int
    name: str | None
    changes: dict[str, list[Any]]  # keyed by the file's camelCase field names


class ImportDiff(CamelModel):
    """What an import did (or, with dry_run, would do)."""

    dry_run: bool
    added: list[FallbackConfigSpec] = Field(default_factory=list)
    updated: list[ConfigUpdate] = Field(default_factory=list)
    removed: list[FallbackConfig] = Field(default_factory=list)
    unchanged: list[FallbackConfig] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def _row(spec: FallbackConfigSpec) -> dict[str, Any]:
    row = spec.model_dump()
    row["manifest_patch"] = Jsonb(row["manifest_patch"]) if row["manifest_patch"] else None
    return row


def _not_found(config_id: int) -> UsageError:
    return UsageError(f"config {config_id} not found; see `jobfallback configs list`")


def _changes(old: FallbackConfigSpec, new: FallbackConfigSpec) -> dict[str, list[Any]]:
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return {to_camel(f): [before[f], after[f]] for f in _COLUMNS if before[f] != after[f]}


def _labelled(configs: builtins.list[FallbackConfig]) -> builtins.list[tuple[str, FallbackConfig]]:
    return [(f"config {c.id}", c) for c in configs]


def _refuse_cluster_conflicts(configs: builtins.list[tuple[str, FallbackConfigSpec]]) -> None:
    """Nothing is written when the configs would name a source workspace under two clusters."""
    conflicts = workspace_conflicts(configs)
    if conflicts:
        raise UsageError("; ".join(conflicts.values()))


def with_stored_fqns(
    specs: builtins.list[FallbackConfigSpec], stored: builtins.list[FallbackConfig]
) -> builtins.list[FallbackConfigSpec]:
    """`specs` where each one without a destination FQN takes the FQN stored for the same
    destination (cluster and workspace) by the config it would update: an import of a file a
    person wrote, without FQNs, keeps the FQNs looked up before instead of clearing them."""
    by_key = {config.natural_key: config for config in stored}
    kept = []
    for spec in specs:
        current = by_key.get(spec.natural_key)
        if (
            spec.destination_workspace_fqn is None
            and current is not None
            and current.destination_workspace_fqn is not None
            and (current.destination_cluster_id, current.destination_workspace_id)
            == (spec.destination_cluster_id, spec.destination_workspace_id)
        ):
            spec = spec.model_copy(
                update={"destination_workspace_fqn": current.destination_workspace_fqn}
            )
        kept.append(spec)
    return kept


class ConfigRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def list(self, *, enabled_only: bool = False) -> list[FallbackConfig]:
        """Configs by id: among generic configs of a source, the first is the oldest."""
        with self._db.transaction() as cur:
            return self._list(cur, enabled_only=enabled_only)

    def get(self, config_id: int) -> FallbackConfig:
        with self._db.transaction() as cur:
            return self._get(cur, config_id)

    def add(self, spec: FallbackConfigSpec) -> FallbackConfig:
        with self._db.transaction() as cur:
            others = self._list(cur, enabled_only=False)
            _refuse_cluster_conflicts([*_labelled(others), ("the new config", spec)])
            return self._insert(cur, spec)

    def update(self, config_id: int, changes: dict[str, Any]) -> FallbackConfig:
        """Change fields (snake_case names of FallbackConfigSpec); the result is re-validated."""
        with self._db.transaction() as cur:
            current = self._get(cur, config_id)
            spec = parse_spec({**current.spec().model_dump(), **changes})
            others = [c for c in self._list(cur, enabled_only=False) if c.id != config_id]
            _refuse_cluster_conflicts([*_labelled(others), (f"config {config_id}", spec)])
            return self._write(cur, config_id, spec)

    def remove(self, config_id: int) -> None:
        with self._db.transaction() as cur:
            cur.execute(_DELETE, (config_id,))
            if cur.fetchone() is None:
                raise _not_found(config_id)

    def set_enabled(self, config_id: int, enabled: bool) -> FallbackConfig:
        return self.update(config_id, {"enabled": enabled})

    def set_destination_fqn(self, config_id: int, fqn: str) -> FallbackConfig:
        """Backfill the destination FQN of a legacy config."""
        return self.update(config_id, {"destination_workspace_fqn": fqn})

    def apply_import(
        self, specs: builtins.list[FallbackConfigSpec], *, prune: bool, dry_run: bool
    ) -> ImportDiff:
        """Make the stored configs match `specs`, matched by natural key, in one transaction.

        New keys are added in list order (so list order is "first" order among new generic
        configs), matched ones updated when a field differs, and with `prune` the configs
        absent from `specs` removed. With `dry_run` nothing is written.
        """
        duplicates = duplicate_problems(list(enumerate(specs, start=1)))
        if duplicates:
            raise UsageError("; ".join(duplicates))
        keys = {spec.natural_key for spec in specs}
        diff = ImportDiff(dry_run=dry_run)
        with self._db.transaction() as cur:
            cur.execute(_LOCK)
            existing = {c.natural_key: c for c in self._list(cur, enabled_only=False)}
            kept = [c for key, c in existing.items() if not prune and key not in keys]
            _refuse_cluster_conflicts(
                [
                    *_labelled(kept),
                    *((entry_label(i, s.name), s) for i, s in enumerate(specs, start=1)),
                ]
            )
            for spec in specs:
                current = existing.pop(spec.natural_key, None)
                if current is None:
                    diff.added.append(spec)
                    if not dry_run:
                        self._insert(cur, spec)
                elif changes := _changes(current.spec(), spec):
                    diff.updated.append(
                        ConfigUpdate(id=current.id, name=spec.name, changes=changes)
                    )
                    if not dry_run:
                        self._write(cur, current.id, spec)
                else:
                    diff.unchanged.append(current)
            # What is left in `existing` is absent from the import.
            for stale in existing.values() if prune else ():
                diff.removed.append(stale)
                if not dry_run:
                    cur.execute(_DELETE, (stale.id,))
        return diff

    @staticmethod
    def _list(cur: Cursor, *, enabled_only: bool) -> builtins.list[FallbackConfig]:
        cur.execute(_LIST, (enabled_only,))
        return [FallbackConfig.model_validate(row) for row in cur.fetchall()]

    @staticmethod
    def _get(cur: Cursor, config_id: int) -> FallbackConfig:
        cur.execute(_GET, (config_id,))
        row = cur.fetchone()
        if row is None:
            raise _not_found(config_id)
        return FallbackConfig.model_validate(row)

    @staticmethod
    def _insert(cur: Cursor, spec: FallbackConfigSpec) -> FallbackConfig:
        cur.execute(_INSERT, _row(spec))
        row = cur.fetchone()
        assert row is not None  # INSERT ... RETURNING always returns the row
        return FallbackConfig.model_validate(row)

    @staticmethod
    def _write(cur: Cursor, config_id: int, spec: FallbackConfigSpec) -> FallbackConfig:
        cur.execute(_UPDATE, {**_row(spec), "id": config_id})
        row = cur.fetchone()
        if row is None:
            raise _not_found(config_id)
        return FallbackConfig.model_validate(row)

"""`jobfallback db` commands: the schema of the database the store uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from jobfallback.cli.common import (
    DatabaseUrlOption,
    Output,
    OutputOption,
    echo,
    exit_on_error,
    print_json,
    print_table,
    settings_from,
)
from jobfallback.store import Store, open_store
from jobfallback.times import utc_time

app = typer.Typer(no_args_is_help=True, help="Database schema: upgrade and status.")


@contextmanager
def opened_store(database_url: str | None, *, require_schema: bool = True) -> Iterator[Store]:
    """The store named by --database-url / DATABASE_URL (embedded when unset) for one command.

    Store errors raised in the block become one line and their exit code.
    """
    settings = settings_from(database_url=database_url)
    with exit_on_error(), open_store(settings.database_dsn, require_schema=require_schema) as store:
        yield store


@app.command()
def upgrade(database_url: str | None = DatabaseUrlOption) -> None:
    """Apply pending migrations (safe to run again, and from several places at once)."""
    with opened_store(database_url, require_schema=False) as store:
        applied = store.upgrade()
    for label in applied:
        echo(f"applied {label}")
    if not applied:
        echo("schema is current")


@app.command()
def status(database_url: str | None = DatabaseUrlOption, output: Output = OutputOption) -> None:
    """List migrations: applied (with when) or pending."""
    with opened_store(database_url, require_schema=False) as store:
        migrations = store.migration_status()
    if output is Output.json:
        print_json(migrations)
        return
    rows = [
        (
            m.version,
            m.name,
            "applied" if m.applied_at else "pending",
            None if m.applied_at is None else utc_time(m.applied_at),
        )
        for m in migrations
    ]
    print_table(("version", "name", "state", "applied_at"), rows, empty="no migrations")

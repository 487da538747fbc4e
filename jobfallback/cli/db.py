"""`jobfallback db` commands: the schema of the database the store uses."""

from __future__ import annotations

import typer

from jobfallback.cli.common import (
    DatabaseUrlOption,
    Output,
    OutputOption,
    echo,
    opened_store,
    print_json,
    print_table,
    settings_from,
)
from jobfallback.times import utc_time

app = typer.Typer(no_args_is_help=True, help="Database schema: upgrade and status.")


@app.command()
def upgrade(database_url: DatabaseUrlOption = None) -> None:
    """Apply pending migrations (safe to run again, and from several places at once)."""
    with opened_store(settings_from(database_url=database_url), require_schema=False) as store:
        applied = store.upgrade()
    for label in applied:
        echo(f"applied {label}")
    if not applied:
        echo("schema is current")


@app.command()
def status(database_url: DatabaseUrlOption = None, output: OutputOption = Output.text) -> None:
    """List migrations: applied (with when) or pending."""
    with opened_store(settings_from(database_url=database_url), require_schema=False) as store:
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

"""The `jobfallback` command: a thin Typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

from jobfallback import __version__
from jobfallback.cli import configs, configs_api, db, doctor, sandbox, sweep

app = typer.Typer(
    name="jobfallback",
    help="Move TrueFoundry job runs stuck in CREATED to a fallback cluster/workspace.",
    no_args_is_help=True,
    # Tokens live in locals: never print them in a traceback.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
configs.app.command("validate")(configs_api.validate)
configs.app.command("backfill-fqn")(configs_api.backfill_fqn)
app.add_typer(configs.app, name="configs")
app.add_typer(db.app, name="db")
app.add_typer(sandbox.app, name="sandbox")
app.command("sweep")(sweep.sweep)
app.command("history")(sweep.history)
app.command("doctor")(doctor.doctor)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Move TrueFoundry job runs stuck in CREATED to a fallback cluster/workspace."""


def main() -> None:
    app()

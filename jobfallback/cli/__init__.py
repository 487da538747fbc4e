"""The `jobfallback` command: a thin Typer app; each command group lives in its own module.

The commands are loaded only when one runs: `jobfallback --help` lists them from SUMMARIES
without importing httpx, psycopg, pydantic and the rest (most of the start-up time).
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from jobfallback import __version__

# name -> the first line of the command's own help (a test keeps the two equal).
SUMMARIES = {
    "sweep": "Run one pass: move runs stuck in CREATED to their fallback destination, then exit.",
    "history": "List the move journal: what moved where, when, its state and any error.",
    "moves": "Failed, parked and unfinished moves: list them, show one, retry or abandon it.",
    "doctor": "Check settings, token, API and database; one line per check; exit 1 when any fails.",
    "configs": "Fallback configs: which source falls back where.",
    "db": "Database schema: upgrade and status.",
    "sandbox": "A TrueFoundry-compatible control plane on loopback, for demos and tests.",
}


class _LazyGroup(TyperGroup):
    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:  # noqa: ARG002
        return list(SUMMARIES)

    def get_command(self, ctx: Any, cmd_name: str) -> TyperCommand | None:  # noqa: ARG002
        if cmd_name not in SUMMARIES:
            return None
        if self._listing:
            return TyperCommand(cmd_name, short_help=SUMMARIES[cmd_name])
        from jobfallback.cli.commands import load

        return load(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # the listing needs names and summaries only
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="jobfallback",
    cls=_LazyGroup,
    # Plain help for the listing: rich's help renderer alone imports in ~0.3 s (markdown_it);
    # each command's own --help is still rendered by rich.
    rich_markup_mode=None,
    help="Move TrueFoundry job runs stuck in CREATED to a fallback cluster/workspace.",
    no_args_is_help=True,
    # Tokens live in locals: never print them in a traceback.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


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

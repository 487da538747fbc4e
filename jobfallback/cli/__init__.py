"""The `jobfallback` command: a thin Typer app; each command group lives in its own module.

The commands are loaded only when one runs: `jobfallback --help` lists them from SUMMARIES
without importing httpx, psycopg, pydantic and the rest (most of the start-up time).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from jobfallback import __version__

# name -> the first line of the command's own help (a test keeps the two equal).
SUMMARIES = {
    "sweep": "Run one pass: move runs stuck in CREATED to their fallback destination, then exit.",
    "history": "List the move journal: what moved where, when, its state and any error.",
    "explain": "Why a run was (not) moved: a sweep's decision now and its journal.",
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

    def make_context(self, info_name: Any, args: list[str], *a: Any, **kw: Any) -> Any:
        self._args = list(args)
        return super().make_context(info_name, args, *a, **kw)

    def invoke(self, ctx: Any) -> Any:
        """A usage error (a bad flag) of a sweep whose logs are JSON lines is one JSON event,
        like every other line such a sweep writes to stderr; any other command, or text logs,
        get click's usual message."""
        # click's ClickException as typer raises it (recent typer vendors its own click).
        click_exception: type[Exception] = next(
            c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
        )
        try:
            return super().invoke(ctx)
        except click_exception as raised:
            if not _json_sweep(getattr(self, "_args", [])):
                raise
            exc: Any = raised  # format_message and exit_code: a ClickException's
            from jobfallback.cli.common import log_failure
            from jobfallback.logs import setup_logging

            setup_logging("json")
            log_failure(exc.format_message(), exc.exit_code)
            raise typer.Exit(exc.exit_code) from None

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # the listing needs names and summaries only
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _json_sweep(args: list[str]) -> bool:
    """Whether these arguments run a sweep whose logs are JSON lines (`--log-format json`, or
    `auto`, the default, off a terminal)."""
    if not args or args[0] != "sweep":
        return False
    fmt = "auto"
    for index, arg in enumerate(args[1:], start=1):
        if arg == "--":
            break
        if arg == "--log-format" and index + 1 < len(args):
            fmt = args[index + 1]
        elif arg.startswith("--log-format="):
            fmt = arg.partition("=")[2]
    from jobfallback.logs import resolve_json

    return resolve_json(fmt)


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


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Move TrueFoundry job runs stuck in CREATED to a fallback cluster/workspace."""
    from jobfallback.logs import setup_logging

    # Every command's events (a retried API call, a deprecated setting, the embedded database
    # started) read the same way: text lines for the person at the terminal, warnings and up.
    # A sweep sets its own up again, from --log-format, at info.
    setup_logging("text", logging.WARNING)


def main() -> None:
    app()

"""Builds one command on demand. The top-level group (cli/__init__.py) calls `load` only for the
command that runs, so `jobfallback --help` loads none of them and `jobfallback sweep` does not
load the config, database or sandbox commands."""

from __future__ import annotations

import gc
from typing import Any

import typer
from typer.core import TyperCommand


def _register(app: typer.Typer, name: str) -> None:
    # Imports stay inside the branches: each command pays only for its own module.
    if name in ("sweep", "history"):
        from jobfallback.cli import sweep

        app.command(name)(getattr(sweep, name))
    elif name == "explain":
        from jobfallback.cli import explain

        app.command(name)(explain.explain)
    elif name == "moves":
        from jobfallback.cli import moves

        app.add_typer(moves.app, name=name)
    elif name == "doctor":
        from jobfallback.cli import doctor

        app.command(name)(doctor.doctor)
    elif name == "configs":
        from jobfallback.cli import configs

        app.add_typer(configs.app, name=name)
    elif name == "db":
        from jobfallback.cli import db

        app.add_typer(db.app, name=name)
    elif name == "sandbox":
        from jobfallback.cli import sandbox

        app.add_typer(sandbox.app, name=name)
    else:
        raise KeyError(name)


def _plain(command: Any) -> None:
    """Every command's --help in the top-level listing's style: click's plain layout (rich's
    renderer is slow to import, and boxes cut long option names at 80 columns), a listed
    subcommand with its help's whole first paragraph, never cut short at click's 45 characters."""
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        if sub.short_help is None and sub.help:
            sub.short_help = " ".join(sub.help.split("\n\n")[0].split())
        _plain(sub)


def load(name: str) -> TyperCommand:
    """The click command for `name` (one of cli.SUMMARIES)."""
    app = typer.Typer(add_completion=False)
    _register(app, name)
    command: TyperCommand = typer.main.get_group(app).commands[name]  # type: ignore[assignment]
    _plain(command)
    # The modules just imported live until exit: moved out of the collector's reach, they are
    # not walked again by each full collection nor by the one at exit (~70 ms for a sweep).
    gc.freeze()
    return command

"""Every command, built together. The top-level group (cli/__init__.py) imports this module only
when a command runs, so `jobfallback --help` never loads httpx, psycopg or pydantic."""

from __future__ import annotations

import typer
from typer.core import TyperCommand

from jobfallback.cli import configs, configs_api, db, doctor, sandbox, sweep

configs.app.command("validate")(configs_api.validate)
configs.app.command("backfill-fqn")(configs_api.backfill_fqn)

_app = typer.Typer(add_completion=False)
_app.command("sweep")(sweep.sweep)
_app.command("history")(sweep.history)
_app.command("doctor")(doctor.doctor)
_app.add_typer(configs.app, name="configs")
_app.add_typer(db.app, name="db")
_app.add_typer(sandbox.app, name="sandbox")

commands: dict[str, TyperCommand] = typer.main.get_group(_app).commands  # type: ignore[assignment]

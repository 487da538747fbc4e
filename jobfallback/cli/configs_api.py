"""`jobfallback configs validate` and `configs backfill-fqn`: the config commands that ask the API.

They act as the person running them: TF_USER_API_TOKEN, falling back to TF_SERVICE_API_TOKEN.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from jobfallback.cli.common import (
    DatabaseUrlOption,
    HostOption,
    Output,
    OutputOption,
    api_client,
    echo,
    exit_on_error,
    fail,
    print_json,
    print_table,
    require_host,
    settings_from,
)
from jobfallback.settings import Settings
from jobfallback.store import open_store
from jobfallback.truefoundry import TrueFoundryClient
from jobfallback.validate import Problem, find_missing_fqns, validate_configs

T = TypeVar("T")


def _with_client(settings: Settings, work: Callable[[TrueFoundryClient], Awaitable[T]]) -> T:
    token = settings.user_token
    if token is None:
        raise fail("no API token: set TF_USER_API_TOKEN (or TF_SERVICE_API_TOKEN)", 2)
    host = require_host(settings)

    async def run() -> T:
        async with api_client(settings, token, host) as client:
            return await work(client)

    return asyncio.run(run())


def _print_problems(problems: list[Problem]) -> None:
    print_table(
        ["config", "field", "problem"],
        [[p.config_id, p.field, p.message] for p in problems],
        empty="",
    )


def validate(
    output: Output = OutputOption,
    host: str | None = HostOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Check every config against the API; print a table of problems; exit 1 when any."""
    settings = settings_from(tfy_host=host, database_url=database_url)
    with exit_on_error():
        with open_store(settings.database_dsn) as store:
            configs = store.configs.list()
        problems = _with_client(settings, lambda c: validate_configs(c, configs))
    if output == Output.json:
        print_json(
            [{"configId": p.config_id, "field": p.field, "message": p.message} for p in problems]
        )
    elif problems:
        _print_problems(problems)
    else:
        echo(f"All {len(configs)} configs are valid.")
    raise typer.Exit(1 if problems else 0)


def backfill_fqn(
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be written."),
    host: str | None = HostOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Fill missing destination workspace FQNs from the API (legacy configs)."""
    settings = settings_from(tfy_host=host, database_url=database_url)
    with exit_on_error(), open_store(settings.database_dsn) as store:
        configs = store.configs.list()
        found, problems = _with_client(settings, lambda c: find_missing_fqns(c, configs))
        for config_id, fqn in sorted(found.items()):
            if not dry_run:
                store.configs.set_destination_fqn(config_id, fqn)
            echo(f"{'would set' if dry_run else 'set'} config {config_id} FQN to {fqn}")
    if problems:
        _print_problems(problems)
        raise typer.Exit(1)
    if not found:
        echo("No config lacks a destination FQN.")

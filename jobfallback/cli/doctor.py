"""`jobfallback doctor`: is this installation ready to sweep? One line per check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import typer

from jobfallback.cli.common import DatabaseUrlOption, HostOption, api_client, echo
from jobfallback.errors import JobFallbackError
from jobfallback.settings import Settings, load_settings
from jobfallback.store import open_store

Check = Callable[[Settings], str]


def _token(settings: Settings) -> str:
    if settings.service_token is None:
        raise JobFallbackError("TF_SERVICE_API_TOKEN is not set: sweeps will be skipped")
    user = "set" if settings.tf_user_api_token else "unset (config commands use the service token)"
    return f"TF_SERVICE_API_TOKEN set; TF_USER_API_TOKEN {user}"


def _api(settings: Settings) -> str:
    if settings.tfy_host is None:
        raise JobFallbackError("TFY_HOST is not set")
    if settings.service_token is None:
        raise JobFallbackError("no token to call the API with")
    host, token = settings.tfy_host, settings.service_token

    async def probe() -> None:
        async with api_client(settings, token, host, concurrency=1) as client:
            async for _ in client.list_workspaces():
                break

    asyncio.run(probe())
    return f"{host} reachable, token accepted"


def _database(settings: Settings) -> str:
    with open_store(settings.database_dsn) as store:
        pending = [m for m in store.migration_status() if m.applied_at is None]
    if pending:
        raise JobFallbackError(f"{len(pending)} migration(s) pending: run `jobfallback db upgrade`")
    where = "DATABASE_URL" if settings.database_dsn else "embedded PostgreSQL"
    return f"{where} reachable, schema current"


def doctor(
    host: str | None = HostOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Check settings, token, API and database; one line per check; exit 1 when any fails."""
    try:
        settings = load_settings(tfy_host=host, database_url=database_url)
    except JobFallbackError as exc:
        echo(f"FAIL settings: {exc}")
        raise typer.Exit(1) from None
    echo(
        f"ok   settings: enabled={settings.job_fallback_enabled}, "
        f"threshold={settings.job_fallback_stuck_threshold_minutes} min"
    )
    checks: dict[str, Check] = {"token": _token, "api": _api, "database": _database}
    failed = 0
    for name, check in checks.items():
        try:
            echo(f"ok   {name}: {check(settings)}")
        except JobFallbackError as exc:
            failed += 1
            echo(f"FAIL {name}: {exc}")
    raise typer.Exit(1 if failed else 0)

"""`jobfallback doctor`: is this installation ready to sweep? One line per check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import typer

from jobfallback.cli.common import DatabaseUrlOption, HostOption, api_client, echo
from jobfallback.errors import JobFallbackError
from jobfallback.settings import Settings, settings_with_problems
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
    # Not cli.common.opened_store: a store that cannot be opened fails this check, not the
    # command, which goes on to report every other check.
    with open_store(settings.database_dsn) as store:
        pending = [m for m in store.migration_status() if m.applied_at is None]
    if pending:
        raise JobFallbackError(f"{len(pending)} migration(s) pending: run `jobfallback db upgrade`")
    where = "DATABASE_URL" if settings.database_dsn else "embedded PostgreSQL"
    return f"{where} reachable, schema current"


def _effective(settings: Settings) -> str:
    """Every setting a sweep acts on, written as its variable would be (secrets as set/unset)."""
    values = settings.masked().items()
    return " ".join(f"{name}={str(v).lower() if isinstance(v, bool) else v}" for name, v in values)


# The settings each check needs: one of them invalid fails that check, not the others.
_NEEDS = {
    "token": ("tf_service_api_token", "tf_user_api_token"),
    "api": ("tfy_host", "tf_service_api_token", "job_fallback_http_timeout_seconds"),
    "database": ("database_url",),
}


def doctor(host: HostOption = None, database_url: DatabaseUrlOption = None) -> None:
    """Check settings, token, API and database; one line per check; exit 1 when any fails."""
    try:
        settings, problems = settings_with_problems(tfy_host=host, database_url=database_url)
    except JobFallbackError as exc:  # not a setting's value: nothing else can be checked
        echo(f"FAIL settings: {exc}")
        raise typer.Exit(1) from None
    failed = len(problems)
    for problem in problems.values():
        echo(f"FAIL settings: {problem}")
    if not problems:
        echo(f"ok   settings: {_effective(settings)}")
    checks: dict[str, Check] = {"token": _token, "api": _api, "database": _database}
    for name, check in checks.items():
        bad = [field.upper() for field in _NEEDS[name] if field in problems]
        try:
            if bad:
                raise JobFallbackError(f"not checked: {', '.join(bad)} is invalid")
            echo(f"ok   {name}: {check(settings)}")
        except JobFallbackError as exc:
            failed += 1
            echo(f"FAIL {name}: {exc}")
    raise typer.Exit(1 if failed else 0)

"""Pieces every command shares: output format, settings from flags, rendering, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import annotated_types
import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from jobfallback.errors import JobFallbackError
from jobfallback.printable import escape
from jobfallback.settings import Settings, load_settings
from jobfallback.truefoundry import TrueFoundryClient

if TYPE_CHECKING:
    from jobfallback.store import Store

E = TypeVar("E", bound=StrEnum)


def whole_number(what: str, *, minimum: int | None = None) -> Callable[[Any], int]:
    """A parser for an int flag whose error is plain words (typer's own quotes pydantic)."""

    def parse(value: Any) -> int:
        if isinstance(value, int):
            return value
        try:
            number: int | None = int(str(value).strip())
        except ValueError:
            number = None
        if number is None or (minimum is not None and number < minimum):
            raise typer.BadParameter(f"{value!r} is not {what}")
        return number

    return parse


def whole_range(field: FieldInfo) -> str:
    """The range of a model's int field as a message says it, e.g. `1 to 525600`: from its
    own bounds, so they are written once."""
    low = next(rule.ge for rule in field.metadata if isinstance(rule, annotated_types.Ge))
    high = next(rule.le for rule in field.metadata if isinstance(rule, annotated_types.Le))
    return f"{low} to {high}"


def one_of(kind: type[E]) -> Callable[[Any], E]:
    """A parser for an enum flag whose error lists the choices in plain words."""

    def parse(value: Any) -> E:
        if isinstance(value, kind):
            return value
        try:
            return kind(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not one of {choices(kind, ', ')}") from None

    return parse


def choices(kind: type[StrEnum], separator: str = "|") -> str:
    """An enum's values as --help shows them (a parser hides typer's own list)."""
    return separator.join(member.value for member in kind)


def choice(kind: type[E]) -> dict[str, Any]:
    """The typer.Option arguments of an enum option: its choices in --help as click shows
    them, and a wrong value one plain line naming them."""
    return {"parser": one_of(kind), "metavar": f"[{choices(kind)}]"}


class Output(StrEnum):
    text = "text"
    json = "json"


OutputOption = Annotated[
    Output,
    typer.Option("--output", "-o", **choice(Output), help="text for people, json for scripts."),
]


def _no_password(value: str | None) -> str | None:
    """A flag shows in the process list: a URL with a password belongs in DATABASE_URL."""
    if value is None:
        return None
    from jobfallback.store import dsn

    try:
        params = dsn.parse(value)
    except dsn.DsnError as exc:
        raise typer.BadParameter(str(exc)) from None
    if params.get("password"):
        raise typer.BadParameter(
            "must not carry a password (flags show in the process list); "
            "set DATABASE_URL instead, or keep the password in PGPASSWORD or ~/.pgpass"
        )
    return value


DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        callback=_no_password,
        help="PostgreSQL URL without a password (env DATABASE_URL, which may hold one; "
        "unset: embedded PostgreSQL).",
    ),
]
HostOption = Annotated[
    str | None,
    typer.Option("--host", metavar="URL", help="TrueFoundry control-plane URL (env TFY_HOST)."),
]


def require_host(settings: Settings) -> str:
    """The control-plane URL, or exit 2 saying how to set it."""
    if settings.tfy_host is None:
        raise fail("TFY_HOST is not set; set it (or --host) to the control-plane URL", 2)
    return settings.tfy_host


def api_client(
    settings: Settings, token: str, host: str, *, concurrency: int | None = None
) -> TrueFoundryClient:
    """The API client every command uses, with the configured read timeout and, unless
    `concurrency` says otherwise, the configured concurrency."""
    return TrueFoundryClient(
        host,
        token,
        concurrency=settings.job_fallback_concurrency if concurrency is None else concurrency,
        read_timeout=settings.job_fallback_http_timeout_seconds,
    )


def settings_from(*, for_sweep: bool = False, **overrides: Any) -> Settings:
    """Load settings with flag overrides; a bad value exits 2 with one line. Only a sweep
    (`for_sweep`) is stopped by a bad sweep-only setting; other commands never read them."""
    with exit_on_error():
        return load_settings(for_sweep=for_sweep, **overrides)


def echo(text: str, *, err: bool = False) -> None:
    """Print our own (possibly multi-line) text; any unsafe character a value brought along
    (an API name, an error text) is shown escaped, never obeyed by the terminal."""
    typer.echo(escape(text, keep_newlines=True), err=err)


def fail(message: str, code: int) -> typer.Exit:
    """The exit `code`, once the error is told: one `error: ...` line, or, where the logs are
    JSON lines (a sweep's), one `command.failed` event, so every stderr line stays JSON."""
    from jobfallback.logs import json_lines

    if json_lines():
        log_failure(message, code)
    else:
        echo(f"error: {escape(message)}", err=True)
    return typer.Exit(code)


def log_failure(message: str, code: int) -> None:
    """A command that cannot go on, as the JSON event `command.failed` (error, exit code)."""
    import logging

    from jobfallback.logs import event, get_logger

    event(
        get_logger("cli"),
        logging.ERROR,
        "command.failed",
        "the command could not go on",
        error=message,
        exit_code=code,
    )


@contextmanager
def opened_store(settings: Settings, *, require_schema: bool = True) -> Iterator[Store]:
    """The store the settings name (embedded when DATABASE_URL is unset), the one way a command
    opens it: a store error, or any JobFallbackError raised in the block, becomes one line and
    its exit code."""
    # Imported here: psycopg loads only for a command that opens the store.
    from jobfallback.store import open_store

    with exit_on_error(), open_store(settings.database_dsn, require_schema=require_schema) as store:
        yield store


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn a JobFallbackError into its one-line message and exit code.

    typer.Exit is not a JobFallbackError, so it passes through untouched.
    """
    try:
        yield
    except JobFallbackError as exc:
        raise fail(str(exc), exc.exit_code) from None


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    """A plain aligned table: readable in a terminal and in CI logs alike."""
    if not rows:
        echo(empty)
        return
    # Each cell is one value on one line: a line break in it is escaped too.
    cells = [[("-" if c is None else escape(str(c))) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

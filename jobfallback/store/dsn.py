"""DATABASE_URL read once, by libpq's own parser, so what is checked, masked and connected to
is the same thing.

A generic URL parser and libpq split a URL with an un-encoded `@`, `/`, `?` or `#` in its
password differently (libpq takes `postgresql://u:pa@ss@db/x` as host `ss@db`), so a message
built from one reading showed part of the password that the other reading connected with.
Such a URL is refused with a line that says to percent-encode; every message names the server
by the host, port and database libpq parsed, never the user or the password.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import conninfo

SCHEMES = ("postgresql", "postgres")
ENCODE_HINT = (
    "percent-encode reserved characters in the user name and password "
    "(@ as %40, / as %2F, ? as %3F, # as %23, : as %3A)"
)


class DsnError(ValueError):
    """A DATABASE_URL that cannot be used; the message never quotes the URL."""


def _generic_reading(dsn: str) -> tuple[str, str] | None:
    """(user, password) as a generic URL parser reads them; None when it cannot."""
    try:
        parts = urlsplit(dsn)
        parts.port  # noqa: B018  (raises where a password piece landed in the port)
    except ValueError:
        return None
    return unquote(parts.username or ""), unquote(parts.password or "")


def parse(dsn: str) -> dict[str, str]:
    """libpq's reading of a postgresql:// URL; DsnError when it is not one, or when a generic
    URL parser would read its user or password differently."""
    try:
        scheme = urlsplit(dsn).scheme
    except ValueError:
        raise DsnError("not a valid PostgreSQL URL") from None
    if scheme not in SCHEMES:
        raise DsnError("not a postgresql:// URL")
    try:
        params = {k: str(v) for k, v in conninfo.conninfo_to_dict(dsn).items() if v is not None}
    except psycopg.ProgrammingError:
        raise DsnError("not a valid PostgreSQL URL") from None
    # An "@" past the user info is a password's "@" (or "/" before it) left un-encoded.
    stray = any("@" in params.get(key, "") for key in ("host", "hostaddr", "port", "dbname"))
    if not stray and not all(p.isdigit() for p in params.get("port", "").split(",") if p):
        raise DsnError("bad port")
    libpq = (params.get("user", ""), params.get("password", ""))
    if stray or _generic_reading(dsn) != libpq:
        raise DsnError(f"the URL reads two ways; {ENCODE_HINT}")
    return params


def target(params: dict[str, str]) -> str:
    """`host:port` for messages: never the user or the password."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}"


def masked(dsn: str) -> str:
    """The URL as logs show it, rebuilt from libpq's reading: host, port and database only."""
    params = parse(dsn)
    return f"postgresql://{target(params)}/{params.get('dbname', '')}"

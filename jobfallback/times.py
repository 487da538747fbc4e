"""How every command prints a time: one format, in UTC, to the second."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_time(value: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS UTC` (a naive time is taken as UTC already)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

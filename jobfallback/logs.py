"""Logging: one line per event; JSON when stderr is not a terminal, readable text when it is.

Every line is one event, logged with `event(logger, level, key, message, **fields)`, the one
way to log:

- `key` is the event's stable name, `area.what` in snake_case (`sweep.started`, `move.done`,
  `source.failed`): what a collector filters and alerts on. The README lists them.
- `message` is a fixed sentence for people: it never embeds values, which go in `fields`.
- `fields` are snake_case keys with JSON values (anything else is rendered with `str`).

A JSON line holds `ts`, `level`, `event`, `logger` and `msg`, then the fields; a field can never
overwrite one of those (it is kept as `field_<name>` instead). Secrets are never passed as
fields (settings are masked first). Text from the API (names, error texts) may hold terminal
escape sequences: JSON lines escape every control and non-ASCII character, and the text format
shows them escaped (jobfallback.printable).

The JSON rendering is the standard library's `json.dumps` on purpose: it gives exactly one line
per event whatever the values hold, in a fixed key order. python-json-logger's main service,
turning a record's `extra` attributes into keys while skipping LogRecord's own, does not apply
(the fields travel in one `fields` dict), and guarding `ts`/`level`/`event` against a field
would still be ours to write; structlog would replace the logging pipeline and every call site
for what `event` already does. Neither would remove code here, and each adds a dependency and
an import to every start (kept small: see cli/__init__.py).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from jobfallback.printable import escape

LogFormat = Literal["auto", "json", "text"]
LOGGER_NAME = "jobfallback"
# Keys every JSON line has; a field of the same name is renamed, never written over them.
RESERVED = ("ts", "level", "event", "logger", "msg", "exc")
# The event of a record logged without `event` (a library's warning routed to our handler).
UNNAMED = "log.record"


def _payload(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "event": getattr(record, "event", UNNAMED),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in getattr(record, "fields", {}).items():
        payload[f"field_{key}" if key in RESERVED else key] = value
    if record.exc_info:
        payload["exc"] = formatter.formatException(record.exc_info)
    return payload


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # No indent: every newline inside a value is escaped, so one event is one line.
        return json.dumps(_payload(record, self), default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = " ".join(f"{k}={escape(str(v))}" for k, v in fields.items())
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{ts} {record.levelname:<7} {escape(record.getMessage())}"
        line = f"{line} {extra}" if extra else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


_json = False  # what the last setup_logging chose


def setup_logging(fmt: LogFormat = "auto", level: int = logging.INFO) -> None:
    global _json
    _json = resolve_json(fmt)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if _json else TextFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    # A library's warning (warnings.warn), or a record of a library's logger nobody handles
    # (asyncio's "Task exception was never retrieved"), would print as plain text: route them
    # here too. (Under a test runner the root logger has handlers: the last resort is unused.)
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.handlers[:] = [handler]
    warnings_logger.propagate = False
    last_resort = _StderrHandler(logging.WARNING)
    last_resort.setFormatter(handler.formatter)
    logging.lastResort = last_resort


def resolve_json(fmt: str) -> bool:
    """Whether a log format means JSON lines: `json`, or `auto` off a terminal."""
    return fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())


def json_lines() -> bool:
    """Whether the logs were set up as JSON lines (then every stderr line must be one)."""
    return _json and bool(logging.getLogger(LOGGER_NAME).handlers)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


def event(
    logger: logging.Logger,
    level: int,
    key: str,
    message: str,
    /,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    """Log the event `key` (e.g. `move.done`) with a fixed `message` and structured fields;
    `exc_info=True` adds the exception being handled (its traceback, in `exc`)."""
    logger.log(level, message, exc_info=exc_info, extra={"event": key, "fields": fields})

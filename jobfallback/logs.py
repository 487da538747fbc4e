"""Logging: one line per event; JSON when stderr is not a terminal, readable text when it is.

Every record may carry structured fields via `extra={"fields": {...}}`; they are rendered as
JSON keys or as `key=value` pairs. Secrets are never passed as fields (settings are masked first).
Text from the API (names, error texts) may hold terminal escape sequences: JSON lines escape every
control and non-ASCII character, and the text format shows them escaped (jobfallback.printable).
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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = " ".join(f"{k}={escape(str(v))}" for k, v in fields.items())
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{ts} {record.levelname:<7} {escape(record.getMessage())}"
        return f"{line} {extra}" if extra else line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(fmt: LogFormat = "auto", level: int = logging.INFO) -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


def event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """Log one event with structured fields."""
    logger.log(level, msg, extra={"fields": fields})

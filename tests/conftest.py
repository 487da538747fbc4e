"""Shared fixtures. Each fixture family lives in tests/fixtures/ and is registered here."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from jobfallback.logs import LOGGER_NAME

pytest_plugins = ["tests.fixtures.secrets", "tests.fixtures.db", "tests.fixtures.sandbox"]

# Every variable the code reads: tests start from a clean environment.
_APP_ENV = (
    "TF_SERVICE_API_TOKEN",
    "TF_USER_API_TOKEN",
    "JOB_FALLBACK_ENABLED",
    "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES",
    "JOB_FALLBACK_CONCURRENCY",
    "JOB_FALLBACK_HTTP_TIMEOUT_SECONDS",
    "TFY_HOST",
    "DATABASE_URL",
    "JOBFALLBACK_DATA_DIR",
    # A developer's own Pushgateway or Slack webhook must never hear from a test's sweep.
    "JOB_FALLBACK_PUSHGATEWAY_URL",
    "JOB_FALLBACK_METRICS_FILE",
    "JOB_FALLBACK_METRICS_INSTANCE",
    "JOB_FALLBACK_WEBHOOK_URL",
    "JOB_FALLBACK_WEBHOOK_FORMAT",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _APP_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Commands run in-process configure the jobfallback logger; undo it after each test."""
    yield
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)

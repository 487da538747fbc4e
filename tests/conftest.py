"""Shared fixtures. Each fixture family lives in tests/fixtures/ and is registered here."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from jobfallback.logs import LOGGER_NAME

pytest_plugins = [
    "tests.fixtures.secrets",
    "tests.fixtures.db",
    "tests.fixtures.sandbox",
    "tests.fixtures.moves",
]

# Every variable the code reads (all of JOB_FALLBACK_*, and the proxy variables httpx honours):
# tests start from a clean environment, and a developer's own Pushgateway, Slack webhook or
# proxy never hears from a test's sweep.
_APP_ENV = (
    "TF_SERVICE_API_TOKEN",
    "TF_USER_API_TOKEN",
    "TFY_HOST",
    "DATABASE_URL",
    "JOBFALLBACK_DATA_DIR",
    "JOB_COMPLETION_INDEX",  # set by an Indexed Job: a shard's index
)
_PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name in _APP_ENV or name.startswith("JOB_FALLBACK_") or name.lower() in _PROXY_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Commands run in-process configure the jobfallback logger; undo it after each test."""
    yield
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)

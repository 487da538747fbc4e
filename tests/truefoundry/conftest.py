"""Fixtures for the TrueFoundry client tests: a client factory, recorded backoff waits, logs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from jobfallback.logs import LOGGER_NAME
from jobfallback.truefoundry import TrueFoundryClient, retry
from tests.truefoundry.payloads import HOST, TOKEN


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff waits the client asked for; nothing sleeps for real."""
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(retry, "sleep", record)
    return recorded


@pytest.fixture
def make_client() -> Callable[..., TrueFoundryClient]:
    def make(**options: Any) -> TrueFoundryClient:
        return TrueFoundryClient(HOST, TOKEN, **options)

    return make


@pytest.fixture
def logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """caplog at DEBUG, even if another test in this worker ran setup_logging (no propagation)."""
    monkeypatch.setattr(logging.getLogger(LOGGER_NAME), "propagate", True)
    caplog.set_level(logging.DEBUG)
    return caplog

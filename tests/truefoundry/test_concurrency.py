"""The semaphore bounds the requests in flight, however many calls are started at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from jobfallback.truefoundry import TrueFoundryClient
from tests.truefoundry.payloads import HOST, TOKEN, workspace

pytestmark = pytest.mark.anyio


class InFlightTracker(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        for _ in range(10):  # yield so every other started call gets its chance to enter
            await asyncio.sleep(0)
        self.in_flight -= 1
        return httpx.Response(200, json={"data": workspace()})


async def test_requests_in_flight_never_exceed_concurrency() -> None:
    tracker = InFlightTracker()
    async with TrueFoundryClient(HOST, TOKEN, concurrency=3, transport=tracker) as client:
        await asyncio.gather(*(client.get_workspace(f"ws-{i}") for i in range(12)))
        assert client.calls["get_workspace"] == 12
    assert tracker.peak == 3

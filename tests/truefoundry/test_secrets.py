"""The token never shows: not in errors, reprs or log lines, whatever the server sends back."""

from __future__ import annotations

import httpx
import pytest
from pytest_httpx import HTTPXMock

from jobfallback.truefoundry import ApiError, RetryPolicy
from tests.truefoundry.payloads import API, HOST, TOKEN, error

pytestmark = pytest.mark.anyio

APP = f"{API}/apps/app-1"


async def test_the_token_is_never_shown(
    httpx_mock: HTTPXMock, make_client, logs: pytest.LogCaptureFixture
) -> None:
    # A proxy that echoes the request headers back, in a retried and a final failure.
    echo = f"denied: Authorization: Bearer {TOKEN}"
    httpx_mock.add_response(url=APP, status_code=503, text=echo)
    httpx_mock.add_response(url=APP, status_code=403, json=error(403, echo))
    httpx_mock.add_exception(
        httpx.ConnectError(f"refused {TOKEN}"), url=f"{API}/apps/app-2", is_reusable=True
    )
    errors: list[ApiError] = []
    async with make_client(retry=RetryPolicy(max_attempts=2)) as client:
        for app_id in ("app-1", "app-2"):
            with pytest.raises(ApiError) as caught:
                await client.get_application(app_id)
            errors.append(caught.value)
        shown = [repr(client), str(client)]
    shown += [text for exc in errors for text in (str(exc), repr(exc), exc.message)]
    logged = [f"{r.getMessage()} {r.__dict__.get('fields')}" for r in logs.records]
    shown += [logs.text, *logged]
    assert errors[0].status == 403
    assert "denied: Authorization: Bearer ***" in errors[0].message
    assert any("GET /api/svc/v1/apps/app-1" in line for line in logged)
    assert all(TOKEN not in text for text in shown)
    assert HOST in repr(client)

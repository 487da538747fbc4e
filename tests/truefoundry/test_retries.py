"""Which failures are retried, how long the client waits, and what surfaces at the end."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from pytest_httpx import HTTPXMock

from jobfallback.truefoundry import (
    ApiError,
    AuthError,
    BadResponse,
    ConflictError,
    NotFoundError,
    RateLimited,
    RetryPolicy,
    ServerError,
    TransportError,
)
from jobfallback.truefoundry.retry import parse_retry_after
from tests.truefoundry.payloads import API, application, error, job_run

pytestmark = pytest.mark.anyio

APP = f"{API}/apps/app-1"
TRIGGER = f"{API}/jobs/trigger"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_a_retryable_status_then_success(
    httpx_mock: HTTPXMock, make_client, waits: list[float], status: int
) -> None:
    httpx_mock.add_response(url=APP, status_code=status, json=error(status, "busy"))
    httpx_mock.add_response(url=APP, json={"data": application()})
    async with make_client() as client:
        app = await client.get_application("app-1")
        assert app.id == "app-1"
        assert client.calls["get_app"] == 2
        assert client.retries["get_app"] == 1
    assert len(waits) == 1


async def test_each_attempt_and_retry_is_logged(
    httpx_mock: HTTPXMock, make_client, logs: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(url=APP, status_code=503, json=error(503, "busy"))
    httpx_mock.add_response(url=APP, json={"data": application()})
    async with make_client() as client:
        await client.get_application("app-1")
    mine = [r for r in logs.records if r.name == "jobfallback.truefoundry"]
    requests = [
        (r.fields["request"], r.fields["status"], r.fields["attempt"])  # type: ignore[attr-defined]
        for r in mine
        if r.levelno == logging.DEBUG
    ]
    assert requests == [
        ("GET /api/svc/v1/apps/app-1", 503, 1),
        ("GET /api/svc/v1/apps/app-1", 200, 2),
    ]
    retries = [r for r in mine if r.levelno == logging.WARNING]
    assert [r.__dict__["event"] for r in retries] == ["api.retry"]
    assert "503 Service Unavailable: busy" in retries[0].__dict__["fields"]["error"]


@pytest.mark.parametrize(
    "fault",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadError("connection reset by peer"),
    ],
    ids=lambda exc: type(exc).__name__,
)
async def test_a_transport_fault_then_success(
    httpx_mock: HTTPXMock, make_client, fault: Exception
) -> None:
    httpx_mock.add_exception(fault, url=APP)
    httpx_mock.add_response(url=APP, json={"data": application()})
    async with make_client() as client:
        assert (await client.get_application("app-1")).id == "app-1"
        assert client.retries["get_app"] == 1


async def test_an_unparseable_success_body_then_success(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(url=APP, text="<html>proxy hiccup</html>")
    httpx_mock.add_response(url=APP, json={"data": application()})
    async with make_client() as client:
        assert (await client.get_application("app-1")).id == "app-1"
        assert client.calls["get_app"] == 2


async def test_an_unparseable_success_body_every_time_is_a_bad_response(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(url=APP, text="not json", is_reusable=True)
    async with make_client(retry=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(BadResponse, match="body is not JSON") as caught:
            await client.get_application("app-1")
        assert caught.value.status == 200
        assert client.calls["get_app"] == 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "120"}, 10.0),  # capped at max_backoff
    ],
)
@pytest.mark.parametrize("status", [429, 503])
async def test_the_server_asked_wait_is_honoured(
    httpx_mock: HTTPXMock,
    make_client,
    waits: list[float],
    headers: dict[str, str],
    expected: float,
    status: int,
) -> None:
    httpx_mock.add_response(
        url=APP, status_code=status, headers=headers, json=error(status, "slow")
    )
    httpx_mock.add_response(url=APP, json={"data": application()})
    async with make_client() as client:
        await client.get_application("app-1")
    assert waits == [expected]


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    headers = httpx.Headers({"Retry-After": "Wed, 01 May 2024 12:00:07 GMT"})
    assert parse_retry_after(headers, now) == 7.0
    past = httpx.Headers({"Retry-After": "Wed, 01 May 2024 11:00:00 GMT"})
    assert parse_retry_after(past, now) == 0.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"}), now) is None
    assert parse_retry_after(httpx.Headers(), now) is None


async def test_without_a_hint_the_wait_is_jittered_exponential(
    httpx_mock: HTTPXMock, make_client, waits: list[float]
) -> None:
    httpx_mock.add_response(url=APP, status_code=503, is_reusable=True)
    policy = RetryPolicy(max_attempts=5, initial_backoff=1.0, max_backoff=3.0)
    async with make_client(retry=policy) as client:
        with pytest.raises(ServerError):
            await client.get_application("app-1")
    bounds = [1.0, 2.0, 3.0, 3.0]
    assert len(waits) == len(bounds)
    assert all(0 <= wait <= bound for wait, bound in zip(waits, bounds, strict=True))


async def test_attempts_are_bounded(httpx_mock: HTTPXMock, make_client, waits: list[float]) -> None:
    httpx_mock.add_response(
        url=APP, status_code=503, json=error(503, "overloaded"), is_reusable=True
    )
    async with make_client(retry=RetryPolicy(max_attempts=3)) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_application("app-1")
        assert caught.value.status == 503
        assert "overloaded" in str(caught.value)
        assert client.calls["get_app"] == 3
        assert client.retries["get_app"] == 2
    assert len(waits) == 2


async def test_total_time_is_bounded(
    httpx_mock: HTTPXMock, make_client, waits: list[float]
) -> None:
    # Waiting the 8 s the server asks for would overrun the 5 s budget: give up now.
    httpx_mock.add_response(url=APP, status_code=429, headers={"Retry-After": "8"})
    async with make_client(retry=RetryPolicy(max_total_seconds=5.0)) as client:
        with pytest.raises(RateLimited) as caught:
            await client.get_application("app-1")
        assert caught.value.retry_after == 8.0
        assert client.calls["get_app"] == 1
    assert waits == []


async def test_transport_failure_after_retries_has_no_status(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=APP, is_reusable=True)
    async with make_client(retry=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(TransportError, match="GET /api/svc/v1/apps/app-1: ConnectError") as c:
            await client.get_application("app-1")
        assert c.value.status is None
        assert c.value.endpoint == "get_app"
        assert client.calls["get_app"] == 2


@pytest.mark.parametrize(
    ("status", "cls", "reason"),
    [
        (400, ApiError, "Bad Request"),
        (401, AuthError, "Unauthorized"),
        (403, AuthError, "Forbidden"),
        (404, NotFoundError, "Not Found"),
        (409, ConflictError, "Conflict"),
        (417, ApiError, "Expectation Failed"),
        (422, ApiError, "Unprocessable Entity"),
    ],
)
async def test_non_retryable_statuses_surface_at_once(
    httpx_mock: HTTPXMock, make_client, status: int, cls: type[ApiError], reason: str
) -> None:
    httpx_mock.add_response(
        url=APP, status_code=status, json=error(status, "application not found", code="E_APP")
    )
    async with make_client() as client:
        with pytest.raises(cls) as caught:
            await client.get_application("app-1")
        assert client.calls["get_app"] == 1
        assert client.retries["get_app"] == 0
    exc = caught.value
    assert type(exc) is cls
    assert exc.status == status
    assert exc.code == "E_APP"
    assert exc.endpoint == "get_app"
    assert exc.exit_code == 3
    assert str(exc) == exc.message
    assert exc.message == f"GET /api/svc/v1/apps/app-1: {status} {reason}: application not found"


async def test_a_non_json_error_body_becomes_the_message(
    httpx_mock: HTTPXMock, make_client
) -> None:
    page = "<html>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>"
    httpx_mock.add_response(url=APP, status_code=502, text=page, is_reusable=True)
    async with make_client(retry=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_application("app-1")
    assert "\n" not in caught.value.message
    assert caught.value.message.endswith(
        "502 Bad Gateway: <html> <body> <h1>502 Bad Gateway</h1> </body> </html>"
    )


async def test_trigger_is_not_retried_after_a_read_timeout(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout(""), url=TRIGGER)
    async with make_client() as client:
        with pytest.raises(TransportError) as caught:
            await client.trigger_job("dep-1", command=None, params=None, alias="fb-1")
        assert caught.value.message == "POST /api/svc/v1/jobs/trigger: ReadTimeout"
        assert client.calls["trigger"] == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_trigger_is_not_retried_after_an_answer(
    httpx_mock: HTTPXMock, make_client, status: int
) -> None:
    httpx_mock.add_response(url=TRIGGER, status_code=status)
    async with make_client() as client:
        with pytest.raises(ApiError) as caught:
            await client.trigger_job("dep-1", command=None, params=None, alias="fb-1")
        assert caught.value.status == status
        assert client.calls["trigger"] == 1


async def test_trigger_and_terminate_are_retried_after_a_429_which_did_nothing(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_response(url=TRIGGER, status_code=429, headers={"Retry-After": "0"})
    httpx_mock.add_response(url=TRIGGER, json={"jobRunName": "run-9", "data": job_run("run-9")})
    async with make_client() as client:
        run = await client.trigger_job("dep-1", command=None, params=None, alias="fb-1")
        assert run.name == "run-9"
        assert client.calls["trigger"] == 2


@pytest.mark.parametrize("status", [500, 503])
async def test_terminate_is_not_retried_after_an_answer_that_may_have_applied(
    httpx_mock: HTTPXMock, make_client, status: int
) -> None:
    """A retry's 417 would answer for our own terminate, and the move reads 417 as 'did
    nothing': so a terminate that may have applied is surfaced, never retried."""
    httpx_mock.add_response(status_code=status)
    async with make_client() as client:
        with pytest.raises(ApiError) as caught:
            await client.terminate_job_run("dep-1", "run-1")
        assert caught.value.status == status
        assert client.calls["terminate"] == 1


@pytest.mark.parametrize(
    "fault",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("full")],
    ids=lambda exc: type(exc).__name__,
)
async def test_trigger_is_retried_when_the_request_never_left(
    httpx_mock: HTTPXMock, make_client, fault: Exception
) -> None:
    httpx_mock.add_exception(fault, url=TRIGGER)
    httpx_mock.add_response(url=TRIGGER, json={"jobRunName": "run-9", "data": job_run("run-9")})
    async with make_client() as client:
        run = await client.trigger_job("dep-1", command=None, params=None, alias="fb-1")
        assert run.name == "run-9"
        assert client.calls["trigger"] == 2
        assert client.retries["trigger"] == 1


# ---------------------------------------------------------------- refused: "the server did not act"


@pytest.mark.parametrize(
    ("status", "refused"),
    [
        (400, True),
        (401, True),
        (403, True),
        (404, True),
        (409, True),
        (417, True),
        (422, True),
        (408, False),  # a timeout: the request may still have been carried out
        (500, False),
        (502, False),
        (503, False),
        (504, False),
    ],
)
async def test_a_refusal_is_a_4xx_other_than_a_timeout(
    httpx_mock: HTTPXMock, make_client, status: int, refused: bool
) -> None:
    # Only the trigger is asked: it is never retried after an answer, so one response serves.
    httpx_mock.add_response(url=TRIGGER, status_code=status, json=error(status, "no"))
    async with make_client() as client:
        with pytest.raises(ApiError) as caught:
            await client.trigger_job("dep-1", command=None, params=None, alias="fb-1")
    assert caught.value.status == status
    assert caught.value.refused is refused


async def test_a_429_is_a_refusal(httpx_mock: HTTPXMock, make_client) -> None:
    httpx_mock.add_response(
        url=TRIGGER, status_code=429, json=error(429, "slow down"), is_reusable=True
    )
    async with make_client() as client:
        with pytest.raises(ApiError) as caught:
            await client.trigger_job("dep-1", command=None, params=None, alias="fb-1")
    assert (caught.value.status, caught.value.refused) == (429, True)


@pytest.mark.parametrize(
    "fault",
    [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset"), httpx.WriteError("broken")],
    ids=lambda exc: type(exc).__name__,
)
async def test_a_transport_failure_is_never_a_refusal(
    httpx_mock: HTTPXMock, make_client, fault: Exception
) -> None:
    httpx_mock.add_exception(fault, url=TRIGGER)
    async with make_client() as client:
        with pytest.raises(TransportError) as caught:
            await client.trigger_job("dep-1", command=None, params=None, alias="fb-1")
    assert caught.value.status is None
    assert not caught.value.refused


async def test_a_transport_failure_after_retries_is_never_a_refusal(
    httpx_mock: HTTPXMock, make_client
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=APP, is_reusable=True)
    async with make_client(retry=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(TransportError) as caught:
            await client.get_application("app-1")
    assert not caught.value.refused


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (200, {"text": "<html>proxy</html>"}),
        (201, {"json": {"jobRunName": "fb-1"}}),  # no `data`
        (200, {"json": {"data": {"name": "no-id-no-createdAt"}}}),  # `data` is not a run
    ],
    ids=["not-json", "no-data", "not-a-run"],
)
async def test_an_unreadable_success_is_never_a_refusal(
    httpx_mock: HTTPXMock, make_client, status: int, answer: dict[str, object]
) -> None:
    # A 2xx the client cannot read may well have started the run.
    httpx_mock.add_response(url=TRIGGER, status_code=status, **answer)  # type: ignore[arg-type]
    async with make_client() as client:
        with pytest.raises(BadResponse) as caught:
            await client.trigger_job("dep-1", command=None, params=None, alias="fb-1")
        assert client.calls["trigger"] == 1
    assert caught.value.status == status
    assert not caught.value.refused


def test_refused_without_a_status_is_false() -> None:
    assert not ApiError("x", endpoint="trigger").refused
    assert ApiError("x", endpoint="trigger", status=499).refused
    assert not ApiError("x", endpoint="trigger", status=399).refused

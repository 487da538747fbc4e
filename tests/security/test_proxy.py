"""HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured: a sweep goes through the egress proxy its
operator configured (before: the client's own transport made httpx ignore them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobfallback_sandbox import SandboxServer
from tests.security.cli import clean_env, run_cli
from tests.security.servers import RecordingProxy


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy().running() as running:
        yield running


def doctor(sandbox_url: str, token: str, database_url: str, **env: str) -> str:
    run = run_cli(
        "doctor",
        env=clean_env(
            TFY_HOST=sandbox_url, TF_SERVICE_API_TOKEN=token, DATABASE_URL=database_url, **env
        ),
    )
    return run.stdout


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_an_http_proxy_carries_the_api_calls(
    sandbox: SandboxServer, database_url: str, proxy: RecordingProxy, variable: str
) -> None:
    out = doctor(sandbox.url, sandbox.token, database_url, **{variable: proxy.url})
    assert "ok   api:" in out, out
    assert any(line.startswith(f"GET {sandbox.url}/api/svc/v1/workspaces") for line in proxy.seen)


def test_no_proxy_sends_a_host_past_the_proxy(
    sandbox: SandboxServer, database_url: str, proxy: RecordingProxy
) -> None:
    out = doctor(
        sandbox.url, sandbox.token, database_url, HTTP_PROXY=proxy.url, NO_PROXY="127.0.0.1"
    )
    assert "ok   api:" in out, out
    assert proxy.seen == []


def test_an_https_host_is_tunnelled_through_https_proxy(
    database_url: str, proxy: RecordingProxy
) -> None:
    # The name does not resolve here: only the proxy can reach it, and it refuses the tunnel.
    out = doctor(
        "https://tfy.jobfallback.invalid",
        "proxy-test-token-61ac2f",
        database_url,
        HTTPS_PROXY=proxy.url,
        JOB_FALLBACK_HTTP_TIMEOUT_SECONDS="5",
    )
    assert "FAIL api:" in out, out
    assert "CONNECT tfy.jobfallback.invalid:443 HTTP/1.1" in proxy.seen

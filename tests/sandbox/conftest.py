"""An httpx client on the sandbox's API (deliberately not the project's client)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from jobfallback_sandbox import SandboxServer


def api_client(server: SandboxServer) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/api/svc/v1",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
        verify=False,  # plain http on loopback: skip loading CA certificates (slow)
    )


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with api_client(sandbox) as client:
        yield client


def raw_connection(server: SandboxServer) -> socket.socket:
    """A plain socket, to see what httpx hides (keep-alive, a body cut short)."""
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def raw_get(server: SandboxServer, path: str) -> bytes:
    auth = f"Authorization: Bearer {server.token}"
    return f"GET /api/svc/v1{path} HTTP/1.1\r\nHost: sandbox\r\n{auth}\r\n\r\n".encode()

"""ConnectionSlots: `size` httpx clients of one keep-alive connection each, lent one per request.

Why not one httpx.AsyncClient with `size` connections: whenever a request starts or ends,
httpcore's pool re-scans every connection for every queued request and asks each idle
connection's socket whether it expired, so its CPU cost per request grows with the pool size
(measured when this was written: one-connection clients served about twice the requests per
second of one pool of the same size; `make bench` shows today's figures). Taking a slot from
the queue is O(1), and the queue is also the bound on the requests in flight.

Each client builds its own transports (no transport of ours is passed in), so httpx honours
HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY as the operator set them: a custom transport
would make httpx skip them, and a sweep would bypass its egress proxy.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx


class ConnectionSlots:
    def __init__(self, size: int, make: Callable[[], httpx.AsyncClient]) -> None:
        self._size = size
        self._make = make
        self._clients: list[httpx.AsyncClient] = []
        self._idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client no other request is using; waits while all `size` are busy."""
        if self._idle.empty() and len(self._clients) < self._size:
            # Opened on demand: a command that sends one request opens one connection.
            client = self._make()
            self._clients.append(client)
        else:
            client = await self._idle.get()
        try:
            yield client
        finally:
            self._idle.put_nowait(client)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


@functools.cache
def _tls_context(https: bool) -> ssl.SSLContext:
    if https:
        # Loading the CA bundle is slow: once per process, not once per slot.
        return httpx.create_ssl_context()
    # A plain-http host never handshakes, so the CA bundle is not loaded for it. Should TLS
    # ever be attempted with this context, it still verifies, and so fails closed.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def one_connection_client(
    base_url: str,
    headers: dict[str, str],
    timeout: httpx.Timeout,
    transport: httpx.AsyncBaseTransport | None,
) -> Callable[[], httpx.AsyncClient]:
    """A factory of clients that keep one connection each (or all use `transport`, in tests).
    A proxy from the environment gets the same one-connection limit and TLS context."""

    https = urlsplit(base_url).scheme == "https"

    def make() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=_tls_context(https),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            trust_env=True,
        )

    return make

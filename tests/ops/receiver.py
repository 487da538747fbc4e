"""A local HTTP server standing in for a Pushgateway or a webhook: it records every request and
answers each with `status`, after `delay` seconds (a slow or hung receiver)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    content_type: str
    body: bytes


@dataclass
class Receiver:
    url: str
    status: int = 200
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    # Set when the test ends: a handler still holding its answer back lets go at once.
    released: threading.Event = field(default_factory=threading.Event)

    def only(self) -> Received:
        """The one request received (fails on none or several)."""
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


@contextmanager
def receiving(path: str = "", status: int = 200, delay: float = 0.0) -> Iterator[Receiver]:
    """A receiver whose `url` is its address plus `path`."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            content_type = self.headers.get("content-type", "")
            receiver.requests.append(Received(self.command, self.path, content_type, body))
            if receiver.released.wait(receiver.delay):
                return  # the test is over: no answer
            self.send_response(receiver.status)
            self.send_header("content-length", "0")
            self.end_headers()

        do_POST = do_PUT = _record

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads `requests`."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False  # a held-back answer must not hold up the test's end
    receiver = Receiver(f"http://127.0.0.1:{server.server_port}{path}", status, delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
        thread.join()

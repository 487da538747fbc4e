"""Test doubles on loopback: a hostile control plane that answers every request its own way, and
a forward proxy that records what went through it.

Both are raw threaded socket servers (the standard library's HTTP server would add headers and
could not drip or lie about a length), each connection on a daemon thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

Answer = Callable[[socket.socket], None]  # writes one answer to a client that sent a request


def _read_head(conn: socket.socket) -> bytes:
    """The request line and headers (a request body, if any, is never needed here)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@contextmanager
def _serving(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """Accept connections on a loopback port, each handled on its own thread; yield the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def one(conn: socket.socket) -> None:
        with suppress(OSError), conn:
            handle(conn)

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        listener.close()
        thread.join(5)


@contextmanager
def hostile_server(answer: Answer) -> Iterator[str]:
    """A control plane at the yielded URL that reads each request and answers with `answer`."""

    def handle(conn: socket.socket) -> None:
        while _read_head(conn):
            answer(conn)

    with _serving(handle) as port:
        yield f"http://127.0.0.1:{port}"


def head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [
        f"HTTP/1.1 {status}",
        "Content-Type: application/json",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def huge_body(size: int, *, declared: bool) -> Answer:
    """`size` bytes of spaces (not JSON either), with or without a Content-Length: chunked,
    the client must count for itself."""
    block = b" " * (1 << 20)

    def answer(conn: socket.socket) -> None:
        if declared:
            conn.sendall(head(Content_Length=str(size)))
            for _ in range(size // len(block)):
                conn.sendall(block)
            return
        conn.sendall(head(Transfer_Encoding="chunked"))
        chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
        for _ in range(size // len(block)):
            conn.sendall(chunk)
        conn.sendall(b"0\r\n\r\n")

    return answer


def dripping(body: bytes, interval: float) -> Answer:
    """A valid answer sent one byte every `interval` seconds: no single read ever waits long."""

    def answer(conn: socket.socket) -> None:
        conn.sendall(head(Content_Length=str(len(body))))
        for byte in body:
            conn.sendall(bytes([byte]))
            time.sleep(interval)

    return answer


def fixed(status: str, body: bytes) -> Answer:
    def answer(conn: socket.socket) -> None:
        conn.sendall(head(status, Content_Length=str(len(body))) + body)

    return answer


class RecordingProxy:
    """A forward proxy: plain-http requests (absolute-form) are relayed to their target; CONNECT
    tunnels are recorded and refused (the tests need to know a request came this way, not to
    reach a TLS host). `seen` holds each request line."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.url = ""

    @contextmanager
    def running(self) -> Iterator[RecordingProxy]:
        with _serving(self._handle) as port:
            self.url = f"http://127.0.0.1:{port}"
            yield self

    def _handle(self, conn: socket.socket) -> None:
        while True:
            head_bytes = _read_head(conn)
            if not head_bytes:
                return
            head_text, _, rest = head_bytes.partition(b"\r\n\r\n")
            lines = head_text.decode("latin-1").split("\r\n")
            self.seen.append(lines[0])
            method, target, _ = lines[0].split(" ", 2)
            if method == "CONNECT":
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self._relay(conn, method, target, lines[1:], rest)
            return  # the answer said "Connection: close"

    @staticmethod
    def _relay(
        conn: socket.socket, method: str, target: str, headers: list[str], rest: bytes
    ) -> None:
        host_port, _, path = target.removeprefix("http://").partition("/")
        host, _, port = host_port.partition(":")
        length = next(
            (int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length")),
            0,
        )
        body = rest
        while len(body) < length:
            body += conn.recv(65536)
        kept = [h for h in headers if not h.lower().startswith(("proxy-", "connection"))]
        request = "\r\n".join([f"{method} /{path} HTTP/1.1", *kept, "Connection: close"])
        with socket.create_connection((host, int(port or 80))) as upstream:
            upstream.sendall(request.encode("latin-1") + b"\r\n\r\n" + body)
            answer = b""
            while chunk := upstream.recv(65536):
                answer += chunk
        # The upstream closed after its answer; say so, so the client does not reuse this one.
        head_part, _, payload = answer.partition(b"\r\n\r\n")
        kept_head = [
            line for line in head_part.split(b"\r\n") if not line.lower().startswith(b"connection:")
        ]
        conn.sendall(b"\r\n".join([*kept_head, b"Connection: close"]) + b"\r\n\r\n" + payload)

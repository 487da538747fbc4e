"""SandboxServer: a SandboxState behind a real HTTP/1.1 server, with latency, faults and hooks.

Standard library only: a ThreadingHTTPServer (one daemon thread per keep-alive connection,
so latency sleeps overlap) that answers every request with a Content-Length. A request runs:

    count it -> sleep latency -> check the token -> decide a fault -> "before" hooks
      -> handler (the effect) -> "after" hooks -> answer (or the fault's answer)

A faulted request skips the handler, except "reset"/"timeout" on writes when
`fault_after_effect` is set: then the write is applied and only its answer is lost. A hook
that raises SandboxError answers for the server: from a "before" hook nothing is applied, from
an "after" hook the effect stays and the client gets the error instead of the answer.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

from jobfallback_sandbox.api import (
    ENDPOINTS,
    UNKNOWN_ENDPOINT,
    Handler,
    RawReply,
    Reply,
    Request,
    encode,
    first_values,
    resolve,
    split_target,
)
from jobfallback_sandbox.faults import Fault, FaultInjector, FaultPolicy, fault_reply
from jobfallback_sandbox.profiles import ProfileSpec
from jobfallback_sandbox.state import SandboxError, SandboxState
from jobfallback_sandbox.vendor import served

logger = logging.getLogger("jobfallback_sandbox")
HookWhen = Literal["before", "after"]
_LOOPBACK = frozenset({"127.0.0.1", "::1"})


@dataclass
class HookContext:
    endpoint: str
    method: str
    path: str
    query: dict[str, str]  # the first value of each query parameter
    body: Any  # the request's JSON body (None when empty)
    call_index: int  # 0 for the first request to this endpoint, 1 for the next, ...
    state: SandboxState
    status: int | None = None  # the handler's answer status; None in "before" hooks
    response: Any = None  # the handler's answer body; None in "before" hooks


Hook = Callable[[HookContext], None]


class SandboxServer:
    def __init__(
        self,
        state: SandboxState,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        latency_ms: float = 0,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = (),
        fault_endpoints: Sequence[str] | None = None,
        seed: int | None = None,
        timeout_seconds: float = 2.0,
        fault_after_effect: bool = False,
        profiles: ProfileSpec | None = None,
    ) -> None:
        """`profiles`, when given, replace the state's (SandboxState.use_profile)."""
        self.state = state
        if profiles is not None:
            state.use_profile(profiles)
        self.token = token or secrets.token_urlsafe(24)
        self.url = ""  # set by start()
        self.latency_ms = latency_ms
        self.timeout_seconds = timeout_seconds  # a "timeout" fault holds the answer longer
        self.fault_after_effect = fault_after_effect
        self.request_counts: Counter[str] = Counter()
        self._faults = FaultInjector(FaultPolicy.of(fault_rate, fault_kinds, fault_endpoints), seed)
        self._hooks: dict[tuple[str, HookWhen], list[Hook]] = defaultdict(list)
        self._lock = threading.Lock()  # request_counts and hooks
        self._stopping = threading.Event()  # wakes latency and timeout sleeps on stop()
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never the token
        return f"SandboxServer(url={self.url!r})"

    @property
    def fault_counts(self) -> Counter[str]:
        """Faults injected so far, per kind."""
        return self._faults.counts

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        httpd = _HTTPServer(self._address, self)
        self._httpd = httpd
        self.url = f"http://{self._address[0]}:{httpd.server_address[1]}"
        self._stopping.clear()
        self._thread = threading.Thread(
            # stop() waits up to one poll interval for the accept loop to notice.
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._httpd = self._thread = None
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ test controls

    def add_hook(self, endpoint: str, fn: Hook, *, when: HookWhen = "before") -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"no endpoint {endpoint!r} to hook; use one of {', '.join(ENDPOINTS)}")
        with self._lock:
            self._hooks[(endpoint, when)].append(fn)

    def set_faults(
        self, *, rate: float, kinds: Sequence[str], endpoints: Sequence[str] | None = None
    ) -> None:
        self._faults.set_policy(FaultPolicy.of(rate, kinds, endpoints))

    # ------------------------------------------------------------ one request

    def respond(
        self, method: str, target: str, *, authorization: str, body: bytes, client: str
    ) -> RawReply | None:
        """The answer to one request, or None to close the connection without one."""
        path, query = split_target(target)
        if path.startswith("/_sandbox/"):
            return self._internal(path, client)
        endpoint, handler, params = resolve(method, path)
        call_index = self._count(endpoint)
        self._stopping.wait(self.latency_ms / 1000)
        expected = f"Bearer {self.token}".encode()
        if not secrets.compare_digest(authorization.encode(), expected):
            return self.error(
                401, "missing or wrong bearer token (Authorization header)", "UNAUTHORIZED"
            )
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return self.error(400, "request body is not JSON", "BAD_REQUEST")
        ctx = HookContext(
            endpoint, method, path, first_values(query), payload, call_index, self.state
        )
        fault = None if endpoint == UNKNOWN_ENDPOINT else self._faults.decide(endpoint)
        try:
            self._run_hooks(ctx, "before")
        except SandboxError as exc:
            return encode(self._error_reply(exc))
        if fault is not None and not fault.loses_answer_after_effect(
            endpoint, self.fault_after_effect
        ):
            return self._faulted(fault, None)
        reply = self._apply(handler, Request(method, path, query, payload, params))
        try:
            self._run_hooks(replace(ctx, status=reply.status, response=reply.body), "after")
        except SandboxError as exc:
            reply = self._error_reply(exc)
        return encode(reply) if fault is None else self._faulted(fault, encode(reply))

    def error(self, status: int, message: str, code: str) -> RawReply:
        """An API error answer, shaped by the profile like every other answer."""
        return encode(self._error_reply(SandboxError(status, message, code)))

    def _error_reply(self, exc: SandboxError) -> Reply:
        return Reply(exc.status, served(self.state.profile, "error", exc.body()))

    def _apply(self, handler: Handler, request: Request) -> Reply:
        try:
            return handler(self.state, request)
        except SandboxError as exc:
            return self._error_reply(exc)

    def _faulted(self, fault: Fault, answer: RawReply | None) -> RawReply | None:
        reply = fault_reply(fault, answer)
        if reply is None:  # "timeout": hold the connection past the client's patience
            self._stopping.wait(self.timeout_seconds + 0.5)
        return reply

    def _count(self, endpoint: str) -> int:
        with self._lock:
            self.request_counts[endpoint] += 1
            return self.request_counts[endpoint] - 1

    def _run_hooks(self, ctx: HookContext, when: HookWhen) -> None:
        with self._lock:
            hooks = list(self._hooks[(ctx.endpoint, when)])
        for hook in hooks:
            hook(ctx)

    def _internal(self, path: str, client: str) -> RawReply:
        if path == "/_sandbox/health":
            return encode(Reply(200, {"status": "ok"}))
        if path != "/_sandbox/state":
            return self.error(404, f"no sandbox endpoint {path}", "NOT_FOUND")
        if client not in _LOOPBACK:
            return self.error(
                403, "the sandbox state is served to loopback clients only", "FORBIDDEN"
            )
        with self._lock:
            counts = dict(self.request_counts)
        state = {**self.state.snapshot(), "requestCounts": counts}
        return encode(Reply(200, {**state, "faultCounts": dict(self.fault_counts)}))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # the body cannot be skipped: do not reuse
            self._send(
                self.server.sandbox.error(
                    411, "send the body with a Content-Length", "LENGTH_REQUIRED"
                )
            )
            return
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        except ValueError:
            self.close_connection = True
            self._send(self.server.sandbox.error(400, "bad Content-Length header", "BAD_REQUEST"))
            return
        try:
            reply = self.server.sandbox.respond(
                self.command,
                self.path,
                authorization=self.headers.get("Authorization", ""),
                body=body,
                client=self.client_address[0],
            )
        except Exception:
            logger.exception("sandbox request failed")
            reply = self.server.sandbox.error(
                500, "the sandbox failed on this request; see its log", "INTERNAL"
            )
        if reply is None:
            self._drop()
        else:
            self._send(reply)

    def _send(self, reply: RawReply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if reply.send_bytes is None:
            self.wfile.write(reply.body)
            return
        self.wfile.write(reply.body[: reply.send_bytes])
        self._drop()

    def _drop(self) -> None:
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open dozens of connections at once

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        super().__init__(address, _Handler)
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)

    def close_connections(self) -> None:
        """Wake the threads waiting on idle keep-alive connections so they end."""
        with self._open_lock:
            for conn in self._open:
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, _request: Any, _client_address: Any) -> None:
        # A client that hung up mid-answer is routine here (faults, timeouts): not a traceback.
        logger.debug("sandbox connection error", exc_info=True)

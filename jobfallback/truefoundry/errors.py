"""The API exceptions (drawn in jobfallback/errors.py's error tree) and how a failure becomes one.

Every message is one line: "<METHOD> <path>: <status> <reason>: <server message>". The token is
scrubbed from anything that came from the outside (a proxy may echo request headers back), in
every form (escaped, cut off: jobfallback.redact), and what a server wrote is shown with its
control characters escaped (a NUL cannot be stored, an ESC would drive the terminal). The text
of a protocol error is never used: the HTTP library quotes the offending header in it, and the
offending header can be ours, token and all.
"""

from __future__ import annotations

import httpx

from jobfallback.errors import JobFallbackError
from jobfallback.printable import escape
from jobfallback.redact import scrub

_MAX_DETAIL = 200  # an HTML error page from a proxy must not flood the log line
# Scrubbed before it is cut to _MAX_DETAIL (a cut could leave part of a secret behind), but a
# body of megabytes is not scrubbed whole.
_MAX_SCRUBBED = 4 * _MAX_DETAIL


class ApiError(JobFallbackError):
    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.retry_after = retry_after  # seconds the server asked us to wait (429, 503)

    @property
    def refused(self) -> bool:
        """The server answered that it did not do what was asked: a 4xx other than 408. A
        timeout, a 5xx or an unreadable 2xx may have had its effect."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 408


class AuthError(ApiError):
    pass


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    pass


class RateLimited(ApiError):
    pass


class ServerError(ApiError):
    pass


class TransportError(ApiError):
    pass


class BadResponse(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimited,
}


def where(request: httpx.Request) -> str:
    """ "GET /api/svc/v1/apps?limit=100": what a message names (the URL carries no secret)."""
    return f"{request.method} {request.url.raw_path.decode('ascii')}"


def one_line(text: str, secret: str) -> str:
    """Outside text fit for a message: one line, short, no secret, nothing a terminal obeys."""
    flat = scrub(" ".join(text[: _MAX_SCRUBBED * 4].split())[:_MAX_SCRUBBED], secret)
    flat = escape(flat)
    return flat if len(flat) <= _MAX_DETAIL else flat[: _MAX_DETAIL - 3] + "..."


def _error_body(response: httpx.Response) -> tuple[str, str | None]:
    """The server's message and code; a non-JSON body (a proxy page) is its own message."""
    try:
        body = response.json()
    except ValueError:
        return response.text, None
    if not isinstance(body, dict):
        return response.text, None
    code = body.get("code")
    return str(body.get("message") or ""), code if isinstance(code, str) else None


def _status_line(response: httpx.Response) -> str:
    reason = escape(response.reason_phrase)  # the server's words too
    return f"{where(response.request)}: {response.status_code} {reason}"


def error_from_response(
    response: httpx.Response, endpoint: str, *, secret: str, retry_after: float | None
) -> ApiError:
    status = response.status_code
    detail, code = _error_body(response)
    message = _status_line(response)
    if detail.strip():
        message += f": {one_line(detail, secret)}"
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(message, endpoint=endpoint, status=status, code=code, retry_after=retry_after)


def transport_error(exc: httpx.TransportError, endpoint: str, *, secret: str) -> TransportError:
    message = f"{where(exc.request)}: {type(exc).__name__}"
    if isinstance(exc, httpx.ProtocolError):
        # h11's text quotes the header it choked on ("Illegal header value b'Bearer ...'").
        return TransportError(f"{message}: the HTTP exchange broke the protocol", endpoint=endpoint)
    detail = one_line(str(exc), secret)  # httpx timeouts often carry no text
    return TransportError(f"{message}: {detail}" if detail else message, endpoint=endpoint)


def bad_response(response: httpx.Response, endpoint: str, reason: str) -> BadResponse:
    return BadResponse(
        f"{_status_line(response)}: {reason}", endpoint=endpoint, status=response.status_code
    )

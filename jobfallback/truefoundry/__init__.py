"""The TrueFoundry control-plane client: the only code in jobfallback that talks HTTP.

The contract it follows is docs/truefoundry-api.md (paths, parameters, JSON fields).

Exceptions (all carry `status`, `message`, `code`, `endpoint`; exit code 3)::

    JobFallbackError (jobfallback.errors)
    +-- ApiError              any failed call; also 400, 417, 422 and other 4xx
        +-- AuthError         401, 403: the token is missing, wrong or lacks a role
        +-- NotFoundError     404
        +-- ConflictError     409
        +-- RateLimited       429 after the retries ran out (`retry_after`)
        +-- ServerError       5xx after the retries ran out
        +-- TransportError    connect error, timeout, reset after the retries ran out (status None)
        +-- BadResponse       2xx whose body is not JSON or not the documented shape
"""

from jobfallback.truefoundry.client import TerminateOutcome, TrueFoundryClient, run_alias
from jobfallback.truefoundry.errors import (
    ApiError,
    AuthError,
    BadResponse,
    ConflictError,
    NotFoundError,
    RateLimited,
    ServerError,
    TransportError,
)
from jobfallback.truefoundry.retry import RetryPolicy

__all__ = [
    "ApiError",
    "AuthError",
    "BadResponse",
    "ConflictError",
    "NotFoundError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "TerminateOutcome",
    "TransportError",
    "TrueFoundryClient",
    "run_alias",
]

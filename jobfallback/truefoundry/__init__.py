"""The TrueFoundry control-plane client: the only code in jobfallback that talks HTTP.

The contract it follows is docs/truefoundry-api.md (paths, parameters, JSON fields).

Its exceptions (all carry `status`, `message`, `code`, `endpoint`; exit code 3) are ApiError and
its subclasses in jobfallback/truefoundry/errors.py; the package's one error tree is drawn in
jobfallback/errors.py.
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

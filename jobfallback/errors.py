"""Errors every layer shares, and the exit code each one maps to.

Every exception class of the package, wherever it is defined (the module is named when it is
not this one; tests/test_errors.py keeps the tree and the code the same):

    Exception
    +-- JobFallbackError            exit 3 unless a subclass says otherwise
    |   +-- UsageError              exit 2: bad settings, flags or input files
    |   |   +-- InvalidImport       (store.config_files) an import with problems: nothing written
    |   +-- StoreError              the database
    |   |   +-- StoreUnavailable    cannot connect (names host and port, never the password)
    |   |   +-- SchemaOutdated      migrations pending: "run `jobfallback db upgrade`"
    |   |   +-- ConstraintViolation exit 2: a write broke a rule; names the field and the fix
    |   +-- ApiError                (truefoundry.errors) a failed API call
    |   |   +-- AuthError           401, 403: the token is missing, wrong or lacks a role
    |   |   +-- NotFoundError       404
    |   |   +-- ConflictError       409
    |   |   +-- RateLimited         429 after the retries ran out
    |   |   +-- ServerError         5xx after the retries ran out
    |   |   +-- TransportError      no answer (connect error, timeout, reset) after the retries
    |   |   +-- BadResponse         a 2xx whose body is not the documented shape
    |   +-- MoveError               (move) this attempt cannot go on: retried after a backoff
    |   |   +-- Refusal             going on could harm what is not ours: parked for a person
    |   |   +-- Wait                no proof yet either way: tried again after a delay
    |   |   +-- _SourceGone         the run is gone or must not move (opt-out, hops); nothing sent
    |   +-- LockLost                (store.lock) this pass no longer holds the sweep lock
    |   +-- OwnershipLost           (store.journal) another pass claimed the move's row
    |   +-- VersionUnknown          (versions) a run's version is not found or has no manifest
    +-- ValueError
    |   +-- DsnError                (store.dsn) a DATABASE_URL that cannot be used
    +-- WebhookError                (notify) the message was not accepted: a warning, no exit code

Messages are one line, name the field or resource, say what to do, and never carry a secret.
"""

from __future__ import annotations


class JobFallbackError(Exception):
    exit_code = 3


class UsageError(JobFallbackError):
    exit_code = 2


class StoreError(JobFallbackError):
    exit_code = 3


class StoreUnavailable(StoreError):
    pass


class SchemaOutdated(StoreError):
    pass


class ConstraintViolation(StoreError):
    exit_code = 2

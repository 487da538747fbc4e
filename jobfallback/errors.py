"""Errors every layer shares, and the exit code each one maps to.

    JobFallbackError            exit 3 unless a subclass says otherwise
    +-- UsageError              exit 2: bad settings, flags or input files
    +-- StoreError              exit 3: the database
    |   +-- StoreUnavailable    cannot connect (message names host and port, never the password)
    |   +-- SchemaOutdated      migrations pending: "run `jobfallback db upgrade`"
    |   +-- ConstraintViolation a write broke a rule; message names the field and the fix (exit 2)
    +-- ApiError (truefoundry)  exit 3 at the edge when the API cannot be used at all

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

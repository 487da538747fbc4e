"""The API's own vocabulary and object shapes, as TrueFoundry's SDK (`truefoundry-sdk` 0.6.0,
`truefoundry_sdk.types`) defines them, and how a profile serves a stored object.

The sandbox keeps its own copy of the status strings instead of importing the product's: a
sandbox that shares the client's definitions agrees with it by construction, right or wrong.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobfallback_sandbox.profiles import VENDOR_SPARSE, ServerProfile

Obj = dict[str, Any]


class RunStatus(StrEnum):
    """`JobRunStatus`."""

    CREATED = "CREATED"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    TERMINATION_REQUESTED = "TERMINATION_REQUESTED"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    UNKNOWN = "UNKNOWN"


TERMINABLE = frozenset({RunStatus.CREATED, RunStatus.SCHEDULED, RunStatus.RUNNING})
ENDED = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.TERMINATED})
ACCOUNT_ID = "acc-sandbox"
# Who created every object and triggered every run: the sandbox has one user.
SUBJECT: Obj = {
    "subjectId": "user-sandbox",
    "subjectType": "user",
    "subjectSlug": "sandbox",
    "subjectDisplayName": "Sandbox",
}
# Keys the sandbox keeps on stored objects for itself; never served.
INTERNAL_KEYS = frozenset({"alias", "hasCapacity"})


def subject() -> Obj:
    return dict(SUBJECT)


def unknown_fields() -> Obj:
    """Fields the vendor's models do not know (vendor-sparse adds them to every object): a
    reader must ignore a new scalar and a new nested object alike."""
    return {"sandboxUnknownField": "ignore me", "sandboxUnknownObject": {"nested": [1, "two"]}}


@dataclass(frozen=True)
class Shape:
    """What vendor-sparse keeps of one kind of object.

    required  the fields the SDK's model requires
    identity  optional in the SDK, kept anyway: without them an object cannot be addressed
    nulls     optional fields served as null; every other optional field is left out
    nested    field -> kind of the object it holds
    """

    required: frozenset[str]
    identity: frozenset[str] = frozenset()
    nulls: frozenset[str] = frozenset()
    nested: dict[str, str] = field(default_factory=dict)


SHAPES: dict[str, Shape] = {
    "subject": Shape(frozenset({"subjectId", "subjectType"})),
    "pagination": Shape(frozenset({"total"})),
    "error": Shape(frozenset({"statusCode", "message"})),
    "workspace": Shape(
        frozenset(
            {
                "id",
                "fqn",
                "tenantName",
                "clusterId",
                "createdBySubject",
                "createdAt",
                "updatedAt",
                "manifest",
                "accountId",
            }
        ),
        nulls=frozenset({"environmentId", "isSystemWs"}),
        nested={"createdBySubject": "subject"},
    ),
    "application": Shape(
        frozenset({"createdBySubject", "lifecycleStage", "autopilot"}),
        identity=frozenset({"id", "name", "type"}),
        nulls=frozenset(
            {"deployment", "activeDeploymentId", "lastDeploymentId", "activeVersion", "lastVersion"}
        ),
        nested={"createdBySubject": "subject", "deployment": "deployment"},
    ),
    "deployment": Shape(
        frozenset({"manifest", "createdBySubject"}),
        identity=frozenset({"id"}),
        nulls=frozenset({"version", "applicationId"}),
        nested={"createdBySubject": "subject"},
    ),
    "run": Shape(
        frozenset(
            {
                "id",
                "name",
                "applicationName",
                "deploymentVersion",
                "createdAt",
                "command",
                "totalRetries",
                "status",
            }
        ),
        nulls=frozenset(
            {"endTime", "duration", "error", "exitCode", "triggeredBy", "deploymentId"}
        ),
        nested={"triggeredBySubject": "subject"},
    ),
}


def served(profile: ServerProfile, kind: str, obj: Obj) -> Obj:
    """A stored object as the API answers it under `profile`, as a new dict."""
    shape = SHAPES[kind]
    if VENDOR_SPARSE in profile:
        kept = {k: v for k, v in obj.items() if k in shape.required | shape.identity}
        out = {**kept, **dict.fromkeys(shape.nulls), **unknown_fields()}
    else:
        out = {k: v for k, v in obj.items() if k not in INTERNAL_KEYS}
    for key, inner in shape.nested.items():
        if out.get(key) is not None:
            out[key] = served(profile, inner, out[key])
    return copy.deepcopy(out)


def envelope(profile: ServerProfile, body: Obj) -> Obj:
    """An answer's outer object (its fields are all required): vendor-sparse adds unknowns."""
    return {**body, **unknown_fields()} if VENDOR_SPARSE in profile else body

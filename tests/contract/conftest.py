"""Contract tests: the vendor's SDK (`truefoundry_sdk`, a test-only dependency) is the oracle
for every answer the sandbox gives, under every server profile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest
from truefoundry_sdk.core.pydantic_utilities import parse_obj_as

from jobfallback_sandbox import PROFILES, SandboxServer
from tests.fixtures.sandbox import PROFILE_SETS
from tests.sandbox.conftest import api_client

# Each profile alone, and all of them at once (but the default naming, which generated-names
# replaces): parametrize `sandbox_profiles` with these.
CONTRACT_PROFILE_SETS = [*PROFILE_SETS, tuple(p for p in PROFILES if p != "alias-name")]
CONTRACT_PROFILE_IDS = ["+".join(names) for names in CONTRACT_PROFILE_SETS]

T = TypeVar("T")


def vendor(model: type[T], body: Any) -> T:
    """`body` read the way the SDK reads an answer (ValidationError when it cannot)."""
    return parse_obj_as(model, body)


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with api_client(sandbox) as client:
        yield client

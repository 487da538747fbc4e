"""Fixtures of the in-process move and pass tests: asyncio for anyio, and the demo's first config
stored in the test's database."""

from __future__ import annotations

import pytest

from jobfallback.models import FallbackConfig, FallbackConfigSpec
from jobfallback.sandbox import SandboxState
from jobfallback.store import Store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def config(store: Store, sandbox_state: SandboxState) -> FallbackConfig:
    return store.configs.add(FallbackConfigSpec.model_validate(sandbox_state.configs[0]))

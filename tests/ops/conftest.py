"""The real CLI on the demo sandbox (tests/e2e/harness.py), and receivers standing in for a
Pushgateway and a webhook."""

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.harness import bare_jf, jf
from tests.fixtures.secrets import register_secret
from tests.ops.receiver import Receiver, receiving

__all__ = ["bare_jf", "jf"]


@pytest.fixture
def pushgateway() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def webhook_path() -> str:
    """A Slack-like webhook path; its last part authorises posting, so it is registered as a
    secret: the harness fails a test whose output shows it."""
    secret = f"whk-{uuid.uuid4().hex}"
    register_secret(secret)
    return f"/services/T000/B000/{secret}"


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    with receiving(webhook_path()) as receiver:
        yield receiver

"""The e2e fixtures (tests/e2e/harness.py): the real CLI against the sandbox and a test database."""

from tests.e2e.harness import bare_jf, jf, jf_for

__all__ = ["bare_jf", "jf", "jf_for"]

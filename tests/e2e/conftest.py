"""The e2e fixtures live in tests/e2e/harness.py (tests/cli imports them too)."""

from tests.e2e.harness import bare_jf, jf, jf_for

__all__ = ["bare_jf", "jf", "jf_for"]

"""The session guard of tests/fixtures/secrets.py: what counts as a leak, and what it does."""

from __future__ import annotations

from typing import Any

import pytest

from jobfallback_sandbox import SandboxServer, SandboxState
from tests.fixtures import secrets
from tests.fixtures.secrets import assert_no_secrets, leaked, register_secret

SECRET = "guard-test-secret-4f1c"


class _Outcome:
    def __init__(self, report: pytest.TestReport) -> None:
        self._report = report

    def get_result(self) -> pytest.TestReport:
        return self._report


def judged(sections: list[tuple[str, str]]) -> pytest.TestReport:
    """A passed call report with `sections`, after the guard's hook saw it."""
    report = pytest.TestReport("t.py::t", ("t.py", 0, "t"), {}, "passed", None, "call", sections)
    hook: Any = secrets.pytest_runtest_makereport(item=None, call=None)  # type: ignore[arg-type]
    next(hook)
    with pytest.raises(StopIteration):
        hook.send(_Outcome(report))
    return report


def test_a_sandbox_token_is_a_secret_from_its_creation() -> None:
    server = SandboxServer(SandboxState())
    assert leaked(f"Authorization: Bearer {server.token}")


def test_output_holding_a_secret_fails_without_quoting_it() -> None:
    register_secret(SECRET)
    with pytest.raises(AssertionError) as failure:
        assert_no_secrets(f"connecting with {SECRET}")
    assert SECRET not in str(failure.value)
    assert_no_secrets("connecting with token=set")


def test_short_values_are_not_secrets() -> None:
    register_secret("pw")
    assert not leaked("a pw in a sentence")


def test_the_hook_fails_a_test_whose_output_leaks_and_redacts_it() -> None:
    register_secret(SECRET)
    report = judged([("Captured stderr call", f"token={SECRET}"), ("Captured log call", "ok")])
    assert report.outcome == "failed"
    assert "Captured stderr call" in str(report.longrepr)
    assert all(SECRET not in content for _, content in report.sections)


def test_the_hook_leaves_clean_output_alone() -> None:
    register_secret(SECRET)
    report = judged([("Captured stdout call", "token: set")])
    assert report.outcome == "passed"


@pytest.mark.parametrize(
    "shown",
    [
        f"Illegal header value b'Bearer {SECRET}\\n'",  # bytes, escaped by the HTTP library
        f'{{"token": "{SECRET}\\t"}}',  # JSON
        f"echoed: {SECRET[:14]}...",  # cut off by a proxy or a truncated line
    ],
)
def test_escaped_and_partial_forms_are_leaks_too(shown: str) -> None:
    register_secret(SECRET)
    assert leaked(shown) == [SECRET]
    report = judged([("Captured stderr call", shown)])
    assert report.outcome == "failed"
    assert all(SECRET[:12] not in content for _, content in report.sections)


def test_a_secret_with_a_control_character_is_found_in_its_escaped_form() -> None:
    secret = "tok-with-newline-9a8b\n"
    register_secret(secret)
    assert leaked(repr(f"Bearer {secret}".encode()))
    assert leaked(secret.strip()[:12])

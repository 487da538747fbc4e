"""Secrets given sloppily (a token with a newline, a URL with un-encoded characters, a password in
a flag, credentials in TFY_HOST) never leak: the real CLI, each output checked for every form of
the secret (tests/fixtures/secrets.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from jobfallback.redact import scrub
from jobfallback.settings import load_settings
from jobfallback.truefoundry.errors import transport_error
from jobfallback_sandbox import SandboxServer
from tests.fixtures.secrets import leaked, register_secret
from tests.security.cli import clean_env, run_cli


@pytest.mark.parametrize("sloppy", ["\n", "\r\n", "\t", "  \n"])
def test_a_token_with_surrounding_whitespace_is_used_without_it(
    sandbox: SandboxServer, database_url: str, sloppy: str
) -> None:
    # Before: httpx refused the header and its message quoted it, token and newline included,
    # in doctor's output, the logs and the journal.
    env = clean_env(
        TFY_HOST=sandbox.url,
        TF_SERVICE_API_TOKEN=sandbox.token + sloppy,
        DATABASE_URL=database_url,
    )
    run = run_cli("doctor", env=env)
    assert "ok   api:" in run.stdout, run


@pytest.mark.parametrize("bad", ["\x01", "\x1b", "\x7f", " ", "\u00e9", "\u200b"])
def test_a_token_with_an_inner_unprintable_character_is_refused_naming_only_the_variable(
    sandbox: SandboxServer, bad: str
) -> None:
    token = f"tok-{bad}-{sandbox.token}"
    register_secret(token)
    env = clean_env(TFY_HOST=sandbox.url, TF_SERVICE_API_TOKEN=token)
    run = run_cli("sweep", "--dry-run", env=env)
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run
    failed = json.loads(lines[0])  # stderr is not a terminal: JSON lines, the error one too
    assert (failed["event"], failed["exit_code"]) == ("command.failed", 2), run
    assert failed["error"].startswith("TF_SERVICE_API_TOKEN is invalid ("), run


def test_a_protocol_error_never_puts_its_text_in_a_message() -> None:
    token = "tfy-secret-header-token-0c9d"
    request = httpx.Request("GET", "https://tfy.example/api/svc/v1/apps")
    exc = httpx.LocalProtocolError(f"Illegal header value b'Bearer {token}\\n'", request=request)
    message = str(transport_error(exc, "list_apps", secret=token))
    assert not leaked(message)
    assert token[:8] not in message
    assert (
        message == "GET /api/svc/v1/apps: LocalProtocolError: the HTTP exchange broke the protocol"
    )


@pytest.mark.parametrize(
    "shown",
    [
        "echo: Bearer {t}",
        "repr: {r}",
        "bytes: {b}",
        "json: {j}",
        "cut at the end: ...{t8}",
        "cut at the start: {tail}...",
    ],
)
def test_scrub_masks_escaped_and_partial_forms(shown: str) -> None:
    token = "tfy-0123456789abcdef\n"
    text = shown.format(
        t=token,
        r=repr(token),
        b=repr(f"Bearer {token}".encode()),
        j=json.dumps(token),
        t8=token[:9],
        tail=token[-12:],
    )
    assert "0123456" not in scrub(text, token)
    assert "***" in scrub(text, token)


def test_scrub_leaves_text_without_the_secret_alone() -> None:
    assert scrub("GET /api/svc/v1/apps: 404 Not Found", "tfy-0123456789abcdef") == (
        "GET /api/svc/v1/apps: 404 Not Found"
    )


# ------------------------------------------------------------ DATABASE_URL


@pytest.mark.parametrize(
    ("password", "piece"),
    [
        ("pa@ssw0rdTail", "ssw0rdTail"),  # libpq: host "ssw0rdTail@127.0.0.1"
        ("2024/SecretDb", "SecretDb"),  # libpq: host "user", dbname "SecretDb@..."
        ("pa?ss-query-part", "ss-query-part"),
        ("pa#ss-fragment-part", "ss-fragment-part"),
    ],
)
def test_a_password_with_an_unencoded_reserved_character_is_refused_unread(
    database_url: str, password: str, piece: str
) -> None:
    register_secret(password)
    register_secret(piece)
    host = database_url.split("@", 1)[1]
    env = clean_env(DATABASE_URL=f"postgresql://jobfallback:{password}@{host}")
    for command in (["db", "status"], ["sweep", "--dry-run", "--log-format", "json"]):
        api = {"TF_SERVICE_API_TOKEN": "t", "TFY_HOST": "http://127.0.0.1:9"}
        run = run_cli(*command, env={**env, **api})
        assert run.returncode == 2, run
        assert "DATABASE_URL is invalid" in run.stderr, run
        assert "percent-encode" in run.stderr, run


def test_the_start_of_sweep_log_shows_host_port_and_database_only(
    sandbox: SandboxServer, database_url: str
) -> None:
    password = "log-line-password-77f1"
    register_secret(password)
    user_at_host = database_url.removeprefix("postgresql://")
    user, host = user_at_host.split("@", 1)
    url = f"postgresql://{user}:{password}@{host}"
    env = clean_env(TFY_HOST=sandbox.url, TF_SERVICE_API_TOKEN=sandbox.token, DATABASE_URL=url)
    run = run_cli("sweep", "--dry-run", "--log-format", "json", env=env)
    assert run.returncode == 0, run
    events = [json.loads(line) for line in run.stderr.splitlines()]
    (started,) = [e for e in events if e["event"] == "sweep.started"]
    assert started["database_url"] == f"postgresql://{host.split('?')[0]}"


def test_database_url_flag_refuses_a_password(database_url: str) -> None:
    # A flag shows in `ps`; the password belongs in DATABASE_URL (or PGPASSWORD, ~/.pgpass).
    password = "flag-password-3e1a"
    register_secret(password)
    user, host = database_url.removeprefix("postgresql://").split("@", 1)
    flag = f"postgresql://{user}:{password}@{host}"
    run = run_cli("db", "status", "--database-url", flag, env=clean_env())
    assert run.returncode == 2, run
    assert "must not carry a password" in run.stderr, run
    ok = run_cli("db", "status", "--database-url", database_url, env=clean_env())
    assert ok.returncode == 0, ok


# ------------------------------------------------------------ TFY_HOST


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("https://admin:host-password-91c@tfy.example.com", "holds credentials"),
        ("https://host-token-5b7e0f@tfy.example.com", "holds credentials"),
        ("http://tfy.example.com", "clear text"),
        ("http://10.0.0.8:8080", "clear text"),
    ],
)
def test_tfy_host_with_credentials_or_plain_http_off_loopback_is_refused(
    host: str, why: str
) -> None:
    register_secret("host-password-91c")
    register_secret("host-token-5b7e0f")
    env = clean_env(TFY_HOST=host, TF_SERVICE_API_TOKEN="token-of-the-test-0a1")
    run = run_cli("sweep", "--dry-run", env=env)
    assert run.returncode == 2, run
    (line,) = run.stderr.splitlines()
    failed = json.loads(line)  # stderr is not a terminal: JSON lines, the error one too
    assert failed["event"] == "command.failed", run
    assert failed["error"].startswith("TFY_HOST is invalid"), run
    assert why in failed["error"], run


@pytest.mark.parametrize("host", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"])
def test_plain_http_is_allowed_on_loopback(host: str) -> None:
    assert load_settings(tfy_host=host).tfy_host == host

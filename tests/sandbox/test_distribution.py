"""The sandbox is its own distribution (sandbox/): it imports nothing of the product's, and
`jobfallback sandbox` hands over to it, or says how to install it."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

import jobfallback_sandbox
from jobfallback.cli import app
from jobfallback_sandbox.cli import app as sandbox_app

PACKAGE = Path(jobfallback_sandbox.__file__).parent
runner = CliRunner()

# Run in a fresh interpreter: `module` (a top-level package) cannot be imported, as when it is
# not installed; then the rest of the script.
_HIDE = """
import sys

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Hide())
"""


def run_without(module: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = _HIDE.format(module=module) + textwrap.dedent(script)
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


def test_the_sandbox_source_imports_nothing_of_jobfallback() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not [n for n in names if n.split(".")[0] == "jobfallback"], path


def test_the_sandbox_runs_without_jobfallback_installed() -> None:
    done = run_without(
        "jobfallback",
        """
        from jobfallback_sandbox.cli import main
        sys.argv = ["jobfallback-sandbox", "configs", "--fleet", "2x1"]
        main()
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "sourceWorkspaceId: ws-src-0002" in done.stdout


def test_jobfallback_sandbox_is_the_sandboxs_own_command() -> None:
    mine, theirs = (
        runner.invoke(sandbox_app, ["configs", "--fleet", "3x1"]),
        runner.invoke(app, ["sandbox", "configs", "--fleet", "3x1"]),
    )
    assert mine.exit_code == theirs.exit_code == 0, mine.output + theirs.output
    assert mine.stdout == theirs.stdout


def test_the_sandboxs_own_errors_are_one_line_and_exit_2() -> None:
    result = runner.invoke(sandbox_app, ["serve", "--scenario", "no\x1bsuch.yaml"])
    assert result.exit_code == 2
    assert result.output == (
        "error: scenario 'no\\x1bsuch.yaml' is neither a built-in (demo) nor a file\n"
    )


def test_without_the_sandbox_jobfallback_sandbox_says_how_to_install_it() -> None:
    for args in (["serve", "--fleet", "3x2"], ["configs"], ["--help"], []):
        done = run_without(
            "jobfallback_sandbox",
            """
            from jobfallback.cli import main
            sys.argv = ["jobfallback", "sandbox", *sys.argv[1:]]
            main()
            """,
            *args,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert done.stderr == (
            "error: the sandbox is not installed: pip install 'jobfallback[sandbox]' "
            "(from a checkout: pip install ./sandbox)\n"
        )

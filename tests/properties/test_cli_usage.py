"""Nonsense flags and values exit 2 with the command's usage and a line naming the problem."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from jobfallback.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["sweep", "--max-moves", "-1"], "--max-moves"),
        (["sweep", "--bogus"], "--bogus"),
        (["sweep", "--concurrency", "0"], "--concurrency"),
        (["sweep", "--threshold-minutes", "soon"], "--threshold-minutes"),
        (["sweep", "--source", "x"], "--source"),
        (["sweep", "--output", "xml"], "--output"),
        (["history", "--limit", "x"], "--limit"),
        (["history", "--state", "lost"], "--state"),
        (["configs", "show", "abc"], "'ID'"),
        (["configs", "frobnicate"], "frobnicate"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_bad_usage_exits_2_with_usage_help(args: list[str], names: str) -> None:
    if args[0] == "sweep":
        # Text logs: off a terminal a sweep's logs are JSON, its usage error one JSON event
        # (tests/ops/test_json_logs.py); the usage help is for a person.
        args = [*args, "--log-format", "text"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Usage: " in result.output
    assert names in result.output
    assert "Traceback" not in result.output

"""Logs: one JSON object per line off a terminal, readable key=value text on one."""

from __future__ import annotations

import json
import logging

import pytest

from jobfallback.logs import event, get_logger, setup_logging


def test_json_lines_carry_the_event_fields(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("json")
    event(get_logger("sweep"), logging.INFO, "move done", source_run="r-1", moved=3)
    line = capsys.readouterr().err.strip()
    payload = json.loads(line)
    assert payload["msg"] == "move done"
    assert payload["level"] == "info"
    assert payload["logger"] == "jobfallback.sweep"
    assert payload["source_run"] == "r-1"
    assert payload["moved"] == 3


def test_text_lines_are_key_value(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("text")
    event(get_logger("sweep"), logging.WARNING, "source failed", source="c/w")
    line = capsys.readouterr().err.strip()
    assert "WARNING" in line
    assert line.endswith("source failed source=c/w")


def test_auto_is_json_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("auto")
    event(get_logger("x"), logging.INFO, "hello")
    assert json.loads(capsys.readouterr().err)["msg"] == "hello"


def test_debug_is_filtered_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("json")
    event(get_logger("x"), logging.DEBUG, "noise")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_terminal_controls_from_the_api_are_escaped_in_either_format(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(fmt)  # type: ignore[arg-type]
    hostile = "train\x1b]0;pwned\x07\x1b[2J\u202e\x00"
    event(get_logger("sweep"), logging.WARNING, f"move failed: {hostile}", job=hostile)
    line = capsys.readouterr().err
    assert line.count("\n") == 1
    assert not any(char in line for char in "\x1b\x07\u202e\x00")
    if fmt == "text":
        assert "job=train\\x1b]0;pwned\\x07\\x1b[2J\\u202e\\x00" in line
    else:
        assert json.loads(line)["job"] == hostile  # JSON keeps the text, escaped on the wire

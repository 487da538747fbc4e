"""Logs: one JSON object per line off a terminal, readable key=value text on one; every event
named by a stable key, with a fixed message."""

from __future__ import annotations

import ast
import json
import logging
import re
import warnings
from pathlib import Path

import pytest

from jobfallback.logs import event, get_logger, setup_logging
from jobfallback.move import Outcome

PACKAGE = Path(__file__).resolve().parents[1] / "jobfallback"
README = PACKAGE.parent / "README.md"
# `area.what`, snake_case: the only shape an event key takes.
KEY = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


def test_json_lines_carry_the_event_and_its_fields(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("json")
    event(get_logger("sweep"), logging.INFO, "move.done", "move ended", source_run="r-1", moved=3)
    payload = json.loads(capsys.readouterr().err.strip())
    assert list(payload)[:5] == ["ts", "level", "event", "logger", "msg"]
    assert payload["event"] == "move.done"
    assert payload["msg"] == "move ended"
    assert payload["level"] == "info"
    assert payload["logger"] == "jobfallback.sweep"
    assert payload["source_run"] == "r-1"
    assert payload["moved"] == 3


@pytest.mark.parametrize("key", ["ts", "level", "event", "logger", "msg", "exc"])
def test_a_field_never_overwrites_a_reserved_key(
    key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("json")
    event(get_logger("sweep"), logging.WARNING, "source.failed", "source not listed", **{key: "x"})
    payload = json.loads(capsys.readouterr().err)
    assert payload["field_" + key] == "x"
    assert (payload["level"], payload["event"], payload["msg"]) == (
        "warning",
        "source.failed",
        "source not listed",
    )
    assert payload["ts"] != "x"
    assert payload["logger"] == "jobfallback.sweep"
    assert payload.get("exc") != "x"


def test_an_exception_and_multi_line_values_stay_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("json")
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        event(get_logger("cli"), logging.CRITICAL, "sweep.crashed", "crashed", exc_info=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    payload = json.loads(err)
    assert payload["level"] == "critical"
    assert "RuntimeError: boom" in payload["exc"]


def test_a_library_warning_is_a_json_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("json")
    with warnings.catch_warnings():  # pytest records warnings: route this one as a sweep does
        warnings.simplefilter("always")
        logging.captureWarnings(False)
        logging.captureWarnings(True)
        try:
            warnings.warn("old API", DeprecationWarning, stacklevel=1)
        finally:
            logging.captureWarnings(False)
    payload = json.loads(capsys.readouterr().err)
    assert (payload["event"], payload["level"]) == ("log.record", "warning")
    assert "old API" in payload["msg"]


def test_text_lines_are_key_value(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("text")
    event(get_logger("sweep"), logging.WARNING, "source.failed", "source not listed", source="c/w")
    line = capsys.readouterr().err.strip()
    assert "WARNING" in line
    assert line.endswith("source not listed source=c/w")


def test_auto_is_json_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("auto")
    event(get_logger("x"), logging.INFO, "sweep.started", "hello")
    assert json.loads(capsys.readouterr().err)["msg"] == "hello"


def test_debug_is_filtered_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("json")
    event(get_logger("x"), logging.DEBUG, "api.request", "noise")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_terminal_controls_from_the_api_are_escaped_in_either_format(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(fmt)  # type: ignore[arg-type]
    hostile = "train\x1b]0;pwned\x07\x1b[2J\u202e\x00"
    event(get_logger("sweep"), logging.WARNING, "move.failed", "move ended", job=hostile)
    line = capsys.readouterr().err
    assert line.count("\n") == 1
    assert not any(char in line for char in "\x1b\x07\u202e\x00")
    if fmt == "text":
        assert "job=train\\x1b]0;pwned\\x07\\x1b[2J\\u202e\\x00" in line
    else:
        assert json.loads(line)["job"] == hostile  # JSON keeps the text, escaped on the wire


# ------------------------------------------------------------------ every call site


def _calls() -> list[tuple[str, ast.Call]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "event":
                found.append((f"{path.relative_to(PACKAGE)}:{node.lineno}", node))
    return found


def _key_shapes(node: ast.expr) -> list[str]:
    """The keys an argument can be: a literal, either branch of `a if c else b`, or an
    f-string whose values are fixed names (each shown as `{}`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _key_shapes(node.body) + _key_shapes(node.orelse)
    if isinstance(node, ast.JoinedStr):
        parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
        return ["".join(map(str, parts))]
    raise AssertionError(f"an event key must be written out, not computed: {ast.unparse(node)}")


def documented_events() -> set[str]:
    """The event keys the README's Logs section lists (each in backticks)."""
    section = README.read_text().split("**Log events**", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", section))


def test_every_call_names_its_event_and_keeps_its_message_fixed() -> None:
    calls = _calls()
    assert len(calls) > 20  # the walk found the call sites
    for where, call in calls:
        assert len(call.args) == 4, f"{where}: event(logger, level, key, message, **fields)"
        for key in _key_shapes(call.args[2]):
            shape = key.replace("{}", "x")
            assert KEY.fullmatch(shape), f"{where}: event key {key!r} is not area.what snake_case"
        message = call.args[3]
        # A fixed text, or a fixed text looked up by name: never one built from values.
        assert isinstance(message, ast.Constant | ast.Subscript | ast.Name), (
            f"{where}: the message embeds values ({ast.unparse(message)}); pass them as fields"
        )
        for field in call.keywords:
            assert field.arg is None or re.fullmatch(r"[a-z][a-z0-9_]*", field.arg), (
                f"{where}: field {field.arg!r} is not snake_case"
            )


def test_every_event_key_is_in_the_readme() -> None:
    documented = documented_events()
    written = {key for _, call in _calls() for key in _key_shapes(call.args[2]) if "{}" not in key}
    assert written - documented == set(), "events missing from the README's Logs section"
    outcomes = {"move.done" if o == Outcome.MOVED else f"move.{o.value}" for o in Outcome}
    deliveries = {
        f"{what}.{end}"
        for what in ("metrics.push", "webhook")
        for end in ("done", "failed", "timeout")
    }
    assert outcomes | deliveries <= documented
    stale = documented - written - outcomes - deliveries - {"log.record"}
    assert stale == set(), "the README lists events nothing logs"


def test_a_library_record_nobody_handles_is_a_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("json")
    record = logging.LogRecord(
        "asyncio", logging.ERROR, __file__, 1, "Task was destroyed", (), None
    )
    logging.lastResort.handle(record)  # type: ignore[union-attr]
    payload = json.loads(capsys.readouterr().err)
    assert (payload["event"], payload["logger"], payload["level"]) == (
        "log.record",
        "asyncio",
        "error",
    )

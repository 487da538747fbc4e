"""Every command's --help, rendered by the real CLI at 80 columns, in one style; and the README's
command table names every command and option that exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, get_args

import pytest
from typer.testing import CliRunner

from jobfallback.cli import SUMMARIES, app
from jobfallback.cli.commands import load

README = Path(__file__).parents[2] / "README.md"
# Options the README's Settings table gives, beside the variable, instead of every command's row.
SETTINGS_FLAGS = {"--host", "--database-url"}


def _walk(path: tuple[str, ...], command: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk((*path, name), sub)


def _commands(name: str) -> dict[tuple[str, ...], Any]:
    """`jobfallback NAME` and each of its subcommands, by path."""
    return dict(_walk((name,), load(name)))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def _options(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option" and p.name != "help"]


def _enum(annotation: Any) -> type[Enum] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return candidate
    return None


def test_the_top_level_help_is_plain_and_fits() -> None:
    text = _help(())
    assert text.startswith("Usage: jobfallback [OPTIONS] COMMAND [ARGS]...")
    assert max(map(len, text.splitlines())) <= 80


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_help_has_one_style(name: str) -> None:
    for path, command in _commands(name).items():
        _check_help(path, command, _help(path))


def _check_help(path: tuple[str, ...], command: Any, text: str) -> None:
    # click's plain layout, as the top-level listing: no rich boxes, nothing wider than 80.
    assert text.startswith(f"Usage: jobfallback {' '.join(path)} [OPTIONS]"), text
    assert not set(text) & set("╭╮╰╯│─"), text
    assert max(map(len, text.splitlines())) <= 80, text
    # Arguments in the usage line: upper-case metavars, {REQUIRED} and [OPTIONAL].
    usage = text.splitlines()[0].split("[OPTIONS]", 1)[1].split()
    for word in usage:
        assert re.fullmatch(r"\{[A-Z_]+\}|\[[A-Z_]+\]|COMMAND|\[ARGS\]\.\.\.", word), text
    # No stray space before a period; a listed subcommand's summary is never cut short.
    assert not re.search(r" \.(\s|$)", text), text
    assert "..." not in text.replace("[ARGS]...", ""), text
    for option in _options(command):
        # Option names whole; a value named by its metavar, never by typer's <type>.
        for flag in (*option.opts, *option.secondary_opts):
            assert re.search(rf"(^|[ ,/]){re.escape(flag)}([ ,]|$)", text, re.MULTILINE), flag
        if option.is_flag:
            assert option.metavar is None, option.name
        else:
            assert option.metavar, option.name
            assert not re.search(r"<[a-z ]+>", option.metavar), option.name
        kind = _enum(option.type_descriptor.annotation)
        if kind is not None:  # an enum option shows every choice (a long list in its help)
            values = [m.value for m in kind]
            shown = " ".join(text.split())
            assert f"[{'|'.join(values)}]" in shown or ", ".join(values) in shown, option.name


def _readme_rows() -> list[str]:
    """The Commands table's command lines (first cells), after `jobfallback `, unescaped."""
    section = README.read_text(encoding="utf-8").split("\n## Commands\n", 1)[1].split("\n## ")[0]
    rows = []
    for line in section.splitlines():
        match = re.match(r"\| `jobfallback ([^`]*)` \|", line.replace("\\|", "|"))
        if match:
            rows.append(match.group(1))
    return rows


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_the_readme_command_table_lists_every_command_and_option(name: str) -> None:
    rows = _readme_rows()
    for path, command in _commands(name).items():
        if hasattr(command, "commands"):
            continue  # a group: its subcommands have the rows
        words = " ".join(path)
        mine = [row for row in rows if f"{row} ".startswith(f"{words} ")]
        assert len(mine) == 1, f"README's Commands table: one row for `jobfallback {words}`"
        for option in _options(command):
            for flag in (*option.opts, *option.secondary_opts):
                if flag.startswith("--") and flag not in SETTINGS_FLAGS:
                    assert re.search(rf"{re.escape(flag)}(?![\w-])", mine[0]), (flag, mine[0])


def test_the_readme_command_table_lists_no_command_that_does_not_exist() -> None:
    names = {" ".join(path) for name in SUMMARIES for path in _commands(name)}
    for row in _readme_rows():
        words = row.split()
        assert any(" ".join(words[:n]) in names for n in (1, 2, 3)), row

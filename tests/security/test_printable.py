"""jobfallback.printable: what is escaped where text meets a terminal or the journal."""

from __future__ import annotations

import pytest

from jobfallback.printable import escape, has_unsafe


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),  # Cc: ESC (clear screen)
        ("a\x00b", "a\\x00b"),  # Cc: NUL (PostgreSQL refuses it)
        ("\x9b31m", "\\x9b31m"),  # Cc: C1 CSI
        ("\u202eexe.txt", "\\u202eexe.txt"),  # Cf: right-to-left override
        ("zero\u200bwidth", "zero\\u200bwidth"),  # Cf
        ("line\u2028break", "line\\u2028break"),  # Zl
        ("lone\ud800", "lone\\ud800"),  # Cs: cannot even be encoded for output
        ("two\nlines\tand tab", "two\\x0alines\\x09and tab"),
    ],
)
def test_unsafe_characters_are_shown_as_escapes(text: str, shown: str) -> None:
    assert has_unsafe(text)
    assert escape(text) == shown


@pytest.mark.parametrize("text", ["plain run-1", "Zürich ✓ 東京", "a b", ""])
def test_printable_text_is_left_alone(text: str) -> None:
    assert not has_unsafe(text)
    assert escape(text) is text


def test_our_own_line_breaks_can_be_kept() -> None:
    assert escape("one\ntwo\x1b", keep_newlines=True) == "one\ntwo\\x1b"

"""Text from outside (API answers, config files) made safe to show or store.

A terminal obeys escape sequences (ESC, CSI, OSC: set the title, clear the screen, fake a line)
and bidirectional controls reorder what it shows; PostgreSQL text cannot hold NUL. So wherever
such text meets a terminal or the journal, every character of these Unicode categories becomes
a visible escape (`\\x1b`, `\\u202e`): Cc (controls, NUL, ESC, C1), Cf (format: bidi overrides,
zero-width), Zl/Zp (line and paragraph separators) and Cs (a lone surrogate, which cannot even
be encoded for output).
"""

from __future__ import annotations

import unicodedata

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def is_unsafe(char: str) -> bool:
    return unicodedata.category(char) in UNSAFE_CATEGORIES


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def escape(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every unsafe character written as its escape; line breaks kept when asked
    (our own multi-line output), else escaped too (one value, one line)."""
    if text.isprintable():  # the common case, in C: no unsafe character (nor a line break)
        return text
    return "".join(
        _escape(char) if is_unsafe(char) and not (keep_newlines and char == "\n") else char
        for char in text
    )


def has_unsafe(text: str) -> bool:
    return not text.isprintable() and any(is_unsafe(char) for char in text)

"""Secrets taken out of text that came from outside (a server's error page, a library's message).

An exact-string replace misses what leaks in practice: a library quoting the header's bytes
(`b'Bearer tfy-...\\n'`, where the secret is escaped), a proxy echoing a cut-off token, an error
line truncated halfway through it. So every form of the secret is looked for, and any run of
PARTIAL or more characters found in one of them is replaced, wherever it starts and ends.
"""

from __future__ import annotations

import json
from urllib.parse import quote

PARTIAL = 8  # shorter runs would match ordinary words in an error text
MASK = "***"


def _forms(secret: str) -> set[str]:
    """The secret as it is, and as repr(), bytes, JSON and a URL would show it."""
    return {
        secret,
        repr(secret)[1:-1],
        str(secret.encode("utf-8", "backslashreplace"))[2:-1],
        json.dumps(secret)[1:-1],
        quote(secret, safe=""),
    }


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every run of PARTIAL or more characters of any form of a secret masked."""
    pieces: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        for form in _forms(secret):
            if len(form) < PARTIAL:
                pieces.add(form)  # a short secret: only the whole of it
                continue
            pieces.update(form[i : i + PARTIAL] for i in range(len(form) - PARTIAL + 1))
    if not pieces:
        return text
    covered = bytearray(len(text))
    for piece in pieces:
        start = text.find(piece)
        while start != -1:
            covered[start : start + len(piece)] = b"\x01" * len(piece)
            start = text.find(piece, start + 1)
    if not any(covered):
        return text
    out: list[str] = []
    masking = False
    for char, hidden in zip(text, covered, strict=True):
        if hidden:
            if not masking:
                out.append(MASK)
            masking = True
        else:
            out.append(char)
            masking = False
    return "".join(out)

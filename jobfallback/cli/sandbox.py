"""`jobfallback sandbox`: the sandbox's own command (`jobfallback-sandbox`) when it is installed.

The sandbox is its own distribution (sandbox/ in the repository), kept out of the product's
wheel and image: `pip install 'jobfallback[sandbox]'`. Without it, every `jobfallback sandbox ...`
is one line saying how to install it, and exit 2.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from jobfallback.cli.common import fail

MISSING = (
    "the sandbox is not installed: pip install 'jobfallback[sandbox]' "
    "(from a checkout: pip install ./sandbox)"
)


class _Missing(TyperGroup):
    """Any arguments, even --help: the one line that says how to install the sandbox."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # noqa: ARG002
        raise fail(MISSING, 2)


app: typer.Typer
try:
    from jobfallback_sandbox.cli import app
except ModuleNotFoundError as exc:
    if exc.name != "jobfallback_sandbox":
        raise  # installed, but broken: say so rather than hide it
    app = typer.Typer(cls=_Missing, help="A TrueFoundry-compatible control plane (not installed).")

"""`jobfallback sweep` and `jobfallback history`."""

import typer


def sweep() -> None:
    """Run one pass: move runs stuck in CREATED to their fallback destination."""
    raise typer.Exit(0)


def history() -> None:
    """List the move journal."""
    raise typer.Exit(0)

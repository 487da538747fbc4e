"""`jobfallback moves` commands: list, show, retry, abandon.

The moves a person may need to look at (unfinished, failed, parked), one move in full, and the
two ways a person steers one: retry it now, or give up on it (the source stays where it is). Each
needs only the database: nothing here calls the TrueFoundry API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from jobfallback.cli.common import (
    DatabaseUrlOption,
    Output,
    OutputOption,
    choices,
    echo,
    fail,
    one_of,
    opened_store,
    print_json,
    print_table,
    settings_from,
    whole_number,
)
from jobfallback.models import RESUMABLE_STATES, MoveRecord, MoveState
from jobfallback.times import utc_time

app = typer.Typer(
    no_args_is_help=True,
    help="Failed, parked and unfinished moves: list them, show one, retry or abandon it.",
)

SourceRunIdArgument = Annotated[
    str, typer.Argument(metavar="SOURCE_RUN_ID", help="The source run's id (see `moves list`).")
]

StateOption = Annotated[
    list[MoveState] | None,
    typer.Option(
        "--state",
        # The choices in the help: as the metavar they would not fit in 80 columns.
        parser=one_of(MoveState),
        metavar="STATE",
        help=f"Only moves in this state (repeat for several): {choices(MoveState, ', ')}.",
    ),
]
LimitOption = Annotated[
    int,
    typer.Option(
        "--limit",
        parser=whole_number("a whole number of moves, 1 or more", minimum=1),
        metavar="N",
        help="The N most recently updated moves.",
    ),
]

# What a person may need to look at: everything not settled (done, skipped, abandoned).
NEEDS_A_LOOK = (*RESUMABLE_STATES, MoveState.PARKED)
_SETTLED = frozenset(MoveState) - frozenset(NEEDS_A_LOOK)
_ERROR_WIDTH = 60
_HEADERS = (
    "updated",
    "source run id",
    "source run",
    "job",
    "destination",
    "state",
    "attempts",
    "next attempt",
    "error",
)


def _when(value: datetime | None) -> str | None:
    return None if value is None else utc_time(value)


def _next_attempt(record: MoveRecord, now: datetime) -> str | None:
    """When the sweep next attempts it: "due", a time, or nothing (it is not attempted)."""
    if record.state not in RESUMABLE_STATES:
        return None
    if record.next_attempt_at is None or record.next_attempt_at <= now:
        return "due"
    return _when(record.next_attempt_at)


def _short(text: str | None) -> str | None:
    if text is None:
        return None
    line = " ".join(text.split())
    return line if len(line) <= _ERROR_WIDTH else line[: _ERROR_WIDTH - 3] + "..."


def _attempts(count: int) -> str:
    return f"{count} attempt{'' if count == 1 else 's'}"


@app.command("list")
def list_moves(
    state: StateOption = None,
    all_states: Annotated[
        bool, typer.Option("--all", help="Every state, also done, skipped and abandoned moves.")
    ] = False,
    limit: LimitOption = 50,
    output: OutputOption = Output.text,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List moves, most recently updated first: by default unfinished, failed and parked ones."""
    if state and all_states:
        raise fail("--all and --state exclude each other; give one of them", 2)
    states: tuple[MoveState, ...] | None
    if all_states:
        states = None
    elif state:
        states = tuple(dict.fromkeys(state))
    else:
        states = NEEDS_A_LOOK
    with opened_store(settings_from(database_url=database_url)) as store:
        records = store.journal.history(limit=limit + 1, states=states)
    more, records = len(records) > limit, records[:limit]
    if output is Output.json:
        print_json(records)
        return
    now = datetime.now(tz=UTC)
    rows = [
        (
            _when(r.updated_at),
            r.source_run_id,
            r.source_run_name,
            r.source_application_name,
            r.destination_workspace_fqn,
            r.state.value,
            r.attempts,
            _next_attempt(r, now),
            _short(r.error),
        )
        for r in records
    ]
    if states is None:
        empty = "No moves recorded yet."
    elif state:
        empty = f"No move is {' or '.join(s.value for s in states)}."
    else:
        empty = (
            "No move needs a look: none is unfinished, failed or parked (--all shows every move)."
        )
    print_table(_HEADERS, rows, empty=empty)
    if more:
        echo(f"\nthe {limit} most recently updated shown; --limit N shows more")


def _resume_step(record: MoveRecord) -> str | None:
    if record.state in _SETTLED:
        return None
    # Imported here: the move machinery (and the API client under it) loads only for `show`.
    from jobfallback.move import next_step

    return next_step(record).value


@app.command()
def show(
    source_run_id: SourceRunIdArgument,
    output: OutputOption = Output.text,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show every field of one move, and the step it would resume from."""
    with opened_store(settings_from(database_url=database_url)) as store:
        record = store.journal.require(source_run_id)
    fields: dict[str, Any] = record.model_dump(mode="json", by_alias=True)
    fields["resumeStep"] = _resume_step(record)
    fields["copyMayExist"] = record.has_destination_run
    if output is Output.json:
        print_json(fields)
        return
    if record.state == MoveState.PARKED:
        fields["resumeStep"] += f" (once retried: `jobfallback moves retry {source_run_id}`)"
    elif record.state in _SETTLED:
        fields["resumeStep"] = f"- ({record.state.value}: the sweep does not touch it again)"
    fields["copyMayExist"] = "yes" if record.has_destination_run else "no"
    width = max(map(len, fields))
    for key, value in fields.items():
        echo(f"{key.ljust(width)}  {'-' if value is None else value}")


@app.command()
def retry(
    source_run_id: SourceRunIdArgument,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Make an unfinished, failed or parked move due now, its attempts counted from zero."""
    with opened_store(settings_from(database_url=database_url)) as store:
        before = store.journal.require(source_run_id)
        store.journal.retry_now(source_run_id)
    was = f"was {before.state.value}"
    if before.attempts:
        was += f" after {_attempts(before.attempts)}"
    echo(f"move of run {source_run_id} is due again ({was}): the next sweep attempts it")


@app.command()
def abandon(
    source_run_id: SourceRunIdArgument,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Give up on a move: the source stays where it is; nothing at the destination changes."""
    with opened_store(settings_from(database_url=database_url)) as store:
        record = store.journal.abandon(source_run_id)
    if record.has_destination_run:
        copy = record.destination_run_name or "a trigger was sent, its run is not known"
        tail = (
            f"nothing at the destination was changed, where a copy may exist ({copy}) "
            f"in {record.destination_workspace_fqn}: check it"
        )
    else:
        tail = "nothing at the destination was changed"
    echo(f"move of run {source_run_id} abandoned: the source stays where it is; {tail}")

"""`jobfallback moves list|show|retry|abandon` against a real PostgreSQL journal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from jobfallback.cli import app
from jobfallback.models import MoveRecord, MoveState
from jobfallback.store import Store
from jobfallback.store.journal import NOW, FieldValue
from tests.cli.test_lazy_listing import loaded_by

pytestmark = pytest.mark.embedded

runner = CliRunner()


def add_move(
    store: Store,
    run_id: str,
    state: MoveState,
    *,
    error: str | None = None,
    attempts: int = 0,
    marks: dict[str, FieldValue] | None = None,
    **fields: FieldValue,
) -> MoveRecord:
    """A journal row as a sweep leaves it: claimed by a pass, then written with owner None."""
    now = datetime.now(tz=UTC)
    store.journal.claim(
        MoveRecord(
            source_run_id=run_id,
            source_run_name=f"name-{run_id}",
            source_application_id="app-1",
            source_application_name="train",
            destination_workspace_fqn="gpu-west:ml",
            state=MoveState.CLAIMED,
            owner="pass-1",
            created_at=now,
            updated_at=now,
        )
    )
    fields = {**(marks or {}), **fields}
    return store.journal.update(
        run_id, owner=None, state=state, error=error, attempts=attempts, **fields
    )


def run(url: str, *args: str) -> Result:
    return runner.invoke(app, ["moves", *args, "--database-url", url])


def ok(url: str, *args: str) -> str:
    result = run(url, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def usage_error(url: str, *args: str) -> str:
    """The one line a refused command prints (exit 2, nothing on stdout)."""
    result = run(url, *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


def listed(url: str, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(url, "list", *args, "--output", "json"))
    return rows


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["sourceRunId"] for row in rows]


@pytest.fixture
def journal(store: Store) -> Store:
    """One move in every state, oldest update first (run-done the oldest)."""
    for state in MoveState:
        add_move(store, f"run-{state.value}", state)
    return store


def test_list_shows_what_needs_a_look_and_hides_settled_moves(
    journal: Store, database_url: str
) -> None:
    add_move(journal, "run-parked", MoveState.PARKED, attempts=8, error="x" * 200)
    table = ok(database_url, "list").splitlines()
    assert table[0].split() == [
        "UPDATED", "SOURCE", "RUN", "ID", "SOURCE", "RUN", "JOB", "DESTINATION",
        "STATE", "ATTEMPTS", "NEXT", "ATTEMPT", "ERROR",
    ]  # fmt: skip
    rows = [line.split() for line in table[1:]]
    # Most recently updated first: the parked row was written last (a time is 3 words).
    assert [row[3] for row in rows] == [
        "run-parked", "run-failed", "run-waiting", "run-triggered", "run-deployed", "run-claimed"
    ]  # fmt: skip
    parked = rows[0]
    assert parked[4:10] == ["name-run-parked", "train", "gpu-west:ml", "parked", "8", "-"]
    assert parked[10] == "x" * 57 + "..."  # shortened in text
    assert rows[1][9] == "due"  # a failed row without a next attempt time is due

    shown = ids(listed(database_url))
    assert set(shown) == {f"run-{s}" for s in ("claimed", "deployed", "triggered", "waiting")} | {
        "run-failed",
        "run-parked",
    }
    every = ids(listed(database_url, "--all"))
    assert sorted(every) == sorted(f"run-{s.value}" for s in MoveState)
    assert every[0] == "run-parked"
    assert every[-1] == "run-claimed"


def test_list_next_attempt_shows_when_a_backing_off_move_is_due(
    store: Store, database_url: str
) -> None:
    later = add_move(store, "run-1", MoveState.FAILED, next_attempt_at=timedelta(hours=1))
    row = ok(database_url, "list").splitlines()[1]
    assert later.next_attempt_at is not None
    assert later.next_attempt_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") in row


def test_list_state_filter_is_repeatable(journal: Store, database_url: str) -> None:
    assert ids(listed(database_url, "--state", "done")) == ["run-done"]
    both = listed(database_url, "--state", "parked", "--state", "abandoned")
    assert ids(both) == ["run-abandoned", "run-parked"]
    table = ok(database_url, "list", "--state", "done", "--state", "skipped").splitlines()
    assert sorted(line.split()[3] for line in table[1:]) == ["run-done", "run-skipped"]


def test_list_refuses_all_with_state(store: Store, database_url: str) -> None:
    line = usage_error(database_url, "list", "--all", "--state", "done")
    assert "--all and --state" in line


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["list", "--state", "stuck"], f"'--state': 'stuck' is not one of {', '.join(MoveState)}"),
        (["list", "--limit", "ten"], "'--limit': 'ten' is not a whole number of moves, 1 or more"),
        (["list", "--limit", "0"], "'--limit': '0' is not a whole number of moves, 1 or more"),
        (["list", "-o", "yaml"], "'--output' / '-o': 'yaml' is not one of text, json"),
        (["show", "run-1", "--output", "csv"], "'--output' / '-o': 'csv' is not one of text, json"),
    ],
)
def test_a_bad_flag_value_is_one_plain_line_naming_the_flag_and_what_is_allowed(
    args: list[str], error: str
) -> None:
    # Refused before any database is opened: this URL leads nowhere.
    result = run("postgresql://nobody@127.0.0.1:1/none", *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert [line for line in result.stderr.splitlines() if "Error" in line] == [
        f"Error: Invalid value for {error}"
    ]


def test_list_says_when_nothing_needs_a_look_and_when_the_limit_cut(
    store: Store, database_url: str
) -> None:
    assert "No move needs a look" in ok(database_url, "list")
    assert ok(database_url, "list", "--state", "parked") == "No move is parked.\n"
    assert listed(database_url) == []
    for n in range(3):
        add_move(store, f"run-{n}", MoveState.FAILED)
    lines = ok(database_url, "list", "--limit", "2").splitlines()
    assert [line.split()[3] for line in lines[1:3]] == ["run-2", "run-1"]
    assert lines[-1] == "the 2 most recently updated shown; --limit N shows more"
    assert ids(listed(database_url, "--limit", "2")) == ["run-2", "run-1"]


def test_list_json_is_every_field_in_camel_case_with_the_whole_error(
    store: Store, database_url: str
) -> None:
    error = "the destination application belongs to another job; " * 5
    record = add_move(
        store,
        "run-1",
        MoveState.PARKED,
        error=error,
        attempts=8,
        destination_deployment_id="dep-1",
        destination_version=3,
        trigger_sent_at=NOW,
    )
    [row] = listed(database_url)
    assert row == record.model_dump(mode="json", by_alias=True)
    assert set(row) == {field.alias for field in MoveRecord.model_fields.values()}
    assert row["sourceRunId"] == "run-1"
    assert row["error"] == error
    assert row["triggerSentAt"] is not None
    assert row["destinationVersion"] == 3


@pytest.mark.parametrize(
    ("state", "fields", "step"),
    [
        (MoveState.CLAIMED, {}, "deploy"),
        (MoveState.DEPLOYED, {"destination_deployment_id": "dep-1"}, "trigger"),
        (
            MoveState.WAITING,
            {"destination_deployment_id": "dep-1", "trigger_sent_at": NOW},
            "find-triggered",
        ),
        (
            MoveState.TRIGGERED,
            {"destination_deployment_id": "dep-1", "destination_run_name": "train-1"},
            "terminate",
        ),
    ],
)
def test_show_names_the_step_the_move_resumes_from(
    store: Store, database_url: str, state: MoveState, fields: dict[str, FieldValue], step: str
) -> None:
    record = add_move(store, "run-1", state, marks=fields)
    shown = json.loads(ok(database_url, "show", "run-1", "--output", "json"))
    assert shown == {
        **record.model_dump(mode="json", by_alias=True),
        "resumeStep": step,
        "copyMayExist": record.has_destination_run,
    }
    text = dict(line.split(None, 1) for line in ok(database_url, "show", "run-1").splitlines())
    assert text["resumeStep"] == step
    assert text["sourceRunId"] == "run-1"
    assert text["state"] == state.value
    assert set(text) == set(shown)


def test_show_a_parked_move_says_it_resumes_once_retried_and_a_settled_one_not(
    store: Store, database_url: str
) -> None:
    add_move(store, "run-1", MoveState.PARKED, destination_deployment_id="dep-1")
    text = dict(line.split(None, 1) for line in ok(database_url, "show", "run-1").splitlines())
    assert text["resumeStep"] == "trigger (once retried: `jobfallback moves retry run-1`)"
    assert text["copyMayExist"] == "no"
    assert text["triggerSentAt"] == "-"

    add_move(store, "run-2", MoveState.DONE, destination_run_name="train-1")
    shown = json.loads(ok(database_url, "show", "run-2", "--output", "json"))
    assert (shown["resumeStep"], shown["copyMayExist"]) == (None, True)
    text = dict(line.split(None, 1) for line in ok(database_url, "show", "run-2").splitlines())
    assert text["resumeStep"].startswith("- (done: ")


def test_retry_makes_a_parked_move_failed_and_due_with_attempts_from_zero(
    store: Store, database_url: str
) -> None:
    add_move(
        store,
        "run-1",
        MoveState.PARKED,
        error="look-up unreadable",
        attempts=8,
        next_attempt_at=timedelta(hours=2),
    )
    assert store.journal.due() == []
    out = ok(database_url, "retry", "run-1")
    assert out == (
        "move of run run-1 is due again (was parked after 8 attempts): the next sweep attempts it\n"
    )
    record = store.journal.require("run-1")
    assert (record.state, record.attempts) == (MoveState.FAILED, 0)
    assert [r.source_run_id for r in store.journal.due()] == ["run-1"]
    assert ids(listed(database_url, "--state", "failed")) == ["run-1"]


def test_retry_of_a_backing_off_failed_move_makes_it_due(store: Store, database_url: str) -> None:
    add_move(store, "run-1", MoveState.FAILED, attempts=1, next_attempt_at=timedelta(hours=1))
    assert store.journal.due() == []
    out = ok(database_url, "retry", "run-1")
    assert "(was failed after 1 attempt)" in out
    assert [r.source_run_id for r in store.journal.due()] == ["run-1"]


@pytest.mark.parametrize("state", [MoveState.DONE, MoveState.SKIPPED, MoveState.ABANDONED])
def test_retry_of_a_settled_move_is_refused(
    store: Store, database_url: str, state: MoveState
) -> None:
    add_move(store, "run-1", state)
    line = usage_error(database_url, "retry", "run-1")
    assert f"run-1 is {state.value}" in line
    assert store.journal.require("run-1").state == state


def test_abandon_a_claimed_move(store: Store, database_url: str) -> None:
    add_move(store, "run-1", MoveState.CLAIMED)
    out = ok(database_url, "abandon", "run-1")
    assert out == (
        "move of run run-1 abandoned: the source stays where it is; "
        "nothing at the destination was changed\n"
    )
    assert store.journal.require("run-1").state == MoveState.ABANDONED
    assert store.journal.due() == []
    assert listed(database_url) == []


@pytest.mark.parametrize(
    "fields",
    [{"trigger_sent_at": NOW}, {"destination_run_name": "train-1"}],
    ids=["trigger-sent", "copy-recorded"],
)
def test_abandon_is_refused_while_a_copy_may_exist(
    store: Store, database_url: str, fields: dict[str, FieldValue]
) -> None:
    add_move(store, "run-1", MoveState.TRIGGERED, marks=fields)
    line = usage_error(database_url, "abandon", "run-1")
    assert "may exist at the destination" in line
    assert store.journal.require("run-1").state == MoveState.TRIGGERED


def test_abandon_a_parked_move_with_a_copy_says_where_to_check(
    store: Store, database_url: str
) -> None:
    add_move(store, "run-1", MoveState.PARKED, destination_run_name="train-1")
    out = ok(database_url, "abandon", "run-1")
    assert out.count("\n") == 1
    assert out.startswith("move of run run-1 abandoned: the source stays where it is; ")
    assert "(train-1) in gpu-west:ml: check it" in out
    again = usage_error(database_url, "abandon", "run-1")
    assert "already abandoned" in again


@pytest.mark.parametrize("command", ["show", "retry", "abandon"])
def test_an_unknown_run_id_exits_2_with_one_line_naming_it(
    store: Store, database_url: str, command: str
) -> None:
    line = usage_error(database_url, command, "run-nope")
    assert "run-nope" in line


def test_moves_need_no_api_token_nor_host(store: Store, database_url: str) -> None:
    # The autouse fixture cleared TF_SERVICE_API_TOKEN and TFY_HOST: the database is enough.
    add_move(store, "run-1", MoveState.FAILED)
    assert "run-1" in ok(database_url, "list")


def test_moves_load_the_move_machinery_only_to_show_one() -> None:
    # cli.common already brings the API client's modules; the move itself stays out.
    assert loaded_by(["moves", "list", "--help"], ("jobfallback.move",)) == []
    assert loaded_by(["moves", "--help"], ("jobfallback.cli.moves",)) == ["jobfallback.cli.moves"]
    assert loaded_by(["--help"], ("jobfallback.cli.moves",)) == []

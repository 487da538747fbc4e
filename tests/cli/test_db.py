from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest
from typer.testing import CliRunner

from jobfallback.cli import app
from jobfallback.store import migrations

pytestmark = pytest.mark.embedded

runner = CliRunner()
LABELS = [f"{m.version:04d}_{m.name}" for m in migrations.available()]
SECRET = "s3cr3t-pa55word"


def test_upgrade_then_again_is_current(empty_database_url: str) -> None:
    first = runner.invoke(app, ["db", "upgrade", "--database-url", empty_database_url])
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [f"applied {label}" for label in LABELS]
    again = runner.invoke(app, ["db", "upgrade", "--database-url", empty_database_url])
    assert (again.exit_code, again.stdout) == (0, "schema is current\n")


def test_status_shows_pending_then_applied(empty_database_url: str) -> None:
    before = runner.invoke(app, ["db", "status", "--database-url", empty_database_url])
    assert before.exit_code == 0, before.output
    lines = before.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "NAME", "STATE", "APPLIED_AT"]
    assert all(line.split()[2] == "pending" for line in lines[1:])
    assert len(lines) == 1 + len(LABELS)

    migrations.upgrade(empty_database_url)
    after = runner.invoke(
        app, ["db", "status", "--database-url", empty_database_url, "--output", "json"]
    )
    rows = json.loads(after.stdout)
    assert [r["version"] for r in rows] == [m.version for m in migrations.available()]
    assert all(r["appliedAt"] for r in rows)


def test_configs_on_an_unmigrated_database_say_run_db_upgrade(empty_database_url: str) -> None:
    result = runner.invoke(app, ["configs", "list", "--database-url", empty_database_url])
    assert result.exit_code == 3
    assert result.stderr.strip().endswith("run `jobfallback db upgrade`")


@pytest.mark.parametrize("command", [["db", "upgrade"], ["db", "status"], ["configs", "list"]])
def test_unreachable_database_exits_3_naming_host_and_port_only(command: list[str]) -> None:
    url = f"postgresql://jobfallback:{SECRET}@127.0.0.1:1/jobfallback"
    result = runner.invoke(app, command, env={"DATABASE_URL": url})  # a flag refuses passwords
    assert result.exit_code == 3
    assert result.stderr.startswith("error: cannot connect to PostgreSQL at 127.0.0.1:1: ")
    assert SECRET not in result.output


def test_unreachable_database_through_the_environment_in_a_real_process() -> None:
    url = f"postgresql://jobfallback:{SECRET}@127.0.0.1:1/jobfallback"
    result = subprocess.run(
        [sys.executable, "-m", "jobfallback", "db", "status"],
        env={"DATABASE_URL": url, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert "127.0.0.1:1" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_two_processes_upgrading_at_once_both_succeed_and_apply_once(
    empty_database_url: str,
) -> None:
    command = [sys.executable, "-m", "jobfallback", "db", "upgrade"]
    processes = [
        subprocess.Popen(
            [*command, "--database-url", empty_database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    applied = [
        line for out, _ in outputs for line in out.splitlines() if line.startswith("applied")
    ]
    assert sorted(applied) == [f"applied {label}" for label in LABELS]
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute("SELECT count(*) FROM jobfallback_schema_migrations").fetchone()
    assert rows == (len(LABELS),)

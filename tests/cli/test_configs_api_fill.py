"""`configs add` and `configs import` asking the API for what a person left out (the destination's
FQN, a workspace's cluster, the destination's id given its FQN) and checking what they gave: the
real CLI against the demo sandbox over HTTP. Also the interactive `configs add` on a terminal.

The demo's workspaces: ws-east-ml (gpu-east:ml-team), ws-east-research (gpu-east:research),
ws-west-fallback (gpu-west:fallback)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path
from typing import IO, Any

import pytest
from typer.testing import CliRunner

from jobfallback.cli import app, configs_api
from jobfallback_sandbox import SandboxServer
from tests.e2e import harness
from tests.e2e.harness import CLI, EnvOverrides, Jobfallback, Result

pytestmark = pytest.mark.e2e
bare_jf = harness.bare_jf  # the fixture, visible to this module

SOURCE = ["--source-cluster", "gpu-east", "--source-workspace", "ws-east-ml"]
DESTINATION = ["--dest-cluster", "gpu-west", "--dest-workspace", "ws-west-fallback"]
NO_TOKEN: EnvOverrides = {"TF_SERVICE_API_TOKEN": None, "TF_USER_API_TOKEN": None}
FILLED = {
    "sourceClusterId": "gpu-east",
    "sourceWorkspaceId": "ws-east-ml",
    "destinationClusterId": "gpu-west",
    "destinationWorkspaceId": "ws-west-fallback",
    "destinationWorkspaceFqn": "gpu-west:fallback",
}


def run(
    cli: Jobfallback,
    *args: str,
    env: EnvOverrides | None = None,
    stdin: int | IO[Any] = subprocess.DEVNULL,
) -> Result:
    """`jobfallback ARGS` in a process whose stdin is not a terminal (unless a test gives one)."""
    process = subprocess.Popen(
        [*CLI, *args],
        env=cli.env(env),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return cli.finish(process)


def stored(cli: Jobfallback) -> list[dict[str, Any]]:
    result = run(cli, "configs", "list", "-o", "json")
    assert result.returncode == 0, result
    fields = ("name", "sourceJobId", *FILLED)
    return [{key: config[key] for key in fields} for config in result.json()]


def route(**changes: Any) -> dict[str, Any]:
    return {"name": None, "sourceJobId": None, **FILLED, **changes}


# ------------------------------------------------------------------ configs add


def test_add_without_an_fqn_gets_it_from_the_api(bare_jf: Jobfallback) -> None:
    result = run(bare_jf, "configs", "add", *SOURCE, *DESTINATION)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout.splitlines()[1].split()[5] == "gpu-west:fallback"
    assert stored(bare_jf) == [route()]


def test_add_to_an_fqn_alone_looks_up_the_id_and_both_clusters(bare_jf: Jobfallback) -> None:
    result = run(
        bare_jf,
        "configs", "add", "--source-workspace", "ws-east-ml", "--to", "gpu-west:fallback",
        "--source-job", "app-train-llm", "--name", "llm",
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, ""), result
    assert stored(bare_jf) == [route(name="llm", sourceJobId="app-train-llm")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [*SOURCE, "--dest-cluster", "gpu-east", "--dest-workspace", "ws-west-fallback"],
            "--dest-cluster gpu-east: workspace ws-west-fallback (gpu-west:fallback) is in cluster "
            "gpu-west; give --dest-cluster gpu-west, or leave it out",
        ),
        (
            ["--source-cluster", "gpu-west", "--source-workspace", "ws-east-ml", *DESTINATION],
            "--source-cluster gpu-west: workspace ws-east-ml (gpu-east:ml-team) is in cluster "
            "gpu-east; give --source-cluster gpu-east, or leave it out",
        ),
        (
            [*SOURCE, "--to", "gpu-west:nowhere"],
            "--to gpu-west:nowhere: no workspace has this FQN; give the FQN TrueFoundry shows for "
            "the workspace (CLUSTER:NAME)",
        ),
        (
            [*SOURCE, "--dest-workspace", "ws-nowhere"],
            "--dest-workspace ws-nowhere: no such workspace; give the id TrueFoundry shows for "
            "it, or its FQN with --to",
        ),
        (
            ["--source-workspace", "ws-nowhere", "--to", "gpu-west:fallback"],
            "--source-workspace ws-nowhere: no such workspace; give the id TrueFoundry shows for "
            "it",
        ),
        (
            [*SOURCE, "--dest-workspace", "ws-east-research", "--to", "gpu-west:fallback"],
            "--to gpu-west:fallback is workspace ws-west-fallback, not --dest-workspace "
            "ws-east-research; give only one of them",
        ),
        (
            [*SOURCE, *DESTINATION, "--dest-fqn", "gpu-west:other"],
            "--dest-fqn gpu-west:other: no workspace has this FQN",
        ),
        (
            [*SOURCE, "--to", "gpu-east:ml-team"],
            "--dest-workspace: must differ from --source-workspace",
        ),
    ],
    ids=[
        "wrong-dest-cluster",
        "wrong-source-cluster",
        "unknown-fqn",
        "unknown-dest-workspace",
        "unknown-source-workspace",
        "fqn-and-id-disagree",
        "dest-fqn-checked",
        "same-workspace",
    ],
)
def test_add_the_api_contradicts_is_one_line_exit_2_and_writes_nothing(
    bare_jf: Jobfallback, args: list[str], message: str
) -> None:
    result = run(bare_jf, "configs", "add", *args)
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr.startswith(f"error: {message}"), result
    assert result.stderr.count("\n") == 1, result
    assert stored(bare_jf) == []


def test_add_without_a_token_warns_loudly_naming_backfill_fqn(bare_jf: Jobfallback) -> None:
    result = run(bare_jf, "configs", "add", *SOURCE, *DESTINATION, env=NO_TOKEN)
    assert result.returncode == 0, result
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("warning: config 1: the destination's FQN was not looked up"), warning
    assert "Every sweep SKIPS this config until `jobfallback configs backfill-fqn`" in warning
    assert stored(bare_jf) == [route(destinationWorkspaceFqn=None)]
    # ... and backfill-fqn then fills it from the same API.
    assert run(bare_jf, "configs", "backfill-fqn").returncode == 0
    assert stored(bare_jf) == [route()]


def test_add_when_the_api_is_unreachable_exits_3_and_writes_nothing(bare_jf: Jobfallback) -> None:
    result = run(
        bare_jf, "configs", "add", *SOURCE, *DESTINATION, env={"TFY_HOST": "http://127.0.0.1:1"}
    )
    assert result.returncode == 3, result
    assert result.stderr.splitlines()[-1].startswith("error: GET /api/svc/v1/workspaces/"), result
    assert stored(bare_jf) == []


def test_update_to_a_new_destination_refreshes_its_fqn_and_cluster(bare_jf: Jobfallback) -> None:
    assert run(bare_jf, "configs", "add", *SOURCE, *DESTINATION).returncode == 0
    moved = run(bare_jf, "configs", "update", "1", "--dest-workspace", "ws-east-research")
    assert (moved.returncode, moved.stderr) == (0, ""), moved
    research = route(destinationClusterId="gpu-east", destinationWorkspaceId="ws-east-research")
    assert stored(bare_jf) == [{**research, "destinationWorkspaceFqn": "gpu-east:research"}]

    wrong = run(bare_jf, "configs", "update", "1", "--dest-cluster", "gpu-west")
    assert (wrong.returncode, wrong.stderr) == (
        2,
        "error: --dest-cluster gpu-west: workspace ws-east-research (gpu-east:research) is in "
        "cluster gpu-east; give --dest-cluster gpu-east, or leave it out\n",
    ), wrong
    back = run(bare_jf, "configs", "update", "1", "--to", "gpu-west:fallback")
    assert back.returncode == 0, back
    assert stored(bare_jf) == [route()]


# ------------------------------------------------------------------ interactive configs add


def test_add_not_on_a_terminal_names_the_missing_option(bare_jf: Jobfallback) -> None:
    result = run(bare_jf, "configs", "add", "--name", "x")
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr == (
        "error: --source-workspace is required (the source workspace's id); give it, or run "
        "`jobfallback configs add` on a terminal (with an API token) to pick the workspaces "
        "from a list\n"
    )
    destination = run(bare_jf, "configs", "add", *SOURCE)
    assert destination.returncode == 2, destination
    assert destination.stderr.startswith(
        "error: --to is required (the destination workspace's FQN), or --dest-cluster and "
        "--dest-workspace; give it"
    )
    assert stored(bare_jf) == []


def test_add_on_a_terminal_lets_a_person_pick_both_workspaces(bare_jf: Jobfallback) -> None:
    """A real process whose stdin is a pseudo-terminal: the answers pick ml-team (1 of 3) and,
    from the other two, fallback (2)."""
    terminal, stdin = pty.openpty()
    try:
        process = subprocess.Popen(
            [*CLI, "configs", "add", "--name", "picked", "-o", "json"],
            env=bare_jf.env(None),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(stdin)
        os.write(terminal, b"1\n2\n")
        result = bare_jf.finish(process)
    finally:
        os.close(terminal)
    assert result.returncode == 0, result
    assert json.loads(result.stdout)[0]["destinationWorkspaceFqn"] == "gpu-west:fallback"
    lines = result.stderr.splitlines()
    assert lines[:4] == [
        "Source workspace (runs stuck here move):",
        "    1  gpu-east:ml-team   id ws-east-ml, cluster gpu-east",
        "    2  gpu-east:research  id ws-east-research, cluster gpu-east",
        "    3  gpu-west:fallback  id ws-west-fallback, cluster gpu-west",
    ]
    assert "    1  gpu-east:research  id ws-east-research, cluster gpu-east" in lines
    assert stored(bare_jf) == [route(name="picked")]


@pytest.fixture
def terminal(
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer, database_url: str
) -> CliRunner:
    """In-process runs whose answers come from the runner's input, with the one TTY check
    patched to say "a person is there"."""
    monkeypatch.setattr(configs_api, "stdin_is_terminal", lambda: True)
    monkeypatch.setenv("TFY_HOST", sandbox.url)
    monkeypatch.setenv("TF_USER_API_TOKEN", sandbox.token)
    monkeypatch.setenv("DATABASE_URL", database_url)
    return CliRunner()


def test_a_person_answers_by_number_fqn_or_id_and_a_wrong_answer_asks_again(
    terminal: CliRunner, bare_jf: Jobfallback
) -> None:
    result = terminal.invoke(
        app, ["configs", "add"], input="7\ngpu-east:research\nws-west-fallback\n"
    )
    assert result.exit_code == 0, result.output
    assert "'7' is none of them: give a number from 1 to 3" in result.stderr
    # Only what is missing is asked: here the destination (ml-team is not offered).
    again = terminal.invoke(
        app, ["configs", "add", "--source-workspace", "ws-east-ml"], input="2\n"
    )
    assert again.exit_code == 0, again.output
    assert "gpu-east:ml-team" not in again.stderr
    assert stored(bare_jf) == [
        route(sourceWorkspaceId="ws-east-research"),
        route(),
    ]


def test_a_terminal_without_a_token_cannot_pick(
    terminal: CliRunner, monkeypatch: pytest.MonkeyPatch, bare_jf: Jobfallback
) -> None:
    monkeypatch.delenv("TF_USER_API_TOKEN")
    result = terminal.invoke(app, ["configs", "add"], input="1\n2\n")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: cannot list the workspaces to pick from: neither TF_USER_API_TOKEN nor "
        "TF_SERVICE_API_TOKEN is set; set it, or give --source-workspace and --to (see --help)\n"
    )
    assert stored(bare_jf) == []


# ------------------------------------------------------------------ configs import


def entry(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in {**FILLED, **fields}.items() if value is not None}


def test_import_fills_missing_fqns_from_the_api(bare_jf: Jobfallback, tmp_path: Path) -> None:
    file = tmp_path / "configs.yaml"
    file.write_text(
        json.dumps(
            [
                entry(name="generic", destinationWorkspaceFqn=None),
                entry(sourceJobId="app-train-llm", destinationWorkspaceFqn=None),
                entry(sourceWorkspaceId="ws-east-research"),  # has one: kept as it is
            ]
        )
    )
    dry = run(bare_jf, "configs", "import", str(file), "--dry-run", "-o", "json")
    assert dry.returncode == 0, dry
    assert [c["destinationWorkspaceFqn"] for c in dry.json()["added"]] == ["gpu-west:fallback"] * 3
    assert stored(bare_jf) == []

    result = run(bare_jf, "configs", "import", str(file))
    assert result.returncode == 0, result
    assert result.stderr == (
        "entry 1 (generic), entry 2: destinationWorkspaceFqn looked up from the API\n"
    )
    assert stored(bare_jf) == [
        route(name="generic"),
        route(sourceJobId="app-train-llm"),
        route(sourceWorkspaceId="ws-east-research"),
    ]


def test_an_import_the_api_contradicts_lists_every_problem_and_writes_nothing(
    bare_jf: Jobfallback, tmp_path: Path
) -> None:
    file = tmp_path / "configs.yaml"
    file.write_text(
        json.dumps(
            [
                entry(destinationWorkspaceFqn=None),  # fine on its own: not written either
                entry(
                    sourceJobId="a", destinationClusterId="gpu-east", destinationWorkspaceFqn=None
                ),
                entry(
                    sourceJobId="b",
                    destinationWorkspaceId="ws-nowhere",
                    destinationWorkspaceFqn=None,
                ),
            ]
        )
    )
    result = run(bare_jf, "configs", "import", str(file))
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr.splitlines() == [
        "error: entry 2: field destinationClusterId: workspace ws-west-fallback "
        "(gpu-west:fallback) is in cluster gpu-west, not gpu-east; fix destinationClusterId",
        "error: entry 3: field destinationWorkspaceId: workspace ws-nowhere not found; give the "
        "id TrueFoundry shows for it",
        f"error: 2 problem(s) in the configs; nothing was written ({file})",
    ]
    assert stored(bare_jf) == []


def test_import_without_a_token_warns_loudly_naming_backfill_fqn(
    bare_jf: Jobfallback, tmp_path: Path
) -> None:
    file = tmp_path / "configs.yaml"
    file.write_text(json.dumps([entry(destinationWorkspaceFqn=None)]))
    result = run(bare_jf, "configs", "import", str(file), env=NO_TOKEN)
    assert result.returncode == 0, result
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("warning: entry 1: no destinationWorkspaceFqn"), warning
    assert "Every sweep SKIPS these configs until `jobfallback configs backfill-fqn`" in warning
    assert stored(bare_jf) == [route(destinationWorkspaceFqn=None)]

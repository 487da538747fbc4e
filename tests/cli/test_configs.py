from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from jobfallback.cli import app

pytestmark = pytest.mark.embedded

runner = CliRunner()

ADD = [
    "--source-cluster", "c-src",
    "--source-workspace", "ws-src",
    "--dest-cluster", "c-dst",
    "--dest-workspace", "ws-dst",
    "--dest-fqn", "c-dst:team",
]  # fmt: skip

ENTRY = {
    "sourceClusterId": "c-src",
    "sourceWorkspaceId": "ws-src",
    "destinationClusterId": "c-dst",
    "destinationWorkspaceId": "ws-dst",
    "destinationWorkspaceFqn": "c-dst:team",
}


def run(url: str, *args: str, stdin: str | None = None) -> Result:
    return runner.invoke(app, ["configs", *args, "--database-url", url], input=stdin)


def ok(url: str, *args: str, stdin: str | None = None) -> str:
    result = run(url, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def listed(url: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(url, "list", "--output", "json"))
    return rows


def test_add_list_show_update_enable_disable_remove(database_url: str) -> None:
    added = json.loads(ok(database_url, "add", *ADD, "--name", "main", "--output", "json"))
    config_id = str(added[0]["id"])
    ok(database_url, "add", *ADD[:4], "--source-job", "job-1", *ADD[4:], "--disabled")

    table = ok(database_url, "list").splitlines()
    assert table[0].split() == [
        "ID", "NAME", "SOURCE", "JOB", "DESTINATION", "FQN", "ENABLED", "THRESHOLD", "PRIORITY"
    ]  # fmt: skip
    assert table[1].split() == [
        config_id, "main", "c-src/ws-src", "any", "c-dst/ws-dst", "c-dst:team", "yes", "default",
        "0",
    ]  # fmt: skip
    assert [c["sourceJobId"] for c in listed(database_url)] == [None, "job-1"]
    enabled_only = json.loads(ok(database_url, "list", "--enabled-only", "--output", "json"))
    assert [c["name"] for c in enabled_only] == ["main"]

    shown = [line.split() for line in ok(database_url, "show", config_id).splitlines()]
    assert shown[0] == ["id", config_id]
    assert ["sourceWorkspaceId", "ws-src"] in shown
    updated = json.loads(
        ok(database_url, "update", config_id, "--threshold-minutes", "30", "--output", "json")
    )
    assert updated[0]["stuckThresholdMinutes"] == 30
    assert updated[0]["name"] == "main"
    cleared = json.loads(
        ok(database_url, "update", config_id, "--clear", "threshold", "--output", "json")
    )
    assert cleared[0]["stuckThresholdMinutes"] is None
    assert cleared[0]["name"] == "main"

    assert ok(database_url, "disable", config_id) == f"config {config_id} (main) disabled\n"
    assert json.loads(ok(database_url, "show", config_id, "-o", "json"))["enabled"] is False
    assert ok(database_url, "enable", config_id) == f"config {config_id} (main) enabled\n"

    assert ok(database_url, "remove", config_id, "--yes") == f"removed config {config_id} (main)\n"
    assert [c["sourceJobId"] for c in listed(database_url)] == ["job-1"]


def test_remove_asks_first(database_url: str) -> None:
    config_id = str(json.loads(ok(database_url, "add", *ADD, "-o", "json"))[0]["id"])
    refused = run(database_url, "remove", config_id, stdin="n\n")
    assert refused.exit_code == 1
    assert len(listed(database_url)) == 1
    ok(database_url, "remove", config_id, stdin="y\n")
    assert listed(database_url) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", *ADD[:3], " ", *ADD[4:]], "error: --source-workspace: must not be empty"),
        (
            ["add", *ADD[:7], "ws-src", *ADD[8:]],
            "error: --dest-workspace: must differ from --source-workspace; a config cannot move",
        ),
        (
            ["add", *ADD, "--threshold-minutes", "0"],
            "error: --threshold-minutes: must be a whole number of minutes from 1 to 525600",
        ),
        (["add", *ADD, "--to", "c-dst:team"], "--to and --dest-fqn both give"),
        # Not a terminal: no prompt, the missing flag named.
        (
            ["add", *ADD[:2], *ADD[4:]],
            "error: --source-workspace is required (the source workspace's id); give it, or run",
        ),
        (["add", *ADD[:4]], "error: --to is required (the destination workspace's FQN), or "),
        (
            ["add", *ADD[:4], "--to", "c-dst:team"],
            "error: --to c-dst:team: finding a workspace by its FQN needs the API, but neither "
            "TF_USER_API_TOKEN nor TF_SERVICE_API_TOKEN is set; set it, or give --dest-cluster "
            "and --dest-workspace as well",
        ),
        (["add", *ADD[:4], *ADD[6:]], "error: --dest-cluster is required: without the API"),
        (["add", *ADD[2:]], "error: --source-cluster is required: without the API"),
        (["add", *ADD, "--source-job", "."], "error: --source-job: must not be . or .."),
        (["add", *ADD, "--name", "a\x1bb"], "error: --name: must not contain control"),
        (["update", "1"], "nothing to change"),
        (["update", "1", "--name", "x", "--clear", "name"], "--clear name and a new value"),
        (["show", "7"], "config 7 not found; see `jobfallback configs list`"),
        (["enable", "7"], "config 7 not found"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    database_url: str, args: list[str], message: str
) -> None:
    result = run(database_url, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert listed(database_url) == []


def test_update_names_the_flags_the_person_typed(database_url: str) -> None:
    config_id = str(json.loads(ok(database_url, "add", *ADD, "-o", "json"))[0]["id"])
    result = run(database_url, "update", config_id, "--threshold-minutes", "0")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --threshold-minutes: must be a whole number of minutes from 1 to 525600; "
        "leave it out to use JOB_FALLBACK_STUCK_THRESHOLD_MINUTES\n",
    )
    same = run(database_url, "update", config_id, "--dest-workspace", "ws-src")
    assert same.exit_code == 2
    assert same.stderr.startswith("error: --dest-workspace: must differ from --source-workspace")
    assert [c["stuckThresholdMinutes"] for c in listed(database_url)] == [None]


def test_duplicate_natural_key_is_refused_by_the_database(database_url: str) -> None:
    ok(database_url, "add", *ADD)
    result = run(database_url, "add", *ADD, "--name", "again")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: --dest-workspace: a generic config from this source workspace"
    )
    assert len(listed(database_url)) == 1


def test_import_export_import_is_a_no_op(database_url: str, tmp_path: Path) -> None:
    document = {
        "configs": [
            {**ENTRY, "name": "generic"},
            {**ENTRY, "sourceJobId": "job-1", "stuckThresholdMinutes": 15, "enabled": False},
            {**ENTRY, "destinationWorkspaceId": "ws-2", "destinationWorkspaceFqn": "c-dst:two"},
        ]
    }
    source = tmp_path / "configs.yaml"
    source.write_text(yaml.safe_dump(document))
    assert ok(database_url, "import", str(source)).splitlines()[-1] == (
        "3 added, 0 updated, 0 removed, 0 unchanged"
    )
    exported = tmp_path / "exported.json"
    ok(database_url, "export", str(exported), "--format", "json")
    assert json.loads(exported.read_text()) == [
        {"enabled": True, **entry} for entry in document["configs"]
    ]

    again = json.loads(ok(database_url, "import", str(exported), "--prune", "-o", "json"))
    assert (again["added"], again["updated"], again["removed"]) == ([], [], [])
    assert len(again["unchanged"]) == 3


def test_import_from_stdin_dry_run_then_prune(database_url: str) -> None:
    ok(database_url, "add", *ADD, "--name", "old")
    ok(database_url, "add", *ADD[:7], "ws-stale", *ADD[8:])
    text = json.dumps([{**ENTRY, "name": "new"}, {**ENTRY, "destinationWorkspaceId": "ws-3"}])

    dry = ok(database_url, "import", "-", "--prune", "--dry-run", stdin=text)
    assert (
        dry.splitlines()[-1]
        == "1 added, 1 updated, 1 removed, 0 unchanged (dry run: nothing written)"
    )
    assert "name: old -> new" in dry
    assert [c["name"] for c in listed(database_url)] == ["old", None]

    ok(database_url, "import", "-", "--prune", stdin=text)
    assert [(c["name"], c["destinationWorkspaceId"]) for c in listed(database_url)] == [
        ("new", "ws-dst"),
        (None, "ws-3"),
    ]


def test_import_with_any_error_writes_nothing_and_lists_every_error(database_url: str) -> None:
    ok(database_url, "add", *ADD)
    before = listed(database_url)
    text = yaml.safe_dump(
        [
            {**ENTRY, "destinationWorkspaceId": "ws-new"},
            {**ENTRY, "sourceWorkspaceId": "", "name": "broken"},
            {**ENTRY, "destinationWorkspaceId": "ws-src"},
            {**ENTRY, "destinationWorkspaceId": "ws-new"},
        ]
    )
    result = run(database_url, "import", "-", "--prune", stdin=text)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: entry 2 (broken): field sourceWorkspaceId: must not be empty",
        "error: entry 3: field destinationWorkspaceId: must differ from sourceWorkspaceId; "
        "a config cannot move runs into the workspace they are stuck in",
        "error: entry 4: field destinationWorkspaceId: duplicates entry 1; "
        "one generic config per source and destination workspace",
        "error: 3 problem(s) in the configs; nothing was written (-)",
    ]
    assert listed(database_url) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [("[unclosed", "is not valid YAML or JSON at line"), ("", "must hold a list of configs")],
)
def test_unreadable_import_file_exits_2(
    database_url: str, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "configs.yaml"
    path.write_text(content)
    result = run(database_url, "import", str(path))
    assert result.exit_code == 2
    assert message in result.stderr
    missing = run(database_url, "import", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr


def test_export_yaml_to_stdout_from_a_real_process(database_url: str) -> None:
    ok(database_url, "add", *ADD, "--name", "main")
    result = subprocess.run(
        [sys.executable, "-m", "jobfallback", "configs", "export", "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == [{"name": "main", **ENTRY, "enabled": True}]


def test_without_database_url_a_real_process_uses_the_embedded_server() -> None:
    # Not tmp_path: see tests.fixtures.db.embedded_root.
    with tempfile.TemporaryDirectory(prefix="jobfallback-test-") as data_dir:
        # No PostgreSQL binaries on PATH (here they live in /usr/local/bin); the system dirs
        # stay, as under cron or in a container: run as root, the server adds its own user.
        env = {"JOB_FALLBACK_DATA_DIR": data_dir, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        command = [sys.executable, "-m", "jobfallback", "configs"]
        first = subprocess.run(
            [*command, "add", *ADD], env=env, capture_output=True, text=True, timeout=120
        )
        assert first.returncode == 0, first.stderr
        # Every command's events are text lines with their fields, as a sweep's are.
        assert re.fullmatch(
            r"\d\d:\d\d:\d\d WARNING started an embedded PostgreSQL "
            r"\(set DATABASE_URL to use your own server\) pgdata=\S+\n",
            first.stderr,
        ), first.stderr
        second = subprocess.run(
            [*command, "list", "-o", "json"], env=env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stderr
        assert second.stderr == ""
        assert [c["destinationWorkspaceFqn"] for c in json.loads(second.stdout)] == ["c-dst:team"]


def test_show_and_list_speak_one_vocabulary(database_url: str) -> None:
    # No job, no threshold, no FQN (no token to look it up): the same words in both.
    ok(database_url, "add", *ADD[:8])
    row = ok(database_url, "list").splitlines()[1].split()
    assert row[3:] == ["any", "c-dst/ws-dst", "missing", "yes", "default", "0"]
    shown = dict(line.split(maxsplit=1) for line in ok(database_url, "show", "1").splitlines())
    assert {key: shown[key] for key in ("name", "sourceJobId", "enabled")} == {
        "name": "-",
        "sourceJobId": "any",
        "enabled": "yes",
    }
    assert shown["destinationWorkspaceFqn"] == "missing"
    assert shown["stuckThresholdMinutes"] == "default"
    assert shown["createdAt"].endswith(" UTC")
    assert "." not in shown["createdAt"]  # no microseconds
    ok(database_url, "update", "1", "--threshold-minutes", "30", "--disabled")
    shown = dict(line.split(maxsplit=1) for line in ok(database_url, "show", "1").splitlines())
    assert (shown["enabled"], shown["stuckThresholdMinutes"]) == ("no", "30")
    assert ok(database_url, "list").splitlines()[1].split()[-3:] == ["no", "30", "0"]
    # JSON keeps the values as they are.
    assert json.loads(ok(database_url, "show", "1", "-o", "json"))["sourceJobId"] is None


def test_an_empty_list_says_how_to_add_a_config(database_url: str) -> None:
    assert ok(database_url, "list") == (
        "No configs yet. Add one with `jobfallback configs add` (on a terminal it lets you pick "
        "the workspaces) or `jobfallback configs import FILE`.\n"
    )
    assert ok(database_url, "list", "-o", "json") == "[]\n"
    ok(database_url, "add", *ADD, "--disabled")
    assert ok(database_url, "list", "--enabled-only") == (
        "No enabled configs (1 disabled). Switch one on with `jobfallback configs enable ID`.\n"
    )


def test_add_without_a_token_stores_no_fqn_and_warns_naming_backfill(database_url: str) -> None:
    result = run(database_url, "add", *ADD[:8], "--name", "main")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: config 1 (main): the destination's FQN was not looked up: neither "
        "TF_USER_API_TOKEN nor TF_SERVICE_API_TOKEN is set. Every sweep SKIPS this config until "
        "`jobfallback configs backfill-fqn` (with a token) fills it; or add it with --to\n"
    )
    assert [c["destinationWorkspaceFqn"] for c in listed(database_url)] == [None]


def test_import_without_a_token_warns_naming_backfill(database_url: str) -> None:
    entries = [{**ENTRY, "name": "a"}, {**ENTRY, "destinationWorkspaceId": "ws-2"}, ENTRY]
    for entry in entries[:2]:
        entry.pop("destinationWorkspaceFqn")
    result = run(database_url, "import", "-", stdin=json.dumps(entries[:2]))
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: entry 1 (a), entry 2: no destinationWorkspaceFqn, and it was not looked up: "
        "neither TF_USER_API_TOKEN nor TF_SERVICE_API_TOKEN is set. Every sweep SKIPS these "
        "configs until `jobfallback configs backfill-fqn` (with a token) fills them\n"
    )
    assert [c["destinationWorkspaceFqn"] for c in listed(database_url)] == [None, None]
    quiet = run(database_url, "import", "-", stdin=json.dumps(entries[2:]))
    assert (quiet.exit_code, quiet.stderr) == (0, "")


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_an_import_that_is_not_utf8_is_one_line_and_exit_2(
    database_url: str, tmp_path: Path, source: str
) -> None:
    path = tmp_path / "configs.yaml"
    path.write_bytes("- name: café\n".encode("latin-1"))
    command = [sys.executable, "-m", "jobfallback", "configs", "import"]
    with path.open("rb") as stdin:
        result = subprocess.run(
            [*command, str(path) if source == "file" else "-", "--database-url", database_url],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    name = str(path) if source == "file" else "-"
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == f"error: {name} is not UTF-8 text; save it as UTF-8\n"
    assert listed(database_url) == []


def test_update_to_a_new_destination_without_a_token_clears_the_old_fqn(database_url: str) -> None:
    ok(database_url, "add", *ADD)
    result = run(database_url, "update", "1", "--dest-workspace", "ws-new")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: config 1: the destination's FQN was cleared (it named workspace ws-dst) and "
        "not looked up: neither TF_USER_API_TOKEN nor TF_SERVICE_API_TOKEN is set. Every sweep "
        "SKIPS this config until `jobfallback configs backfill-fqn` (with a token) fills it; or "
        "give it with --to\n"
    )
    assert [
        (c["destinationWorkspaceId"], c["destinationWorkspaceFqn"]) for c in listed(database_url)
    ] == [("ws-new", None)]
    # An FQN given with it is kept; a change elsewhere keeps the stored one.
    ok(database_url, "update", "1", "--dest-workspace", "ws-dst", "--to", "c-dst:team")
    ok(database_url, "update", "1", "--name", "renamed")
    assert [c["destinationWorkspaceFqn"] for c in listed(database_url)] == ["c-dst:team"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--format", "yml"], "'yml' is not one of yaml, json"),
        (["show", "abc"], "'abc' is not a config id (a whole number; see `jobfallback"),
        (["update", "1", "--threshold-minutes", "ten"], "'ten' is not a whole number of minutes"),
        (["update", "1", "--clear", "nme"], "'nme' is not one of name, source-job, threshold"),
    ],
)
def test_a_bad_flag_value_is_said_in_plain_words(
    database_url: str, args: list[str], message: str
) -> None:
    result = run(database_url, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Value error" not in result.stderr
    assert "Input should" not in result.stderr


def test_file_errors_are_said_in_plain_words(database_url: str) -> None:
    text = yaml.safe_dump(
        [
            {**ENTRY, "stuckThresholdMinutes": "ten"},
            {**ENTRY, "sourceWorkspaceId": 12, "enabled": "maybe"},
            {**ENTRY, "stuckThresholdMinutes": 0, "destinationWorkspaceId": "ws-2"},
        ]
    )
    result = run(database_url, "import", "-", stdin=text)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: entry 1: field stuckThresholdMinutes: must be a whole number of minutes from 1 "
        "to 525600; leave it out to use JOB_FALLBACK_STUCK_THRESHOLD_MINUTES",
        "error: entry 2: field sourceWorkspaceId: must be text (quote a value YAML would read "
        "as a number or a date)",
        "error: entry 2: field enabled: must be true or false",
        "error: entry 3: field stuckThresholdMinutes: must be a whole number of minutes from 1 "
        "to 525600; leave it out to use JOB_FALLBACK_STUCK_THRESHOLD_MINUTES",
        "error: 4 problem(s) in the configs; nothing was written (-)",
    ]


def test_reimporting_a_file_without_fqns_keeps_the_stored_ones(database_url: str) -> None:
    """A file a person wrote has no FQNs; importing it again must not clear the FQNs stored
    (looked up, or back-filled) for the same destinations, token or not."""
    ok(database_url, "add", *ADD, "--name", "main")
    bare = {key: value for key, value in ENTRY.items() if key != "destinationWorkspaceFqn"}
    text = json.dumps([{**bare, "name": "renamed"}, {**bare, "destinationWorkspaceId": "ws-2"}])
    result = run(database_url, "import", "-", stdin=text)
    assert result.exit_code == 0, result.output
    assert "name: main -> renamed" in result.stdout
    assert "destinationWorkspaceFqn" not in result.stdout  # not an update of the FQN
    assert result.stderr.startswith("warning: entry 2: no destinationWorkspaceFqn")  # only 2
    assert [(c["name"], c["destinationWorkspaceFqn"]) for c in listed(database_url)] == [
        ("renamed", "c-dst:team"),
        (None, None),
    ]


# ------------------------------------------------------------------ chains, exclusions, patches


def test_add_takes_priority_exclusions_and_a_manifest_patch(
    database_url: str, tmp_path: Path
) -> None:
    patch = tmp_path / "patch.json"
    patch.write_text('{"env": {"ON_FALLBACK": "1"}}', encoding="utf-8")
    added = json.loads(
        ok(
            database_url,
            "add",
            *ADD,
            "--priority",
            "3",
            "--exclude-job",
            "app-billing",
            "--exclude-job",
            "app-audit",
            "--manifest-patch",
            f"@{patch}",
            "--output",
            "json",
        )
    )[0]
    assert (added["priority"], added["excludeJobIds"]) == (3, ["app-audit", "app-billing"])
    assert added["manifestPatch"] == {"env": {"ON_FALLBACK": "1"}}
    shown = ok(database_url, "show", str(added["id"]))
    assert 'manifestPatch            {"env":{"ON_FALLBACK":"1"}}' in shown
    cleared = json.loads(
        ok(
            database_url,
            "update",
            str(added["id"]),
            "--clear",
            "manifest-patch",
            "--clear",
            "exclude-jobs",
            "--output",
            "json",
        )
    )[0]
    assert (cleared["manifestPatch"], cleared["excludeJobIds"]) == (None, [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--manifest-patch", "{nope"], "Invalid value for '--manifest-patch': not JSON"),
        (
            ["--manifest-patch", "[1]"],
            "Invalid value for '--manifest-patch': must be a JSON object",
        ),
        (
            ["--manifest-patch", '{"trigger": {"type": "scheduled"}}'],
            "error: --manifest-patch: trigger: set by the move on every copy; "
            "remove it from the patch",
        ),
        (["--priority", "1001"], "error: --priority: must be 1000 or less"),
        (
            ["--source-job", "j1", "--exclude-job", "j2"],
            "error: --exclude-job: only a generic config (no --source-job) excludes jobs; "
            "remove one of the two",
        ),
    ],
)
def test_bad_chain_and_patch_flags_are_one_line_exit_2(
    database_url: str, args: list[str], message: str
) -> None:
    result = run(database_url, "add", *ADD, *args)
    assert result.exit_code == 2, result.output
    # Our own checks say it in one line; click's own parse errors add its usage lines above.
    (line,) = [line for line in result.stderr.splitlines() if "rror" in line]
    assert message in line, result.stderr
    assert json.loads(ok(database_url, "list", "--output", "json")) == []


def test_import_warns_about_a_cycle_in_the_config_graph(database_url: str, tmp_path: Path) -> None:
    def entry(source: str, destination: str) -> dict[str, str]:
        return {
            "sourceClusterId": "c",
            "sourceWorkspaceId": source,
            "destinationClusterId": "c",
            "destinationWorkspaceId": destination,
            "destinationWorkspaceFqn": f"c:{destination}",
        }

    file = tmp_path / "configs.json"
    file.write_text(
        json.dumps([entry("ws-a", "ws-b"), entry("ws-b", "ws-a"), entry("ws-b", "ws-c")])
    )
    result = run(database_url, "import", str(file))
    assert result.exit_code == 0, result.output
    assert "warning: the configs form a cycle ws-a -> ws-b -> ws-a" in result.stderr
    file.write_text(json.dumps([entry("ws-a", "ws-b"), entry("ws-b", "ws-c")]))
    result = run(database_url, "import", "--prune", str(file))
    assert "cycle" not in result.stderr

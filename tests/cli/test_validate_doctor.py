"""`configs validate`, `configs backfill-fqn` and `doctor` in a subprocess against the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from jobfallback.settings import load_settings
from jobfallback.store import open_store
from tests.e2e import harness
from tests.e2e.harness import Jobfallback, with_password

pytestmark = pytest.mark.e2e
bare_jf, jf = harness.bare_jf, harness.jf  # the fixtures, visible to this module

# Fits the demo sandbox: ml-team (gpu-east) -> fallback (gpu-west).
GOOD: dict[str, Any] = {
    "sourceClusterId": "gpu-east",
    "sourceWorkspaceId": "ws-east-ml",
    "destinationClusterId": "gpu-west",
    "destinationWorkspaceId": "ws-west-fallback",
    "destinationWorkspaceFqn": "gpu-west:fallback",
}


def problems(text: str) -> list[list[str]]:
    """The rows of the problem table, split into (config, field, first word of the problem)."""
    lines = text.splitlines()
    assert lines[0].split() == ["CONFIG", "FIELD", "PROBLEM"], text
    return [line.split(maxsplit=2) for line in lines[1:]]


def test_validate_and_backfill_accept_the_demo_configs(jf: Jobfallback) -> None:
    result = jf.run("configs", "validate")
    assert (result.returncode, result.stdout) == (0, "All 3 configs are valid.\n"), result
    backfill = jf.run("configs", "backfill-fqn")
    assert (backfill.returncode, backfill.stdout) == (0, "No config lacks a destination FQN.\n")


def test_validate_lists_every_problem_and_exits_1(bare_jf: Jobfallback) -> None:
    wrong_cluster, missing_ws, wrong_fqn, foreign_job, unknown_job = bare_jf.load_configs(
        [
            {**GOOD, "destinationClusterId": "gpu-east"},
            {**GOOD, "sourceWorkspaceId": "ws-nowhere"},
            {**GOOD, "sourceWorkspaceId": "ws-east-research", "destinationWorkspaceFqn": "x:y"},
            {**GOOD, "sourceJobId": "app-embed-corpus"},  # a job of ws-east-research
            {**GOOD, "sourceJobId": "app-nowhere"},
        ]
    )
    result = bare_jf.run("configs", "validate")
    assert result.returncode == 1, result
    assert problems(result.stdout) == [
        [
            str(wrong_cluster.id),
            "destinationClusterId",
            "workspace ws-west-fallback is in cluster gpu-west, not gpu-east",
        ],
        [str(missing_ws.id), "sourceWorkspaceId", "workspace ws-nowhere not found"],
        [
            str(wrong_fqn.id),
            "destinationWorkspaceFqn",
            "is x:y but workspace ws-west-fallback is gpu-west:fallback",
        ],
        [
            str(foreign_job.id),
            "sourceJobId",
            "job app-embed-corpus is in workspace ws-east-research, not ws-east-ml",
        ],
        [str(unknown_job.id), "sourceJobId", "job app-nowhere not found"],
    ]


def test_backfill_fqn_fills_legacy_configs(bare_jf: Jobfallback) -> None:
    legacy, wrong_cluster = bare_jf.load_configs(
        [
            {**GOOD, "destinationWorkspaceFqn": None},
            {
                **GOOD,
                "sourceWorkspaceId": "ws-east-research",
                "destinationClusterId": "gpu-east",
                "destinationWorkspaceFqn": None,
            },
        ]
    )

    preview = bare_jf.run("configs", "backfill-fqn", "--dry-run")
    assert preview.returncode == 1, preview  # the config with the wrong cluster
    assert f"would set config {legacy.id} FQN to gpu-west:fallback" in preview.stdout
    assert [str(wrong_cluster.id), "destinationClusterId"] == problems(
        preview.stdout.split("\n", 1)[1]
    )[0][:2]
    assert stored_fqns(bare_jf) == {legacy.id: None, wrong_cluster.id: None}

    filled = bare_jf.run("configs", "backfill-fqn")
    assert filled.returncode == 1, filled
    assert f"set config {legacy.id} FQN to gpu-west:fallback" in filled.stdout
    assert stored_fqns(bare_jf) == {legacy.id: "gpu-west:fallback", wrong_cluster.id: None}


def stored_fqns(cli: Jobfallback) -> dict[int, str | None]:
    with open_store(cli.database_url) as store:
        return {c.id: c.destination_workspace_fqn for c in store.configs.list()}


def test_doctor_all_ok(jf: Jobfallback) -> None:
    result = jf.run("doctor")
    assert result.returncode == 0, result
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "ok   settings",
        "ok   token",
        "ok   api",
        "ok   database",
    ]


def test_doctor_shows_every_effective_setting_a_sweep_uses_with_secrets_masked(
    jf: Jobfallback,
) -> None:
    hook = "https://hooks.example.com/services/T0/B0/hook-secret-part"
    result = jf.run(
        "doctor", env={"JOB_FALLBACK_CONCURRENCY": "4", "JOB_FALLBACK_WEBHOOK_URL": hook}
    )
    assert result.returncode == 0, result
    first = result.stdout.splitlines()[0]
    assert first.startswith("ok   settings: "), result
    shown = dict(pair.split("=", 1) for pair in first.removeprefix("ok   settings: ").split())
    # Every setting the sweep's own start line reports, named as its variable.
    assert list(shown) == list(load_settings(for_sweep=False).masked())
    assert {name: shown[name] for name in ("JOB_FALLBACK_ENABLED", "JOB_FALLBACK_CONCURRENCY")} == {
        "JOB_FALLBACK_ENABLED": "true",
        "JOB_FALLBACK_CONCURRENCY": "4",
    }
    assert shown["TFY_HOST"] == jf.sandbox.url
    assert (shown["TF_SERVICE_API_TOKEN"], shown["JOB_FALLBACK_WEBHOOK_URL"]) == ("set", "set")
    assert "hook-secret-part" not in result.stdout
    assert jf.sandbox.token not in result.stdout


@pytest.mark.parametrize(
    ("env", "failing"),
    [
        ({"TF_SERVICE_API_TOKEN": None}, ["FAIL token", "FAIL api"]),
        (
            {"DATABASE_URL": with_password("postgresql://jf@127.0.0.1:1/jf", "pw-doctor-db")},
            ["FAIL database"],
        ),
    ],
    ids=["no-token", "bad-database"],
)
def test_doctor_names_the_failing_check(
    jf: Jobfallback, env: dict[str, str | None], failing: list[str]
) -> None:
    result = jf.run("doctor", env=env)
    assert result.returncode == 1, result
    assert [
        line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("FAIL")
    ] == failing
    assert "pw-doctor-db" not in result.stdout + result.stderr

"""The demo scenario, scenario files, generated fleets and the configs that fit them."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from jobfallback.models import FallbackConfigSpec
from jobfallback_sandbox import (
    SandboxState,
    ScenarioError,
    fleet_configs,
    generate_fleet,
    load_scenario,
)

HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def ages_ms(state: SandboxState, status: str = "CREATED") -> list[int]:
    return sorted(state.now_ms - r["createdAt"] for r in state.runs(status=status))


def assert_configs_fit(state: SandboxState) -> None:
    """Every config parses as a spec and names workspaces (and jobs) the state has."""
    workspaces = {ws["id"]: ws for ws in state.workspaces()}
    for raw in state.configs:
        spec = FallbackConfigSpec.model_validate(raw)
        source, dest = (
            workspaces[spec.source_workspace_id],
            workspaces[spec.destination_workspace_id],
        )
        assert source["clusterId"] == spec.source_cluster_id
        assert (dest["clusterId"], dest["fqn"]) == (
            spec.destination_cluster_id,
            spec.destination_workspace_fqn,
        )
        assert dest["hasCapacity"]
        if spec.source_job_id is not None:
            job = state.application_by_name(spec.source_workspace_id, "embed-corpus")
            assert job is not None
            assert job["id"] == spec.source_job_id


def test_demo_scenario(sandbox_state: SandboxState) -> None:
    state = sandbox_state
    snapshot = state.snapshot()
    assert {c["id"] for c in snapshot["clusters"]} == {"gpu-east", "gpu-west"}
    assert [ws["fqn"] for ws in state.workspaces() if ws["hasCapacity"]] == ["gpu-west:fallback"]
    jobs = [a for a in state.applications() if a["type"] == "job"]
    assert len(jobs) == 4
    assert all(a["workspaceId"] != "ws-west-fallback" for a in state.applications())
    created = ages_ms(state)
    assert len(created) == 4
    assert sum(age > 2 * HOUR_MS for age in created) == 3
    assert created[0] <= 10 * MINUTE_MS
    assert len(state.runs(status="RUNNING")) == len(state.runs(status="FINISHED")) == 1
    assert sum("sourceJobId" in c for c in state.configs) == 1
    assert_configs_fit(state)


def test_demo_ages_count_back_from_now_ms() -> None:
    state = load_scenario("demo", now_ms=10 * HOUR_MS)
    assert state.now_ms == 10 * HOUR_MS
    run = state.run("run-train-1")
    assert run is not None
    assert run["createdAt"] == 10 * HOUR_MS - 185 * MINUTE_MS


def test_a_scenario_file_in_json(tmp_path: Path) -> None:
    scenario: dict[str, Any] = {
        "clusters": ["c1"],
        "workspaces": [{"id": "w1", "name": "team", "clusterId": "c1", "hasCapacity": True}],
        "applications": [
            {"name": "j", "workspaceId": "w1", "runs": [{"name": "j-1", "ageMinutes": 30}]}
        ],
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(scenario))
    state = load_scenario(str(path), now_ms=HOUR_MS)
    (run,) = state.runs()
    assert (run["name"], run["status"], run["createdAt"]) == ("j-1", "CREATED", 30 * MINUTE_MS)
    app = state.application_by_name("w1", "j")
    assert app is not None
    # Filled in so that the SDK's Job reads it: type, name, workspace, an image, a trigger.
    assert app["deployment"]["manifest"] == {
        "type": "job",
        "name": "j",
        "workspace_fqn": "c1:team",
        "image": {"type": "image", "image_uri": "registry.local/j:1"},
        "trigger": {"type": "manual"},
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "clusters: [c1]\nworkspaces: [{name: w, clusterId: c1, colour: red}]",
            "workspaces.0.colour",
        ),
        ("clusters: [c1]\nworkspaces: [{name: w, clusterId: c9}]", "unknown cluster 'c9'"),
        ("clusters: [c1, c1]\nworkspaces: []", "already used"),
        ("clusters: [c1\n", "not valid YAML"),
    ],
)
def test_bad_scenario_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(str(path))


def test_unknown_scenario_names_the_built_ins() -> None:
    with pytest.raises(ScenarioError, match=r"built-in \(demo\)"):
        load_scenario("no-such-scenario")


def test_fleet_sizes_and_stuck_fraction() -> None:
    state = generate_fleet(
        workspaces=7,
        jobs_per_workspace=5,
        runs_per_job=(2, 2),
        stuck_fraction=0.3,
        now_ms=100 * HOUR_MS,
        destination_workspaces=3,
    )
    workspaces = state.workspaces()
    sources = [ws for ws in workspaces if ws["clusterId"] == "src-cluster"]
    destinations = [ws for ws in workspaces if ws["clusterId"] == "dst-cluster"]
    assert (len(sources), len(destinations)) == (7, 3)
    assert not any(ws["hasCapacity"] for ws in sources)
    assert all(ws["hasCapacity"] for ws in destinations)
    assert len(state.applications()) == 35
    ages = ages_ms(state)
    assert len(ages) == len(state.runs()) == 70
    stuck = [a for a in ages if a > 10 * MINUTE_MS]
    assert len(stuck) == 21
    assert all(2 * HOUR_MS <= a <= 6 * HOUR_MS for a in stuck)


def test_fleet_runs_per_job_range_and_determinism() -> None:
    one = generate_fleet(
        workspaces=4, jobs_per_workspace=10, runs_per_job=(1, 3), seed=5, now_ms=HOUR_MS
    )
    per_app = [len(one.runs(application_id=a["id"])) for a in one.applications()]
    assert set(per_app) == {1, 2, 3}
    same = generate_fleet(
        workspaces=4, jobs_per_workspace=10, runs_per_job=(1, 3), seed=5, now_ms=HOUR_MS
    )
    other = generate_fleet(
        workspaces=4, jobs_per_workspace=10, runs_per_job=(1, 3), seed=6, now_ms=HOUR_MS
    )
    assert same.snapshot() == one.snapshot()
    assert other.snapshot() != one.snapshot()


def test_a_fleet_with_fractional_times_and_generated_names() -> None:
    state = generate_fleet(
        workspaces=3,
        jobs_per_workspace=2,
        runs_per_job=(2, 2),
        now_ms=100 * HOUR_MS,
        profiles=("fractional-times", "generated-names"),
    )
    runs = state.runs()
    assert len(runs) == 12
    assert not any(float(r["createdAt"]).is_integer() for r in runs)
    assert all(r["name"].startswith(r["applicationName"] + "-") for r in runs)
    assert_configs_fit(state)


def test_fleet_configs_cover_every_source_round_robin() -> None:
    state = generate_fleet(workspaces=5, jobs_per_workspace=1, destination_workspaces=2)
    configs = fleet_configs(state)
    assert configs == state.configs
    assert [c["sourceWorkspaceId"] for c in configs] == [f"ws-src-{i:04d}" for i in range(1, 6)]
    assert [c["destinationWorkspaceId"] for c in configs] == ["ws-dst-001", "ws-dst-002"] * 2 + [
        "ws-dst-001"
    ]
    assert_configs_fit(state)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"destination_workspaces": 0},
        {"runs_per_job": (3, 1)},
        {"stuck_fraction": 1.5},
        {"workspaces": -1},
    ],
)
def test_fleet_rejects_bad_sizes(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_fleet(**{"workspaces": 1, "jobs_per_workspace": 1, **kwargs})


def test_configs_are_what_the_products_export_writes() -> None:
    """The sandbox checks configs itself (it imports nothing of jobfallback's); what it hands
    on is exactly the product's file entry for the same config."""
    states = [load_scenario("demo"), generate_fleet(workspaces=3, jobs_per_workspace=1)]
    for state in states:
        for raw in state.configs:
            assert FallbackConfigSpec.model_validate(raw).file_entry() == raw


def test_scenario_configs_are_normalised_like_the_product() -> None:
    raw = {
        "name": " excluding ",
        "sourceClusterId": "c1",
        "sourceWorkspaceId": "w1",
        "destinationClusterId": "c1",
        "destinationWorkspaceId": "w2",
        "priority": 0,
        "enabled": False,
        "stuckThresholdMinutes": 30,
        "excludeJobIds": ["j2", "j1", "j2"],
        "manifestPatch": {"env": {"A": "1"}},
    }
    state = load_scenario_text(f"clusters: [c1]\nworkspaces: []\nconfigs: [{json.dumps(raw)}]")
    (entry,) = state.configs
    assert entry == FallbackConfigSpec.model_validate(raw).file_entry()
    assert entry["name"] == "excluding"
    assert entry["excludeJobIds"] == ["j1", "j2"]
    assert "priority" not in entry


_CONFIG = (
    "{sourceClusterId: c1, sourceWorkspaceId: w1, destinationClusterId: c1, "
    "destinationWorkspaceId: w2"
)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_CONFIG + ", colour: red}", "configs.0.colour: not a config field"),
        ("{sourceClusterId: c1}", "configs.0.sourceWorkspaceId: required"),
        (_CONFIG + ", name: '  '}", "configs.0.name: must not be empty"),
        (_CONFIG + ", priority: 1001}", "configs.0.priority: must be a whole number"),
        (_CONFIG + ", stuckThresholdMinutes: true}", "stuckThresholdMinutes: must be a whole"),
        (_CONFIG + ", enabled: maybe}", "configs.0.enabled: must be true or false"),
        (_CONFIG + ", sourceJobId: j, excludeJobIds: [k]}", "only a generic config"),
        (_CONFIG + ", manifestPatch: [1]}", "configs.0.manifestPatch: must be a mapping"),
        ("[not, a, mapping]", "configs.0: must be a mapping"),
    ],
)
def test_bad_scenario_configs_name_the_key(config: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario_text(f"clusters: [c1]\nworkspaces: []\nconfigs: [{config}]")


def load_scenario_text(text: str) -> SandboxState:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scenario.yaml"
        path.write_text(text)
        return load_scenario(str(path))

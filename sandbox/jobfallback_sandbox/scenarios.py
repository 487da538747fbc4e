"""Scenarios: named or file-based sandbox states, and generated fleets for benchmarks.

A scenario file (YAML or JSON, camelCase keys) lists clusters, workspaces, applications with
their runs (ages in minutes before "now") and the fallback configs that fit it. Built-in
scenarios live in `scenarios/*.yaml` next to this module.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from jobfallback_sandbox.configs import ConfigError, config_entry
from jobfallback_sandbox.profiles import ProfileSpec
from jobfallback_sandbox.state import SandboxState
from jobfallback_sandbox.vendor import Obj, RunStatus

SOURCE_CLUSTER = "src-cluster"
DESTINATION_CLUSTER = "dst-cluster"
STUCK_AGE_MINUTES = (120.0, 360.0)
FRESH_AGE_MINUTES = (0.0, 10.0)
_MINUTE_MS = 60_000
# A safe loader; libyaml's when present: ten times faster, and tests load the demo a lot.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ScenarioError(Exception):
    """A scenario (or fleet) the sandbox cannot build; the message says what and where."""


class _FileModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class _Run(_FileModel):
    id: str | None = None
    name: str | None = None
    status: str = RunStatus.CREATED
    age_minutes: float = Field(default=0, ge=0)
    command: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class _Application(_FileModel):
    id: str | None = None
    name: str
    workspace_id: str
    type: str = "job"
    manifest: dict[str, Any] = Field(default_factory=dict)
    runs: list[_Run] = Field(default_factory=list)


class _Workspace(_FileModel):
    id: str | None = None
    name: str
    cluster_id: str
    has_capacity: bool = False


class _Scenario(_FileModel):
    clusters: list[str]
    workspaces: list[_Workspace]
    applications: list[_Application] = Field(default_factory=list)
    # Checked by config_entry (configs.py): plain dicts in the file format.
    configs: list[Any] = Field(default_factory=list)


def _builtin_dir() -> Any:
    return resources.files("jobfallback_sandbox").joinpath("scenarios")


def builtin_scenarios() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in _builtin_dir().iterdir() if p.name.endswith(".yaml")
    )


def _read(name_or_path: str) -> str:
    if name_or_path in builtin_scenarios():
        return str(_builtin_dir().joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8"))
    path = Path(name_or_path)
    if not path.is_file():
        names = ", ".join(builtin_scenarios())
        raise ScenarioError(f"scenario {name_or_path!r} is neither a built-in ({names}) nor a file")
    return path.read_text(encoding="utf-8")


def load_scenario(
    name_or_path: str, *, now_ms: int | None = None, profiles: ProfileSpec = ()
) -> SandboxState:
    """A built-in scenario ("demo") or a YAML/JSON file, with run ages counted back from now_ms,
    served under `profiles`."""
    text = _read(name_or_path)
    try:
        scenario = _Scenario.model_validate(yaml.load(text, Loader=_YamlLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {name_or_path}: not valid YAML/JSON ({exc})") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "top level"
        raise ScenarioError(f"scenario {name_or_path}: {where}: {error['msg']}") from None
    configs: list[Obj] = []
    for index, raw in enumerate(scenario.configs):
        try:
            configs.append(config_entry(raw))
        except ConfigError as exc:
            where = f"configs.{index}" + (f".{exc.key}" if exc.key else "")
            raise ScenarioError(f"scenario {name_or_path}: {where}: {exc.reason}") from None
    state = SandboxState(now_ms=now_ms, profiles=profiles)
    try:
        _build(state, scenario)
    except ValueError as exc:  # a dangling or repeated id
        raise ScenarioError(f"scenario {name_or_path}: {exc}") from None
    state.configs = configs
    return state


def _build(state: SandboxState, scenario: _Scenario) -> None:
    for cluster in scenario.clusters:
        state.add_cluster(cluster)
    for ws in scenario.workspaces:
        state.add_workspace(
            id=ws.id, name=ws.name, cluster_id=ws.cluster_id, has_capacity=ws.has_capacity
        )
    for spec in scenario.applications:
        app = state.add_application(
            id=spec.id,
            workspace_id=spec.workspace_id,
            name=spec.name,
            manifest=spec.manifest,
            app_type=spec.type,
        )
        for run in spec.runs:
            state.add_run(
                id=run.id,
                application_id=app["id"],
                name=run.name,
                status=run.status,
                created_at=state.now_ms - int(run.age_minutes * _MINUTE_MS),
                command=run.command,
                params=run.params,
            )


def generate_fleet(
    *,
    workspaces: int,
    jobs_per_workspace: int,
    runs_per_job: tuple[int, int] = (0, 3),
    stuck_fraction: float = 0.1,
    seed: int = 0,
    now_ms: int | None = None,
    destination_workspaces: int = 1,
    profiles: ProfileSpec = (),
) -> SandboxState:
    """Source workspaces in SOURCE_CLUSTER, destinations (with capacity) in DESTINATION_CLUSTER.

    Every run is CREATED; exactly round(runs * stuck_fraction) of them are stuck (2-6 hours
    old), the rest fresh (0-10 minutes old). The same seed gives the same fleet. Job names
    carry their workspace's number: sources share destinations, and two source jobs of one
    name would meet in a destination as one application."""
    low, high = runs_per_job
    if workspaces < 0 or jobs_per_workspace < 0 or destination_workspaces < 1:
        raise ValueError("fleet sizes must be >= 0, with at least one destination workspace")
    if not 0 <= low <= high or not 0.0 <= stuck_fraction <= 1.0:
        raise ValueError(
            "runs_per_job must be (low, high) with 0 <= low <= high; stuck_fraction 0..1"
        )
    rng = random.Random(seed)  # noqa: S311  (reproducible, not secret)
    state = SandboxState(now_ms=now_ms, profiles=profiles)
    state.add_cluster(SOURCE_CLUSTER)
    state.add_cluster(DESTINATION_CLUSTER)
    for d in range(1, destination_workspaces + 1):
        state.add_workspace(
            id=f"ws-dst-{d:03d}",
            name=f"fallback-{d:03d}",
            cluster_id=DESTINATION_CLUSTER,
            has_capacity=True,
        )
    run_apps: list[str] = []  # one entry per run to create: its application id
    for w in range(1, workspaces + 1):
        ws = state.add_workspace(
            id=f"ws-src-{w:04d}", name=f"team-{w:04d}", cluster_id=SOURCE_CLUSTER
        )
        for j in range(1, jobs_per_workspace + 1):
            app = state.add_application(
                id=f"app-{w:04d}-{j:03d}",
                workspace_id=ws["id"],
                name=f"job-{w:04d}-{j:03d}",
                manifest=_fleet_manifest(j),
            )
            run_apps.extend([app["id"]] * rng.randint(low, high))
    stuck = set(rng.sample(range(len(run_apps)), round(len(run_apps) * stuck_fraction)))
    for index, app_id in enumerate(run_apps):
        age_minutes = rng.uniform(*(STUCK_AGE_MINUTES if index in stuck else FRESH_AGE_MINUTES))
        state.add_run(
            application_id=app_id,
            created_at=state.now_ms - int(age_minutes * _MINUTE_MS),
            command=f"python main.py --part {index}",
        )
    state.configs = fleet_configs(state)
    return state


def _fleet_manifest(job: int) -> Obj:
    return {
        "image": {
            "type": "image",
            "image_uri": f"registry.local/job-{job:03d}:1",
            "command": "python main.py",
        },
        "trigger": {"type": "manual"},
        "resources": {"cpu_request": 1, "memory_request": 1000},
        "retries": 0,
    }


def fleet_configs(state: SandboxState) -> list[Obj]:
    """One generic config per source workspace of a generated fleet, spreading the sources
    round-robin over the destination workspaces that have capacity."""
    all_ws = sorted(state.workspaces(), key=lambda ws: str(ws["id"]))
    destinations = [w for w in all_ws if w["clusterId"] == DESTINATION_CLUSTER and w["hasCapacity"]]
    sources = [w for w in all_ws if w["clusterId"] == SOURCE_CLUSTER]
    if not destinations:
        return []
    return [
        config_entry(
            {
                "name": f"fleet-{src['name']}",
                "sourceClusterId": SOURCE_CLUSTER,
                "sourceWorkspaceId": src["id"],
                "destinationClusterId": DESTINATION_CLUSTER,
                "destinationWorkspaceId": dst["id"],
                "destinationWorkspaceFqn": dst["fqn"],
            }
        )
        for src, dst in zip(sources, _cycle(destinations, len(sources)), strict=True)
    ]


def _cycle(items: list[Obj], count: int) -> list[Obj]:
    return [items[i % len(items)] for i in range(count)]

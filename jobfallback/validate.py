"""Check fallback configs against the API: do the workspaces and jobs they name exist, in the
clusters they claim, with the FQN they store? Also finds the FQN a legacy config lacks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from jobfallback.models import FallbackConfig, Workspace
from jobfallback.truefoundry import NotFoundError, TrueFoundryClient


@dataclass(frozen=True)
class Problem:
    config_id: int
    field: str
    message: str


class WorkspaceCache:
    """One look-up per workspace id, however many configs name it."""

    def __init__(self, client: TrueFoundryClient) -> None:
        self._client = client
        self._tasks: dict[str, asyncio.Task[Workspace | None]] = {}

    async def _fetch(self, workspace_id: str) -> Workspace | None:
        try:
            return await self._client.get_workspace(workspace_id)
        except NotFoundError:
            return None

    async def get(self, workspace_id: str) -> Workspace | None:
        if workspace_id not in self._tasks:
            self._tasks[workspace_id] = asyncio.ensure_future(self._fetch(workspace_id))
        return await self._tasks[workspace_id]


async def _check_workspace(
    cache: WorkspaceCache, config: FallbackConfig, side: str, workspace_id: str, cluster_id: str
) -> tuple[Workspace | None, list[Problem]]:
    workspace = await cache.get(workspace_id)
    if workspace is None:
        return None, [
            Problem(config.id, f"{side}WorkspaceId", f"workspace {workspace_id} not found")
        ]
    if workspace.cluster_id != cluster_id:
        return workspace, [
            Problem(
                config.id,
                f"{side}ClusterId",
                f"workspace {workspace_id} is in cluster {workspace.cluster_id}, not {cluster_id}",
            )
        ]
    return workspace, []


async def check_config(
    client: TrueFoundryClient, cache: WorkspaceCache, config: FallbackConfig
) -> list[Problem]:
    _, problems = await _check_workspace(
        cache, config, "source", config.source_workspace_id, config.source_cluster_id
    )
    destination, dest_problems = await _check_workspace(
        cache,
        config,
        "destination",
        config.destination_workspace_id,
        config.destination_cluster_id,
    )
    problems += dest_problems
    fqn = config.destination_workspace_fqn
    if fqn is None:
        problems.append(
            Problem(
                config.id,
                "destinationWorkspaceFqn",
                "missing; run `jobfallback configs backfill-fqn`",
            )
        )
    elif destination is not None and destination.fqn != fqn:
        problems.append(
            Problem(
                config.id,
                "destinationWorkspaceFqn",
                f"is {fqn} but workspace {destination.id} is {destination.fqn}",
            )
        )
    if config.source_job_id is not None:
        try:
            app = await client.get_application(config.source_job_id)
        except NotFoundError:
            problems.append(
                Problem(config.id, "sourceJobId", f"job {config.source_job_id} not found")
            )
        else:
            if app.workspace_id not in (None, config.source_workspace_id):
                problems.append(
                    Problem(
                        config.id,
                        "sourceJobId",
                        f"job {config.source_job_id} is in workspace {app.workspace_id}, "
                        f"not {config.source_workspace_id}",
                    )
                )
    return problems


async def validate_configs(
    client: TrueFoundryClient, configs: Sequence[FallbackConfig]
) -> list[Problem]:
    cache = WorkspaceCache(client)
    results = await asyncio.gather(*(check_config(client, cache, c) for c in configs))
    return [p for problems in results for p in problems]


async def find_missing_fqns(
    client: TrueFoundryClient, configs: Sequence[FallbackConfig]
) -> tuple[dict[int, str], list[Problem]]:
    """The destination FQN of each config that lacks one, from its workspace (cluster checked)."""
    cache = WorkspaceCache(client)
    found: dict[int, str] = {}
    problems: list[Problem] = []
    for config in configs:
        if config.destination_workspace_fqn is not None:
            continue
        workspace, wrong = await _check_workspace(
            cache,
            config,
            "destination",
            config.destination_workspace_id,
            config.destination_cluster_id,
        )
        if workspace is not None and not wrong:
            found[config.id] = workspace.fqn
        problems += wrong
    return found, problems

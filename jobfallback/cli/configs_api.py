"""The config commands that ask the API: `configs validate` and `configs backfill-fqn`, and the
look-ups `configs add` and `configs import` make to fill what a person left out (a destination's
FQN, a workspace's cluster) and to check what they gave.

They act as the person running them: TF_USER_API_TOKEN, falling back to TF_SERVICE_API_TOKEN.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from jobfallback.cli.common import (
    DatabaseUrlOption,
    HostOption,
    Output,
    OutputOption,
    api_client,
    echo,
    exit_on_error,
    fail,
    opened_store,
    print_json,
    print_table,
    require_host,
    settings_from,
)
from jobfallback.errors import UsageError
from jobfallback.models import FallbackConfig, FallbackConfigSpec, Workspace
from jobfallback.settings import Settings
from jobfallback.store import InvalidImport, parse_spec
from jobfallback.store.config_files import entry_label
from jobfallback.truefoundry import TrueFoundryClient
from jobfallback.validate import Problem, WorkspaceCache, find_missing_fqns, validate_configs

T = TypeVar("T")

BACKFILL = "`jobfallback configs backfill-fqn`"


def _with_client(settings: Settings, work: Callable[[TrueFoundryClient], Awaitable[T]]) -> T:
    token = settings.user_token
    if token is None:
        raise fail("no API token: set TF_USER_API_TOKEN (or TF_SERVICE_API_TOKEN)", 2)
    host = require_host(settings)

    async def run() -> T:
        async with api_client(settings, token, host) as client:
            return await work(client)

    return asyncio.run(run())


def api_unavailable(settings: Settings) -> str | None:
    """Why the API cannot be asked (no token, no host), or None when it can."""
    if settings.user_token is None:
        return "neither TF_USER_API_TOKEN nor TF_SERVICE_API_TOKEN is set"
    if settings.tfy_host is None:
        return "TFY_HOST is not set"
    return None


def stdin_is_terminal() -> bool:
    """Whether a person is there to answer prompts. The one place `configs add` decides to ask
    (tests patch it)."""
    return sys.stdin.isatty()


# ------------------------------------------------------------------ configs add


@dataclass(frozen=True)
class Side:
    """One end of a config as the flags gave it (None: not given), and the flags' names."""

    cluster: str | None
    workspace: str | None
    fqn: str | None
    cluster_flag: str
    workspace_flag: str
    fqn_flag: str | None  # the source has no FQN flag

    @property
    def named(self) -> bool:
        return self.workspace is not None or self.fqn is not None


async def _by_fqn(client: TrueFoundryClient, fqn: str) -> Workspace | None:
    # The server filters by FQN; the exact match is checked here all the same.
    async for workspace in client.list_workspaces(fqn=fqn):
        if workspace.fqn == fqn:
            return workspace
    return None


async def resolve(
    client: TrueFoundryClient, cache: WorkspaceCache, side: Side, picked: Workspace | None = None
) -> Workspace:
    """The workspace `side` names (or the one a person `picked`), checked against the API: it
    exists, the FQN and the id (when both given) are the same workspace, and it is in the
    cluster given. A UsageError naming the flag and the fix otherwise."""
    if picked is not None:
        workspace = picked
    elif side.fqn is not None:
        found = await _by_fqn(client, side.fqn)
        if found is None:
            raise UsageError(
                f"{side.fqn_flag} {side.fqn}: no workspace has this FQN; give the FQN TrueFoundry "
                "shows for the workspace (CLUSTER:NAME)"
            )
        if side.workspace is not None and found.id != side.workspace:
            raise UsageError(
                f"{side.fqn_flag} {side.fqn} is workspace {found.id}, not {side.workspace_flag} "
                f"{side.workspace}; give only one of them"
            )
        workspace = found
    elif side.workspace is not None:
        found = await cache.get(side.workspace)
        if found is None:
            hint = f", or its FQN with {side.fqn_flag}" if side.fqn_flag else ""
            raise UsageError(
                f"{side.workspace_flag} {side.workspace}: no such workspace; give the id "
                f"TrueFoundry shows for it{hint}"
            )
        workspace = found
    else:
        raise UsageError(f"{side.workspace_flag} is required")
    if side.cluster is not None and workspace.cluster_id != side.cluster:
        raise UsageError(
            f"{side.cluster_flag} {side.cluster}: workspace {workspace.id} ({workspace.fqn}) is "
            f"in cluster {workspace.cluster_id}; give {side.cluster_flag} {workspace.cluster_id}, "
            "or leave it out"
        )
    return workspace


def pick(what: str, workspaces: Sequence[Workspace]) -> Workspace:
    """A person picks one workspace from a numbered list (by number, FQN or id). The list and
    the prompt go to stderr, so stdout holds the command's result only."""
    echo(f"{what}:", err=True)
    width = max(len(ws.fqn) for ws in workspaces)
    for number, ws in enumerate(workspaces, start=1):
        echo(f"  {number:>3}  {ws.fqn.ljust(width)}  id {ws.id}, cluster {ws.cluster_id}", err=True)
    while True:
        answer = str(typer.prompt(f"{what} (1-{len(workspaces)}, or an FQN or id)", err=True))
        answer = answer.strip()
        if answer.isdigit() and 1 <= int(answer) <= len(workspaces):
            return workspaces[int(answer) - 1]
        for ws in workspaces:
            if answer in (ws.fqn, ws.id):
                return ws
        echo(f"{answer!r} is none of them: give a number from 1 to {len(workspaces)}", err=True)


@dataclass(frozen=True)
class Endpoints:
    """A config's two ends, each a workspace the API knows."""

    source: Workspace
    destination: Workspace


async def _resolve_add(
    client: TrueFoundryClient, source: Side, destination: Side, interactive: bool
) -> Endpoints:
    cache = WorkspaceCache(client)
    listing: list[Workspace] = []
    if interactive:
        listing = sorted([ws async for ws in client.list_workspaces()], key=lambda ws: ws.fqn)
        if len(listing) < 2:
            raise UsageError(
                "the API lists fewer than two workspaces: nothing to pick a source and a "
                "destination from; check TFY_HOST and the token's access"
            )
    picked = None if source.named else pick("Source workspace (runs stuck here move)", listing)
    src = await resolve(client, cache, source, picked)
    picked = None
    if not destination.named:
        others = [ws for ws in listing if ws.id != src.id]
        picked = pick("Destination workspace (they move here)", others)
    return Endpoints(src, await resolve(client, cache, destination, picked))


def _missing(source: Side, destination: Side) -> str | None:
    """The first required flag not given, as an error's start, or None."""
    if source.workspace is None:
        return f"{source.workspace_flag} is required (the source workspace's id)"
    if not destination.named:
        return (
            f"{destination.fqn_flag} is required (the destination workspace's FQN), or "
            f"{destination.cluster_flag} and {destination.workspace_flag}"
        )
    return None


def complete_add(
    source: Side, destination: Side, settings: Settings
) -> tuple[Endpoints | None, str | None]:
    """What `configs add` needs from the API: both workspaces, checked and filled in (None when
    the API cannot be asked), and a warning to print after writing (or None).

    Missing flags are asked for on a terminal (picking from the API's workspaces); elsewhere the
    first missing one is a UsageError."""
    missing = _missing(source, destination)
    interactive = missing is not None and stdin_is_terminal()
    if missing is not None and not interactive:
        raise UsageError(
            f"{missing}; give it, or run `jobfallback configs add` on a terminal (with an API "
            "token) to pick the workspaces from a list"
        )
    why_not = api_unavailable(settings)
    if why_not is None:
        return _with_client(
            settings, lambda c: _resolve_add(c, source, destination, interactive)
        ), None
    if interactive:
        raise UsageError(
            f"cannot list the workspaces to pick from: {why_not}; set it, or give "
            f"{source.workspace_flag} and {destination.fqn_flag} (see --help)"
        )
    # Without the API every id must be given; only the FQN may stay out (and is warned about).
    if destination.workspace is None:
        raise UsageError(
            f"{destination.fqn_flag} {destination.fqn}: finding a workspace by its FQN needs the "
            f"API, but {why_not}; set it, or give {destination.cluster_flag} and "
            f"{destination.workspace_flag} as well"
        )
    for side in (source, destination):
        if side.cluster is None:
            raise UsageError(
                f"{side.cluster_flag} is required: without the API the cluster cannot be looked "
                f"up ({why_not})"
            )
    if destination.fqn is not None:
        return None, None
    return None, (
        f"the destination's FQN was not looked up: {why_not}. Every sweep SKIPS this config "
        f"until {BACKFILL} (with a token) fills it; or add it with {destination.fqn_flag}"
    )


def complete_update(
    current: FallbackConfig, changes: dict[str, Any], fqn_flag: str, settings: Settings
) -> tuple[dict[str, Any], str | None]:
    """The changes `configs update` makes, with a changed destination completed: checked
    against the API and its FQN (or, given an FQN, its id) and cluster looked up, and a warning
    to print after writing (or None). Without the API a new destination workspace loses the
    old one's FQN, which would send runs to the old workspace."""
    fields = ("destination_cluster_id", "destination_workspace_id", "destination_workspace_fqn")
    cluster, workspace, fqn = (changes.get(field) for field in fields)
    if cluster is None and workspace is None and fqn is None:
        return changes, None
    why_not = api_unavailable(settings)
    if why_not is None:
        given = workspace is not None or fqn is not None
        side = Side(
            cluster=cluster,
            workspace=workspace if given else current.destination_workspace_id,
            fqn=fqn,
            cluster_flag="--dest-cluster",
            workspace_flag="--dest-workspace",
            fqn_flag=fqn_flag,
        )
        found = _with_client(settings, lambda c: resolve(c, WorkspaceCache(c), side))
        return changes | {
            "destination_cluster_id": found.cluster_id,
            "destination_workspace_id": found.id,
            "destination_workspace_fqn": found.fqn,
        }, None
    if workspace in (None, current.destination_workspace_id) or fqn is not None:
        return changes, None
    return changes | {"destination_workspace_fqn": None}, (
        f"the destination's FQN was cleared (it named workspace "
        f"{current.destination_workspace_id}) and not looked up: {why_not}. Every sweep SKIPS "
        f"this config until {BACKFILL} (with a token) fills it; or give it with {fqn_flag}"
    )


# ------------------------------------------------------------------ configs import


async def _import_fqns(
    client: TrueFoundryClient, missing: Sequence[tuple[int, FallbackConfigSpec]]
) -> tuple[dict[int, str], list[str]]:
    cache = WorkspaceCache(client)
    found: dict[int, str] = {}
    problems: list[str] = []
    for index, spec in missing:
        label = entry_label(index, spec.name)
        workspace = await cache.get(spec.destination_workspace_id)
        if workspace is None:
            problems.append(
                f"{label}: field destinationWorkspaceId: workspace "
                f"{spec.destination_workspace_id} not found; give the id TrueFoundry shows for it"
            )
        elif workspace.cluster_id != spec.destination_cluster_id:
            problems.append(
                f"{label}: field destinationClusterId: workspace {workspace.id} ({workspace.fqn}) "
                f"is in cluster {workspace.cluster_id}, not {spec.destination_cluster_id}; "
                "fix destinationClusterId"
            )
        else:
            found[index] = workspace.fqn
    return found, problems


def _entries(labels: Sequence[str], at_most: int = 10) -> str:
    shown = ", ".join(labels[:at_most])
    return shown + (f" and {len(labels) - at_most} more" if len(labels) > at_most else "")


def fill_import_fqns(
    specs: list[FallbackConfigSpec], settings: Settings
) -> tuple[list[FallbackConfigSpec], str | None]:
    """The specs with every missing destination FQN filled from the API (and the destination's
    cluster checked), and a line to print after the import: which entries got their FQN from
    the API, or a warning when the API could not be asked (None: no entry lacked one).

    Raises InvalidImport listing every entry the API contradicts: nothing is written then."""
    missing = [(i, s) for i, s in enumerate(specs, start=1) if s.destination_workspace_fqn is None]
    if not missing:
        return specs, None
    labels = _entries([entry_label(i, s.name) for i, s in missing])
    why_not = api_unavailable(settings)
    if why_not is not None:
        return specs, (
            f"warning: {labels}: no destinationWorkspaceFqn, and it was not looked up: "
            f"{why_not}. Every sweep SKIPS these configs until {BACKFILL} (with a token) "
            "fills them"
        )
    found, problems = _with_client(settings, lambda c: _import_fqns(c, missing))
    if problems:
        raise InvalidImport(problems)
    filled = [
        parse_spec({**s.model_dump(), "destination_workspace_fqn": found[i]}) if i in found else s
        for i, s in enumerate(specs, start=1)
    ]
    return filled, f"{labels}: destinationWorkspaceFqn looked up from the API"


# ------------------------------------------------------------------ validate, backfill-fqn


def _print_problems(problems: list[Problem]) -> None:
    print_table(
        ["config", "field", "problem"],
        [[p.config_id, p.field, p.message] for p in problems],
        empty="",
    )


def validate(
    output: OutputOption = Output.text,
    host: HostOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Check every config against the API; print a table of problems; exit 1 when any."""
    settings = settings_from(tfy_host=host, database_url=database_url)
    with opened_store(settings) as store:
        configs = store.configs.list()
    with exit_on_error():
        problems = _with_client(settings, lambda c: validate_configs(c, configs))
    if output == Output.json:
        print_json(
            [{"configId": p.config_id, "field": p.field, "message": p.message} for p in problems]
        )
    elif problems:
        _print_problems(problems)
    else:
        echo(f"All {len(configs)} configs are valid.")
    raise typer.Exit(1 if problems else 0)


def backfill_fqn(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be written.")] = False,
    host: HostOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Fill missing destination workspace FQNs from the API (legacy configs)."""
    settings = settings_from(tfy_host=host, database_url=database_url)
    with opened_store(settings) as store:
        configs = store.configs.list()
        found, problems = _with_client(settings, lambda c: find_missing_fqns(c, configs))
        for config_id, fqn in sorted(found.items()):
            if not dry_run:
                store.configs.set_destination_fqn(config_id, fqn)
            echo(f"{'would set' if dry_run else 'set'} config {config_id} FQN to {fqn}")
    if problems:
        _print_problems(problems)
        raise typer.Exit(1)
    if not found:
        echo("No config lacks a destination FQN.")

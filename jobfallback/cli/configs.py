"""`jobfallback configs` commands: list, show, add, update, remove, enable, disable, import, export.

Each command is one store transaction. Text output is for people, `--output json` for scripts;
import and export use the file format (camelCase keys, YAML or JSON).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic.alias_generators import to_camel

from jobfallback.cli import configs_api
from jobfallback.cli.common import (
    DatabaseUrlOption,
    HostOption,
    Output,
    OutputOption,
    choice,
    echo,
    exit_on_error,
    fail,
    opened_store,
    print_json,
    print_table,
    settings_from,
    whole_number,
    whole_range,
)
from jobfallback.cli.configs_api import Side
from jobfallback.errors import JobFallbackError, UsageError
from jobfallback.models import FallbackConfig, FallbackConfigSpec
from jobfallback.plan import config_cycles
from jobfallback.store import ImportDiff, InvalidImport, parse_import, parse_spec
from jobfallback.store.config_files import given_field_problems, in_flag_terms
from jobfallback.store.configs import with_stored_fqns
from jobfallback.times import utc_time

ConfigIdArgument = Annotated[
    int,
    typer.Argument(
        metavar="ID",
        parser=whole_number("a config id (a whole number; see `jobfallback configs list`)"),
        help="Config id (see `configs list`).",
    ),
]
app = typer.Typer(no_args_is_help=True, help="Fallback configs: which source falls back where.")

_HEADERS = (
    "id",
    "name",
    "source",
    "job",
    "destination",
    "fqn",
    "enabled",
    "threshold",
    "priority",
)


class Clearable(StrEnum):
    """The optional fields `configs update --clear` can unset."""

    name = "name"
    source_job = "source-job"
    threshold = "threshold"
    exclude_jobs = "exclude-jobs"
    manifest_patch = "manifest-patch"


_CLEARED_FIELD = {
    Clearable.name: "name",
    Clearable.source_job: "source_job_id",
    Clearable.threshold: "stuck_threshold_minutes",
    Clearable.exclude_jobs: "exclude_job_ids",
    Clearable.manifest_patch: "manifest_patch",
}
# What a cleared field becomes (the stored "unset").
_CLEARED_VALUE: dict[str, Any] = {"exclude_job_ids": []}


class FileFormat(StrEnum):
    yaml = "yaml"
    json = "json"


# One vocabulary for `list` and `show`: how a field's value reads to people.
_NO_FQN = "missing"


def _shown(field: str, value: Any) -> str:
    """A config field's value as `list` and `show` print it (field: the snake_case name)."""
    if field == "enabled":
        return "yes" if value else "no"
    if field == "stuck_threshold_minutes" and value is None:
        return "default"
    if field == "source_job_id" and value is None:
        return "any"
    if field == "destination_workspace_fqn" and value is None:
        return _NO_FQN
    if field == "exclude_job_ids":
        return ", ".join(value) or "-"
    if field == "manifest_patch" and value is not None:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, datetime):
        return utc_time(value)
    return "-" if value is None else str(value)


def _route(spec: FallbackConfigSpec) -> tuple[str, str, str]:
    return (
        f"{spec.source_cluster_id}/{spec.source_workspace_id}",
        _shown("source_job_id", spec.source_job_id),
        f"{spec.destination_cluster_id}/{spec.destination_workspace_id}",
    )


def _row(config: FallbackConfig) -> tuple[Any, ...]:
    return (
        config.id,
        config.name,
        *_route(config),
        *(
            _shown(field, getattr(config, field))
            for field in (
                "destination_workspace_fqn",
                "enabled",
                "stuck_threshold_minutes",
                "priority",
            )
        ),
    )


_EMPTY = (
    "No configs yet. Add one with `jobfallback configs add` (on a terminal it lets you pick the "
    "workspaces) or `jobfallback configs import FILE`."
)


def _print_configs(configs: list[FallbackConfig], output: Output, empty: str = _EMPTY) -> None:
    if output is Output.json:
        print_json(configs)
    else:
        print_table(_HEADERS, [_row(c) for c in configs], empty=empty)


def _label(config: FallbackConfig) -> str:
    return f"config {config.id} ({config.name})" if config.name else f"config {config.id}"


# The flag that gives each field, for messages: name what the person typed.
FLAGS = {
    "name": "--name",
    "sourceClusterId": "--source-cluster",
    "sourceWorkspaceId": "--source-workspace",
    "sourceJobId": "--source-job",
    "destinationClusterId": "--dest-cluster",
    "destinationWorkspaceId": "--dest-workspace",
    "destinationWorkspaceFqn": "--dest-fqn",
    "stuckThresholdMinutes": "--threshold-minutes",
    "priority": "--priority",
    "excludeJobIds": "--exclude-job",
    "manifestPatch": "--manifest-patch",
}


@contextmanager
def _in_flag_terms(flags: dict[str, str]) -> Iterator[None]:
    """An input error (exit 2) as one line naming the flags, not the file's field names."""
    try:
        yield
    except JobFallbackError as exc:
        if exc.exit_code != 2:
            raise
        raise fail(in_flag_terms(str(exc), flags), 2) from None


def _spec_fields(parameters: dict[str, Any]) -> dict[str, Any]:
    """The FallbackConfigSpec fields among a command's parameters (named after the fields)."""
    return {
        field: parameters[field] for field in FallbackConfigSpec.model_fields if field in parameters
    }


SourceClusterOption = Annotated[
    str | None,
    typer.Option(
        "--source-cluster",
        metavar="CLUSTER",
        help="Source cluster id (looked up from the workspace when left out).",
    ),
]
SourceWorkspaceOption = Annotated[
    str | None,
    typer.Option(
        "--source-workspace",
        metavar="WORKSPACE",
        help="Source workspace id (on a terminal, picked from a list when left out).",
    ),
]
SourceJobOption = Annotated[
    str | None,
    typer.Option(
        "--source-job",
        metavar="JOB",
        help="Only this job (application id); unset: every job of the source.",
    ),
]
DestClusterOption = Annotated[
    str | None,
    typer.Option(
        "--dest-cluster",
        metavar="CLUSTER",
        help="Destination cluster id (looked up from the workspace when left out).",
    ),
]
DestWorkspaceOption = Annotated[
    str | None,
    typer.Option(
        "--dest-workspace",
        metavar="WORKSPACE",
        help="Destination workspace id (or give --to FQN).",
    ),
]
ToOption = Annotated[
    str | None,
    typer.Option(
        "--to",
        metavar="FQN",
        help="The destination workspace by its FQN alone, e.g. gpu-west:ml-team: its id and "
        "cluster are looked up.",
    ),
]
DestFqnOption = Annotated[
    str | None,
    typer.Option(
        "--dest-fqn",
        metavar="FQN",
        help="Destination workspace FQN, e.g. gpu-west:ml-team (looked up when left out).",
    ),
]
NameOption = Annotated[
    str | None, typer.Option("--name", metavar="NAME", help="A name for people.")
]
_FIELDS = FallbackConfigSpec.model_fields
ThresholdOption = Annotated[
    int | None,
    typer.Option(
        "--threshold-minutes",
        metavar="MINUTES",
        parser=whole_number(
            f"a whole number of minutes ({whole_range(_FIELDS['stuck_threshold_minutes'])})"
        ),
        help="Minutes in CREATED before a run counts as stuck (unset: the global threshold).",
    ),
]
_PRIORITY_DEFAULT: int = _FIELDS["priority"].default
PriorityOption = Annotated[
    int | None,
    typer.Option(
        "--priority",
        metavar="N",
        parser=whole_number(f"a whole number from {whole_range(_FIELDS['priority'])}"),
        # Said in the help: `update` has no default of its own, `add` the field's.
        show_default=False,
        help="Its place in the source's chain: lowest first, then oldest "
        f"(default {_PRIORITY_DEFAULT}).",
    ),
]
ExcludeJobOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude-job",
        metavar="JOB",
        help="A job (application id) this generic config never moves (repeatable).",
    ),
]


def _patch(text: str) -> dict[str, Any]:
    """A JSON object given inline, or @FILE to read it from a file."""
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {text[1:]}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise typer.BadParameter(f"{text[1:]} is not UTF-8 text") from None
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise typer.BadParameter('must be a JSON object, e.g. \'{"env": {"ON_FALLBACK": "1"}}\'')
    return value


PatchOption = Annotated[
    dict[str, Any] | None,
    typer.Option(
        "--manifest-patch",
        metavar="JSON|@FILE",
        parser=_patch,
        help="A JSON Merge Patch applied to the job's manifest in this destination.",
    ),
]


def _warn_cycles(configs: Iterable[FallbackConfigSpec]) -> None:
    for cycle in config_cycles(configs):
        echo(
            f"warning: the configs form a cycle {' -> '.join(cycle)}: a copy never moves back "
            "to a workspace it was in (hop labels), but check the chain is meant",
            err=True,
        )


@app.command("list")
def list_configs(
    enabled_only: Annotated[
        bool, typer.Option("--enabled-only", help="Hide disabled configs.")
    ] = False,
    output: OutputOption = Output.text,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List configs in id order (a source's configs are a chain: lowest priority, then oldest)."""
    with opened_store(settings_from(database_url=database_url)) as store:
        configs = store.configs.list(enabled_only=enabled_only)
        empty = _EMPTY
        if enabled_only and not configs and (disabled := len(store.configs.list())):
            empty = (
                f"No enabled configs ({disabled} disabled). Switch one on with "
                "`jobfallback configs enable ID`."
            )
    _print_configs(configs, output, empty)


@app.command()
def show(
    config_id: ConfigIdArgument,
    output: OutputOption = Output.text,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show one config."""
    with opened_store(settings_from(database_url=database_url)) as store:
        config = store.configs.get(config_id)
    if output is Output.json:
        print_json(config)
        return
    # People look for the id first.
    fields = {"id": config.id, **{f: getattr(config, f) for f in type(config).model_fields}}
    width = max(len(to_camel(f)) for f in fields)
    for field, value in fields.items():
        echo(f"{to_camel(field).ljust(width)}  {_shown(field, value)}")


def _given(value: str | None) -> str | None:
    return None if value is None else value.strip()


@app.command()
def add(
    source_cluster_id: SourceClusterOption = None,
    source_workspace_id: SourceWorkspaceOption = None,
    source_job_id: SourceJobOption = None,
    destination_cluster_id: DestClusterOption = None,
    destination_workspace_id: DestWorkspaceOption = None,
    to: ToOption = None,
    destination_workspace_fqn: DestFqnOption = None,
    name: NameOption = None,
    stuck_threshold_minutes: ThresholdOption = None,
    priority: PriorityOption = _PRIORITY_DEFAULT,
    exclude_job_ids: ExcludeJobOption = None,
    manifest_patch: PatchOption = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
    output: OutputOption = Output.text,
    host: HostOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Add a config: runs stuck in the source move to the destination (with a token, ids and FQN
    are checked and looked up; on a terminal, pick the workspaces from a list)."""
    if to is not None and destination_workspace_fqn is not None:
        raise fail("--to and --dest-fqn both give the destination's FQN: give one", 2)
    fqn_flag = "--dest-fqn" if destination_workspace_fqn is not None else "--to"
    flags = {**FLAGS, "destinationWorkspaceFqn": fqn_flag}
    fields = {
        **_spec_fields(locals()),
        "destination_workspace_fqn": to if to is not None else destination_workspace_fqn,
        "exclude_job_ids": exclude_job_ids or [],
        "enabled": not disabled,
    }
    given = {field: value for field, value in fields.items() if value is not None}
    if problems := given_field_problems(given):
        raise fail(in_flag_terms("; ".join(problems), flags), 2)
    settings = settings_from(tfy_host=host, database_url=database_url)
    source = Side(
        cluster=_given(source_cluster_id),
        workspace=_given(source_workspace_id),
        fqn=None,
        cluster_flag="--source-cluster",
        workspace_flag="--source-workspace",
        fqn_flag=None,
    )
    destination = Side(
        cluster=_given(destination_cluster_id),
        workspace=_given(destination_workspace_id),
        fqn=_given(fields["destination_workspace_fqn"]),
        cluster_flag="--dest-cluster",
        workspace_flag="--dest-workspace",
        fqn_flag=fqn_flag,
    )
    with exit_on_error():
        found, warning = configs_api.complete_add(source, destination, settings)
    if found is not None:
        fields |= {
            "source_cluster_id": found.source.cluster_id,
            "source_workspace_id": found.source.id,
            "destination_cluster_id": found.destination.cluster_id,
            "destination_workspace_id": found.destination.id,
            "destination_workspace_fqn": found.destination.fqn,
        }
    with exit_on_error(), _in_flag_terms(flags):
        spec = parse_spec(fields)
    with opened_store(settings) as store, _in_flag_terms(flags):
        config = store.configs.add(spec)
        stored = store.configs.list()
    _print_configs([config], output)
    _warn_cycles(stored)
    if warning is not None:
        echo(f"warning: {_label(config)}: {warning}", err=True)


@app.command()
def update(
    config_id: ConfigIdArgument,
    source_cluster_id: SourceClusterOption = None,
    source_workspace_id: SourceWorkspaceOption = None,
    source_job_id: SourceJobOption = None,
    destination_cluster_id: DestClusterOption = None,
    destination_workspace_id: DestWorkspaceOption = None,
    to: ToOption = None,
    destination_workspace_fqn: DestFqnOption = None,
    name: NameOption = None,
    stuck_threshold_minutes: ThresholdOption = None,
    priority: PriorityOption = None,
    exclude_job_ids: ExcludeJobOption = None,
    manifest_patch: PatchOption = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Switch it on or off.")
    ] = None,
    clear: Annotated[
        list[Clearable] | None,
        typer.Option("--clear", **choice(Clearable), help="Unset an optional field (repeatable)."),
    ] = None,
    output: OutputOption = Output.text,
    host: HostOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Change the given fields of a config; the others stay as they are (a new destination is
    checked and looked up as `add` does)."""
    if to is not None and destination_workspace_fqn is not None:
        raise fail("--to and --dest-fqn both give the destination's FQN: give one", 2)
    fqn_flag = "--dest-fqn" if destination_workspace_fqn is not None else "--to"
    flags = {**FLAGS, "destinationWorkspaceFqn": fqn_flag}
    given = {
        **_spec_fields(locals()),
        "destination_workspace_fqn": to if to is not None else destination_workspace_fqn,
    }
    changes = {field: value for field, value in given.items() if value not in (None, [])}
    if problems := given_field_problems(changes):
        raise fail(in_flag_terms("; ".join(problems), flags), 2)
    changes = {f: v.strip() if isinstance(v, str) else v for f, v in changes.items()}
    for item in clear or []:
        field = _CLEARED_FIELD[item]
        if field in changes:
            raise fail(f"--clear {item.value} and a new value for it: choose one", 2)
        changes[field] = _CLEARED_VALUE.get(field)
    if not changes:
        raise fail("nothing to change: pass at least one option (see --help)", 2)
    settings = settings_from(tfy_host=host, database_url=database_url)
    with opened_store(settings) as store, _in_flag_terms(flags):
        current = store.configs.get(config_id)
        changes, warning = configs_api.complete_update(current, changes, fqn_flag, settings)
        config = store.configs.update(config_id, changes)
        stored = store.configs.list()
    _print_configs([config], output)
    _warn_cycles(stored)
    if warning is not None:
        echo(f"warning: {_label(config)}: {warning}", err=True)


@app.command()
def remove(
    config_id: ConfigIdArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Remove a config (its past moves stay in the journal)."""
    with opened_store(settings_from(database_url=database_url)) as store:
        config = store.configs.get(config_id)
        source, job, destination = _route(config)
        if not yes:
            typer.confirm(
                f"remove {_label(config)}: {source} ({job}) -> {destination}?", abort=True
            )
        store.configs.remove(config_id)
    echo(f"removed {_label(config)}")


def _set_enabled(config_id: int, enabled: bool, database_url: str | None) -> None:
    with opened_store(settings_from(database_url=database_url)) as store:
        config = store.configs.set_enabled(config_id, enabled)
    echo(f"{_label(config)} {'enabled' if enabled else 'disabled'}")


@app.command()
def enable(
    config_id: ConfigIdArgument,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Switch a config on."""
    _set_enabled(config_id, True, database_url)


@app.command()
def disable(
    config_id: ConfigIdArgument,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Switch a config off: its source's stuck runs stay where they are."""
    _set_enabled(config_id, False, database_url)


# Thousands of configs fit in well under this; a larger file is a mistake, not a fleet.
MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024


def _read_document(file: str) -> Any:
    try:
        if file == "-":
            raw = sys.stdin.buffer.read(MAX_CONFIG_FILE_BYTES + 1)
        else:
            with Path(file).open("rb") as handle:
                raw = handle.read(MAX_CONFIG_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_FILE_BYTES:
        raise UsageError(
            f"{file} is over {MAX_CONFIG_FILE_BYTES // (1024 * 1024)} MiB; "
            "split the configs over several files"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{file} is not UTF-8 text; save it as UTF-8") from None
    try:
        return yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise UsageError(f"{file} is not valid YAML or JSON{line}; fix the syntax") from None
    except RecursionError:
        raise UsageError(
            f"{file} is nested too deeply; a config file is a flat list of configs"
        ) from None


def _print_diff(diff: ImportDiff) -> None:
    rows: list[tuple[Any, ...]] = [("add", "-", s.name, *_route(s), "") for s in diff.added]
    for change in diff.updated:
        what = ", ".join(f"{field}: {old} -> {new}" for field, (old, new) in change.changes.items())
        rows.append(("update", change.id, change.name, "", "", "", what))
    rows += [("remove", c.id, c.name, *_route(c), "") for c in diff.removed]
    headers = ("action", "id", "name", "source", "job", "destination", "changes")
    print_table(headers, rows, empty="no changes")
    echo(
        f"{len(diff.added)} added, {len(diff.updated)} updated, {len(diff.removed)} removed, "
        f"{len(diff.unchanged)} unchanged" + (" (dry run: nothing written)" if diff.dry_run else "")
    )


def _refused(exc: InvalidImport, file: str) -> typer.Exit:
    """An import with problems: each on its own line, then the count; nothing was written."""
    for problem in exc.problems:
        echo(f"error: {problem}", err=True)
    return fail(f"{exc} ({file})", exc.exit_code)


@app.command("import")
def import_configs(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="YAML or JSON file with a list of configs; - for stdin."
        ),
    ],
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove stored configs absent from FILE.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the changes, write nothing.")
    ] = False,
    output: OutputOption = Output.text,
    host: HostOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Make the stored configs match FILE, matching them by source workspace and job (or
    destination workspace for generic configs). A file with any error writes nothing; a missing
    destinationWorkspaceFqn is kept from the stored config, else looked up with a token."""
    settings = settings_from(tfy_host=host, database_url=database_url)
    with exit_on_error():
        document = _read_document(file)
    try:
        specs = parse_import(document)
    except InvalidImport as exc:
        raise _refused(exc, file) from None
    # The store's and the API's errors are one line; the entries' are listed, one per line.
    with opened_store(settings) as store:
        try:
            specs = with_stored_fqns(specs, store.configs.list())
            specs, note = configs_api.fill_import_fqns(specs, settings)
        except InvalidImport as exc:
            raise _refused(exc, file) from None
        diff = store.configs.apply_import(specs, prune=prune, dry_run=dry_run)
        keys = {spec.natural_key for spec in specs}
        kept = [] if prune else [c for c in store.configs.list() if c.natural_key not in keys]
        after = [*specs, *kept]
    if output is Output.json:
        print_json(diff)
    else:
        _print_diff(diff)
    _warn_cycles(after)
    if note is not None:
        echo(note, err=True)


@app.command()
def export(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="Where to write; - for stdout.")
    ] = "-",
    file_format: Annotated[
        FileFormat, typer.Option("--format", **choice(FileFormat), help="yaml or json.")
    ] = FileFormat.yaml,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Write every config in id order, in the format `configs import` reads back."""
    with opened_store(settings_from(database_url=database_url)) as store:
        configs = store.configs.list()
    document = [c.spec().file_entry() for c in configs]
    if file_format is FileFormat.json:
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = yaml.safe_dump(document, sort_keys=False)
    if file == "-":
        sys.stdout.write(text)
        return
    with exit_on_error():
        try:
            Path(file).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {file}: {exc.strerror}") from None
    echo(f"exported {len(configs)} configs to {file}", err=True)


# The config commands that ask the API live in their own module.
app.command("validate")(configs_api.validate)
app.command("backfill-fqn")(configs_api.backfill_fqn)

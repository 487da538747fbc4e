"""`jobfallback configs` commands: list, show, add, update, remove, enable, disable, import, export.

Each command is one store transaction. Text output is for people, `--output json` for scripts;
import and export use the file format (camelCase keys, YAML or JSON).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
import yaml

from jobfallback.cli import configs_api
from jobfallback.cli.common import (
    DatabaseUrlOption,
    Output,
    OutputOption,
    echo,
    exit_on_error,
    fail,
    print_json,
    print_table,
)
from jobfallback.cli.db import opened_store
from jobfallback.errors import UsageError
from jobfallback.models import FallbackConfig, FallbackConfigSpec
from jobfallback.store import ImportDiff, InvalidImport, parse_import, parse_spec

ConfigIdArgument = typer.Argument(..., metavar="ID", help="Config id (see `configs list`).")
app = typer.Typer(no_args_is_help=True, help="Fallback configs: which source falls back where.")

_HEADERS = ("id", "name", "source", "job", "destination", "fqn", "enabled", "threshold")


class Clearable(StrEnum):
    """The optional fields `configs update --clear` can unset."""

    name = "name"
    source_job = "source-job"
    threshold = "threshold"


_CLEARED_FIELD = {
    Clearable.name: "name",
    Clearable.source_job: "source_job_id",
    Clearable.threshold: "stuck_threshold_minutes",
}


class FileFormat(StrEnum):
    yaml = "yaml"
    json = "json"


def _route(spec: FallbackConfigSpec) -> tuple[str, str, str]:
    return (
        f"{spec.source_cluster_id}/{spec.source_workspace_id}",
        spec.source_job_id or "any",
        f"{spec.destination_cluster_id}/{spec.destination_workspace_id}",
    )


def _row(config: FallbackConfig) -> tuple[Any, ...]:
    enabled = "yes" if config.enabled else "no"
    fqn = config.destination_workspace_fqn
    threshold = config.stuck_threshold_minutes or "default"
    return (config.id, config.name, *_route(config), fqn, enabled, threshold)


def _print_configs(configs: list[FallbackConfig], output: Output) -> None:
    if output is Output.json:
        print_json(configs)
    else:
        print_table(_HEADERS, [_row(c) for c in configs], empty="no configs")


def _label(config: FallbackConfig) -> str:
    return f"config {config.id} ({config.name})" if config.name else f"config {config.id}"


_HELP = {
    "--source-cluster": "Source cluster id.",
    "--source-workspace": "Source workspace id.",
    "--dest-cluster": "Destination cluster id.",
    "--dest-workspace": "Destination workspace id.",
    "--dest-fqn": "Destination workspace FQN (the manifest's workspace_fqn), e.g. cluster:team.",
}


def _option(flag: str, *, required: bool) -> Any:
    """An option add requires and update takes optionally."""
    return typer.Option(... if required else None, flag, help=_HELP[flag])


def _spec_fields(parameters: dict[str, Any]) -> dict[str, Any]:
    """The FallbackConfigSpec fields among a command's parameters (named after the fields)."""
    return {
        field: parameters[field] for field in FallbackConfigSpec.model_fields if field in parameters
    }


SourceJobOption = typer.Option(
    None, "--source-job", help="Only this job (application id); unset: every job of the source."
)
NameOption = typer.Option(None, "--name", help="A name for people.")
ThresholdOption = typer.Option(
    None,
    "--threshold-minutes",
    help="Minutes in CREATED before a run counts as stuck [default: the global threshold].",
)


@app.command("list")
def list_configs(
    enabled_only: bool = typer.Option(False, "--enabled-only", help="Hide disabled configs."),
    output: Output = OutputOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """List configs in id order (among generic configs of a source, the first one wins)."""
    with opened_store(database_url) as store:
        _print_configs(store.configs.list(enabled_only=enabled_only), output)


@app.command()
def show(
    config_id: int = ConfigIdArgument,
    output: Output = OutputOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Show one config."""
    with opened_store(database_url) as store:
        config = store.configs.get(config_id)
    if output is Output.json:
        print_json(config)
        return
    fields = config.model_dump(mode="json", by_alias=True)
    fields = {"id": fields.pop("id"), **fields}  # people look for the id first
    width = max(map(len, fields))
    for key, value in fields.items():
        echo(f"{key.ljust(width)}  {'-' if value is None else value}")


@app.command()
def add(
    source_cluster_id: str = _option("--source-cluster", required=True),
    source_workspace_id: str = _option("--source-workspace", required=True),
    source_job_id: str | None = SourceJobOption,
    destination_cluster_id: str = _option("--dest-cluster", required=True),
    destination_workspace_id: str = _option("--dest-workspace", required=True),
    destination_workspace_fqn: str = _option("--dest-fqn", required=True),
    name: str | None = NameOption,
    stuck_threshold_minutes: int | None = ThresholdOption,
    disabled: bool = typer.Option(False, "--disabled", help="Add it switched off."),
    output: Output = OutputOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Add a config: runs stuck in the source move to the destination."""
    fields = {**_spec_fields(locals()), "enabled": not disabled}
    with exit_on_error():
        spec = parse_spec(fields)
    with opened_store(database_url) as store:
        config = store.configs.add(spec)
    _print_configs([config], output)


@app.command()
def update(
    config_id: int = ConfigIdArgument,
    source_cluster_id: str | None = _option("--source-cluster", required=False),
    source_workspace_id: str | None = _option("--source-workspace", required=False),
    source_job_id: str | None = SourceJobOption,
    destination_cluster_id: str | None = _option("--dest-cluster", required=False),
    destination_workspace_id: str | None = _option("--dest-workspace", required=False),
    destination_workspace_fqn: str | None = _option("--dest-fqn", required=False),
    name: str | None = NameOption,
    stuck_threshold_minutes: int | None = ThresholdOption,
    enabled: bool | None = typer.Option(None, "--enabled/--disabled", help="Switch it on or off."),
    clear: list[Clearable] = typer.Option(
        [], "--clear", help="Unset an optional field (repeatable): name, source-job, threshold."
    ),
    output: Output = OutputOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Change the given fields of a config; the others stay as they are."""
    given = _spec_fields(locals())
    changes = {field: value for field, value in given.items() if value is not None}
    for item in clear:
        field = _CLEARED_FIELD[item]
        if field in changes:
            raise fail(f"--clear {item.value} and a new value for it: choose one", 2)
        changes[field] = None
    if not changes:
        raise fail("nothing to change: pass at least one option (see --help)", 2)
    with opened_store(database_url) as store:
        config = store.configs.update(config_id, changes)
    _print_configs([config], output)


@app.command()
def remove(
    config_id: int = ConfigIdArgument,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Remove a config (its past moves stay in the journal)."""
    with opened_store(database_url) as store:
        config = store.configs.get(config_id)
        source, job, destination = _route(config)
        if not yes:
            typer.confirm(
                f"remove {_label(config)}: {source} ({job}) -> {destination}?", abort=True
            )
        store.configs.remove(config_id)
    echo(f"removed {_label(config)}")


def _set_enabled(config_id: int, enabled: bool, database_url: str | None) -> None:
    with opened_store(database_url) as store:
        config = store.configs.set_enabled(config_id, enabled)
    echo(f"{_label(config)} {'enabled' if enabled else 'disabled'}")


@app.command()
def enable(
    config_id: int = ConfigIdArgument,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Switch a config on."""
    _set_enabled(config_id, True, database_url)


@app.command()
def disable(
    config_id: int = ConfigIdArgument,
    database_url: str | None = DatabaseUrlOption,
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


@app.command("import")
def import_configs(
    file: str = typer.Argument(..., help="YAML or JSON file with a list of configs; - for stdin."),
    prune: bool = typer.Option(False, "--prune", help="Remove stored configs absent from FILE."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the changes, write nothing."),
    output: Output = OutputOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Make the stored configs match FILE, matching them by source workspace and job (or
    destination workspace for generic configs). A file with any error writes nothing."""
    with exit_on_error():
        document = _read_document(file)
    try:
        specs = parse_import(document)
    except InvalidImport as exc:
        for problem in exc.problems:
            echo(f"error: {problem}", err=True)
        raise fail(f"{exc} ({file})", exc.exit_code) from None
    with opened_store(database_url) as store:
        diff = store.configs.apply_import(specs, prune=prune, dry_run=dry_run)
    if output is Output.json:
        print_json(diff)
    else:
        _print_diff(diff)


@app.command()
def export(
    file: str = typer.Argument("-", help="Where to write; - for stdout."),
    file_format: FileFormat = typer.Option(FileFormat.yaml, "--format", help="yaml or json."),
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Write every config in id order, in the format `configs import` reads back."""
    with opened_store(database_url) as store:
        configs = store.configs.list()
    document = [c.spec().model_dump(mode="json", by_alias=True, exclude_none=True) for c in configs]
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

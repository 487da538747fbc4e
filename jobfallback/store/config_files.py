"""Parsing and checking fallback config files and specs before anything is written, with messages
people can act on.

Every problem is one line naming the field in its file spelling (camelCase), e.g.
`field sourceWorkspaceId: must not be empty`; an import prefixes it with `entry 3 (name)`.
A command that took the values as flags names the flags instead (`--source-workspace: ...`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from jobfallback.errors import UsageError
from jobfallback.models import FallbackConfigSpec, workspace_conflicts
from jobfallback.store.constraints import MESSAGES

_FIELDS = ", ".join(to_camel(name) for name in FallbackConfigSpec.model_fields)
# Plain words for pydantic's errors ("Input should be ..."); each gets the error's context.
_WORDING: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda _: "is required",
    "string_too_short": lambda _: "must not be empty",
    "extra_forbidden": lambda _: f"unknown field; the fields are {_FIELDS}",
    "greater_than_equal": lambda ctx: f"must be {ctx['ge']} or more",
    "less_than_equal": lambda ctx: f"must be {ctx['le']} or less",
    "int_parsing": lambda _: "must be a whole number",
    "int_from_float": lambda _: "must be a whole number",
    "int_type": lambda _: "must be a whole number",
    "bool_parsing": lambda _: "must be true or false",
    "bool_type": lambda _: "must be true or false",
    "string_type": lambda _: "must be text (quote a value YAML would read as a number or a date)",
}
# Fields with a wording of their own, whatever pydantic found wrong with them.
_FIELD_WORDING = {
    "stuckThresholdMinutes": (
        "must be a whole number of minutes from 1 to 525600; "
        "leave it out to use JOB_FALLBACK_STUCK_THRESHOLD_MINUTES"
    ),
}


class InvalidImport(UsageError):
    """An import with problems: nothing was written. `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the configs; nothing was written")
        self.problems = problems


def _one_line(text: str) -> str:
    """Control characters from a file shown escaped, so one problem stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _describe(error: ErrorDetails) -> str:
    field = _one_line(
        ".".join(to_camel(part) if isinstance(part, str) else str(part) for part in error["loc"])
    )
    kind = error["type"]
    if field in _FIELD_WORDING and kind not in ("missing", "extra_forbidden"):
        text = _FIELD_WORDING[field]
    elif kind == "value_error":  # our own validators' words, without pydantic's prefix
        text = str(error.get("ctx", {}).get("error", error["msg"]))
    elif kind in _WORDING:
        text = _WORDING[kind](dict(error.get("ctx", {})))
    else:
        text = error["msg"]
    return f"field {field}: {text}" if field else text


def in_flag_terms(text: str, flags: Mapping[str, str]) -> str:
    """A problem as a command that took flags says it: `field sourceWorkspaceId` and a bare
    `sourceWorkspaceId` become `--source-workspace` (`flags`: camelCase field -> the flag the
    person typed). A one-word field (`name`) is replaced only after `field `."""
    if not flags:
        return text
    names = "|".join(map(re.escape, flags))
    pattern = re.compile(rf"(?<![\w-])(field )?({names})(?![\w-])")

    def flag(match: re.Match[str]) -> str:
        field = match.group(2)
        if match.group(1) or not field.islower():
            return flags[field]
        return match.group(0)

    return pattern.sub(flag, text)


def _problems(data: Any) -> tuple[FallbackConfigSpec | None, list[str]]:
    """A spec from one mapping, or the problems with it (field errors and cross-field rules)."""
    if not isinstance(data, Mapping):
        return None, [f"must be a mapping of fields ({_FIELDS}), not {type(data).__name__}"]
    try:
        spec = FallbackConfigSpec.model_validate(data)
    except ValidationError as exc:
        return None, [_describe(error) for error in exc.errors()]
    if spec.source_workspace_id == spec.destination_workspace_id:
        return None, [MESSAGES["fallback_configs_distinct_workspaces"]]
    return spec, []


def given_field_problems(data: Mapping[str, Any]) -> list[str]:
    """The problems with the fields `data` gives (snake_case names), ignoring those it leaves
    out: a command checks what it was given before it looks the rest up."""
    try:
        FallbackConfigSpec.model_validate(data)
    except ValidationError as exc:
        return [_describe(error) for error in exc.errors() if error["type"] != "missing"]
    return []


def parse_spec(
    data: Mapping[str, Any], *, flags: Mapping[str, str] | None = None
) -> FallbackConfigSpec:
    """One spec from field values (file or snake_case names); UsageError lists every problem,
    naming the fields by their `flags` (camelCase name -> flag) when the values came as flags."""
    spec, problems = _problems(data)
    if spec is None:
        raise UsageError("; ".join(in_flag_terms(p, flags or {}) for p in problems))
    return spec


def entry_label(index: int, name: Any) -> str:
    """How a message names entry `index` of an import file."""
    if isinstance(name, str) and name.strip():
        return f"entry {index} ({_one_line(name)})"
    return f"entry {index}"


def _duplicate_problem(spec: FallbackConfigSpec, first_label: str) -> str:
    if spec.source_job_id is not None:
        return (
            f"field sourceJobId: duplicates {first_label}; one config per source workspace, job "
            "and destination workspace"
        )
    return (
        f"field destinationWorkspaceId: duplicates {first_label}; "
        "one generic config per source and destination workspace"
    )


def duplicate_problems(specs: Sequence[tuple[int, FallbackConfigSpec]]) -> list[str]:
    """Entries (numbered from 1) sharing a natural key: every later one, naming the first."""
    first: dict[tuple[str, ...], str] = {}
    problems = []
    for index, spec in specs:
        label = entry_label(index, spec.name)
        if spec.natural_key in first:
            problems.append(f"{label}: {_duplicate_problem(spec, first[spec.natural_key])}")
        else:
            first[spec.natural_key] = label
    return problems


def parse_import(document: Any) -> list[FallbackConfigSpec]:
    """The specs of an import file: a list of configs, or a mapping `{configs: [...]}`.

    Raises InvalidImport listing every problem of every entry, so one run shows them all.
    """
    if isinstance(document, Mapping) and set(document) == {"configs"}:
        document = document["configs"]
    if not isinstance(document, list):
        raise InvalidImport(
            [
                "the file must hold a list of configs (or `configs:` with a list); "
                "an empty list `[]` with --prune removes every config"
            ]
        )
    valid: list[tuple[int, FallbackConfigSpec]] = []
    problems: list[str] = []
    for index, entry in enumerate(document, start=1):
        spec, entry_problems = _problems(entry)
        name = entry.get("name") if isinstance(entry, Mapping) else None
        problems += [f"{entry_label(index, name)}: {problem}" for problem in entry_problems]
        if spec is not None:
            valid.append((index, spec))
    problems += duplicate_problems(valid)
    problems += workspace_conflicts((entry_label(i, spec.name), spec) for i, spec in valid).values()
    if problems:
        raise InvalidImport(problems)
    return [spec for _, spec in valid]

"""Checking fallback config specs before anything is written, with messages people can act on.

Every problem is one line naming the field in its file spelling (camelCase), e.g.
`field sourceWorkspaceId: must not be empty`; an import prefixes it with `entry 3 (name)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from jobfallback.errors import UsageError
from jobfallback.models import FallbackConfigSpec, workspace_conflicts
from jobfallback.store.constraints import MESSAGES

_FIELDS = ", ".join(to_camel(name) for name in FallbackConfigSpec.model_fields)
# Pydantic's wording where it is not already plain; other errors keep pydantic's message.
_WORDING = {
    "missing": "is required",
    "string_too_short": "must not be empty",
    "extra_forbidden": f"unknown field; the fields are {_FIELDS}",
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
    if error["type"] == "value_error":
        text = str(error["ctx"]["error"])
    else:
        text = _WORDING.get(error["type"], error["msg"])
    return f"field {field}: {text}" if field else text


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


def parse_spec(data: Mapping[str, Any]) -> FallbackConfigSpec:
    """One spec from field values (file or snake_case names); UsageError lists every problem."""
    spec, problems = _problems(data)
    if spec is None:
        raise UsageError("; ".join(problems))
    return spec


def entry_label(index: int, name: Any) -> str:
    """How a message names entry `index` of an import file."""
    if isinstance(name, str) and name.strip():
        return f"entry {index} ({_one_line(name)})"
    return f"entry {index}"


def _duplicate_problem(spec: FallbackConfigSpec, first_label: str) -> str:
    if spec.source_job_id is not None:
        return (
            f"field sourceJobId: duplicates {first_label}; one config per source workspace and job"
        )
    return (
        f"field destinationWorkspaceId: duplicates {first_label}; "
        "one generic config per source and destination workspace"
    )


def duplicate_problems(specs: Sequence[tuple[int, FallbackConfigSpec]]) -> list[str]:
    """Entries (numbered from 1) sharing a natural key: every later one, naming the first."""
    first: dict[tuple[str, str, str], str] = {}
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

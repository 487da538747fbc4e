"""The fallback configs a scenario carries, as `jobfallback configs import` reads them.

Plain dicts in the file format (camelCase keys). The sandbox checks only what it needs to hand
them on in the product's shape: the known keys, their types and ranges; the product validates
them again, fully, when they are imported.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

REQUIRED = (
    "sourceClusterId",
    "sourceWorkspaceId",
    "destinationClusterId",
    "destinationWorkspaceId",
)
_OPTIONAL_TEXT = ("name", "sourceJobId", "destinationWorkspaceFqn")
# The file format's keys, in the order the product writes them.
FIELDS = (
    "name",
    "sourceClusterId",
    "sourceWorkspaceId",
    "sourceJobId",
    "destinationClusterId",
    "destinationWorkspaceId",
    "destinationWorkspaceFqn",
    "enabled",
    "stuckThresholdMinutes",
    "priority",
    "excludeJobIds",
    "manifestPatch",
)
_IDS = frozenset({*REQUIRED, "sourceJobId"})
_RANGES = {"stuckThresholdMinutes": (1, 525_600), "priority": (0, 1000)}


class ConfigError(ValueError):
    """What is wrong with a config: the key at fault (None: the whole entry) and why."""

    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, "must be a string")
    text = value.strip()
    if not text:
        raise ConfigError(key, "must not be empty")
    if not text.isprintable():
        raise ConfigError(key, "must not contain control characters")
    if key in _IDS and text in (".", ".."):
        raise ConfigError(key, f"{text!r} is not an id")
    return text


def _whole(key: str, value: Any) -> int:
    low, high = _RANGES[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key, f"must be a whole number from {low} to {high}")
    return value


def config_entry(raw: Any) -> Obj:
    """One config as the product's export writes it: camelCase, unset fields left out (no
    priority when 0, no excludeJobIds when empty), `enabled` always there; ConfigError names
    the key at fault."""
    if not isinstance(raw, dict):
        raise ConfigError(None, "must be a mapping")
    unknown = sorted(str(key) for key in raw if key not in FIELDS)
    if unknown:
        raise ConfigError(unknown[0], "not a config field")
    missing = [key for key in REQUIRED if raw.get(key) is None]
    if missing:
        raise ConfigError(missing[0], "required")
    entry: Obj = {}
    for key in (*REQUIRED, *_OPTIONAL_TEXT):
        if raw.get(key) is not None:
            entry[key] = _text(key, raw[key])
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError("enabled", "must be true or false")
    entry["enabled"] = enabled
    for key in _RANGES:
        if raw.get(key) is not None:
            entry[key] = _whole(key, raw[key])
    excluded = raw.get("excludeJobIds") or []
    if not isinstance(excluded, list):
        raise ConfigError("excludeJobIds", "must be a list of job ids")
    if excluded:
        if "sourceJobId" in entry:
            raise ConfigError(
                "excludeJobIds",
                "only a generic config (no sourceJobId) excludes jobs; remove one of the two",
            )
        entry["excludeJobIds"] = sorted({_text("excludeJobIds", job) for job in excluded})
    patch = raw.get("manifestPatch")
    if patch is not None:
        if not isinstance(patch, dict):
            raise ConfigError("manifestPatch", "must be a mapping")
        entry["manifestPatch"] = patch
    if not entry.get("priority"):
        entry.pop("priority", None)
    return {key: entry[key] for key in FIELDS if key in entry}

"""Server profiles: how the sandbox behaves where the API contract leaves a choice open.

A profile is a set of names (see the package docstring for what each does) plus the knobs a
test can turn. The two naming profiles exclude each other; every other one combines freely,
and `alias-name` is implied when neither naming profile is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

ALIAS_NAME = "alias-name"
GENERATED_NAMES = "generated-names"
SEARCH_LAG = "search-lag"
PAGE_SHIFT = "page-shift"
IGNORE_OFFSET = "ignore-offset"
FRACTIONAL_TIMES = "fractional-times"
VENDOR_SPARSE = "vendor-sparse"
PROFILES = (
    ALIAS_NAME,
    GENERATED_NAMES,
    SEARCH_LAG,
    PAGE_SHIFT,
    IGNORE_OFFSET,
    FRACTIONAL_TIMES,
    VENDOR_SPARSE,
)
_NAMING = (ALIAS_NAME, GENERATED_NAMES)


@dataclass(frozen=True)
class ServerProfile:
    """The profiles in force and their knobs.

    search_lag_searches  a triggered run is hidden from this many searches that would find it
    search_lag_seconds   ... or for this long after its trigger (None: no time limit); it shows
                         up as soon as either limit is reached
    page_shift_runs      runs added to a job while one listing of it is paged
    """

    names: frozenset[str] = field(default_factory=lambda: frozenset({ALIAS_NAME}))
    search_lag_searches: int | None = 2
    search_lag_seconds: float | None = None
    page_shift_runs: int = 1

    def __post_init__(self) -> None:
        unknown = sorted(self.names - set(PROFILES))
        if unknown:
            raise ValueError(f"unknown server profiles {unknown}; use {', '.join(PROFILES)}")
        if all(name in self.names for name in _NAMING):
            raise ValueError(f"server profiles {' and '.join(_NAMING)} exclude each other")
        if self.search_lag_searches is None and self.search_lag_seconds is None:
            raise ValueError("search-lag needs search_lag_searches or search_lag_seconds")
        if (self.search_lag_searches or 0) < 0 or (self.search_lag_seconds or 0) < 0:
            raise ValueError("search-lag limits must be >= 0")
        if self.page_shift_runs < 1:
            raise ValueError("page_shift_runs must be >= 1")

    @classmethod
    def of(cls, profiles: ProfileSpec = (), **knobs: Any) -> ServerProfile:
        """A profile from names (an iterable, or one comma-separated string as the CLI takes
        them) or from a ServerProfile; knobs override. ValueError names what is wrong."""
        if isinstance(profiles, ServerProfile):
            return replace(profiles, **knobs)
        if isinstance(profiles, str):
            profiles = profiles.split(",")
        names = {name.strip() for name in profiles if name.strip()}
        if not names & set(_NAMING):
            names.add(ALIAS_NAME)
        return cls(frozenset(names), **knobs)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __str__(self) -> str:
        return ",".join(name for name in PROFILES if name in self.names)


ProfileSpec = ServerProfile | str | Iterable[str]

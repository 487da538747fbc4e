"""A TrueFoundry-compatible control plane on loopback, for the demo, the tests and benchmarks.

vendor.py     the API's status strings and object shapes, as TrueFoundry's SDK defines them
profiles.py   server profiles: the choices the contract leaves open
state.py      the objects, in memory, behind one lock
api.py        the endpoints of docs/truefoundry-api.md (routing, filters, paging)
faults.py     seeded fault injection
server.py     SandboxServer: the HTTP/1.1 server, latency, faults, hooks
scenarios.py  the demo and scenario files, generated fleets and their configs
configs.py    the fallback configs a scenario carries, checked as plain dicts
cli.py        the `jobfallback-sandbox` command (also `jobfallback sandbox` when installed)

Its own distribution (sandbox/pyproject.toml, `pip install 'jobfallback[sandbox]'`), kept out of
the product's wheel and image: it imports nothing from `jobfallback`.

Every answer carries every field the SDK's response models require, with the SDK's types
(a run's `deploymentVersion` is a string, its `createdAt` a number of epoch milliseconds).
A run's alias (`metadata.job_run_name_alias`) is kept but never served: the vendor's JobRun
has no such field (`SandboxState.alias_of(run_id)` tells tests). A run's trigger `params` are
served as an extra field, except under vendor-sparse.

Server profiles (`SandboxState(profiles=...)`, `SandboxServer(..., profiles=...)`,
`load_scenario`/`generate_fleet(..., profiles=...)`, `jobfallback-sandbox serve --profile
a,b`); they combine, except the two naming ones, and alias-name is the default:

alias-name        a triggered run is named by its alias (a repeated alias gets "-2", ...), and
                  `searchPrefix` matches a run's name, id or alias.
generated-names   the server names every triggered run `<job name>-<6 hex digits>`; the alias
                  is not part of the name and `searchPrefix` matches only name or id.
search-lag        a triggered run is missing from `searchPrefix` listings until it has been
                  left out of `search_lag_searches` (default 2) searches that would have found
                  it, or `search_lag_seconds` (default: no time limit) have passed by the
                  state's clock, whichever comes first. Plain and `versionNumbers` listings
                  and get-by-name show it at once. `SandboxState.end_search_lag()` ends it.
page-shift        a runs listing starts with an offset-0 request; a later request (offset > 0,
                  while items remain) adds one run to the job, newer than all others and in
                  the listing's first status (CREATED when unfiltered), up to
                  `page_shift_runs` (default 1) per listing: pages newest first then repeat
                  an item, pages oldest first get it on the last page.
ignore-offset     runs listings ignore `offset` and answer the first page again; `total` is
                  right and `pagination.offset` echoes the request, so only the items tell.
                  (The SDK's pager stops only at an empty page: it never ends here.)
fractional-times  every timestamp a run carries (createdAt, endTime) has a fraction of a
                  millisecond, e.g. 1732950000123.456.
vendor-sparse     every object keeps only what the SDK requires plus its identity (the id;
                  an application's name and type); some optional fields come as null (e.g. a
                  run's endTime and deploymentId, an application's deployment and deployment
                  ids), the rest are left out (a run's applicationId and params, pagination's
                  offset and limit, an error's code); and every object, answer envelope and
                  error carries unknown extra fields (vendor.unknown_fields). Manifests are
                  served as stored.
"""

from jobfallback_sandbox.faults import FAULT_KINDS
from jobfallback_sandbox.profiles import PROFILES, ServerProfile
from jobfallback_sandbox.scenarios import (
    ScenarioError,
    fleet_configs,
    generate_fleet,
    load_scenario,
)
from jobfallback_sandbox.server import HookContext, SandboxServer
from jobfallback_sandbox.state import SandboxError, SandboxState
from jobfallback_sandbox.vendor import RunStatus

__all__ = [
    "FAULT_KINDS",
    "PROFILES",
    "HookContext",
    "RunStatus",
    "SandboxError",
    "SandboxServer",
    "SandboxState",
    "ScenarioError",
    "ServerProfile",
    "fleet_configs",
    "generate_fleet",
    "load_scenario",
]

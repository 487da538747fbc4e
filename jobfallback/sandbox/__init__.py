"""A TrueFoundry-compatible control plane on loopback, for the demo, the tests and benchmarks.

state.py      the objects, in memory, behind one lock
api.py        the endpoints of shared/truefoundry-api.md (routing, filters, paging)
faults.py     seeded fault injection
server.py     SandboxServer: the HTTP/1.1 server, latency, faults, hooks
scenarios.py  the demo and scenario files, generated fleets and their configs
"""

from jobfallback.sandbox.faults import FAULT_KINDS
from jobfallback.sandbox.scenarios import fleet_configs, generate_fleet, load_scenario
from jobfallback.sandbox.server import HookContext, SandboxServer
from jobfallback.sandbox.state import SandboxError, SandboxState

__all__ = [
    "FAULT_KINDS",
    "HookContext",
    "SandboxError",
    "SandboxServer",
    "SandboxState",
    "fleet_configs",
    "generate_fleet",
    "load_scenario",
]

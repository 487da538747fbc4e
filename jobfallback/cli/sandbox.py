"""`jobfallback sandbox`: run the TrueFoundry-compatible sandbox, print configs that fit it."""

from __future__ import annotations

import re
import signal
import sys
import threading
from types import FrameType

import typer
import yaml

from jobfallback.cli.common import exit_on_error, fail
from jobfallback.errors import UsageError
from jobfallback.sandbox import FAULT_KINDS, PROFILES, SandboxServer, SandboxState, ServerProfile
from jobfallback.sandbox.scenarios import generate_fleet, load_scenario

app = typer.Typer(
    no_args_is_help=True,
    help="A TrueFoundry-compatible control plane on loopback, for demos and tests.",
)

ScenarioOption = typer.Option(
    None, "--scenario", help="A built-in scenario (demo) or a YAML/JSON file [default: demo]."
)
FleetOption = typer.Option(
    None, "--fleet", help="A generated fleet instead: WORKSPACESxJOBS, e.g. 100x20."
)
SeedOption = typer.Option(0, "--seed", help="Seed of the generated fleet and of the faults.")


def _state(scenario: str | None, fleet: str | None, seed: int, profiles: str = "") -> SandboxState:
    if scenario is not None and fleet is not None:
        raise UsageError("--scenario and --fleet exclude each other; give one")
    try:
        profile = ServerProfile.of(profiles)
    except ValueError as exc:
        raise UsageError(f"--profile: {exc}") from None
    if fleet is None:
        return load_scenario(scenario or "demo", profiles=profile)
    match = re.fullmatch(r"(\d+)x(\d+)", fleet.strip())
    if match is None:
        raise UsageError(f"--fleet {fleet!r} must be WORKSPACESxJOBS, e.g. 100x20")
    workspaces, jobs = (int(n) for n in match.groups())
    return generate_fleet(
        workspaces=workspaces, jobs_per_workspace=jobs, seed=seed, profiles=profile
    )


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port; 0 picks a free one."),
    scenario: str | None = ScenarioOption,
    fleet: str | None = FleetOption,
    seed: int = SeedOption,
    latency_ms: float = typer.Option(0, "--latency-ms", min=0, help="Delay of every API answer."),
    fault_rate: float = typer.Option(
        0.0, "--fault-rate", min=0.0, max=1.0, help="Share of API requests that fail."
    ),
    fault_kinds: str = typer.Option(
        "", "--fault-kinds", help=f"Comma-separated fault kinds: {','.join(FAULT_KINDS)}."
    ),
    fault_endpoints: str | None = typer.Option(
        None, "--fault-endpoints", help="Comma-separated endpoint names to fault [default: all]."
    ),
    fault_after_effect: bool = typer.Option(
        False,
        "--fault-after-effect",
        help="reset/timeout faults on writes apply the write first: only the answer is lost.",
    ),
    timeout_seconds: float = typer.Option(
        2.0, "--timeout-seconds", min=0, help="How long a timeout fault holds the answer."
    ),
    token: str | None = typer.Option(None, "--token", help="Bearer token to accept [random]."),
    profile: str = typer.Option(
        "",
        "--profile",
        help=f"Comma-separated server profiles: {','.join(PROFILES)} [default: alias-name].",
    ),
) -> None:
    """Serve until SIGTERM/SIGINT. The first line of stdout is `url=<URL> token=<TOKEN>`."""
    with exit_on_error():
        state = _state(scenario, fleet, seed, profile)
    try:
        server = SandboxServer(
            state,
            host=host,
            port=port,
            token=token,
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            fault_kinds=_csv(fault_kinds) or (),
            fault_endpoints=_csv(fault_endpoints),
            seed=seed,
            timeout_seconds=timeout_seconds,
            fault_after_effect=fault_after_effect,
        )
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        server.start()
    except OSError as exc:
        raise fail(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port", 3
        ) from None
    try:
        # The sandbox token is made for this run and printed on purpose: clients need it.
        sys.stdout.write(f"url={server.url} token={server.token}\n")
        sys.stdout.flush()
        stop.wait()
    finally:
        server.stop()


@app.command()
def configs(
    scenario: str | None = ScenarioOption,
    fleet: str | None = FleetOption,
    seed: int = SeedOption,
) -> None:
    """Print the fallback configs that fit a scenario or fleet, as YAML for `configs import`."""
    with exit_on_error():
        state = _state(scenario, fleet, seed)
    sys.stdout.write(yaml.safe_dump(state.configs, sort_keys=False))

"""`jobfallback-sandbox` (and `jobfallback sandbox`, which hands over to this app when the
sandbox is installed): run the TrueFoundry-compatible sandbox, print configs that fit it."""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer
import yaml

from jobfallback_sandbox import FAULT_KINDS, PROFILES, SandboxServer, SandboxState, ServerProfile
from jobfallback_sandbox.scenarios import ScenarioError, generate_fleet, load_scenario

app = typer.Typer(
    no_args_is_help=True,
    help="A TrueFoundry-compatible control plane on loopback, for demos and tests.",
)

Scenario = Annotated[
    str | None,
    typer.Option(
        "--scenario",
        metavar="NAME|FILE",
        help="A built-in scenario (demo) or a YAML/JSON file; unset: demo.",
    ),
]
Fleet = Annotated[
    str | None,
    typer.Option(
        "--fleet", metavar="WxJ", help="A generated fleet instead: WORKSPACESxJOBS, e.g. 100x20."
    ),
]
Seed = Annotated[
    int, typer.Option("--seed", metavar="N", help="Seed of the generated fleet and of the faults.")
]


def fail(message: str, code: int) -> typer.Exit:
    """The exit `code`, once the error is told in one `error: ...` line on stderr."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    sys.stderr.write(f"error: {shown}\n")
    return typer.Exit(code)


@contextmanager
def exit_on_error() -> Iterator[None]:
    """A scenario, fleet or flag the sandbox cannot use: its one-line message, exit 2."""
    try:
        yield
    except ScenarioError as exc:
        raise fail(str(exc), 2) from None


def _state(scenario: str | None, fleet: str | None, seed: int, profiles: str = "") -> SandboxState:
    if scenario is not None and fleet is not None:
        raise ScenarioError("--scenario and --fleet exclude each other; give one")
    try:
        profile = ServerProfile.of(profiles)
    except ValueError as exc:
        raise ScenarioError(f"--profile: {exc}") from None
    if fleet is None:
        return load_scenario(scenario or "demo", profiles=profile)
    match = re.fullmatch(r"(\d+)x(\d+)", fleet.strip())
    if match is None:
        raise ScenarioError(f"--fleet {fleet!r} must be WORKSPACESxJOBS, e.g. 100x20")
    workspaces, jobs = (int(n) for n in match.groups())
    return generate_fleet(
        workspaces=workspaces, jobs_per_workspace=jobs, seed=seed, profiles=profile
    )


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", metavar="PORT", min=0, max=65535, help="Port; 0 picks a free one."),
    ] = 0,
    scenario: Scenario = None,
    fleet: Fleet = None,
    seed: Seed = 0,
    latency_ms: Annotated[
        float,
        typer.Option("--latency-ms", metavar="MS", min=0, help="Delay of every API answer."),
    ] = 0,
    fault_rate: Annotated[
        float,
        typer.Option(
            "--fault-rate",
            metavar="SHARE",
            min=0.0,
            max=1.0,
            help="Share of API requests that fail (0 to 1).",
        ),
    ] = 0.0,
    fault_kinds: Annotated[
        str,
        typer.Option(
            "--fault-kinds",
            metavar="KINDS",
            help=f"Comma-separated fault kinds: {', '.join(FAULT_KINDS)}.",
        ),
    ] = "",
    fault_endpoints: Annotated[
        str | None,
        typer.Option(
            "--fault-endpoints",
            metavar="ENDPOINTS",
            help="Comma-separated endpoint names to fault; unset: all.",
        ),
    ] = None,
    fault_after_effect: Annotated[
        bool,
        typer.Option(
            "--fault-after-effect",
            help="reset/timeout faults on writes apply the write first: only the answer is lost.",
        ),
    ] = False,
    timeout_seconds: Annotated[
        float,
        typer.Option(
            "--timeout-seconds",
            metavar="SECONDS",
            min=0,
            help="How long a timeout fault holds the answer.",
        ),
    ] = 2.0,
    token: Annotated[
        str | None,
        typer.Option("--token", metavar="TOKEN", help="Bearer token to accept; unset: random."),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            metavar="PROFILES",
            help=f"Comma-separated server profiles: {', '.join(PROFILES)}; unset: alias-name.",
        ),
    ] = "",
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
def configs(scenario: Scenario = None, fleet: Fleet = None, seed: Seed = 0) -> None:
    """Print the fallback configs that fit a scenario or fleet, as YAML for `configs import`."""
    with exit_on_error():
        state = _state(scenario, fleet, seed)
    sys.stdout.write(yaml.safe_dump(state.configs, sort_keys=False))


def main() -> None:
    """The `jobfallback-sandbox` console script."""
    app(prog_name="jobfallback-sandbox")

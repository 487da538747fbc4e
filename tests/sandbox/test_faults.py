"""Fault injection: every kind is observable, faults are seeded, a faulted write has no effect
unless `fault_after_effect` asks for the lost-answer case."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress

import httpx
import pytest

from jobfallback_sandbox import SandboxServer, SandboxState
from tests.sandbox.conftest import api_client, raw_connection, raw_get

TRIGGER = {"applicationId": "app-nightly-report", "metadata": {"job_run_name_alias": "fb-1"}}


@pytest.fixture
def faulty(sandbox_state: SandboxState) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox_state, seed=7, timeout_seconds=0.2) as server:
        yield server


def only(server: SandboxServer, kind: str) -> httpx.Client:
    server.set_faults(rate=1.0, kinds=[kind])
    return api_client(server)


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_errors_are_json(faulty: SandboxServer, kind: str) -> None:
    with only(faulty, kind) as api:
        response = api.get("/workspaces")
    assert response.status_code == int(kind)
    assert response.json()["statusCode"] == int(kind)
    if kind == "503":
        assert response.headers["Retry-After"] == "0"


def test_502_is_not_json(faulty: SandboxServer) -> None:
    with only(faulty, "502") as api:
        response = api.get("/workspaces")
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    with pytest.raises(ValueError):
        response.json()


def test_429_says_when_to_retry(faulty: SandboxServer) -> None:
    with only(faulty, "429") as api:
        responses = [api.get("/workspaces") for _ in range(20)]
    assert {r.status_code for r in responses} == {429}
    seen = {(r.headers.get("Retry-After"), r.headers.get("retry-after-ms")) for r in responses}
    assert seen == {("0", None), (None, "10")}


def test_timeout_never_answers(faulty: SandboxServer) -> None:
    with only(faulty, "timeout") as api, pytest.raises(httpx.ReadTimeout):
        api.get("/workspaces", timeout=0.1)
    # A patient client sees the connection closed without an answer.
    with api_client(faulty) as api, pytest.raises(httpx.RemoteProtocolError):
        api.get("/workspaces")


def test_reset_sends_half_the_declared_body(faulty: SandboxServer) -> None:
    faulty.set_faults(rate=1.0, kinds=["reset"])
    with raw_connection(faulty) as conn:
        conn.sendall(raw_get(faulty, "/workspaces"))
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    declared = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    assert 0 < len(body) < declared
    with api_client(faulty) as api, pytest.raises(httpx.RemoteProtocolError):
        api.get("/workspaces")


def test_badjson_and_wrongshape_answer_200(faulty: SandboxServer) -> None:
    with only(faulty, "badjson") as api:
        bad = api.get("/workspaces")
    assert bad.status_code == 200
    with pytest.raises(ValueError):
        bad.json()
    with only(faulty, "wrongshape") as api:
        wrong = api.get("/workspaces")
    assert (wrong.status_code, wrong.json()) == (200, {"items": 1})


@pytest.mark.parametrize("kind", ["500", "429", "reset", "timeout", "badjson"])
def test_a_faulted_write_has_no_effect(
    faulty: SandboxServer, sandbox_state: SandboxState, kind: str
) -> None:
    before = len(sandbox_state.runs(application_id="app-nightly-report"))
    with only(faulty, kind) as api, suppress(httpx.HTTPError):
        api.post("/jobs/trigger", json=TRIGGER)
    assert len(sandbox_state.runs(application_id="app-nightly-report")) == before


@pytest.mark.parametrize("kind", ["reset", "timeout"])
def test_fault_after_effect_loses_only_the_answer(sandbox_state: SandboxState, kind: str) -> None:
    with (
        SandboxServer(
            sandbox_state,
            timeout_seconds=0.1,
            fault_after_effect=True,
            fault_rate=1.0,
            fault_kinds=[kind],
        ) as server,
        api_client(server) as api,
    ):
        with pytest.raises(httpx.HTTPError):
            api.post("/jobs/trigger", json=TRIGGER)
        # Reads are not writes: they are faulted without any effect to apply.
        with pytest.raises(httpx.HTTPError):
            api.get("/workspaces")
    runs = sandbox_state.runs(application_id="app-nightly-report")
    assert [r["name"] for r in runs if r["alias"] == "fb-1"] == ["fb-1"]


def test_faults_limited_to_endpoints(faulty: SandboxServer) -> None:
    faulty.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    with api_client(faulty) as api:
        assert api.get("/workspaces").status_code == 200
        assert api.post("/jobs/trigger", json=TRIGGER).status_code == 500
        faulty.set_faults(rate=0.0, kinds=[])
        assert api.post("/jobs/trigger", json=TRIGGER).status_code == 200
    assert faulty.fault_counts == {"500": 1}


def outcomes(state: SandboxState, seed: int) -> list[tuple[int, str]]:
    kinds = ["500", "503", "429", "wrongshape"]
    with (
        SandboxServer(state, seed=seed, fault_rate=0.5, fault_kinds=kinds) as server,
        api_client(server) as api,
    ):
        answers = [api.get("/workspaces") for _ in range(30)]
    return [(r.status_code, r.text) for r in answers]


def test_faults_are_reproducible_from_the_seed(sandbox_state: SandboxState) -> None:
    first = outcomes(sandbox_state, seed=3)
    assert outcomes(sandbox_state, seed=3) == first
    assert outcomes(sandbox_state, seed=4) != first
    assert {status for status, _ in first} == {200, 500, 503, 429}


@pytest.mark.parametrize(
    ("rate", "kinds", "endpoints", "message"),
    [
        (1.5, ["500"], None, "between 0 and 1"),
        (0.5, ["418"], None, "unknown fault kinds"),
        (0.5, [], None, "at least one fault kind"),
        (0.5, ["500"], ["delete_everything"], "unknown fault endpoints"),
    ],
)
def test_bad_fault_settings_are_refused(
    sandbox_state: SandboxState,
    rate: float,
    kinds: list[str],
    endpoints: list[str] | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        SandboxServer(sandbox_state, fault_rate=rate, fault_kinds=kinds, fault_endpoints=endpoints)

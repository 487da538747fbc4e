"""Server profiles: each one really behaves as documented (jobfallback_sandbox docstring)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from jobfallback_sandbox import PROFILES, SandboxServer, SandboxState, ServerProfile, load_scenario
from jobfallback_sandbox.vendor import unknown_fields
from tests.sandbox.conftest import api_client

RUNS = "/jobs/app-nightly-report/runs"
NOW_MS = 1_732_950_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = NOW_MS

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


Serve = Callable[[SandboxState], httpx.Client]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts a server on a state and gives a client on it; both are stopped after the test."""
    with ExitStack() as stack:

        def start(state: SandboxState) -> httpx.Client:
            server = stack.enter_context(SandboxServer(state))
            return stack.enter_context(api_client(server))

        yield start


def demo(profiles: Any) -> SandboxState:
    return load_scenario("demo", now_ms=NOW_MS, profiles=profiles)


def one_job(profiles: Any, clock: Clock) -> SandboxState:
    """A job "nightly-report" with one CREATED run, on a clock the test moves."""
    state = SandboxState(now_ms=NOW_MS, clock=clock, profiles=profiles)
    state.add_cluster("c")
    state.add_workspace(id="ws", name="ws", cluster_id="c")
    state.add_application(workspace_id="ws", name="nightly-report", id="app-nightly-report")
    state.add_run(application_id="app-nightly-report", name="nightly-report-0031")
    return state


def trigger(api: httpx.Client, alias: str, app: str = "app-nightly-report") -> dict[str, Any]:
    body = {"applicationId": app, "metadata": {"job_run_name_alias": alias}}
    response = api.post("/jobs/trigger", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def names(api: httpx.Client, path: str = RUNS, **params: Any) -> list[str]:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["data"]]


# ------------------------------------------------------------------ choosing profiles


def test_profiles_parse_combine_and_default_to_alias_name() -> None:
    assert ServerProfile.of().names == {"alias-name"}
    combined = ServerProfile.of("fractional-times, search-lag")
    assert combined.names == {"alias-name", "fractional-times", "search-lag"}
    assert str(combined) == "alias-name,search-lag,fractional-times"
    assert ServerProfile.of(combined, page_shift_runs=3).page_shift_runs == 3
    assert "alias-name" not in ServerProfile.of(["generated-names"])
    assert SandboxState(profiles=["vendor-sparse"]).profile.names == {"alias-name", "vendor-sparse"}


@pytest.mark.parametrize(
    ("profiles", "knobs", "message"),
    [
        (["teapot"], {}, "unknown server profiles"),
        (["alias-name", "generated-names"], {}, "exclude each other"),
        (["search-lag"], {"search_lag_searches": None}, "search_lag_searches or"),
        (["search-lag"], {"search_lag_seconds": -1.0}, ">= 0"),
        (["page-shift"], {"page_shift_runs": 0}, "page_shift_runs"),
    ],
)
def test_bad_profiles_are_refused(profiles: list[str], knobs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerProfile.of(profiles, **knobs)


@pytest.mark.parametrize("profile", PROFILES)
def test_the_demo_loads_under_every_profile(profile: str) -> None:
    state = demo([profile])
    assert len(state.runs(status="CREATED")) == 4
    assert state.snapshot()["profiles"] == sorted({profile, *ServerProfile.of([profile]).names})


# ------------------------------------------------------------------ naming


def test_alias_name_names_the_run_by_its_alias_without_serving_the_alias(serve: Serve) -> None:
    state = demo(())
    api = serve(state)
    answer = trigger(api, "fb-123")
    assert answer["jobRunName"] == answer["data"]["name"] == "fb-123"
    assert "alias" not in answer["data"]
    assert state.alias_of(answer["data"]["id"]) == "fb-123"
    assert names(api, searchPrefix="fb-1") == ["fb-123"]


def test_generated_names_ignore_the_alias(serve: Serve) -> None:
    state = demo(["generated-names"])
    api = serve(state)
    first, second = trigger(api, "fb-123"), trigger(api, "fb-123")
    for answer in (first, second):
        run = answer["data"]
        assert re.fullmatch(r"nightly-report-[0-9a-f]{6}", run["name"]), run["name"]
        assert answer["jobRunName"] == run["name"]
        assert state.alias_of(run["id"]) == "fb-123"
        assert "alias" not in run
    assert first["data"]["name"] != second["data"]["name"]
    assert names(api, searchPrefix="fb-") == []
    assert sorted(names(api, searchPrefix="nightly-report-")) == sorted(
        [first["data"]["name"], second["data"]["name"], "nightly-report-0031"]
    )
    assert names(api, searchPrefix=first["data"]["id"]) == [first["data"]["name"]]  # by id


# ------------------------------------------------------------------ search-lag


def test_search_lag_hides_a_fresh_run_from_searches_only(serve: Serve) -> None:
    state = demo(["search-lag"])
    api = serve(state)
    run = trigger(api, "fb-lag")["data"]
    assert names(api, searchPrefix="fb-lag") == []
    assert names(api) == ["fb-lag", "nightly-report-0031"]
    assert names(api, versionNumbers="1") == ["fb-lag", "nightly-report-0031"]
    assert api.get(f"{RUNS}/fb-lag").json()["data"]["id"] == run["id"]
    assert names(api, searchPrefix="fb-") == []  # the second search it is left out of
    assert names(api, searchPrefix="fb-lag") == ["fb-lag"]
    assert names(api, searchPrefix="fb-lag") == ["fb-lag"]


def test_search_lag_by_time(serve: Serve, clock: Clock) -> None:
    profile = ServerProfile.of(["search-lag"], search_lag_searches=None, search_lag_seconds=5)
    state = one_job(profile, clock)
    api = serve(state)
    trigger(api, "fb-lag")
    for _ in range(3):
        assert names(api, searchPrefix="fb-lag") == []
    clock.ms += 5_000
    assert names(api, searchPrefix="fb-lag") == ["fb-lag"]


def test_search_lag_can_be_ended_and_spares_runs_not_triggered(serve: Serve) -> None:
    state = demo(ServerProfile.of(["search-lag"], search_lag_searches=100))
    api = serve(state)
    trigger(api, "fb-lag")
    assert names(api, searchPrefix="nightly") == ["nightly-report-0031"]
    state.end_search_lag()
    assert names(api, searchPrefix="fb-lag") == ["fb-lag"]


# ------------------------------------------------------------------ paging


@pytest.fixture
def five_runs(serve: Serve) -> tuple[SandboxState, httpx.Client]:
    """A job with five CREATED runs, one minute apart, under page-shift."""
    state = demo(["page-shift"])
    app = state.add_application(workspace_id="ws-east-ml", name="five", id="app-five")
    for i in range(5):
        state.add_run(application_id=app["id"], name=f"five-{i}", created_at=NOW_MS + i * 60_000)
    return state, serve(state)


def page(api: httpx.Client, offset: int, **params: Any) -> dict[str, Any]:
    query = {"status": "CREATED", "limit": 2, "offset": offset, **params}
    body: dict[str, Any] = api.get("/jobs/app-five/runs", params=query).json()
    return body


def test_page_shift_repeats_an_item_on_the_next_page(
    five_runs: tuple[SandboxState, httpx.Client],
) -> None:
    state, api = five_runs
    first = page(api, 0)
    assert [r["name"] for r in first["data"]] == ["five-4", "five-3"]
    second = page(api, 2)
    assert [r["name"] for r in second["data"]] == ["five-3", "five-2"]  # five-3 again
    assert second["pagination"]["total"] == first["pagination"]["total"] + 1
    old = {f"five-{i}" for i in range(5)}
    (new,) = [r for r in state.runs(application_id="app-five") if r["name"] not in old]
    assert new["status"] == "CREATED"
    # One new run per listing: the rest of it holds still.
    assert [r["name"] for r in page(api, 4)["data"]] == ["five-1", "five-0"]
    assert page(api, 6)["data"] == []


def test_page_shift_oldest_first_puts_the_new_run_on_the_last_page(
    five_runs: tuple[SandboxState, httpx.Client],
) -> None:
    _, api = five_runs
    seen: list[str] = []
    offset, total = 0, 1
    while offset < total:
        body = page(api, offset, sortBy="startTime", order="asc")
        seen += [r["name"] for r in body["data"]]
        offset, total = offset + len(body["data"]), body["pagination"]["total"]
    assert seen[:5] == [f"five-{i}" for i in range(5)]
    assert len(seen) == len(set(seen)) == 6


def test_a_pager_that_stops_at_an_empty_page_ends_under_page_shift(
    five_runs: tuple[SandboxState, httpx.Client],
) -> None:
    _, api = five_runs
    pages = 0
    offset = 0
    while body := page(api, offset, limit=1)["data"]:
        pages += 1
        offset += len(body)
    assert pages == 6


def test_ignore_offset_answers_the_first_page_again(serve: Serve) -> None:
    state = demo(["ignore-offset"])
    api = serve(state)
    first = api.get("/jobs/app-train-llm/runs", params={"limit": 1}).json()
    again = api.get("/jobs/app-train-llm/runs", params={"limit": 1, "offset": 1}).json()
    assert again["data"] == first["data"]
    assert again["pagination"] == {"total": 2, "offset": 1, "limit": 1}
    # Other listings page as usual.
    assert len(api.get("/workspaces", params={"offset": 2}).json()["data"]) == 1


# ------------------------------------------------------------------ fractional-times


def test_fractional_times_on_every_run_timestamp(serve: Serve) -> None:
    state = demo(["fractional-times"])
    api = serve(state)
    trigger(api, "fb-frac")
    state.set_run_status("run-report-1", "FAILED")
    served = [
        run
        for app in ("app-train-llm", "app-eval-suite", "app-embed-corpus", "app-nightly-report")
        for run in api.get(f"/jobs/{app}/runs").json()["data"]
    ]
    times = [run[key] for run in served for key in ("createdAt", "endTime") if run[key] is not None]
    assert len(times) == 9  # 6 demo runs + 1 triggered, and two have ended
    assert not any(float(t).is_integer() for t in times), times
    stored = state.run("run-embed-1")
    assert stored is not None
    assert 0 < stored["createdAt"] - (NOW_MS - 240 * 60_000) < 1


def test_fractional_times_chosen_at_the_server_apply_to_the_runs_there() -> None:
    state = demo(())
    assert all(float(r["createdAt"]).is_integer() for r in state.runs())
    SandboxServer(state, profiles=["fractional-times"])
    assert not any(float(r["createdAt"]).is_integer() for r in state.runs())


# ------------------------------------------------------------------ vendor-sparse


def test_vendor_sparse_leaves_optional_fields_out_and_adds_unknown_ones(serve: Serve) -> None:
    state = demo(["vendor-sparse"])
    api = serve(state)
    extra = unknown_fields()
    listing = api.get(RUNS).json()
    assert listing.items() >= extra.items()
    assert listing["pagination"] == {"total": 1, **extra}
    (run,) = listing["data"]
    assert run.items() >= extra.items()
    assert {"applicationId", "params", "tenantName", "triggeredBySubject"}.isdisjoint(run)
    assert (run["endTime"], run["deploymentId"], run["exitCode"]) == (None, None, None)
    assert run["deploymentVersion"] == "1"

    app = api.get("/apps/app-train-llm").json()["data"]
    assert app["deployment"] is None
    assert app["activeDeploymentId"] is None
    assert {"fqn", "workspaceId", "workspaceFqn", "createdAt"}.isdisjoint(app)
    assert (app["id"], app["name"], app["type"]) == ("app-train-llm", "train-llm", "job")
    assert app["createdBySubject"] == {"subjectId": "user-sandbox", "subjectType": "user", **extra}

    ws = api.get("/workspaces/ws-east-ml").json()["data"]
    assert "name" not in ws
    assert "hasCapacity" not in ws
    assert ws["environmentId"] is None

    error = api.get("/apps/app-nope").json()
    assert "code" not in error
    assert error.items() >= {"statusCode": 404, **extra}.items()

    triggered = api.post("/jobs/trigger", json={"applicationId": "app-nightly-report"}).json()
    assert triggered.items() >= extra.items()
    assert "params" not in triggered["data"]


def test_without_vendor_sparse_every_field_is_served_and_no_unknown_one(serve: Serve) -> None:
    state = demo(())
    api = serve(state)
    run = api.get(f"{RUNS}/nightly-report-0031").json()["data"]
    assert run["applicationId"] == "app-nightly-report"
    assert run["params"] == {}
    assert "sandboxUnknownField" not in run
    assert "hasCapacity" not in api.get("/workspaces/ws-east-ml").json()["data"]

"""Whatever valid JSON the list endpoints answer, the client's list methods yield the valid items,
skip the malformed ones with a warning naming each, and raise nothing but BadResponse (for an
answer that is not a page at all); a strict listing raises on the first malformed item."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpx import HTTPXMock

from jobfallback.truefoundry import BadResponse, TrueFoundryClient, retry

HOST = "http://tfy.test"
TOKEN = "listing-property-token"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def run_item(n: int) -> dict[str, Any]:
    return {"id": f"run-{n}", "name": f"r-{n}", "createdAt": 1_700_000_000_000, "status": "CREATED"}


def app_item(n: int) -> dict[str, Any]:
    return {"id": f"app-{n}", "name": f"job-{n}", "type": "job"}


# What the reader needs (never absent or null) and what it reads when present (never of another
# type), besides the id. Everything else is optional, so its absence is no malformation.
NEEDED = {"run": ["name", "createdAt", "status"], "app": ["name"]}
TYPED = {
    "run": ["endTime", "deploymentId", "deploymentVersion", "command"],
    "app": ["type", "workspaceId", "lastDeploymentId", "lastVersion", "deployment"],
}


def kind_of(valid: dict[str, Any]) -> str:
    return "run" if "createdAt" in valid else "app"


@st.composite
def broken(draw: st.DrawFn, valid: dict[str, Any], n: int) -> Any:
    """An item that cannot validate: not an object, a needed field gone or null, or a field of
    the wrong type."""
    how = draw(st.sampled_from(["scalar", "missing", "null", "wrong-type"]))
    if how == "scalar":
        return draw(st.none() | st.integers() | st.text(max_size=5) | st.lists(json_values))
    kind = kind_of(valid)
    item = {**valid, "id": f"bad-{n}"}
    if how == "wrong-type":
        field_name = draw(st.sampled_from(NEEDED[kind] + TYPED[kind]))
        item[field_name] = draw(
            st.lists(json_values, min_size=1, max_size=2)
            | st.dictionaries(st.text(min_size=1), st.none(), min_size=1)
            if field_name != "deployment"  # an object: a list or a scalar is the wrong type
            else st.lists(json_values, max_size=2) | st.text(max_size=3) | st.integers()
        )
        return item
    field_name = draw(st.sampled_from(NEEDED[kind]))
    if how == "missing":
        del item[field_name]
    else:
        item[field_name] = None
    return item


@dataclass
class Listing:
    pages: list[list[Any]]
    valid_ids: list[str] = field(default_factory=list)
    malformed: int = 0
    envelope: Any = None  # a wrong envelope served instead of the first page


@st.composite
def listings(draw: st.DrawFn, make: Callable[[int], dict[str, Any]]) -> Listing:
    listing = Listing(pages=[])
    n = 0
    for _ in range(draw(st.integers(0, 3))):
        page = []
        for _ in range(draw(st.integers(1, 5))):
            n += 1
            if draw(st.booleans()):
                page.append(make(n))
                listing.valid_ids.append(make(n)["id"])
            else:
                page.append(draw(broken(make(n), n)))
                listing.malformed += 1
        listing.pages.append(page)
    if draw(st.integers(0, 5)) == 0:
        listing.envelope = draw(
            json_values.filter(
                lambda v: not (isinstance(v, dict) and isinstance(v.get("data"), list))
            )
        )
    return listing


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong envelope is retried: skip the backoff waits."""

    async def instantly(_seconds: float) -> None:
        return None

    monkeypatch.setattr(retry, "sleep", instantly)


@pytest.fixture
def served(httpx_mock: HTTPXMock) -> list[Listing]:
    """Holds the listing the API answers (set per example): its pages in order, then an empty
    page; or its wrong envelope in place of the first page."""
    current: list[Listing] = []
    next_page = [0]

    def answer(request: httpx.Request) -> httpx.Response:
        listing = current[-1]
        if request.url.params.get("offset") == "0":
            next_page[0] = 0
            if listing.envelope is not None:
                return httpx.Response(200, content=json.dumps(listing.envelope).encode())
        index = next_page[0]
        next_page[0] += 1
        items = listing.pages[index] if index < len(listing.pages) else []
        return httpx.Response(200, json={"data": items})

    httpx_mock.add_callback(answer, is_reusable=True)
    return current


def collect(
    listing_of: Callable[[TrueFoundryClient], AsyncIterator[Any]],
) -> tuple[list[str], list[str]]:
    async def run() -> tuple[list[str], list[str]]:
        async with TrueFoundryClient(HOST, TOKEN) as client:
            ids = [item.id async for item in listing_of(client)]
            return ids, client.skipped_items

    return asyncio.run(run())


def check(listing: Listing, listing_of: Callable[[TrueFoundryClient], AsyncIterator[Any]]) -> None:
    if listing.envelope is not None:
        with pytest.raises(BadResponse):
            collect(listing_of)
        return
    ids, skipped = collect(listing_of)
    assert ids == listing.valid_ids
    assert len(skipped) == listing.malformed
    # Each warning names its item: by id when it has a string one, else by position.
    assert all(" item id=bad-" in s or " item index=" in s for s in skipped), skipped


PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(listing=listings(run_item))
def test_run_lists_keep_valid_runs_and_name_the_malformed(
    served: list[Listing], listing: Listing
) -> None:
    served.append(listing)
    check(listing, lambda client: client.list_job_runs("app-1", status="CREATED"))


@PROPERTY
@given(listing=listings(run_item))
def test_a_strict_run_listing_raises_unless_every_run_is_readable(
    served: list[Listing], listing: Listing
) -> None:
    """A look-up whose "not found" leads to an action reads every item or fails."""
    served.append(listing)

    async def run() -> tuple[list[str], list[str]]:
        async with TrueFoundryClient(HOST, TOKEN) as client:
            ids = [r.id async for r in client.list_job_runs("app-1", strict=True)]
            return ids, client.skipped_items

    if listing.envelope is not None or listing.malformed:
        with pytest.raises(BadResponse):
            asyncio.run(run())
        return
    ids, skipped = asyncio.run(run())
    assert ids == listing.valid_ids
    assert skipped == []


@PROPERTY
@given(listing=listings(app_item))
def test_application_lists_keep_valid_apps_and_name_the_malformed(
    served: list[Listing], listing: Listing
) -> None:
    served.append(listing)
    check(listing, lambda client: client.list_applications(workspace_id="ws-1"))

"""The 13 paths of issue 10 where a move failed open, each driven end to end: real
`jobfallback sweep` processes against the sandbox (under the server profile that exposes the
path, where one does), hooks standing for what a real control plane may do, and a real
PostgreSQL journal. Every test checks the promises from the sandbox's own state and the journal
(`Jobfallback.assert_safe`): exactly one destination copy per covered stuck run, no source
terminated without its copy, no run terminated while it ran (where the path allows avoiding
it), nothing uncovered moved, no other team's application changed.

Back-to-back sweeps stand for sweeps minutes apart: `FAST` turns the backoff off, and the settle
window too. An empty look-up is then proof at once, which is the adversarial setting: a look-up
that missed a run the move had triggered would show up as a second copy, not as a wait."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from jobfallback.models import MoveState, RunStatus
from jobfallback_sandbox import HookContext, SandboxError, SandboxState
from jobfallback_sandbox.profiles import IGNORE_OFFSET
from jobfallback_sandbox.vendor import served
from tests.e2e.harness import DESTINATION_WS, STUCK, Jobfallback, Result

pytestmark = pytest.mark.e2e

NO_BACKOFF = {"JOB_FALLBACK_RETRY_BACKOFF_SECONDS": "0"}
FAST = {**NO_BACKOFF, "JOB_FALLBACK_SETTLE_SECONDS": "0"}
SOURCE_NAMES = {
    "run-train-1": "train-llm-0412",
    "run-eval-1": "eval-suite-0098",
    "run-embed-1": "embed-corpus-0007",
}
SOURCE_BY_NAME = {name: run_id for run_id, name in SOURCE_NAMES.items()}
MINUTE_MS = 60_000


def outcomes(result: Result) -> dict[str, str]:
    """The outcome of each planned move (a listed stuck run); resumed moves whose source is
    no longer listed are only counted in the report (`counts`)."""
    return {m["sourceRunId"]: m["outcome"] for m in result.json()["moves"]}


def counts(result: Result) -> dict[str, int]:
    """The report's outcome counters that are not zero."""
    report = result.json()["report"]
    names = ("moved", "skipped", "waiting", "failed", "parked", "flagged", "resumed")
    return {name: report[name] for name in names if report[name]}


def source_terminate(ctx: HookContext) -> str | None:
    """The source run id a terminate names; None for a copy's terminate."""
    return SOURCE_BY_NAME.get(ctx.query.get("jobRunName", ""))


def add_stuck_runs(state: SandboxState, app_id: str, count: int, prefix: str) -> list[str]:
    """`count` more stuck CREATED runs of a job, 70 minutes old and older."""
    return [
        state.add_run(
            id=f"{prefix}-{n:02d}",
            application_id=app_id,
            name=f"{prefix}-{n:02d}",
            created_at=state.now_ms - (70 + n) * MINUTE_MS,
            command=f"python main.py --part {n}",
        )["id"]
        for n in range(1, count + 1)
    ]


# ------------------------------------------------------------------ 1. pagination shifts


def serve_pages(page: int, *, newest_first: bool, served_ids: list[list[str]]) -> Any:
    """An after-hook on the runs listing: a server whose pages hold at most `page` items (the
    client has no page-size setting; it pages by `offset + len(items)`, so a server that
    caps pages is the same to it), and with `newest_first` one that ignores the order asked
    for (newest first, the vendor's default). Offsets are honoured unless ignore-offset is on.
    Only the sweep's status listings are paged so; `served_ids` gets each page's run ids."""

    def hook(ctx: HookContext) -> None:
        if ctx.status != 200 or "status" not in ctx.query:
            return
        app_id = ctx.path.split("/")[-2]
        wanted = set(ctx.query["status"].split(","))
        runs = [r for r in ctx.state.runs(application_id=app_id) if r["status"] in wanted]
        descending = newest_first or ctx.query.get("order", "desc") == "desc"
        runs.sort(key=lambda r: (r["createdAt"], r["id"]), reverse=descending)
        start = 0 if IGNORE_OFFSET in ctx.state.profile else int(ctx.query.get("offset", "0"))
        items = runs[start : start + page]
        ctx.response["data"] = [served(ctx.state.profile, "run", r) for r in items]
        ctx.response["pagination"]["total"] = len(runs)
        served_ids.append([r["id"] for r in items])

    return hook


@pytest.mark.parametrize(
    ("sandbox_profiles", "newest_first"),
    [
        # A run created while the listing is paged newest first shifts the later pages: one
        # item comes twice.
        pytest.param(("page-shift",), True, id="page-shift-newest-first"),
        # The first page again for every offset: runs repeat, later runs are never listed.
        pytest.param(("ignore-offset",), False, id="ignore-offset"),
    ],
)
def test_path_01_pagination_shift_moves_each_run_once(
    jf: Jobfallback, sandbox_state: SandboxState, newest_first: bool
) -> None:
    extra = add_stuck_runs(sandbox_state, "app-train-llm", 11, "train-page")
    covered = [*STUCK, *extra]
    pages: list[list[str]] = []
    jf.sandbox.add_hook(
        "list_runs", serve_pages(5, newest_first=newest_first, served_ids=pages), when="after"
    )
    before = jf.snapshot()

    moved: list[str] = []
    for sweep in range(5):  # ignore-offset lists only the oldest page: a pass per page
        result = jf.sweep(env=FAST)
        assert result.returncode == 0, result
        ids = [m["sourceRunId"] for m in result.json()["moves"]]
        assert len(ids) == len(set(ids)), f"one run planned twice: {ids}"
        assert set(outcomes(result).values()) <= {"moved"}, result
        moved += ids
        jf.assert_safe(before, covered=covered, moved=moved)
        if sweep == 0:
            # The path was exercised: the first pass was served some run twice.
            listed = Counter(run_id for page in pages for run_id in page)
            assert max(listed.values()) > 1, pages
        if not ids:
            break
    assert sorted(moved) == sorted(covered)
    # page-shift's new runs are fresh: listed, not stuck, left where they are.
    known = {r["id"] for r in before["runs"]}
    new = [r for r in jf.sandbox.state.runs() if r["id"] not in known]
    shifted = [r for r in new if r["applicationId"] == "app-train-llm"]
    assert len(shifted) == (1 if newest_first else 0), shifted
    for run in shifted:
        assert run["status"] == RunStatus.CREATED
        assert jf.copies(run["id"]) == []


# ------------------------------------------------------------------ 2. one workspace, two clusters


def test_path_02_one_workspace_under_two_cluster_ids_is_refused_at_import_and_by_the_sweep(
    bare_jf: Jobfallback, sandbox_state: SandboxState, tmp_path: Any
) -> None:
    typo = {
        **sandbox_state.configs[0],
        "name": "train-llm-typo",
        "sourceClusterId": "gpu-eats",  # ws-east-ml is in gpu-east
        "sourceJobId": "app-train-llm",
    }
    configs = [*sandbox_state.configs, typo]
    file = tmp_path / "configs.json"
    file.write_text(json.dumps(configs))

    imported = bare_jf.run("configs", "import", str(file))
    assert imported.returncode == 2, imported
    (line,) = [line for line in imported.stderr.splitlines() if "ws-east-ml" in line]
    for named in ("gpu-east", "gpu-eats", "ml-team-to-west", "train-llm-typo"):
        assert named in line, line
    listed = bare_jf.run("configs", "list", "--output", "json")
    assert listed.json() == [], "a refused import wrote configs"

    # The same set written past the store's checks (an older version, or by hand).
    bare_jf.insert_configs_unchecked(configs)
    before = bare_jf.snapshot()
    result = bare_jf.sweep(env=FAST)
    assert result.returncode == 1, result
    report = result.json()["report"]
    assert report["sourcesRefused"] == 1, report
    (warning,) = [w for w in report["warnings"] if "ws-east-ml" in w]
    assert "gpu-east" in warning, warning
    assert "gpu-eats" in warning, warning
    # The refused source is not touched at all; the other source moves as usual.
    assert outcomes(result) == {"run-embed-1": "moved"}
    bare_jf.assert_safe(before, covered=["run-embed-1"], moved=["run-embed-1"])
    assert bare_jf.status("run-train-1") == bare_jf.status("run-eval-1") == RunStatus.CREATED


# ------------------------------------------------------------------ 3. the lock lost mid-pass


@pytest.mark.parametrize("another_sweep", [True, False], ids=["another-sweep-runs", "alone"])
def test_path_03_a_pass_that_lost_its_lock_makes_no_second_write_and_a_rerun_converges(
    jf: Jobfallback, another_sweep: bool
) -> None:
    """The first pass's lock session is killed while its first PUT is answered; with
    `another_sweep`, a second sweep then runs to its end before that answer reaches the first
    pass. The first pass sends one request at a time (JOB_FALLBACK_CONCURRENCY=1), so the kill
    lands between two known requests."""
    second: list[Result] = []

    def lose_the_lock(ctx: HookContext) -> None:
        if ctx.call_index != 0:
            return
        jf.kill_lock_holder()
        if another_sweep:
            second.append(jf.sweep(env=FAST))

    jf.sandbox.add_hook("put_app", lose_the_lock, when="after")
    before = jf.snapshot()
    first = jf.sweep(env={**FAST, "JOB_FALLBACK_CONCURRENCY": "1"})

    assert first.returncode == 1, first
    assert set(outcomes(first).values()) == {"failed"}, first
    if another_sweep:
        # Each move was taken over by the second pass, which finished it; the first pass
        # wrote nothing more, and the second adopted the first's version (no second PUT).
        (other,) = second
        assert other.returncode == 0, other
        assert set(outcomes(other).values()) == {"moved"}, other
        assert {m["detail"] for m in first.json()["moves"]} == {
            f"another sweep took over the move of source run {run_id}; this pass stops acting on it"
            for run_id in STUCK
        }
        assert jf.writes() == {"put_app": 3, "trigger": 3, "terminate": 3}
        jf.assert_safe(before, moved=STUCK)
    else:
        # Alone, the pass stops before its next irreversible step: one PUT, nothing else.
        assert jf.writes() == {"put_app": 1, "trigger": 0, "terminate": 0}
        assert all("lock" in m["detail"] for m in first.json()["moves"]), first
        jf.assert_safe(before)

    rerun = jf.sweep(env=FAST)
    assert rerun.returncode == 0, rerun
    assert jf.writes() == {"put_app": 3, "trigger": 3, "terminate": 3}
    jf.assert_safe(before, moved=STUCK)
    for app in jf.snapshot()["applications"]:
        if app["workspaceId"] == DESTINATION_WS:
            assert len(app["deployments"]) == 1, app


# ------------------------------------------------------------------ 4. the trigger's answer lost


def lose_every_answer(status: int = 500) -> Callable[[HookContext], None]:
    """An after-hook: the request was applied, the client gets an error instead."""

    def hook(ctx: HookContext) -> None:
        raise SandboxError(status, "the answer was lost (after the effect)", "INTERNAL")

    return hook


@pytest.mark.parametrize(
    "sandbox_profiles", [("generated-names", "search-lag")], ids=["generated-names+search-lag"]
)
@pytest.mark.parametrize("loss", ["500-after-effect", "timeout-after-effect"])
def test_path_04_a_trigger_whose_answer_was_lost_is_adopted_on_the_moves_version(
    jf: Jobfallback, loss: str
) -> None:
    """The server names runs itself and hides new runs from searches: neither the alias nor
    a search finds the run the lost trigger made. The next sweep finds it on the move's own
    version, with no settle window to wait out (JOB_FALLBACK_SETTLE_SECONDS=0: a miss would
    trigger a second copy at once)."""
    env = dict(FAST)
    if loss == "500-after-effect":
        jf.sandbox.add_hook("trigger", lose_every_answer(), when="after")
    else:
        jf.sandbox.fault_after_effect = True
        jf.sandbox.timeout_seconds = 2.0  # held 2.5 s, past the client's 1.5 s
        jf.sandbox.set_faults(rate=1.0, kinds=["timeout"], endpoints=["trigger"])
        env["JOB_FALLBACK_HTTP_TIMEOUT_SECONDS"] = "1.5"
    before = jf.snapshot()

    first = jf.sweep(env=env)
    assert first.returncode == 1, first
    assert set(outcomes(first).values()) == {"failed"}, first
    rows = jf.journal()
    for run_id in STUCK:
        assert len(jf.copies(run_id)) == 1  # the trigger took effect
        assert rows[run_id].trigger_sent_at is not None, rows[run_id]
        assert rows[run_id].destination_run_name is None
        assert jf.status(run_id) == RunStatus.CREATED
    jf.assert_safe(before)

    jf.sandbox.set_faults(rate=0.0, kinds=[])  # the search lag is never ended
    second = jf.sweep(env=env)
    assert second.returncode == 0, second
    assert outcomes(second) == dict.fromkeys(STUCK, "moved")
    jf.assert_safe(before, moved=STUCK)
    rows = jf.journal()
    for run_id in STUCK:
        (copy,) = jf.copies(run_id)
        # Adopted on the move's own version; the server named it, not the alias.
        assert copy["deploymentId"] == rows[run_id].destination_deployment_id
        assert copy["name"] == rows[run_id].destination_run_name
        assert jf.sandbox.state.alias_of(copy["id"]) not in copy["name"]
    assert jf.writes()["trigger"] == 3  # no second trigger was even sent


@pytest.mark.parametrize(
    "sandbox_profiles",
    [("vendor-sparse", "generated-names")],
    ids=["vendor-sparse+generated-names"],
)
def test_path_04_under_vendor_sparse_a_lost_trigger_answer_is_placed_by_its_version(
    jf: Jobfallback,
) -> None:
    """Under vendor-sparse no answer carries a deployment's version number (optional in the
    vendor's models) and runs carry no deploymentId: the move lists its job's runs, asks which
    deployment each run's version number is (`GET /apps/{id}/deployments?version=`), and adopts
    the one on its own deployment. It never triggers again."""
    jf.sandbox.add_hook("trigger", lose_every_answer(), when="after")
    before = jf.snapshot()
    first = jf.sweep(env=FAST)
    assert "moved" not in outcomes(first).values(), first
    second = jf.sweep(env=FAST)
    assert second.returncode == 0, second
    rows = jf.journal()
    for run_id in STUCK:
        assert rows[run_id].state == MoveState.DONE, rows[run_id]
        (copy,) = jf.copies(run_id)
        assert copy["name"] == rows[run_id].destination_run_name
    assert jf.writes() == {"put_app": 3, "trigger": 3, "terminate": 3}
    jf.assert_safe(before, moved=STUCK)


# ------------------------------------------------------------------ 5. an item that does not parse


@pytest.mark.parametrize("sandbox_profiles", [("fractional-times",)], ids=["fractional-times"])
def test_path_05_an_unreadable_item_in_the_look_up_never_triggers_again_and_the_move_parks(
    jf: Jobfallback,
) -> None:
    """Every time has a fraction (the client reads them). The trigger's answer is lost; then
    the look-up for its run answers an item whose createdAt cannot be read. Failing closed:
    no second trigger, the move waits and, after JOB_FALLBACK_MAX_ATTEMPTS, is parked; once
    the answers read again and a person retries it, it adopts the one copy."""
    garbled = threading.Event()

    def garble_look_ups(ctx: HookContext) -> None:
        look_up = "versionNumbers" in ctx.query or "searchPrefix" in ctx.query
        if garbled.is_set() and look_up and ctx.status == 200:
            for item in ctx.response["data"]:
                item["createdAt"] = "garbled"

    jf.sandbox.add_hook("trigger", lose_every_answer(), when="after")
    jf.sandbox.add_hook("list_runs", garble_look_ups, when="after")
    env = {**FAST, "JOB_FALLBACK_MAX_ATTEMPTS": "3"}
    before = jf.snapshot()
    assert all(not float(r["createdAt"]).is_integer() for r in before["runs"])

    first = jf.sweep(env=env)
    assert outcomes(first) == dict.fromkeys(STUCK, "failed"), first  # attempt 1
    garbled.set()
    second = jf.sweep(env=env)  # attempt 2: the look-up cannot be read
    assert set(outcomes(second).values()) <= {"waiting", "failed"}, second
    third = jf.sweep(env=env)  # attempt 3: parked
    assert outcomes(third) == dict.fromkeys(STUCK, "parked"), third
    assert third.returncode == 1, third
    rows = jf.journal()
    for run_id in STUCK:
        assert rows[run_id].state == MoveState.PARKED, rows[run_id]
        assert rows[run_id].trigger_sent_at is not None
        assert jf.status(run_id) == RunStatus.CREATED  # never terminated without its copy
    assert jf.writes()["trigger"] == 3
    jf.assert_safe(before)
    fourth = jf.sweep(env=env)  # parked: left alone
    assert jf.writes() == {"put_app": 3, "trigger": 3, "terminate": 0}
    assert outcomes(fourth) == dict.fromkeys(STUCK, "parked"), fourth

    garbled.clear()
    retried = jf.run("moves", "retry", "run-train-1")
    assert retried.returncode == 0, retried
    last = jf.sweep(env=env)
    assert outcomes(last) == {
        "run-train-1": "moved",
        "run-eval-1": "parked",
        "run-embed-1": "parked",
    }, last
    assert jf.writes() == {"put_app": 3, "trigger": 3, "terminate": 1}
    jf.assert_safe(before, moved=["run-train-1"])


# ------------------------------------------------------------------ 6. the journal deleted


@pytest.mark.parametrize(
    "left_at",
    [
        "trigger-answer-lost",  # the row knew a trigger was sent, not its run
        "terminate-failed",  # the row knew its copy; terminate never got through
    ],
)
def test_path_06_a_deleted_journal_adopts_the_earlier_copy_instead_of_triggering_again(
    jf: Jobfallback, left_at: str
) -> None:
    """After a trigger, every journal row is deleted (a restored backup, or a laptop's
    embedded database pointed at the same fleet). The next sweep knows nothing, finds this
    move's labelled version in the destination and adopts its run: no second copy, even with
    no settle window (JOB_FALLBACK_SETTLE_SECONDS=0)."""
    failing = threading.Event()
    failing.set()
    if left_at == "trigger-answer-lost":
        jf.sandbox.add_hook("trigger", lose_every_answer(), when="after")
    else:

        def refuse_terminate(ctx: HookContext) -> None:
            if failing.is_set():
                raise SandboxError(409, "terminate is refused for now", "CONFLICT")

        jf.sandbox.add_hook("terminate", refuse_terminate)
    before = jf.snapshot()
    first = jf.sweep(env=FAST)
    assert outcomes(first) == dict.fromkeys(STUCK, "failed"), first
    assert all(len(jf.copies(run_id)) == 1 for run_id in STUCK)

    jf.delete_journal()
    failing.clear()
    second = jf.sweep(env=FAST)
    assert second.returncode == 0, second
    assert outcomes(second) == dict.fromkeys(STUCK, "moved"), second
    assert (jf.writes()["put_app"], jf.writes()["trigger"]) == (3, 3)
    jf.assert_safe(before, moved=STUCK)


# ------------------------------------------------------------------ 7. a one-off 404 on the source


def test_path_07_a_one_off_404_on_the_source_is_retried_never_skipped_for_good(
    jf: Jobfallback,
) -> None:
    """The re-read of each source before its terminate answers 404 once, while its copy
    runs. The move is retried, not skipped for good, and the next sweep finishes it."""
    seen: set[str] = set()

    def not_found_once(ctx: HookContext) -> None:
        name = ctx.path.rsplit("/", 1)[-1]
        if name in SOURCE_BY_NAME and name not in seen:
            seen.add(name)
            raise SandboxError(404, f"run {name!r} not found (one-off)", "NOT_FOUND")

    jf.sandbox.add_hook("get_run", not_found_once)
    before = jf.snapshot()
    first = jf.sweep(env=FAST)
    assert first.returncode == 1, first
    assert outcomes(first) == dict.fromkeys(STUCK, "failed"), first
    rows = jf.journal()
    for run_id in STUCK:
        assert rows[run_id].state == MoveState.FAILED, rows[run_id]
        assert rows[run_id].destination_run_name is not None
        assert jf.status(run_id) == RunStatus.CREATED
    assert seen == set(SOURCE_BY_NAME)  # every source answered its 404
    jf.assert_safe(before)

    second = jf.sweep(env=FAST)
    assert second.returncode == 0, second
    assert outcomes(second) == dict.fromkeys(STUCK, "moved"), second
    assert jf.writes() == {"put_app": 3, "trigger": 3, "terminate": 3}
    jf.assert_safe(before, moved=STUCK)


# ------------------------------------------------------------------ 8. terminate answers 417


def test_path_08_terminate_417_while_the_source_reads_created_is_retried_and_the_copy_lives(
    jf: Jobfallback,
) -> None:
    refusing = threading.Event()
    refusing.set()

    def refuse(ctx: HookContext) -> None:
        if refusing.is_set() and source_terminate(ctx) is not None:
            raise SandboxError(417, "cannot terminate the run now", "FAILED")

    jf.sandbox.add_hook("terminate", refuse)
    before = jf.snapshot()
    for _ in range(2):  # refused on two passes in a row
        result = jf.sweep(env=FAST)
        assert result.returncode == 1, result
        assert outcomes(result) == dict.fromkeys(STUCK, "failed"), result
        rows = jf.journal()
        for run_id in STUCK:
            (copy,) = jf.copies(run_id)
            assert copy["status"] == RunStatus.RUNNING  # never killed
            assert jf.status(run_id) == RunStatus.CREATED
            assert rows[run_id].state == MoveState.FAILED
            assert rows[run_id].terminate_sent_at is None  # the 417 proves it did nothing
        jf.assert_safe(before)
    assert jf.writes()["trigger"] == 3

    refusing.clear()
    last = jf.sweep(env=FAST)
    assert last.returncode == 0, last
    assert outcomes(last) == dict.fromkeys(STUCK, "moved"), last
    jf.assert_safe(before, moved=STUCK)


# ------------------------------------------------------------------ 9. terminate fails, then ...


@pytest.mark.parametrize(
    ("loss", "status_after"),
    [
        ("every-attempt", RunStatus.UNKNOWN),
        ("every-attempt", RunStatus.FAILED),
        ("first-attempt", RunStatus.UNKNOWN),
        ("first-attempt", RunStatus.FAILED),
    ],
)
def test_path_09_a_terminate_whose_answer_was_lost_then_an_ended_source_is_done_copy_alive(
    jf: Jobfallback, status_after: str, loss: str
) -> None:
    """Our terminate is applied and its answer lost; afterwards the source reads
    `status_after`. `every-attempt`: every attempt of the client loses its answer (the pass
    ends with the terminate mark kept) and the source reads `status_after` by the next pass.
    `first-attempt`: only the first answer is lost and the source reads `status_after` at
    once (a retry would be answered 417, so the client does not retry). Either way the
    terminate was ours: the move is done and the copy lives."""
    lost: set[str] = set()

    def lose_the_answer(ctx: HookContext) -> None:
        run_id = source_terminate(ctx)
        if run_id is None:
            return
        if loss == "first-attempt":
            if run_id in lost:
                return
            ctx.state.set_run_status(run_id, status_after)
        lost.add(run_id)
        raise SandboxError(500, "the answer was lost (after the effect)", "INTERNAL")

    jf.sandbox.add_hook("terminate", lose_the_answer, when="after")
    before = jf.snapshot()
    first = jf.sweep(env=FAST)
    # The client never retries a terminate after an attempt that may have applied (a retry's
    # 417 would then answer for our own terminate): the pass ends with the mark kept.
    assert outcomes(first) == dict.fromkeys(STUCK, "failed"), first
    rows = jf.journal()
    for run_id in STUCK:
        assert rows[run_id].terminate_sent_at is not None, rows[run_id]
        if loss == "every-attempt":
            assert jf.status(run_id) == RunStatus.TERMINATION_REQUESTED
            jf.sandbox.state.set_run_status(run_id, status_after)
    last = jf.sweep(env=FAST)
    assert counts(last) == {"moved": 3, "resumed": 3}, last
    rows = jf.journal()
    for run_id in STUCK:
        (copy,) = jf.copies(run_id)
        assert copy["status"] == RunStatus.RUNNING, copy
        assert rows[run_id].state == MoveState.DONE, rows[run_id]
        assert jf.status(run_id) == status_after
    jf.assert_safe(before)


def test_path_09_a_refused_terminate_then_a_source_that_starts_stops_the_copy(
    jf: Jobfallback,
) -> None:
    """Terminate is rate limited (429, nothing applied) on every attempt; before the next
    pass the train source starts on its own. No terminate of ours was ever taken, so the
    copy is the one to stop: one run of the job stays alive, the source."""
    jf.sandbox.set_faults(rate=1.0, kinds=["429"], endpoints=["terminate"])
    before = jf.snapshot()
    first = jf.sweep(env=FAST)
    assert outcomes(first) == dict.fromkeys(STUCK, "failed"), first
    assert all(row.terminate_sent_at is None for row in jf.journal().values())

    jf.sandbox.set_faults(rate=0.0, kinds=[])
    jf.sandbox.state.set_run_status("run-train-1", RunStatus.RUNNING)
    second = jf.sweep(env=FAST)
    # The train run is no longer listed CREATED: its move is resumed, not planned.
    assert outcomes(second) == {"run-eval-1": "moved", "run-embed-1": "moved"}, second
    assert counts(second) == {"moved": 2, "skipped": 1, "resumed": 1}, second
    assert jf.status("run-train-1") == RunStatus.RUNNING
    (copy,) = jf.copies("run-train-1")
    assert copy["status"] == RunStatus.TERMINATION_REQUESTED
    assert jf.journal()["run-train-1"].state == MoveState.SKIPPED
    jf.assert_safe(before, moved=["run-eval-1", "run-embed-1"])


# ------------------------------------------------------------------ 10. two jobs with one name


def add_namesake(state: SandboxState) -> str:
    """A job `train-llm` in the research workspace too (another team's, another image), with
    a stuck run; the demo's configs send both workspaces to one destination."""
    app = state.add_application(
        id="app-research-train",
        workspace_id="ws-east-research",
        name="train-llm",
        manifest={
            "image": {"type": "image", "image_uri": "ghcr.io/research/train:7.0", "command": "x"},
            "trigger": {"type": "manual"},
        },
    )
    state.add_run(
        id="run-namesake-1",
        application_id=app["id"],
        name="train-llm-0100",
        created_at=state.now_ms - 170 * MINUTE_MS,
        command="python train.py --research",
    )
    return str(app["id"])


def test_path_10_a_second_job_of_the_same_name_is_parked_and_the_first_copy_is_untouched(
    jf: Jobfallback, sandbox_state: SandboxState
) -> None:
    """Two jobs named train-llm (ml-team's and research's) move into one destination in one
    pass: whichever deploys first keeps its copy, application and manifest as they are, and the
    other's move is parked with one line naming both jobs (moves start once every source is
    listed, so which one is first is up to the pass)."""
    namesake = add_namesake(sandbox_state)
    images = {
        "run-train-1": "ghcr.io/acme/train-llm:1.4.0",
        "run-namesake-1": "ghcr.io/research/train:7.0",
    }
    covered = [*STUCK, "run-namesake-1"]
    before = jf.snapshot()

    result = jf.sweep(env=FAST)
    assert result.returncode == 1, result
    moved = outcomes(result)
    (winner,) = [run for run in images if moved[run] == "moved"]
    (loser,) = [run for run in images if moved[run] == "parked"]
    assert moved == {**dict.fromkeys(STUCK, "moved"), winner: "moved", loser: "parked"}
    destination = jf.sandbox.state.application_by_name(DESTINATION_WS, "train-llm")
    assert destination is not None
    (detail,) = [m["detail"] for m in result.json()["moves"] if m["outcome"] == "parked"]
    assert "\n" not in detail
    for named in (namesake if loser == "run-namesake-1" else "app-train-llm", destination["id"]):
        assert named in detail, detail
    landed = [run for run in covered if run != loser]
    jf.assert_safe(before, covered=covered, moved=landed)
    (version,) = next(
        app["deployments"]
        for app in jf.snapshot()["applications"]
        if app["id"] == destination["id"]
    )
    assert version["manifest"]["image"]["image_uri"] == images[winner]
    (copy,) = jf.copies(winner)
    assert copy["deploymentId"] == version["id"]
    assert jf.status(loser) == RunStatus.CREATED
    assert jf.journal()[loser].state == MoveState.PARKED

    again = jf.sweep(env=FAST)  # parked: left alone
    assert outcomes(again) == {loser: "parked"}, again
    jf.assert_safe(before, covered=covered, moved=landed)


def test_path_10_two_namesakes_deployed_at_once_never_share_one_application(
    jf: Jobfallback, sandbox_state: SandboxState
) -> None:
    """The same two jobs moved in one pass with their PUTs in flight together (each looked
    for the destination application before either PUT landed). One may move; the other must
    not add its version on top of the first's copy."""
    add_namesake(sandbox_state)
    arrived = threading.Barrier(2, timeout=5)

    def meet_the_other_put(ctx: HookContext) -> None:
        if ctx.body["manifest"]["name"] == "train-llm":
            # A broken barrier: only one PUT came, the moves were kept apart.
            with contextlib.suppress(threading.BrokenBarrierError):
                arrived.wait()

    jf.sandbox.add_hook("put_app", meet_the_other_put)
    before = jf.snapshot()
    result = jf.sweep(env=FAST)
    # No application holds versions of two jobs (the first's manifest is not replaced) ...
    jf.assert_safe(before, covered=[*STUCK, "run-namesake-1"])
    # ... so one of the two moved and the other is parked.
    namesakes = {
        k: v for k, v in outcomes(result).items() if k in ("run-train-1", "run-namesake-1")
    }
    assert sorted(namesakes.values()) == ["moved", "parked"], result


# ------------------------------------------------------------------ 11. a scheduled source job


def test_path_11_the_copy_of_a_scheduled_job_is_manual(
    jf: Jobfallback, sandbox_state: SandboxState
) -> None:
    schedule = {
        "type": "scheduled",
        "schedule": "0 */6 * * *",
        "concurrency_policy": "Forbid",
        "timezone": "UTC",
    }
    app = sandbox_state.add_application(
        id="app-nightly-train",
        workspace_id="ws-east-ml",
        name="nightly-train",
        manifest={"trigger": schedule, "trigger_on_deploy": True, "labels": {"team": "ml"}},
    )
    sandbox_state.add_run(
        id="run-nightly-1",
        application_id=app["id"],
        name="nightly-train-0042",
        created_at=sandbox_state.now_ms - 95 * MINUTE_MS,
    )
    covered = [*STUCK, "run-nightly-1"]
    before = jf.snapshot()
    result = jf.sweep(env=FAST)
    assert result.returncode == 0, result
    assert outcomes(result) == dict.fromkeys(covered, "moved"), result
    jf.assert_safe(before, covered=covered, moved=covered)

    copy_app = jf.sandbox.state.application_by_name(DESTINATION_WS, "nightly-train")
    assert copy_app is not None
    manifest = copy_app["deployment"]["manifest"]
    assert manifest["trigger"] == {"type": "manual"}
    assert manifest["trigger_on_deploy"] is False
    assert manifest["labels"]["team"] == "ml"
    (copy,) = jf.copies("run-nightly-1")
    assert copy["deploymentId"] == copy_app["deployment"]["id"]
    source_app = jf.sandbox.state.application_by_name("ws-east-ml", "nightly-train")
    assert source_app is not None
    assert source_app["deployment"]["manifest"]["trigger"] == schedule  # the source keeps it


# ------------------------------------------------------------------ 12. done, yet CREATED again


def test_path_12_a_done_move_whose_source_reads_created_again_is_flagged_not_moved(
    jf: Jobfallback,
) -> None:
    before = jf.snapshot()
    first = jf.sweep(env=FAST)
    assert first.returncode == 0, first
    jf.assert_safe(before, moved=STUCK)
    writes = jf.writes()

    jf.sandbox.state.set_run_status("run-train-1", RunStatus.CREATED)
    again = jf.sweep(env=FAST)
    report = again.json()["report"]
    assert (report["flagged"], report["moved"]) == (1, 0), report
    assert outcomes(again) == {"run-train-1": "flagged"}, again
    warnings = [
        e
        for e in jf.log_events(again)
        if e.get("level") == "error" and e.get("source_run_id") == "run-train-1"
    ]
    assert warnings, again
    assert warnings[0]["event"] == "move.flagged", warnings
    assert jf.writes() == writes  # nothing done
    assert jf.journal()["run-train-1"].state == MoveState.DONE
    (copy,) = jf.copies("run-train-1")
    assert copy["status"] == RunStatus.RUNNING
    assert jf.status("run-train-1") == RunStatus.CREATED


# ------------------------------------------------------------------ 13. a run that starts last


def test_path_13_a_source_that_starts_between_the_re_read_and_the_terminate(
    jf: Jobfallback,
) -> None:
    """The train source starts after the move's last re-read and before its terminate
    arrives. The API has no conditional terminate, so the terminate reaches a running source
    (documented in the README); the copy carries the job: exactly one run of it is alive."""

    def starts_just_before(ctx: HookContext) -> None:
        if ctx.query.get("jobRunName") == SOURCE_NAMES["run-train-1"]:
            ctx.state.set_run_status("run-train-1", RunStatus.RUNNING)

    jf.sandbox.add_hook("terminate", starts_just_before)
    before = jf.snapshot()
    result = jf.sweep(env=FAST)
    assert result.returncode == 0, result
    assert outcomes(result) == dict.fromkeys(STUCK, "moved"), result
    jf.assert_safe(before, moved=STUCK, killed_while_running=["run-train-1"])
    (hit,) = [t for t in jf.terminated if t.run_id == "run-train-1"]
    assert hit.status_before == RunStatus.RUNNING  # the documented limit
    alive = [
        run
        for run in [jf.sandbox.state.run("run-train-1"), *jf.copies("run-train-1")]
        if run is not None and run["status"] == RunStatus.RUNNING
    ]
    assert [run["id"] for run in alive] == [jf.copies("run-train-1")[0]["id"]]


def test_path_06_a_deleted_journal_with_two_runs_of_one_job_makes_no_second_copy(
    jf: Jobfallback, sandbox_state: SandboxState
) -> None:
    """Two stuck runs of train-llm: both copies deployed (two versions of one destination
    application) and triggered, terminates refused; then the journal is deleted."""
    (second_run,) = add_stuck_runs(sandbox_state, "app-train-llm", 1, "train-llm-more")
    covered = [*STUCK, second_run]
    refusing = threading.Event()
    refusing.set()

    def refuse_terminate(ctx: HookContext) -> None:
        if refusing.is_set():
            raise SandboxError(409, "terminate is refused for now", "CONFLICT")

    jf.sandbox.add_hook("terminate", refuse_terminate)
    before = jf.snapshot()
    first = jf.sweep(env=FAST)
    assert outcomes(first) == dict.fromkeys(covered, "failed"), first
    assert all(len(jf.copies(run_id)) == 1 for run_id in covered)

    jf.delete_journal()
    refusing.clear()
    second = jf.sweep(env=FAST)
    jf.assert_safe(before, covered=covered)
    assert outcomes(second) == dict.fromkeys(covered, "moved"), second
    jf.assert_safe(before, covered=covered, moved=covered)

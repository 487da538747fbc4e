"""The pure planning stage: grouping, stuck filtering, matching, ordering and the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobfallback.models import Application, FallbackConfig, JobRun
from jobfallback.plan import (
    Limits,
    Listing,
    Plan,
    Source,
    SourceGroup,
    decide,
    group_by_source,
    is_stuck,
    match,
    plan_source,
    skipped_configs,
    usable_configs,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
NO_CAPS = Limits(max_moves=None, per_destination=None, per_source=None)
_ts = datetime(2026, 1, 1, tzinfo=UTC)


def config(
    id: int,
    *,
    src_ws: str = "ws-a",
    job: str | None = None,
    dst_ws: str = "ws-z",
    fqn: str | None = "dst:ws-z",
    enabled: bool = True,
    threshold: int | None = None,
    **extra: Any,
) -> FallbackConfig:
    return FallbackConfig(
        **extra,
        id=id,
        source_cluster_id="src",
        source_workspace_id=src_ws,
        source_job_id=job,
        destination_cluster_id="dst",
        destination_workspace_id=dst_ws,
        destination_workspace_fqn=fqn,
        enabled=enabled,
        stuck_threshold_minutes=threshold,
        created_at=_ts,
        updated_at=_ts,
    )


def app(id: str, ws: str | None = "ws-a") -> Application:
    return Application(id=id, name=f"job-{id}", type="job", workspace_id=ws)


def run(
    id: str, age_min: float, *, app_id: str | None = "app-1", status: str = "CREATED"
) -> JobRun:
    created = NOW - timedelta(minutes=age_min)
    return JobRun(
        id=id,
        name=f"run-{id}",
        application_id=app_id,
        created_at=int(created.timestamp() * 1000),
        status=status,
    )


SRC_A = Source("src", "ws-a")


# ------------------------------------------------------------------ usable / grouping


def test_disabled_configs_are_dropped_silently() -> None:
    usable, warnings = usable_configs([config(1, enabled=False), config(2)])
    assert [c.id for c in usable] == [2]
    assert warnings == []


def test_config_without_fqn_is_skipped_with_a_warning_naming_backfill() -> None:
    usable, warnings = usable_configs([config(1, fqn=None), config(2)])
    assert [c.id for c in usable] == [2]
    assert warnings == [
        "config 1 has no destinationWorkspaceFqn and is skipped; "
        "run `jobfallback configs backfill-fqn` to fill it"
    ]


def test_group_by_source_splits_generic_and_specific_in_id_order() -> None:
    groups = group_by_source(
        [
            config(5, dst_ws="ws-y"),
            config(2),
            config(3, job="app-9"),
            config(4, src_ws="ws-b"),
        ]
    )
    assert [g.source for g in groups] == [Source("src", "ws-a"), Source("src", "ws-b")]
    a = groups[0]
    assert [c.id for c in a.generic] == [2, 5]
    assert list(a.job_specific) == ["app-9"]
    assert a.job_ids is None  # a generic config means every job is listed


def test_source_with_only_job_specific_configs_lists_only_those_jobs() -> None:
    (group,) = group_by_source([config(1, job="app-2"), config(2, job="app-1")])
    assert group.job_ids == ["app-1", "app-2"]


def test_group_by_source_filters_one_source() -> None:
    groups = group_by_source([config(1), config(2, src_ws="ws-b")], only=Source("src", "ws-b"))
    assert [g.source.workspace_id for g in groups] == ["ws-b"]


@pytest.mark.parametrize("text", ["", "abc", "/ws", "cl/", " / ", "cl/ws/x"])
def test_source_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        Source.parse(text)
    assert str(refused.value) == "expected CLUSTER/WORKSPACE, e.g. gpu-east/ws-ml"


def test_source_parse_round_trips() -> None:
    assert Source.parse(" gpu-east / ws-1 ") == Source("gpu-east", "ws-1")
    assert str(Source.parse("gpu-east/ws-1")) == "gpu-east/ws-1"


def test_skipped_configs_say_why_each_enabled_config_cannot_be_used() -> None:
    typo = config(3, src_ws="ws-b").model_copy(update={"source_cluster_id": "srx"})
    configs = [config(1, fqn=None), config(2, src_ws="ws-b"), typo, config(4, enabled=False)]
    assert skipped_configs(configs) == {"no_destination_fqn": 1, "source_conflict": 2}


# ------------------------------------------------------------------ stuck


def test_age_equal_to_threshold_is_stuck() -> None:
    assert is_stuck(run("r", 60), NOW, 60)


def test_age_just_below_threshold_is_not_stuck() -> None:
    assert not is_stuck(run("r", 59.99), NOW, 60)


@pytest.mark.parametrize("status", ["RUNNING", "SCHEDULED", "FINISHED", "UNKNOWN", "SOMETHING_NEW"])
def test_only_created_runs_are_stuck(status: str) -> None:
    assert not is_stuck(run("r", 600, status=status), NOW, 60)


def test_run_from_the_future_is_not_stuck() -> None:
    assert not is_stuck(run("r", -30), NOW, 1)


# ------------------------------------------------------------------ match


def test_job_specific_beats_generic_even_when_generic_is_older() -> None:
    (group,) = group_by_source([config(1), config(2, job="app-1", dst_ws="ws-y")])
    matched = match(group, "app-1")
    assert matched is not None
    assert matched[0][0].id == 2
    assert "job-specific" in matched[1]


@pytest.mark.parametrize(
    ("configs", "why"),
    [
        (
            [config(7, dst_ws="ws-y"), config(3)],
            "generic config 3 (the oldest of 2 for this source)",
        ),
        ([config(3)], "generic config 3 (the only one for this source)"),
    ],
)
def test_first_generic_is_lowest_id(configs: list[FallbackConfig], why: str) -> None:
    (group,) = group_by_source(configs)
    matched = match(group, "app-1")
    assert matched is not None
    assert (matched[0][0], matched[1]) == (configs[-1], why)


def test_no_match_without_generic_or_specific() -> None:
    (group,) = group_by_source([config(1, job="app-2")])
    assert match(group, "app-1") is None


# ------------------------------------------------------------------ plan


def plan_moves(
    groups: list[SourceGroup], listings: dict[Source, list[Listing]], max_moves: int | None = None
) -> Plan:
    """What a sweep does: plan each source, then merge."""
    parts = [
        plan_source(g, listings.get(g.source, []), now=NOW, default_threshold_minutes=60)
        for g in groups
    ]
    return decide(parts, limits=Limits(max_moves=max_moves, per_destination=None, per_source=None))


def _plan(configs: list[FallbackConfig], listings: list[Listing], **kw: int | None):
    usable, _ = usable_configs(configs)
    groups = group_by_source(usable)
    by_source: dict[Source, list[Listing]] = {}
    for listing in listings:
        src = Source("src", listing.application.workspace_id or "ws-a")
        by_source.setdefault(src, []).append(listing)
    return plan_moves(groups, by_source, **kw)


def test_plan_moves_only_stuck_runs_with_reason_and_age() -> None:
    plan = _plan(
        [config(1)],
        [Listing(app("app-1"), [run("old", 90), run("new", 10), run("edge", 60)])],
    )
    assert [m.run.id for m in plan.moves] == ["old", "edge"]  # oldest first
    assert plan.runs_seen == 3
    assert plan.stuck == 2
    assert plan.moves[0].age_minutes == 90.0
    assert plan.moves[0].threshold_minutes == 60
    assert plan.moves[0].destination_workspace_fqn == "dst:ws-z"


def test_per_config_threshold_overrides_the_default() -> None:
    plan = _plan([config(1, threshold=120)], [Listing(app("app-1"), [run("r", 90)])])
    assert plan.moves == []
    plan = _plan([config(1, threshold=30)], [Listing(app("app-1"), [run("r", 45)])])
    assert [m.run.id for m in plan.moves] == ["r"]


def test_job_specific_threshold_governs_its_job_even_if_generic_would_move_it() -> None:
    plan = _plan(
        [config(1), config(2, job="app-1", dst_ws="ws-y", threshold=180)],
        [
            Listing(app("app-1"), [run("r", 90)]),
            Listing(app("app-2"), [run("s", 90, app_id="app-2")]),
        ],
    )
    assert [(m.run.id, m.config.id) for m in plan.moves] == [("s", 1)]


def test_run_without_application_id_uses_the_job_it_was_listed_under() -> None:
    plan = _plan([config(1, job="app-1")], [Listing(app("app-1"), [run("r", 90, app_id=None)])])
    assert [(m.run.id, m.config.id) for m in plan.moves] == [("r", 1)]


def test_run_claiming_another_job_is_skipped_with_warning() -> None:
    plan = _plan([config(1)], [Listing(app("app-1"), [run("r", 90, app_id="app-x")])])
    assert plan.moves == []
    assert any("run r" in w for w in plan.warnings)


def test_job_specific_config_for_a_job_in_another_source_does_not_apply() -> None:
    # Config says job app-1 lives in ws-a, but the API lists app-1 under ws-b,
    # whose only config is generic: the generic config of ws-b governs it.
    configs = [config(1, job="app-1", dst_ws="ws-y"), config(2, src_ws="ws-b")]
    plan = _plan(configs, [Listing(app("app-1", ws="ws-b"), [run("r", 90)])])
    assert [(m.run.id, m.config.id) for m in plan.moves] == [("r", 2)]


def test_job_listed_in_wrong_workspace_is_skipped() -> None:
    usable, _ = usable_configs([config(1)])
    groups = group_by_source(usable)
    plan = plan_moves(groups, {SRC_A: [Listing(app("app-1", ws="ws-other"), [run("r", 90)])]})
    assert plan.moves == []
    assert plan.warnings
    assert "ws-other" in plan.warnings[0]


def test_disabled_and_fqn_less_configs_never_plan() -> None:
    plan = _plan(
        [config(1, enabled=False), config(2, fqn=None, dst_ws="ws-y")],
        [Listing(app("app-1"), [run("r", 90)])],
    )
    assert plan.moves == []


def test_max_moves_caps_and_defers_the_newest() -> None:
    runs = [run(f"r{i}", 100 + i) for i in range(5)]
    plan = _plan([config(1)], [Listing(app("app-1"), runs)], max_moves=2)
    assert [m.run.id for m in plan.moves] == ["r4", "r3"]
    assert [m.run.id for m in plan.deferred] == ["r2", "r1", "r0"]
    assert plan.stuck == 5


def test_max_moves_zero_plans_nothing() -> None:
    plan = _plan([config(1)], [Listing(app("app-1"), [run("r", 100)])], max_moves=0)
    assert plan.moves == []
    assert len(plan.deferred) == 1


def test_plan_is_deterministic_for_equal_ages() -> None:
    runs = [run("b", 100), run("a", 100), run("c", 100)]
    plan = _plan([config(1)], [Listing(app("app-1"), runs)])
    assert [m.run.id for m in plan.moves] == ["a", "b", "c"]


# ------------------------------------------------------------------ one run, one move (mutation)
# Each test below kills mutants of plan.py that `make mutate` found alive: the dedupe of a
# listing that repeats a run, and what a listing the plan skips must not hide.


def test_a_run_a_listing_repeats_is_planned_and_counted_once() -> None:
    (group,) = group_by_source([config(1)])
    part = plan_source(
        group,
        [Listing(app("app-1"), [run("a", 90), run("a", 90), run("b", 80)])],
        now=NOW,
        default_threshold_minutes=60,
    )
    assert [m.run.id for m in part.candidates] == ["a", "b"]  # the run after the repeat too
    assert part.runs_seen == 2


def test_a_run_repeated_on_another_listing_of_the_source_is_planned_once() -> None:
    """A listing that shifted while paged hands one run to two of a source's listings."""
    (group,) = group_by_source([config(1)])
    part = plan_source(
        group,
        [Listing(app("app-1"), [run("a", 90)]), Listing(app("app-1"), [run("a", 90)])],
        now=NOW,
        default_threshold_minutes=60,
    )
    assert [m.run.id for m in part.candidates] == ["a"]
    assert part.runs_seen == 1


def test_merged_plans_move_a_run_two_sources_planned_once() -> None:
    (group,) = group_by_source([config(1)])
    listing = [Listing(app("app-1"), [run("a", 90), run("b", 70)])]
    part = plan_source(group, listing, now=NOW, default_threshold_minutes=60)
    plan = decide([part, part], limits=NO_CAPS)
    assert [m.run.id for m in plan.moves] == ["a", "b"]
    assert plan.stuck == 2


def test_merged_plans_add_up_every_sources_runs_and_warnings() -> None:
    groups = group_by_source([config(1), config(2, src_ws="ws-b")])
    listings = {
        SRC_A: [Listing(app("app-1"), [run("a", 90), run("x", 90, app_id="app-x")])],
        Source("src", "ws-b"): [
            Listing(
                app("app-2", ws="ws-b"), [run("b", 90, app_id="app-2"), run("c", 5, app_id="app-2")]
            ),
            Listing(app("app-3", ws="ws-other"), [run("d", 90)]),
        ],
    }
    plan = plan_moves(groups, listings)
    assert [m.run.id for m in plan.moves] == ["a", "b"]
    assert plan.runs_seen == 4
    assert len(plan.warnings) == 2
    assert "run x" in plan.warnings[0]
    assert "ws-other" in plan.warnings[1]


def test_without_a_cap_nothing_is_deferred() -> None:
    plan = _plan([config(1)], [Listing(app("app-1"), [run("a", 90), run("b", 100)])])
    assert [m.run.id for m in plan.moves] == ["b", "a"]
    assert plan.deferred == []


def test_a_job_listed_in_the_wrong_workspace_hides_no_later_job() -> None:
    (group,) = group_by_source([config(1)])
    part = plan_source(
        group,
        [
            Listing(app("app-0", ws="ws-other"), [run("r", 90, app_id="app-0")]),
            Listing(app("app-1"), [run("s", 90)]),
        ],
        now=NOW,
        default_threshold_minutes=60,
    )
    assert [m.run.id for m in part.candidates] == ["s"]


def test_a_run_claiming_another_job_hides_no_later_run_of_the_listing() -> None:
    plan = _plan([config(1)], [Listing(app("app-1"), [run("x", 95, app_id="app-x"), run("s", 90)])])
    assert [m.run.id for m in plan.moves] == ["s"]
    assert plan.runs_seen == 2


def test_every_run_of_an_unmatched_job_is_seen() -> None:
    plan = _plan(
        [config(1, job="app-2")],
        [
            Listing(app("app-1"), [run("a", 90), run("b", 90)]),
            Listing(app("app-2"), [run("c", 90, app_id="app-2")]),
        ],
    )
    assert [m.run.id for m in plan.moves] == ["c"]
    assert plan.runs_seen == 3


def test_a_planned_moves_age_is_kept_to_a_tenth_of_a_minute() -> None:
    plan = _plan([config(1)], [Listing(app("app-1"), [run("r", 90.27)])])
    assert plan.moves[0].age_minutes == 90.3

"""The decisions of issue 14, pure: chains by priority, saturated destinations, opt-outs, hops,
cooldown, the breaker and the three caps (plan.decide)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobfallback.models import FallbackConfig
from jobfallback.plan import (
    Facts,
    Hold,
    Limits,
    Listing,
    Plan,
    config_cycles,
    decide,
    group_by_source,
    plan_source,
    saturated_destinations,
)
from jobfallback.shard import Shard
from tests.test_plan import NOW, app, config, run

NO_CAPS = Limits(max_moves=None, per_destination=None, per_source=None)


def chain_of_two() -> list[FallbackConfig]:
    """ws-a falls back to ws-y first (priority 1), then ws-z (config 1, priority 5)."""
    return [
        config(1, dst_ws="ws-z", fqn="dst:ws-z", priority=5),
        config(2, dst_ws="ws-y", fqn="dst:ws-y", priority=1),
    ]


def planned(
    configs: list[FallbackConfig],
    listings: list[Listing],
    *,
    limits: Limits = NO_CAPS,
    facts: Facts | None = None,
) -> Plan:
    parts = [
        plan_source(g, listings, now=NOW, default_threshold_minutes=60)
        for g in group_by_source(configs)
    ]
    return decide(parts, limits=limits, facts=facts or Facts())


def held(plan: Plan) -> list[tuple[str, Hold, str]]:
    return [(h.move.run.id, h.hold, h.detail) for h in plan.held]


def test_a_chain_is_tried_lowest_priority_first_then_oldest() -> None:
    plan = planned(chain_of_two(), [Listing(app("app-1"), [run("r", 90)])])
    (move,) = plan.moves
    assert (move.config.id, move.reason) == (
        2,
        "generic config 2 (first by priority of 2 for this source)",
    )


def test_equal_priorities_keep_the_oldest_config_first() -> None:
    configs = [config(1, dst_ws="ws-z"), config(2, dst_ws="ws-y", fqn="dst:ws-y")]
    (move,) = planned(configs, [Listing(app("app-1"), [run("r", 90)])]).moves
    assert (move.config.id, move.reason) == (
        1,
        "generic config 1 (the oldest of 2 for this source)",
    )


def test_a_saturated_destination_is_skipped_for_the_next_in_the_chain() -> None:
    facts = Facts(saturated={"ws-y": "its oldest CREATED run waits 70 min, past 60"})
    (move,) = planned(chain_of_two(), [Listing(app("app-1"), [run("r", 90)])], facts=facts).moves
    assert move.config.id == 1
    assert move.reason == (
        "config 1, number 2 in the chain; config 2: dst:ws-y is saturated "
        "(its oldest CREATED run waits 70 min, past 60)"
    )


def test_when_every_destination_is_saturated_the_run_stays() -> None:
    facts = Facts(saturated={"ws-y": "busy", "ws-z": "full"})
    plan = planned(chain_of_two(), [Listing(app("app-1"), [run("r", 90)])], facts=facts)
    assert plan.moves == []
    assert held(plan) == [
        (
            "r",
            Hold.SATURATED,
            "config 2: dst:ws-y is saturated (busy); config 1: dst:ws-z is saturated (full)",
        )
    ]
    assert plan.held[0].move.config.id == 2  # shown as the head of its chain
    assert plan.held_counts() == {"destinations_saturated": 1}


def test_a_copy_never_moves_back_to_a_workspace_it_was_in() -> None:
    # The run is a copy that left dst:ws-y: the chain's head is skipped, not bounced back to.
    facts = Facts(labels={"r": {"jobfallback.io/hop-1": "dst.ws-y"}})
    (move,) = planned(chain_of_two(), [Listing(app("app-1"), [run("r", 90)])], facts=facts).moves
    assert move.config.id == 1
    assert (
        move.reason == "config 1, number 2 in the chain; config 2: the job was already in dst:ws-y"
    )


def test_a_copy_whose_every_destination_was_visited_is_held_by_the_hop_rule() -> None:
    facts = Facts(labels={"r": {"jobfallback.io/hop-1": "dst.ws-y"}})
    plan = planned(
        [config(2, dst_ws="ws-y", fqn="dst:ws-y")],
        [Listing(app("app-1"), [run("r", 90)])],
        facts=facts,
    )
    assert held(plan) == [
        (
            "r",
            Hold.HOP_LIMIT,
            "no destination left that the job was not in: "
            "config 2: the job was already in dst:ws-y",
        )
    ]


@pytest.mark.parametrize(
    ("hops", "max_hops", "moves"), [(1, 2, True), (2, 2, False), (1, 1, False)]
)
def test_the_hop_limit_counts_the_moves_a_job_made(hops: int, max_hops: int, moves: bool) -> None:
    labels = {f"jobfallback.io/hop-{n}": f"c.ws-{n}" for n in range(1, hops + 1)}
    plan = planned(
        [config(1)],
        [Listing(app("app-1"), [run("r", 90)])],
        limits=Limits(max_moves=None, per_destination=None, per_source=None, max_hops=max_hops),
        facts=Facts(labels={"r": labels}),
    )
    assert bool(plan.moves) is moves
    if not moves:
        assert held(plan) == [
            ("r", Hold.HOP_LIMIT, f"moved {hops} time(s) already; --max-hops is {max_hops}")
        ]


def test_the_opt_out_label_holds_a_run_whatever_its_config() -> None:
    facts = Facts(
        labels={"r": {"jobfallback.io/move": "Never"}, "s": {"jobfallback.io/move": "ok"}}
    )
    plan = planned(
        [config(1)],
        [
            Listing(app("app-1"), [run("r", 90)]),
            Listing(app("app-2"), [run("s", 90, app_id="app-2")]),
        ],
        facts=facts,
    )
    assert [m.run.id for m in plan.moves] == ["s"]
    assert held(plan) == [("r", Hold.OPTED_OUT, "the job is labelled jobfallback.io/move: never")]


def test_a_job_a_generic_config_excludes_is_never_moved_from_that_source() -> None:
    configs = [config(1, exclude_job_ids=["app-1"]), config(2, dst_ws="ws-y", fqn="dst:ws-y")]
    plan = planned(
        configs,
        [
            Listing(app("app-1"), [run("r", 90)]),
            Listing(app("app-2"), [run("s", 90, app_id="app-2")]),
        ],
    )
    assert [m.run.id for m in plan.moves] == ["s"]
    assert held(plan) == [("r", Hold.OPTED_OUT, "config 1 excludes job app-1")]


def test_a_job_specific_chain_ignores_the_generic_exclusions() -> None:
    configs = [
        config(1, exclude_job_ids=["app-1"]),
        config(2, job="app-1", dst_ws="ws-y", fqn="dst:ws-y"),
    ]
    (move,) = planned(configs, [Listing(app("app-1"), [run("r", 90)])]).moves
    assert move.config.id == 2


def test_cooldown_holds_a_job_another_of_whose_runs_moved_recently() -> None:
    moved_at = NOW - timedelta(minutes=10)
    facts = Facts(moved_recently={"app-1": {"earlier": moved_at, "r": NOW}})
    plan = planned(
        [config(1)],
        [
            Listing(app("app-1"), [run("r", 90)]),
            Listing(app("app-2"), [run("s", 90, app_id="app-2")]),
        ],
        limits=Limits(max_moves=None, per_destination=None, per_source=None, cooldown_minutes=30),
        facts=facts,
    )
    assert [m.run.id for m in plan.moves] == ["s"]
    assert held(plan) == [
        (
            "r",
            Hold.COOLDOWN,
            "a run of this job was moved at 2026-11-29 11:50:00 UTC; "
            "cooling down until 2026-11-29 12:20:00 UTC",
        )
    ]


def test_a_runs_own_earlier_move_is_no_cooldown() -> None:
    facts = Facts(moved_recently={"app-1": {"r": NOW - timedelta(minutes=5)}})
    plan = planned([config(1)], [Listing(app("app-1"), [run("r", 90)])], facts=facts)
    assert [m.run.id for m in plan.moves] == ["r"]


def test_an_open_breaker_holds_every_run_it_would_move() -> None:
    plan = planned(
        [config(1)],
        [Listing(app("app-1"), [run("r", 90), run("q", 80)])],
        facts=Facts(breaker="each of the last 3 passes had failed moves"),
    )
    assert plan.moves == []
    assert [(r, h) for r, h, _ in held(plan)] == [
        ("r", Hold.BREAKER_OPEN),
        ("q", Hold.BREAKER_OPEN),
    ]


def test_caps_per_source_per_destination_and_in_all_defer_the_newest() -> None:
    configs = [
        config(1, src_ws="ws-a", dst_ws="ws-z"),
        config(2, src_ws="ws-b", dst_ws="ws-z"),
        config(3, src_ws="ws-c", dst_ws="ws-y", fqn="dst:ws-y"),
    ]
    listings = {
        "ws-a": [run("a1", 100, app_id="A"), run("a2", 99, app_id="A"), run("a3", 98, app_id="A")],
        "ws-b": [run("b1", 97, app_id="B"), run("b2", 96, app_id="B")],
        "ws-c": [run("c1", 95, app_id="C"), run("c2", 94, app_id="C")],
    }
    parts = [
        plan_source(
            g,
            [
                Listing(
                    app(g.source.workspace_id.upper()[-1], ws=g.source.workspace_id),
                    listings[g.source.workspace_id],
                )
            ],
            now=NOW,
            default_threshold_minutes=60,
        )
        for g in group_by_source(configs)
    ]
    plan = decide(parts, limits=Limits(max_moves=4, per_destination=3, per_source=2))
    assert [m.run.id for m in plan.moves] == ["a1", "a2", "b1", "c1"]
    assert [(r, h) for r, h, _ in held(plan)] == [
        ("a3", Hold.CAP_SOURCE),  # ws-a's two
        ("b2", Hold.CAP_DESTINATION),  # ws-z's three (a1, a2, b1)
        ("c2", Hold.CAP_TOTAL),  # four in all
    ]
    assert [m.run.id for m in plan.deferred] == ["a3", "b2", "c2"]
    assert held(plan)[0][2] == "2 moves from this source already (--max-moves-per-source)"
    assert held(plan)[1][2] == "3 moves into this destination already (--max-moves-per-destination)"
    assert held(plan)[2][2] == "4 moves this pass already (--max-moves)"
    assert plan.held_counts() == {"cap_destination": 1, "cap_source": 1, "cap_total": 1}


def test_a_held_run_uses_no_cap() -> None:
    # The opted-out oldest run does not take the one slot of the pass.
    plan = planned(
        [config(1)],
        [
            Listing(app("app-1"), [run("r", 90)]),
            Listing(app("app-2"), [run("s", 80, app_id="app-2")]),
        ],
        limits=Limits(max_moves=1, per_destination=None, per_source=None),
        facts=Facts(labels={"r": {"jobfallback.io/move": "never"}}),
    )
    assert [m.run.id for m in plan.moves] == ["s"]


def test_a_destination_is_saturated_from_its_threshold_on() -> None:
    oldest = {
        "ws-y": (NOW - timedelta(minutes=60)).timestamp() * 1000,
        "ws-z": (NOW - timedelta(minutes=59)).timestamp() * 1000,
    }
    assert saturated_destinations(oldest, now=NOW, threshold_minutes=60) == {
        "ws-y": "its oldest CREATED run waits 60 min, past 60"
    }


def test_a_whole_listing_records_its_oldest_created_run_for_saturation() -> None:
    (group,) = group_by_source([config(1)])
    part = plan_source(
        group,
        [
            Listing(
                app("app-1"),
                [run("old", 30), run("new", 5), run("mid", 20), run("done", 99, status="FINISHED")],
            )
        ],
        now=NOW,
        default_threshold_minutes=60,
    )
    assert part.listed_whole
    assert part.oldest_created == run("old", 30).created_at
    (only_jobs,) = group_by_source([config(1, job="app-1")])
    assert not plan_source(only_jobs, [], now=NOW, default_threshold_minutes=60).listed_whole


def test_config_cycles_are_found_once_each_from_their_smallest_workspace() -> None:
    links = [
        ("ws-b", "ws-a"),
        ("ws-a", "ws-b"),
        ("ws-b", "ws-c"),
        ("ws-c", "ws-a"),
        ("ws-d", "ws-a"),
    ]
    configs = [config(n, src_ws=s, dst_ws=d) for n, (s, d) in enumerate(links, start=1)]
    assert config_cycles(configs) == [["ws-a", "ws-b", "ws-a"], ["ws-a", "ws-b", "ws-c", "ws-a"]]
    assert config_cycles(configs, limit=1) == [["ws-a", "ws-b", "ws-a"]]
    disabled = [
        config(1, src_ws="ws-a", dst_ws="ws-b"),
        config(2, src_ws="ws-b", dst_ws="ws-a", enabled=False),
    ]
    assert config_cycles(disabled) == []
    assert config_cycles([config(1, src_ws="ws-a", dst_ws="ws-b")]) == []


def test_shards_partition_the_sources() -> None:
    configs = [config(n, src_ws=f"ws-{n}") for n in range(1, 21)]
    everyone = {g.source for g in group_by_source(configs)}
    parts = [{g.source for g in group_by_source(configs, shard=Shard(i, 3))} for i in range(3)]
    assert set().union(*parts) == everyone
    assert sum(len(p) for p in parts) == len(everyone)  # no source in two shards
    assert all(parts)


def test_a_jobs_own_chain_is_named_for_the_job() -> None:
    configs = [
        config(2, job="app-1", dst_ws="ws-y", fqn="dst:ws-y"),
        config(3, job="app-1", dst_ws="ws-x", fqn="dst:ws-x"),
        config(4, job="app-2"),
    ]
    plan = planned(
        configs,
        [
            Listing(app("app-1"), [run("r", 90)]),
            Listing(app("app-2"), [run("s", 90, app_id="app-2")]),
        ],
    )
    assert [(m.run.id, m.reason) for m in plan.moves] == [
        ("r", "job-specific config 2 (the oldest of 2 for this job)"),
        ("s", "job-specific config 4"),
    ]


def test_every_skipped_link_of_a_chain_is_named() -> None:
    configs = [
        config(1, dst_ws="ws-y", fqn="dst:ws-y", priority=1),
        config(2, dst_ws="ws-x", fqn="dst:ws-x", priority=2),
        config(3, dst_ws="ws-w", fqn="dst:ws-w", priority=3),
    ]
    facts = Facts(labels={"r": {"jobfallback.io/hop-1": "dst.ws-y"}}, saturated={"ws-x": "busy"})
    (move,) = planned(configs, [Listing(app("app-1"), [run("r", 90)])], facts=facts).moves
    assert move.reason == (
        "config 3, number 3 in the chain; config 1: the job was already in dst:ws-y; "
        "config 2: dst:ws-x is saturated (busy)"
    )
    stuck = Facts(labels=facts.labels, saturated={"ws-x": "busy", "ws-w": "full"})
    plan = planned(configs, [Listing(app("app-1"), [run("r", 90)])], facts=stuck)
    assert held(plan) == [
        (
            "r",
            Hold.HOP_LIMIT,
            "no destination left that the job was not in: config 1: the job was already in "
            "dst:ws-y; config 2: dst:ws-x is saturated (busy); config 3: dst:ws-w is saturated "
            "(full)",
        )
    ]


def test_the_run_asked_about_is_sighted_stuck_or_not() -> None:
    (group,) = group_by_source([config(1, threshold=30)])
    listing = [Listing(app("app-1"), [run("young", 10), run("old", 45)])]
    young = plan_source(group, listing, now=NOW, default_threshold_minutes=60, focus="young")
    assert young.sighting is not None
    assert (young.sighting.run.id, young.sighting.stuck) == ("young", False)
    assert (young.sighting.age_minutes, young.sighting.threshold_minutes) == (10.0, 30)
    assert young.sighting.reason == "generic config 1 (the only one for this source)"
    assert [c.id for c in young.sighting.chain] == [1]
    assert young.sighting.group is group
    assert young.sighting.application.id == "app-1"
    by_name = plan_source(group, listing, now=NOW, default_threshold_minutes=60, focus="run-old")
    assert by_name.sighting is not None
    assert (by_name.sighting.run.id, by_name.sighting.stuck) == ("old", True)
    assert plan_source(group, listing, now=NOW, default_threshold_minutes=60).sighting is None
    assert (
        plan_source(group, listing, now=NOW, default_threshold_minutes=60, focus="x").sighting
        is None
    )


def test_a_dense_config_graph_reports_at_most_twenty_cycles() -> None:
    workspaces = [f"ws-{n}" for n in range(6)]
    configs = [
        config(n, src_ws=a, dst_ws=b)
        for n, (a, b) in enumerate(((a, b) for a in workspaces for b in workspaces if a != b), 1)
    ]
    assert len(config_cycles(configs)) == 20
    assert len(config_cycles(configs, limit=50)) == 50

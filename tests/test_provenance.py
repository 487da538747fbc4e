"""The labels a copy carries, and what later passes read from them."""

from __future__ import annotations

from jobfallback.provenance import (
    LABEL_ORIGIN_JOB,
    LABEL_SOURCE_JOB,
    LABEL_SOURCE_RUN,
    copy_labels,
    opted_out,
    origin_job,
    visited,
)


def test_each_move_adds_a_hop_and_keeps_the_origin() -> None:
    first = copy_labels(
        {"team": "ml"},
        source_run_id="r1",
        source_application_id="A",
        source_workspace_fqn="c1:ws-a",
    )
    assert first == {
        "team": "ml",
        "jobfallback.io/hop-1": "c1.ws-a",
        LABEL_SOURCE_RUN: "r1",
        LABEL_SOURCE_JOB: "A",
        LABEL_ORIGIN_JOB: "A",
    }
    second = copy_labels(
        first, source_run_id="r2", source_application_id="B", source_workspace_fqn="c2:ws-b"
    )
    assert visited(second) == ["c1.ws-a", "c2.ws-b"]
    assert (second[LABEL_SOURCE_JOB], second[LABEL_ORIGIN_JOB]) == ("B", "A")
    assert origin_job(second, "B") == "A"
    assert origin_job({}, "B") == "B"
    assert origin_job({LABEL_ORIGIN_JOB: 7}, "B") == "B"  # not a text: not ours
    assert origin_job({LABEL_ORIGIN_JOB: ""}, "B") == "B"


def test_hops_are_read_in_order_and_odd_keys_ignored() -> None:
    labels = {
        "jobfallback.io/hop-10": "j",
        "jobfallback.io/hop-2": "b",
        "jobfallback.io/hop-1": "a",
        "jobfallback.io/hop-x": "nope",
        "jobfallback.io/hop-3": 7,
    }
    assert visited(labels) == ["a", "b", "j"]


def test_the_opt_out_label() -> None:
    assert opted_out({"jobfallback.io/move": " NEVER "})
    assert not opted_out({"jobfallback.io/move": "yes"})
    assert not opted_out({})
    assert not opted_out({"jobfallback.io/move": None})

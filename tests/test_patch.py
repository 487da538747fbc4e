"""Per-destination manifest changes: RFC 7386 merge patches and what a patch may not do."""

from __future__ import annotations

from typing import Any

import pytest

from jobfallback.patch import check_manifest, check_patch, merge_patch

# RFC 7386, Appendix A: (target, patch, result).
RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_merge_patch_leaves_its_inputs_alone() -> None:
    target = {"env": {"A": "1"}}
    patch = {"env": {"B": "2"}, "resources": {"gpu": {"type": "A100"}}}
    merged = merge_patch(target, patch)
    merged["resources"]["gpu"]["type"] = "H100"
    assert target == {"env": {"A": "1"}}
    assert patch["resources"] == {"gpu": {"type": "A100"}}


def test_merge_patch_keeps_the_keys_a_nested_patch_does_not_name() -> None:
    target = {"resources": {"cpu": 2, "gpu": {"type": "A100", "count": 1}}}
    patch = {"resources": {"gpu": {"type": "H100"}}}
    assert merge_patch(target, patch) == {
        "resources": {"cpu": 2, "gpu": {"type": "H100", "count": 1}}
    }


def test_a_replacing_patch_is_a_copy_of_its_own() -> None:
    patch = [{"b": "c"}]
    merged = merge_patch({"a": 1}, patch)
    merged[0]["b"] = "changed"
    assert patch == [{"b": "c"}]


def test_a_typical_patch_passes() -> None:
    check_patch(
        {
            "env": {"RUNNING_ON_FALLBACK": "true", "OLD": None},
            "resources": {
                "node": {"type": "node_selector", "capacity_type": "spot_fallback_on_demand"}
            },
            "labels": {"team": "ml"},
        }
    )


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        ([], "must be a JSON object (a JSON Merge Patch of the job manifest)"),
        (
            {"labels": {"jobfallback.io/hop-1": "x"}},
            "labels.jobfallback.io/hop-1: jobfallback.io/ labels are the move's provenance; "
            "remove it from the patch",
        ),
        ({"labels": {"team": 5}}, "labels.team: must be a text"),
        (
            {"workspace_fqn": "c:w"},
            "workspace_fqn: set by the move on every copy; remove it from the patch",
        ),
        ({"trigger": {"type": "scheduled"}}, "trigger: set by the move on every copy"),
        ({"trigger_on_deploy": True}, "trigger_on_deploy: set by the move on every copy"),
        ({"name": "other"}, "name: set by the move on every copy"),
        ({"type": "service"}, "type: set by the move on every copy"),
        (
            {"labels": {"jobfallback.io/move": None}},
            "labels.jobfallback.io/move: jobfallback.io/ labels are the move's provenance",
        ),
        ({"image": None}, "image: a job needs one; do not remove it"),
        ({"image": "x:1"}, "image: must be an object"),
        ({"env": {"A": 1}}, "env.A: must be a text"),
        ({"env": ["A=1"]}, "env: must be an object"),
        ({"retries": "3"}, "retries: must be a whole number"),
        ({"timeout": True}, "timeout: must be a whole number"),
    ],
)
def test_a_patch_that_would_break_a_copy_is_refused_naming_the_field(
    patch: Any, problem: str
) -> None:
    with pytest.raises(ValueError) as caught:
        check_patch(patch)
    assert str(caught.value).startswith(problem)


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        ({"type": "service", "name": "x", "image": {}}, "type: must stay job"),
        ({"type": "job", "name": 5, "image": {}}, "name: must stay a text"),
        ({"type": "job", "image": {}}, "name: must stay a text"),
    ],
)
def test_the_patched_manifest_must_stay_a_job(manifest: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_manifest(manifest)
    assert str(caught.value) == problem


def test_a_whole_job_manifest_passes() -> None:
    check_manifest(
        {
            "type": "job",
            "name": "train",
            "image": {"type": "image", "image_uri": "x:1"},
            "labels": {"team": "ml"},
            "env": {"A": "1"},
            "retries": 3,
            "timeout": 600,
            "concurrency_limit": 1,
        }
    )

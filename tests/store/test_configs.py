from __future__ import annotations

from typing import Any

import pytest

from jobfallback.errors import ConstraintViolation, UsageError
from jobfallback.models import FallbackConfigSpec
from jobfallback.store import Store
from jobfallback.store.configs import with_stored_fqns

pytestmark = pytest.mark.embedded


def spec(**overrides: Any) -> FallbackConfigSpec:
    values: dict[str, Any] = {
        "source_cluster_id": "c-src",
        "source_workspace_id": "ws-src",
        "destination_cluster_id": "c-dst",
        "destination_workspace_id": "ws-dst",
        "destination_workspace_fqn": "c-dst:team",
    }
    return FallbackConfigSpec(**{**values, **overrides})


def raw_spec(**overrides: Any) -> FallbackConfigSpec:
    """A spec that skipped validation, to prove the database enforces the rules on its own."""
    return FallbackConfigSpec.model_construct(**{**spec().model_dump(), **overrides})


def test_add_then_get_and_list_in_id_order(store: Store) -> None:
    first = store.configs.add(spec(name="first"))
    second = store.configs.add(spec(destination_workspace_id="ws-other", name="second"))
    assert store.configs.get(first.id) == first
    assert [c.id for c in store.configs.list()] == [first.id, second.id]
    assert first.spec() == spec(name="first")
    assert first.created_at == first.updated_at


def test_list_enabled_only(store: Store) -> None:
    store.configs.add(spec(enabled=False))
    enabled = store.configs.add(spec(source_job_id="job-1"))
    assert store.configs.list(enabled_only=True) == [enabled]


def test_missing_config_says_where_to_look(store: Store) -> None:
    message = "config 7 not found; see `jobfallback configs list`"
    with pytest.raises(UsageError, match=message):
        store.configs.get(7)
    with pytest.raises(UsageError, match=message):
        store.configs.remove(7)
    with pytest.raises(UsageError, match=message):
        store.configs.update(7, {"enabled": False})


def test_update_changes_only_the_given_fields(store: Store) -> None:
    config = store.configs.add(spec())
    updated = store.configs.update(config.id, {"name": "renamed", "stuck_threshold_minutes": 30})
    assert updated.spec() == spec(name="renamed", stuck_threshold_minutes=30)
    assert updated.updated_at > config.updated_at
    assert store.configs.get(config.id) == updated


def test_update_is_validated_like_a_new_config(store: Store) -> None:
    config = store.configs.add(spec())
    with pytest.raises(UsageError, match="field sourceClusterId: must not be empty"):
        store.configs.update(config.id, {"source_cluster_id": "  "})
    with pytest.raises(UsageError, match="field bogus: unknown field"):
        store.configs.update(config.id, {"bogus": 1})
    assert store.configs.get(config.id) == config


def test_set_enabled_and_destination_fqn(store: Store) -> None:
    config = store.configs.add(spec(destination_workspace_fqn=None))
    assert store.configs.set_enabled(config.id, False).enabled is False
    backfilled = store.configs.set_destination_fqn(config.id, "c-dst:backfilled")
    assert backfilled.destination_workspace_fqn == "c-dst:backfilled"
    assert backfilled.enabled is False


def test_remove(store: Store) -> None:
    config = store.configs.add(spec())
    store.configs.remove(config.id)
    assert store.configs.list() == []


# Every text field of a spec: the database must refuse a blank value in each.
BLANKABLE = [
    name
    for name, info in FallbackConfigSpec.model_fields.items()
    if info.annotation in (str, str | None)
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        *[
            (
                {field: "  "},
                f"field {FallbackConfigSpec.model_fields[field].alias}: must not be empty",
            )
            for field in BLANKABLE
        ],
        (
            {"destination_workspace_id": "ws-src"},
            "field destinationWorkspaceId: must differ from sourceWorkspaceId",
        ),
        ({"stuck_threshold_minutes": 0}, "field stuckThresholdMinutes: must be from 1 to 525600"),
        ({"stuck_threshold_minutes": 525601}, "field stuckThresholdMinutes: must be from 1"),
        ({"source_cluster_id": None}, "field source_cluster_id: is required"),
    ],
)
def test_database_rejects_each_broken_rule_with_a_clear_message(
    store: Store, overrides: dict[str, Any], message: str
) -> None:
    existing = store.configs.add(spec(destination_workspace_id="ws-kept"))
    with pytest.raises(ConstraintViolation, match=message) as caught:
        store.configs.add(raw_spec(**overrides))
    assert caught.value.exit_code == 2
    assert store.configs.list() == [existing]


@pytest.mark.parametrize(
    ("duplicate", "message"),
    [
        (
            {"source_job_id": "job-1", "name": "again"},
            "field sourceJobId: a config for this source workspace, job and destination "
            "workspace already exists",
        ),
        (
            {"name": "again", "destination_workspace_fqn": "c-dst:other"},
            "field destinationWorkspaceId: a generic config from this source workspace",
        ),
    ],
)
def test_natural_keys_are_unique(store: Store, duplicate: dict[str, Any], message: str) -> None:
    job = store.configs.add(spec(source_job_id="job-1"))
    generic = store.configs.add(spec())
    with pytest.raises(ConstraintViolation, match=message):
        store.configs.add(spec(**duplicate))
    assert store.configs.list() == [job, generic]


def test_a_job_falls_back_along_a_chain_of_job_specific_configs(store: Store) -> None:
    first = store.configs.add(spec(source_job_id="job-1", priority=2))
    second = store.configs.add(
        spec(source_job_id="job-1", destination_workspace_id="ws-other", priority=1)
    )
    assert (second.priority, first.priority) == (1, 2)
    assert store.configs.list() == [first, second]  # listed by id; the chain order is priority


def test_new_config_fields_round_trip_through_the_store(store: Store) -> None:
    patch = {"env": {"ON_FALLBACK": "1"}, "resources": {"node": {"type": "spot"}}}
    added = store.configs.add(spec(exclude_job_ids=["j2", "j1"], manifest_patch=patch))
    assert (added.exclude_job_ids, added.manifest_patch) == (["j1", "j2"], patch)
    assert store.configs.get(added.id) == added


def test_a_job_config_and_a_generic_one_coexist_for_the_same_workspaces(store: Store) -> None:
    store.configs.add(spec())
    store.configs.add(spec(source_job_id="job-1"))
    store.configs.add(spec(source_job_id="job-2"))
    assert len(store.configs.list()) == 3


# ---------------------------------------------------------------- import


def test_import_into_an_empty_store_adds_in_order(store: Store) -> None:
    specs = [spec(destination_workspace_id=f"ws-{i}") for i in range(3)]
    diff = store.configs.apply_import(specs, prune=False, dry_run=False)
    assert diff.added == specs
    assert (diff.updated, diff.removed, diff.unchanged) == ([], [], [])
    assert [c.spec() for c in store.configs.list()] == specs


def test_import_matches_by_natural_key_and_reports_changed_fields(store: Store) -> None:
    kept = store.configs.add(spec())
    changed = store.configs.add(spec(source_job_id="job-1", name="old"))
    stale = store.configs.add(spec(destination_workspace_id="ws-stale"))
    new = spec(source_job_id="job-1", name="new", enabled=False)

    diff = store.configs.apply_import([spec(), new], prune=False, dry_run=False)

    assert diff.unchanged == [kept]
    assert [(u.id, u.changes) for u in diff.updated] == [
        (changed.id, {"name": ["old", "new"], "enabled": [True, False]})
    ]
    assert diff.removed == []
    assert diff.added == []
    assert store.configs.get(changed.id).spec() == new
    assert store.configs.get(stale.id) == stale  # kept without --prune


def test_import_with_prune_removes_configs_absent_from_the_file(store: Store) -> None:
    kept = store.configs.add(spec())
    stale = store.configs.add(spec(destination_workspace_id="ws-stale"))
    diff = store.configs.apply_import([spec()], prune=True, dry_run=False)
    assert diff.removed == [stale]
    assert store.configs.list() == [kept]


def test_dry_run_reports_the_same_diff_and_writes_nothing(store: Store) -> None:
    store.configs.add(spec(source_job_id="job-1", name="old"))
    store.configs.add(spec(destination_workspace_id="ws-stale"))
    before = store.configs.list()
    specs = [spec(source_job_id="job-1", name="new"), spec(destination_workspace_id="ws-new")]

    dry = store.configs.apply_import(specs, prune=True, dry_run=True)

    assert store.configs.list() == before
    real = store.configs.apply_import(specs, prune=True, dry_run=False)
    assert dry.model_dump(exclude={"dry_run"}) == real.model_dump(exclude={"dry_run"})
    assert dry.changed
    assert dry.dry_run


def test_import_round_trip_is_a_no_op(store: Store) -> None:
    store.configs.apply_import(
        [spec(), spec(source_job_id="j", stuck_threshold_minutes=5)], prune=True, dry_run=False
    )
    exported = [c.spec() for c in store.configs.list()]
    diff = store.configs.apply_import(exported, prune=True, dry_run=False)
    assert not diff.changed
    assert len(diff.unchanged) == 2


def test_import_with_duplicate_keys_writes_nothing(store: Store) -> None:
    with pytest.raises(
        UsageError, match=r"entry 2 \(again\): field sourceJobId: duplicates entry 1"
    ):
        store.configs.apply_import(
            [spec(source_job_id="j"), spec(source_job_id="j", name="again")],
            prune=False,
            dry_run=False,
        )
    assert store.configs.list() == []


def test_import_failing_half_way_writes_nothing(store: Store) -> None:
    existing = store.configs.add(spec(name="before"))
    broken = raw_spec(source_cluster_id=" ", destination_workspace_id="ws-3")
    specs = [spec(name="after"), spec(source_job_id="j"), broken]
    with pytest.raises(ConstraintViolation, match="field sourceClusterId"):
        store.configs.apply_import(specs, prune=True, dry_run=False)
    assert store.configs.list() == [existing]


# ------------------------------------------------------------------ one workspace, two clusters


def test_add_refuses_a_workspace_under_a_second_cluster(store: Store) -> None:
    first = store.configs.add(spec(name="east"))
    with pytest.raises(UsageError) as caught:
        store.configs.add(spec(source_cluster_id="c-typo", destination_workspace_id="ws-2"))
    message = str(caught.value)
    assert "source workspace ws-src" in message
    assert f"c-src (config {first.id})" in message
    assert "c-typo (the new config)" in message
    assert [c.id for c in store.configs.list()] == [first.id]


def test_update_refuses_moving_a_workspace_to_a_second_cluster(store: Store) -> None:
    store.configs.add(spec())
    other = store.configs.add(spec(destination_workspace_id="ws-2"))
    with pytest.raises(UsageError, match="under clusters"):
        store.configs.update(other.id, {"source_cluster_id": "c-typo"})
    assert store.configs.get(other.id).source_cluster_id == "c-src"
    # Moving every config of the workspace is fine, one at a time once no other one is left.
    store.configs.remove(other.id)


def test_import_refuses_a_file_whose_entries_disagree_and_writes_nothing(store: Store) -> None:
    specs = [
        spec(name="a"),
        spec(name="b", source_cluster_id="c-typo", destination_workspace_id="w"),
    ]
    with pytest.raises(UsageError) as caught:
        store.configs.apply_import(specs, prune=False, dry_run=False)
    assert "entry 1 (a)" in str(caught.value)
    assert "entry 2 (b)" in str(caught.value)
    assert store.configs.list() == []


def test_import_refuses_disagreeing_with_a_kept_config_but_not_with_a_pruned_one(
    store: Store,
) -> None:
    kept = store.configs.add(spec(destination_workspace_id="ws-old"))
    typo = [spec(source_cluster_id="c-typo")]
    with pytest.raises(UsageError, match=f"config {kept.id}"):
        store.configs.apply_import(typo, prune=False, dry_run=True)
    diff = store.configs.apply_import(typo, prune=True, dry_run=False)
    assert [c.id for c in diff.removed] == [kept.id]
    assert [c.source_cluster_id for c in store.configs.list()] == ["c-typo"]


NO_FQN: dict[str, Any] = {"destination_workspace_fqn": None}


def test_an_entry_without_fqn_keeps_the_fqn_stored_for_the_same_destination(store: Store) -> None:
    kept = store.configs.add(spec(destination_workspace_fqn="c-dst:team"))
    moved = store.configs.add(spec(source_job_id="j1", destination_workspace_fqn="c-dst:team"))
    same, elsewhere, new = with_stored_fqns(
        [
            spec(name="renamed", **NO_FQN),
            spec(source_job_id="j1", destination_workspace_id="ws-new", **NO_FQN),
            spec(source_job_id="j2", **NO_FQN),
        ],
        store.configs.list(),
    )
    assert (kept.destination_workspace_fqn, same.destination_workspace_fqn) == ("c-dst:team",) * 2
    assert same.name == "renamed"
    assert moved.destination_workspace_fqn == "c-dst:team"
    assert elsewhere.destination_workspace_fqn is None  # another workspace: never the old FQN
    assert new.destination_workspace_fqn is None

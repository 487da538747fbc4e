from __future__ import annotations

from typing import Any

import pytest

from jobfallback.errors import UsageError
from jobfallback.store import InvalidImport, parse_import, parse_spec

GOOD = {
    "sourceClusterId": "c1",
    "sourceWorkspaceId": "ws1",
    "destinationClusterId": "c2",
    "destinationWorkspaceId": "ws2",
    "destinationWorkspaceFqn": "c2:team",
}


def problems(document: Any) -> list[str]:
    with pytest.raises(InvalidImport) as caught:
        parse_import(document)
    assert caught.value.exit_code == 2
    return caught.value.problems


def test_list_and_configs_mapping_are_both_accepted() -> None:
    assert parse_import([GOOD]) == parse_import({"configs": [GOOD]})
    assert parse_import([]) == []


def test_every_problem_of_every_entry_is_listed() -> None:
    document = [
        GOOD,
        {**GOOD, "sourceWorkspaceId": " ", "name": "blank"},
        {**GOOD, "destinationWorkspaceId": "ws1"},
        {**GOOD, "stuckThresholdMinutes": 0, "colour": "red"},
        {"sourceClusterId": "c1"},
        "not a mapping",
        {**GOOD, "name": "again"},
    ]
    found = problems(document)
    assert found[:2] == [
        "entry 2 (blank): field sourceWorkspaceId: must not be empty",
        "entry 3: field destinationWorkspaceId: must differ from sourceWorkspaceId; "
        "a config cannot move runs into the workspace they are stuck in",
    ]
    assert (
        "entry 4: field stuckThresholdMinutes: must be a whole number of minutes from 1 to 525600; "
        "leave it out to use JOB_FALLBACK_STUCK_THRESHOLD_MINUTES" in found
    )
    assert any(
        p.startswith("entry 4: field colour: unknown field; the fields are name,") for p in found
    )
    assert "entry 5: field sourceWorkspaceId: is required" in found
    assert any(p.startswith("entry 6: must be a mapping of fields") for p in found)
    assert found[-1] == (
        "entry 7 (again): field destinationWorkspaceId: duplicates entry 1; "
        "one generic config per source and destination workspace"
    )


def test_job_specific_duplicates_name_the_first_entry() -> None:
    job = {**GOOD, "sourceJobId": "j1", "name": "first"}
    assert problems([job, {**job, "name": "second"}]) == [
        "entry 2 (second): field sourceJobId: duplicates entry 1 (first); "
        "one config per source workspace, job and destination workspace"
    ]
    # Another destination for the same job is the next link of its chain, not a duplicate.
    chain = parse_import([job, {**job, "name": "second", "destinationWorkspaceId": "ws3"}])
    assert [s.destination_workspace_id for s in chain] == [GOOD["destinationWorkspaceId"], "ws3"]


@pytest.mark.parametrize("document", [None, "text", {"other": []}, {"configs": "x"}])
def test_document_that_is_not_a_list_is_refused(document: Any) -> None:
    assert problems(document)[0].startswith("the file must hold a list of configs")


def test_parse_spec_joins_problems_on_one_line() -> None:
    with pytest.raises(UsageError) as caught:
        parse_spec({"source_cluster_id": ""})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("field sourceClusterId: must not be empty; field sourceWorkspaceId")


def test_a_workspace_under_two_clusters_names_both_entries() -> None:
    base = {
        "sourceWorkspaceId": "ws-1",
        "destinationClusterId": "d",
        "destinationWorkspaceId": "ws-d",
    }
    found = problems(
        [
            {**base, "name": "east", "sourceClusterId": "gpu-east"},
            {**base, "sourceClusterId": "gpu-esat", "destinationWorkspaceId": "ws-e"},
        ]
    )
    assert found == [
        "source workspace ws-1 is named under clusters gpu-east (entry 1 (east)) and gpu-esat "
        "(entry 2); a workspace belongs to one cluster: fix the sourceClusterId of the wrong one"
    ]

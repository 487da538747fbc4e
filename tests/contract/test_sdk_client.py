"""The vendor's own SDK client drives a running sandbox, under every server profile: list,
get, PUT, trigger and terminate all parse, and errors come back as the SDK's errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import truefoundry_sdk as tfy
from truefoundry_sdk.errors import ExpectationFailedError, NotFoundError

from jobfallback_sandbox import SandboxServer, SandboxState
from tests.contract.conftest import CONTRACT_PROFILE_IDS, CONTRACT_PROFILE_SETS

pytestmark = pytest.mark.parametrize(
    "sandbox_profiles", CONTRACT_PROFILE_SETS, ids=CONTRACT_PROFILE_IDS
)


@pytest.fixture
def sdk(sandbox: SandboxServer) -> Iterator[tfy.TrueFoundry]:
    # The SDK's paths start with "api/svc/v1/": its base URL is the host alone. Plain http on
    # loopback: no CA bundle to load (slow).
    with httpx.Client(timeout=10, verify=False) as http:
        yield tfy.TrueFoundry(base_url=sandbox.url, api_key=sandbox.token, httpx_client=http)


def sparse(profiles: tuple[str, ...]) -> bool:
    return "vendor-sparse" in profiles


def test_workspaces_and_applications_with_their_deployment(
    sdk: tfy.TrueFoundry, sandbox_profiles: tuple[str, ...]
) -> None:
    workspaces = list(sdk.workspaces.list())
    assert sorted(ws.fqn for ws in workspaces) == [
        "gpu-east:ml-team",
        "gpu-east:research",
        "gpu-west:fallback",
    ]
    assert all(ws.created_by_subject.subject_id for ws in workspaces)
    assert sdk.workspaces.get(id="ws-east-ml").data.cluster_id == "gpu-east"

    jobs = list(sdk.applications.list(workspace_id="ws-east-ml", application_type="job"))
    assert sorted(str(app.name) for app in jobs) == ["eval-suite", "train-llm"]
    app = sdk.applications.get(id="app-train-llm").data
    assert app.type == "job"
    if sparse(sandbox_profiles):
        assert app.deployment is None
        assert app.active_deployment_id is None
    else:
        assert app.deployment is not None
        assert isinstance(app.deployment.manifest, tfy.Job)
        assert app.deployment.id == app.active_deployment_id


def test_application_versions(
    sdk: tfy.TrueFoundry, sandbox_state: SandboxState, sandbox_profiles: tuple[str, ...]
) -> None:
    deployment_id = sandbox_state.get_app("app-train-llm")["activeDeploymentId"]
    got = sdk.application_versions.get(id="app-train-llm", deployment_id=deployment_id).data
    assert got.id == deployment_id
    assert isinstance(got.manifest, tfy.Job)
    listed = list(sdk.application_versions.list(id="app-train-llm"))
    assert [d.id for d in listed] == [deployment_id]
    assert list(sdk.application_versions.list(id="app-train-llm", version="2")) == []
    if not sparse(sandbox_profiles):
        assert got.version == 1


def test_runs_by_status_and_version_and_one_run(
    sdk: tfy.TrueFoundry, sandbox_state: SandboxState
) -> None:
    # The first page only: under ignore-offset the SDK's pager would never stop.
    pager = sdk.jobs.list_runs(
        "app-train-llm", status=tfy.JobRunStatus.CREATED, version_numbers=[1.0]
    )
    assert [run.name for run in pager.items or []] == ["train-llm-0412"]
    both = sdk.jobs.list_runs("app-train-llm", status=["CREATED", "RUNNING"], sort_by="startTime")
    assert len(both.items or []) == 2
    assert sdk.jobs.list_runs("app-train-llm", version_numbers=[2.0]).items == []

    run = sdk.jobs.get_run("app-train-llm", "train-llm-0412").data
    assert run.id == "run-train-1"
    assert run.status == tfy.JobRunStatus.CREATED
    assert run.deployment_version == "1"
    stored = sandbox_state.run("run-train-1")
    assert stored is not None
    assert run.created_at == stored["createdAt"]


def test_put_trigger_and_terminate(
    sdk: tfy.TrueFoundry, sandbox_state: SandboxState, sandbox_profiles: tuple[str, ...]
) -> None:
    source = sdk.application_versions.get(
        id="app-embed-corpus",
        deployment_id=sandbox_state.get_app("app-embed-corpus")["activeDeploymentId"],
    ).data
    manifest = source.manifest.model_dump(mode="json", by_alias=True, exclude_none=True)
    manifest |= {"workspace_fqn": "gpu-west:fallback", "labels": {"moved-by": "sdk"}}
    deployment = sdk.applications.create_or_update(manifest=manifest).data
    assert deployment.id is not None
    again = sdk.applications.create_or_update(manifest=manifest).data
    assert again.id != deployment.id  # an unchanged manifest still makes a new version

    triggered = sdk.jobs.trigger(
        deployment_id=deployment.id,
        input=tfy.JobTriggerInput(command="python embed.py --shard 7"),
        metadata=tfy.Metadata(job_run_name_alias="fb-sdk"),
    )
    assert triggered.job_run_name == triggered.data.name
    assert triggered.data.command == "python embed.py --shard 7"
    assert (triggered.data.name == "fb-sdk") == ("generated-names" not in sandbox_profiles)
    assert sandbox_state.alias_of(triggered.data.id) == "fb-sdk"

    answer = sdk.jobs.terminate(deployment_id=deployment.id, job_run_name=triggered.job_run_name)
    assert answer.job_run_status == tfy.JobRunStatus.TERMINATION_REQUESTED
    with pytest.raises(ExpectationFailedError) as refused:
        sdk.jobs.terminate(deployment_id=deployment.id, job_run_name=triggered.job_run_name)
    assert isinstance(refused.value.body, tfy.HttpError)
    assert refused.value.body.status_code == 417


def test_not_found_is_the_sdk_error(sdk: tfy.TrueFoundry) -> None:
    with pytest.raises(NotFoundError):
        sdk.jobs.get_run("app-train-llm", "no-such-run")
    with pytest.raises(NotFoundError):
        sdk.applications.get(id="app-nope")

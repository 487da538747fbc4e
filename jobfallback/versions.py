"""The version (deployment) each source run is on, read at most once per pass.

Its manifest is what a move copies and its labels are what the plan checks (opt-out, hops), so
the sweep and the moves share one `Versions`: the plan's read is the move's.
"""

from __future__ import annotations

from jobfallback.errors import JobFallbackError
from jobfallback.models import Application, Deployment
from jobfallback.truefoundry import TrueFoundryClient


class VersionUnknown(JobFallbackError):
    """The run's version cannot be found or has no manifest."""


class Versions:
    def __init__(self, client: TrueFoundryClient) -> None:
        self._client = client
        # (application id, deployment id or "version N") -> the version
        self._known: dict[tuple[str, str], Deployment] = {}

    def seed(self, app: Application) -> None:
        """A listing that carried a version: a run on it needs no read of its manifest."""
        listed = app.deployment
        if listed is not None and listed.id is not None and listed.manifest:
            self._known.setdefault((app.id, listed.id), listed)

    async def of(
        self,
        *,
        application_id: str,
        application_name: str,
        run_name: str,
        deployment_id: str | None,
        deployment_version: str | None,
    ) -> Deployment:
        """The version a run is on: found by id, else by the run's version number."""
        key = (application_id, deployment_id or f"version {deployment_version}")
        if key in self._known:
            return self._known[key]
        if deployment_id is not None:
            found = await self._client.get_deployment(application_id, deployment_id)
        elif deployment_version is not None:
            numbered = self._client.list_deployments(application_id, version=deployment_version)
            matches = [d async for d in numbered]
            if not matches:
                raise VersionUnknown(
                    f"job {application_name} lists no version {deployment_version}"
                )
            found = matches[0]
        else:
            raise VersionUnknown(f"run {run_name} names neither its deployment nor its version")
        if not found.manifest:
            raise VersionUnknown(f"job {application_name} has no deployment manifest to copy")
        self._known[key] = found
        return found

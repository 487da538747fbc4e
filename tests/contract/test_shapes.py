"""The sandbox's picture of the vendor's models (vendor.SHAPES) is the SDK's."""

from __future__ import annotations

import pydantic
import pytest
import truefoundry_sdk as tfy

from jobfallback_sandbox.vendor import SHAPES

MODEL_OF_KIND: dict[str, type[pydantic.BaseModel]] = {
    "subject": tfy.Subject,
    "pagination": tfy.Pagination,
    "error": tfy.HttpError,
    "workspace": tfy.Workspace,
    "application": tfy.Application,
    "deployment": tfy.Deployment,
    "run": tfy.JobRun,
}


@pytest.mark.parametrize("kind", sorted(MODEL_OF_KIND))
def test_vendor_shapes_match_the_sdk(kind: str) -> None:
    """vendor-sparse keeps exactly what the SDK requires; what it nulls or keeps beyond that
    the SDK allows to be missing."""
    fields = MODEL_OF_KIND[kind].model_fields
    required = {f.alias or name for name, f in fields.items() if f.is_required()}
    optional = {f.alias or name for name, f in fields.items() if not f.is_required()}
    shape = SHAPES[kind]
    assert shape.required == required
    assert shape.identity | shape.nulls <= optional
    assert set(shape.nested) <= required | optional

"""Stage 5: validate: every field of the bound resources and of the client, into the model."""

from __future__ import annotations

from restsync_assets.specs.bindings import Bound
from restsync_assets.specs.model import ResourceSpec
from restsync_assets.specs.validate.auth import validate_auth
from restsync_assets.specs.validate.catalog import Catalog, spec_catalog
from restsync_assets.specs.validate.operations import inherit_partitions
from restsync_assets.specs.validate.resource import validate_resource
from restsync_assets.specs.validate.response_format import check_shared_paths
from restsync_assets.specs.validate.source import validate_source

__all__ = ["spec_catalog", "validate_auth", "validate_resources", "validate_source"]


def validate_resources(
    bound: list[Bound], retry_layers: tuple[dict, dict], spec: str, catalog: Catalog
) -> tuple[ResourceSpec, ...]:
    """Each resource validated, parents first; a child takes its parent's partitions."""
    parents = {b.parent for b in bound}
    resources = inherit_partitions(
        validate_resource(b, retry_layers, spec, catalog, b.raw["name"] in parents) for b in bound
    )
    check_shared_paths(resources)
    return resources

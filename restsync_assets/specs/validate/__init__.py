"""Stage 5: validate: every field of the bound resources and of the client, into the model."""

from __future__ import annotations

from restsync_assets.specs.bindings import Bound
from restsync_assets.specs.errors import Collector
from restsync_assets.specs.model import ResourceSpec
from restsync_assets.specs.validate.async_job import check_job_parents
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
    """Each resource validated, parents first (every resource's problems reported together);
    a child takes its parent's partitions."""
    problems = Collector()
    with_children = {b.parent for b in bound}
    valid = [
        problems.take(
            validate_resource,
            b,
            retry_layers,
            spec,
            catalog,
            b.raw["name"] in with_children,
            default=None,
        )
        for b in bound
    ]
    problems.done()
    resources = inherit_partitions(valid)
    check_shared_paths(resources)
    check_job_parents(resources)
    return resources

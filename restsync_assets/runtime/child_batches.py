"""Children at `client.concurrency` > 1 that dlt's `rest_api` builds as is: many parents'
child requests at once, handed to dlt joined, in parent order (`ordered_jobs.in_order`).

:func:`with_batched_children` puts such a transformer in the place of every child not
replaced already (children with per-parent cursors, transforms, `batch_size` or `explode` have
restsync transformers of their own, which call `ordered_jobs.ordered_rows` themselves).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dlt.extract.resource import DltResource
from dlt.sources.rest_api import rest_api_resources
from dlt.sources.rest_api.config_setup import paginate_dependent_resource

from restsync_assets.runtime.ordered_jobs import Job, ordered_rows
from restsync_assets.runtime.transforms import child_resource
from restsync_assets.specs.model import SourceSpec

__all__ = ["parent_jobs", "with_batched_children"]


def parent_jobs(items: Any, args: dict[str, Any]) -> Iterator[Job]:
    """One job per parent row of `items` (a page or one row): dlt's own request code
    (`paginate_dependent_resource`, its deferred form) fetching that parent's pages."""
    rows = items if isinstance(items, list) else [items]
    return paginate_dependent_resource(rows, **{**args, "parallelized": True})


def with_batched_children(
    spec: SourceSpec, config: dict, written: dict, replaced: frozenset[str]
) -> dict:
    """`config` with every child dlt builds as is (not in `replaced`: those have restsync
    transformers already) fetching its parents' children through `ordered_jobs.ordered_rows`;
    unchanged at `client.concurrency` 1 or when there is no such child."""
    plain = {r.name for r in spec.resources if r.parent is not None and r.name not in replaced}
    if spec.concurrency <= 1 or not plain:
        return config
    configs = {r["name"]: r for r in written["resources"]}
    built = {r.name: r for r in rest_api_resources(config)}
    for resource in spec.resources:  # parents before children
        if resource.parent is None:
            continue
        parent = built[resource.parent]
        if resource.name in plain:
            built[resource.name] = batched_child(
                built[resource.name], parent, configs[resource.name], spec.concurrency
            )
        else:
            built[resource.name].pipe_data_from(parent)
    return {"client": config["client"], "resources": list(built.values())}


def batched_child(
    child: DltResource, parent: DltResource, config: dict[str, Any], concurrency: int
) -> DltResource:
    """A transformer of `parent` fetching `child`'s rows for a page of parents at once."""
    args = {**child.explicit_args, "parallelized": False}

    def per_page(items: Any) -> Iterator[list[Any]]:
        return ordered_rows(parent_jobs(items, args), args["client"], concurrency, child.name)

    return child_resource(per_page, parent, config, args)

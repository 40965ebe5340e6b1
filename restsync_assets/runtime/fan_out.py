"""`for_each` at run time: one request sequence per listed value, the value kept as a column.

dlt builds the resource with the first value in its path (dlt refuses a path placeholder no
param fills); :func:`with_for_each` then replaces it with a resource that runs dlt's own
`paginate_resource` once per value, with the value in the path placeholder or the query
param, and adds the value to each row as column `field`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import dlt
from dlt.extract.resource import DltResource
from dlt.sources.rest_api import rest_api_resources
from dlt.sources.rest_api.config_setup import paginate_resource

from restsync_assets.runtime.transforms import NOT_HINTS
from restsync_assets.specs.model import ForEachSpec, ResourceSpec, SourceSpec

__all__ = ["first_value_params", "with_for_each"]


def first_value_params(resource: ResourceSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The params dlt builds the resource with: the first value fills the path placeholder
    (each run replaces it per value)."""
    spec = resource.for_each
    if spec is None or spec.placeholder not in resource.endpoint["path"]:
        return params
    return {**params, spec.field: spec.values[0]}


def with_for_each(spec: SourceSpec, config: dict, written: dict) -> dict:
    """`config` (dlt's `RESTAPIConfig`, its resources perhaps built already) with each
    `for_each` resource read once per value; `written` is the config as `source_config` wrote
    it (each resource's hints). Unchanged when there is no `for_each`."""
    listed = {r.name: r for r in spec.resources if r.for_each is not None}
    if not listed:
        return config
    configs = {r["name"]: r for r in written["resources"]}
    built = rest_api_resources(config)
    resources = [
        per_value(r, configs[r.name], listed[r.name]) if r.name in listed else r for r in built
    ]
    return {"client": config["client"], "resources": resources}


def per_value(built: DltResource, config: dict[str, Any], resource: ResourceSpec) -> DltResource:
    """A resource that pages `built`'s endpoint once per value of `resource.for_each`."""
    args = dict(built.explicit_args)  # what dlt bound to its paginate_resource
    template, spec = resource.endpoint["path"], resource.for_each

    def each_value() -> Iterator[list[Any]]:
        for value in spec.values:
            yield from _pages(args, template, spec, value)

    hints = {k: v for k, v in config.items() if k not in NOT_HINTS}
    return dlt.resource(each_value, **hints)


def _pages(
    args: dict[str, Any], template: str, spec: ForEachSpec, value: Any
) -> Iterator[list[Any]]:
    call = {**args, "params": dict(args.get("params") or {})}
    if spec.placeholder in template:
        call["path"] = template.replace(spec.placeholder, quote(str(value), safe=""))
    else:
        call["params"][spec.param or spec.field] = value
    for page in paginate_resource(**call):
        yield [{**row, spec.field: value} if isinstance(row, dict) else row for row in page]

"""Fan-out at run time, built from dlt's own request code.

`for_each`: dlt builds the resource with the first value in its path (dlt refuses a path
placeholder no param fills); :func:`with_for_each` then replaces it with a resource that runs
dlt's `paginate_resource` once per value, with the value in the path placeholder or the query
param, and adds the value to each row as column `field`; its children are fed from it (each
value's rows, the value among their fields).

A child's `batch_size` or `explode` (:func:`with_fanned_children`): the parent's rows of each
page are regrouped before dlt's `paginate_dependent_resource` makes one request per item:
`batch_size` rows become one item whose key is their keys joined (`ids=1,2,3`), and a row
whose key field holds a list becomes one item per list element.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import dlt
from dlt.extract.resource import DltResource
from dlt.sources.rest_api import rest_api_resources
from dlt.sources.rest_api.config_setup import paginate_dependent_resource, paginate_resource

from restsync_assets.runtime.ordered_jobs import ordered_rows
from restsync_assets.runtime.transforms import NOT_HINTS, child_resource
from restsync_assets.specs.model import (
    FAN_KEYS,
    ForEachSpec,
    ParentKeysSpec,
    ResourceSpec,
    SourceSpec,
)

__all__ = ["dlt_params", "first_value_params", "with_fanned_children", "with_for_each"]


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
    built = {r.name: r for r in rest_api_resources(config)}
    for name, resource in listed.items():
        built[name] = per_value(built[name], configs[name], resource)
    for resource in spec.resources:  # a listed parent's children read the rows of each value
        if resource.parent in listed:
            built[resource.name].pipe_data_from(built[resource.parent])
    return {"client": config["client"], "resources": list(built.values())}


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


def dlt_params(resource: ResourceSpec, params: dict[str, Any]) -> dict[str, Any]:
    """A child's params as dlt takes them: restsync's `batch_size`/`explode` keys removed, and
    such a param in the query written as dlt's `{resources.<parent>.<field>}`."""
    keys = resource.parent_keys
    if keys is None:
        return params
    written = params[keys.param]
    if keys.in_query:
        return {**params, keys.param: f"{{resources.{keys.parent}.{keys.field}}}"}
    return {**params, keys.param: {k: v for k, v in written.items() if k not in FAN_KEYS}}


def with_fanned_children(spec: SourceSpec, config: dict, written: dict) -> dict:
    """`config` with each child that batches or explodes its parent's keys reading regrouped
    parent rows; unchanged when there is none."""
    fanned = {r.name: r.parent_keys for r in spec.resources if r.parent_keys is not None}
    if not fanned:
        return config
    configs = {r["name"]: r for r in written["resources"]}
    built = {r.name: r for r in rest_api_resources(config)}
    replaced: set[str] = set()
    for resource in spec.resources:  # parents before children
        if resource.parent is None:
            continue
        parent = built[resource.parent]
        if resource.name in fanned:
            built[resource.name] = regrouped_child(
                built[resource.name],
                parent,
                configs[resource.name],
                fanned[resource.name],
                spec.concurrency,
            )
            replaced.add(resource.name)
        elif resource.parent in replaced:
            built[resource.name].pipe_data_from(parent)
    return {"client": config["client"], "resources": list(built.values())}


def regrouped_child(
    child: DltResource,
    parent: DltResource,
    config: dict[str, Any],
    keys: ParentKeysSpec,
    concurrency: int = 1,
) -> DltResource:
    """A transformer of `parent` that hands dlt's request code the regrouped parent rows; at
    `concurrency` > 1 their requests run that many at once, rows in order
    (`ordered_jobs.in_order`)."""
    args = {**child.explicit_args, "parallelized": False}

    def per_page(items: Any) -> Iterator[Any]:
        rows = list(regroup(items if isinstance(items, list) else [items], keys))
        if concurrency > 1:
            jobs = paginate_dependent_resource(rows, **{**args, "parallelized": True})
            return ordered_rows(jobs, args["client"], concurrency, child.name)
        return paginate_dependent_resource(rows, **args)

    return child_resource(per_page, parent, config, args)


def regroup(rows: list[Any], keys: ParentKeysSpec) -> Iterator[dict[str, Any]]:
    """`batch_size` rows at a time as one item (their keys joined), or one item per element
    of each row's list."""
    if keys.batch_size is not None:
        values = [str(r[keys.field]) for r in rows if r.get(keys.field) is not None]
        for start in range(0, len(values), keys.batch_size):
            yield {keys.field: keys.separator.join(values[start : start + keys.batch_size])}
        return
    for row in rows:
        found = row.get(keys.field)
        for element in found if isinstance(found, list) else ([] if found is None else [found]):
            value = element.get(keys.item_field) if keys.item_field else element
            if value is not None:
                yield {**row, keys.field: value}

"""Stage 3: defaults: `resource_defaults` merged into each resource exactly as dlt merges them,
and the `error_handler` layers (client, `resource_defaults`, resource) merged field by field."""

from __future__ import annotations

import re
from copy import deepcopy
from typing import Any, NamedTuple

from restsync_assets.specs.errors import Invalid, mapping, validated
from restsync_assets.specs.model import ErrorHandler

RESOURCE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: endpoint keys dlt merges one level deep
DEEP_MERGED_KEYS = ("params", "json")


class Merged(NamedTuple):
    """The resources with their defaults merged in, in file order."""

    defaults: dict
    resources: list[dict]
    #: the `resource_defaults.error_handler` layer
    retries: dict


def merge_defaults(raw: dict) -> Merged:
    """`resource_defaults` merged into every resource of the spec; resource names unique."""
    defaults = _checked_defaults(raw.get("resource_defaults"))
    retries = retry_layer(defaults.get("error_handler"), "resource_defaults.error_handler")
    resources = raw.get("resources")
    if not isinstance(resources, list) or not resources:
        raise Invalid("must be a non-empty list of resources", key="resources")
    merged = [merge_resource(defaults, r, i) for i, r in enumerate(resources)]
    names = [r["name"] for r in merged]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise Invalid("duplicate resource name", resource=name, key="name")
    return Merged(defaults, merged, retries)


def merge_resource(defaults: dict, resource: Any, index: int) -> dict:
    """`resource_defaults` merged into a resource exactly as dlt's `rest_api` merges them.

    The resource is normalized as dlt normalizes it (a string is a name and path, a string
    endpoint is a path, a missing path is the resource's name: never the defaults'), then
    merged by dlt's own function: the resource's keys win, `endpoint.params` and
    `endpoint.json` merge one level deep, `columns` merge column by column.
    """
    # dlt's own function (private, but the one `rest_api_source` runs), so restsync merges
    # exactly as the installed dlt does; the parity tests break if it ever changes
    from dlt.sources.rest_api.config_setup import _merge_resource_endpoints

    if isinstance(resource, str):
        resource = {"name": resource, "endpoint": {"path": resource}}
    if not isinstance(resource, dict):
        raise Invalid("must be a mapping or a resource name", key=f"resources[{index}]")
    name = resource.get("name")
    if not isinstance(name, str) or not RESOURCE_NAME_RE.match(name):
        raise Invalid(
            f"must be a name of letters, digits and _ (it becomes the table and asset name), got {name!r}",
            key=f"resources[{index}].name",
        )
    resource = deepcopy(resource)
    endpoint = resource.get("endpoint", {})
    if isinstance(endpoint, str):
        endpoint = {"path": endpoint}
    endpoint = mapping(endpoint, "endpoint", resource=name)
    endpoint.setdefault("path", name)
    resource["endpoint"] = _checked_deep_keys(endpoint, "endpoint", name)
    return _merge_resource_endpoints(deepcopy(defaults), resource)


def _checked_defaults(raw: Any) -> dict:
    """`resource_defaults`, checked where dlt's merge needs mappings."""
    defaults = deepcopy(mapping(raw, "resource_defaults"))
    if defaults.get("endpoint") is not None:
        key = "resource_defaults.endpoint"
        defaults["endpoint"] = _checked_deep_keys(mapping(defaults["endpoint"], key), key)
    return defaults


def _checked_deep_keys(endpoint: dict, key: str, resource: str | None = None) -> dict:
    """`endpoint` with its `params` and `json` (the keys dlt merges one level deep) checked
    to be mappings; an empty one (`params:` with no value) counts as absent."""
    for deep in DEEP_MERGED_KEYS:
        if deep in endpoint and endpoint[deep] is None:
            endpoint.pop(deep)
        elif deep in endpoint:
            mapping(endpoint[deep], f"{key}.{deep}", resource=resource)
    return endpoint


def retry_layer(value: Any, key: str, resource: str | None = None) -> dict:
    """One layer of `error_handler` fields, checked on its own."""
    fields = mapping(value, key, resource=resource)
    if fields:
        validated(ErrorHandler, fields, key, resource)
    return fields


def merged_error_handler(layers: list[dict], resource: str) -> ErrorHandler:
    """The `error_handler` in effect: the nearest layer wins field by field."""
    merged: dict = {}
    for layer in layers:
        merged.update(layer)
    return validated(ErrorHandler, merged, "error_handler", resource)

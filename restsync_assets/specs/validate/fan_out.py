"""Fan-out beyond one request per parent row: `for_each` (a static list of values, one request
sequence per value) and a child's batched or exploded parent keys (`batch_size`, `explode`)."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, validated
from restsync_assets.specs.model import FAN_KEYS, TRANSFORM_KEYS, ForEachSpec, ParentKeysSpec


def validate_for_each(
    value: Any,
    resource: str,
    parent: str | None,
    endpoint: dict,
    async_job: bool = False,
) -> ForEachSpec | None:
    """The `for_each` model; refused where a run could not read each value in full."""
    if value is None:
        return None
    spec = validated(ForEachSpec, value, "for_each", resource)
    why = None
    if async_job:
        why = "an async job (endpoint.async_job) creates one report per run"
    elif parent is not None:
        why = "a child resource is already read once per parent row"
    elif endpoint.get("incremental") is not None or any(
        isinstance(v, dict) and v.get("type") == "incremental"
        for v in (endpoint.get("params") or {}).values()
    ):
        why = "an incremental cursor would be shared by every listed value"
    if why:
        raise Invalid(f"not supported here: {why}", resource=resource, key="for_each")
    if spec.placeholder in endpoint["path"] and spec.param is not None:
        raise Invalid(
            f"the value fills {spec.placeholder} in the path; remove param (or the placeholder)",
            resource=resource,
            key="for_each.param",
        )
    return spec


def validate_parent_keys(
    endpoint: dict, raw: dict, resource: str, has_cursor: bool, async_job: bool = False
) -> ParentKeysSpec | None:
    """A child's resolve param with `batch_size` or `explode` (at most one), checked."""
    fanned = [
        (param, value)
        for param, value in (endpoint.get("params") or {}).items()
        if isinstance(value, dict) and value.get("type") == "resolve" and set(value) & set(FAN_KEYS)
    ]
    if not fanned:
        return None
    if len(fanned) > 1:
        raise Invalid(
            "only one resolve param may batch or explode its parent's keys",
            resource=resource,
            key=f"endpoint.params.{fanned[1][0]}",
        )
    param, value = fanned[0]
    key = f"endpoint.params.{param}"
    fields = {k: v for k, v in value.items() if k in FAN_KEYS}
    in_query = "{" + str(param) + "}" not in endpoint["path"]
    spec = validated(
        ParentKeysSpec,
        {
            "param": param,
            "parent": value["resource"],
            "field": value["field"],
            "in_query": in_query,
            **fields,
        },
        key,
        resource,
    )
    why = None
    if async_job:
        why = "an async job (endpoint.async_job) creates one report per parent row"
    elif has_cursor:
        why = "an incremental child keeps one cursor per parent row"
    elif any(raw.get(k) for k in TRANSFORM_KEYS):
        why = "record transforms see one parent row per request"
    elif spec.batch_size is not None and raw.get("include_from_parent"):
        why = "a batched request has many parent rows to include from"
    if why:
        raise Invalid(f"not supported here yet: {why}", resource=resource, key=key)
    return spec

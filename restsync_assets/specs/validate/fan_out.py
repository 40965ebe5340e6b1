"""`for_each` of a resource: a static list of values, one request sequence per value."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, validated
from restsync_assets.specs.model import ForEachSpec


def validate_for_each(
    value: Any, resource: str, parent: str | None, endpoint: dict, has_children: bool
) -> ForEachSpec | None:
    """The `for_each` model; refused where a run could not read each value in full."""
    if value is None:
        return None
    spec = validated(ForEachSpec, value, "for_each", resource)
    why = None
    if parent is not None:
        why = "a child resource is already read once per parent row"
    elif has_children:
        why = "a resource with children cannot be read per listed value yet"
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

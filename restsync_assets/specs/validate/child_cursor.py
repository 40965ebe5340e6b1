"""A child's `incremental`, which restsync keeps per parent row (`runtime.child_cursors`)."""

from __future__ import annotations

from restsync_assets.specs.errors import Invalid, pydantic_errors
from restsync_assets.specs.model import ChildCursorSpec


def validate_child_cursor(endpoint: dict, resource: str) -> ChildCursorSpec | None:
    """A child's `incremental` (on the endpoint or a `type: incremental` param): only what
    makes sense per parent is allowed."""
    found = [
        (f"endpoint.params.{param}", value)
        for param, value in (endpoint.get("params") or {}).items()
        if isinstance(value, dict) and value.get("type") == "incremental"
    ]
    if isinstance(endpoint.get("incremental"), dict):
        found.append(("endpoint.incremental", endpoint["incremental"]))
    if not found:
        return None
    key, config = found[0]  # dlt, too, prefers the param
    func = config.get("last_value_func")
    if func not in (None, "max"):
        raise Invalid(
            f"a child's cursor is kept per parent row as the newest value seen; only"
            f" 'max' is supported on a child resource, got {func!r}",
            resource=resource,
            key=f"{key}.last_value_func",
        )
    if config.get("allow_external_schedulers"):
        raise Invalid(
            "not supported on a child resource (its cursor is kept per parent row);"
            " use partitions on the parent for scheduled windows",
            resource=resource,
            key=f"{key}.allow_external_schedulers",
        )
    cursor_path = config.get("cursor_path")
    if not isinstance(cursor_path, str) or not cursor_path:
        raise Invalid(
            "is required: the field of each child row that holds the cursor",
            resource=resource,
            key=f"{key}.cursor_path",
        )
    primary_key = config.get("primary_key")
    if primary_key is not None:
        primary_key = (primary_key,) if isinstance(primary_key, str) else tuple(primary_key)
    with pydantic_errors(ChildCursorSpec, key, resource):
        return ChildCursorSpec(
            cursor_path=cursor_path,
            initial_value=config.get("initial_value"),
            end_value=config.get("end_value"),
            lag=config.get("lag"),
            range_start=config.get("range_start") or "closed",
            range_end=config.get("range_end") or "open",
            on_cursor_value_missing=config.get("on_cursor_value_missing") or "raise",
            row_order=config.get("row_order"),
            primary_key=primary_key,
        )

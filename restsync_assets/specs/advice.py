"""Warnings about valid specs: choices that load, but likely not as their author meant.

One line each, in the form of a validation error (file, resource, key), so `restsync validate`
prints them beside the `ok` lines; nothing here refuses a spec.
"""

from __future__ import annotations

from restsync_assets.specs.errors import SpecError
from restsync_assets.specs.model import ResourceSpec, SourceSpec


def spec_warnings(spec: SourceSpec) -> list[str]:
    """Every warning about `spec`, one line each."""
    return [
        SpecError(spec.path, message, resource=resource.name, key=key).line()
        for resource in spec.resources
        for key, message in _resource_warnings(resource)
    ]


def _resource_warnings(resource: ResourceSpec) -> list[tuple[str, str]]:
    found = []
    if _disposition(resource) == "append" and resource.primary_key_columns:
        found.append(
            (
                "primary_key",
                "write_disposition is append, so the key does not deduplicate: a re-run or an"
                " overlapping window appends the same rows again; use write_disposition: merge"
                " to upsert by the key",
            )
        )
    return found


def _disposition(resource: ResourceSpec) -> str:
    value = resource.write_disposition
    return value.get("disposition", "append") if isinstance(value, dict) else value

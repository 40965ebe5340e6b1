"""`parents:` of a child resource: which parents an incremental child is asked for."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, allowed
from restsync_assets.specs.model import PARENTS


def validate_parents(value: Any, resource: str, parent: str | None) -> str:
    """`all` (default) or `changed`; only on a resource that has a parent."""
    if value is None:
        return "all"
    if not isinstance(value, str) or value not in PARENTS:
        raise Invalid(
            f"unknown value {value!r}; {allowed(PARENTS)}", resource=resource, key="parents"
        )
    if parent is None:
        raise Invalid(
            "parents needs a parent resource (it says which parents a child is asked for)",
            resource=resource,
            key="parents",
        )
    return value

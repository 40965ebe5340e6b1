"""`on_invalid:` of a resource: `fail` (dlt's behaviour) or `quarantine`."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, allowed
from restsync_assets.specs.model import ON_INVALID, Column


def validate_on_invalid(
    value: Any, resource: str, columns: tuple[Column, ...], primary_key: Any
) -> str:
    """`fail` or `quarantine`; quarantine needs something a row can break (a schema or a key)."""
    if value is None:
        return "fail"
    if not isinstance(value, str) or value not in ON_INVALID:
        raise Invalid(
            f"unknown value {value!r}; {allowed(ON_INVALID)}", resource=resource, key="on_invalid"
        )
    if value == "quarantine" and not columns and not primary_key:
        raise Invalid(
            "quarantine needs a declared schema or a primary_key (without either no row can be"
            " invalid)",
            resource=resource,
            key="on_invalid",
        )
    return value

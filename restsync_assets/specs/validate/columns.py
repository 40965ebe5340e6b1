"""`schema:` into columns: field names mapped to a type or `{type, nullable}`."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, allowed
from restsync_assets.specs.model import COLUMN_KEYS, COLUMN_TYPES, Column


def validate_columns(schema: Any, resource: str) -> tuple[Column, ...]:
    if schema is None:
        return ()
    if not isinstance(schema, dict):
        raise Invalid(
            "must map field names to a type or {type, nullable}", resource=resource, key="schema"
        )
    return tuple(_column(name, decl, resource) for name, decl in schema.items())


def _column(name: Any, decl: Any, resource: str) -> Column:
    key = f"schema.{name}"
    if isinstance(decl, str):
        decl = {"type": decl}
    if not isinstance(decl, dict):
        raise Invalid("must be a type name or {type, nullable}", resource=resource, key=key)
    unknown = set(decl) - set(COLUMN_KEYS)
    if unknown:
        raise Invalid(
            f"unknown key {sorted(unknown)[0]!r}; {allowed(COLUMN_KEYS)}",
            resource=resource,
            key=key,
        )
    kind = decl.get("type")
    if kind not in COLUMN_TYPES:
        raise Invalid(
            f"unknown type {kind!r}; {allowed(COLUMN_TYPES)}", resource=resource, key=f"{key}.type"
        )
    nullable = decl.get("nullable", True)
    if not isinstance(nullable, bool):
        raise Invalid("must be true or false", resource=resource, key=f"{key}.nullable")
    return Column(name=str(name), data_type=COLUMN_TYPES[kind], nullable=nullable)

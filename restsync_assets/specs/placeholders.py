"""`{placeholders}` as dlt reads them (`string.Formatter`), and plain params filled into paths."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from restsync_assets.specs.errors import Invalid

#: placeholder prefixes dlt fills itself (`{resources.<parent>.<field>}`, `{incremental.start_value}`)
CONTEXTS = ("resources.", "incremental.")


def format_parse(text: str, resource: str, key: str) -> list[tuple]:
    """`string.Formatter().parse(text)`: how dlt reads placeholders (`{{` is a literal `{`)."""
    try:
        return list(string.Formatter().parse(text))
    except ValueError as error:
        raise Invalid(
            f"{text!r}: {error}; write a literal {{ or }} as {{{{ or }}}}",
            resource=resource,
            key=key,
        ) from None


def template_fields(value: Any, resource: str, key: str) -> list[str]:
    """The `{placeholders}` of every string (and mapping key) in `value`, as dlt finds them."""
    if isinstance(value, Mapping):
        return [
            f
            for k, v in value.items()
            for f in (*template_fields(k, resource, key), *template_fields(v, resource, key))
        ]
    if isinstance(value, (list, tuple)):
        return [f for item in value for f in template_fields(item, resource, key)]
    if isinstance(value, str):
        return [f for _, f, _, _ in format_parse(value, resource, key) if f]
    return []


def bind_plain_params(resource: str, endpoint: dict) -> str:
    """Fill path placeholders from plain params and take those params out of the query,
    as dlt's `_bind_path_params` does: `orgs/{org}/repos` with `params: {org: acme}`
    requests `orgs/acme/repos`, without an `org` query param. Returns the path."""
    path, params = endpoint["path"], endpoint.get("params") or {}
    segments, used = [], set()
    for literal, field_name, _, _ in format_parse(path, resource, "endpoint.path"):
        segments.append(_escape(literal))
        if not field_name:
            continue
        value = params.get(field_name)
        if (
            field_name.startswith(CONTEXTS)
            or field_name not in params
            or (isinstance(value, dict) and value.get("type") == "resolve")
        ):
            segments.append("{" + field_name + "}")
            continue
        if isinstance(value, dict):
            raise Invalid(
                f"{{{field_name}}} in the path takes a plain value or a resolve param, not {value!r}",
                resource=resource,
                key=f"endpoint.params.{field_name}",
            )
        segments.append(_escape(str(value)))
        used.add(field_name)
    if used:
        endpoint["path"] = "".join(segments)
        endpoint["params"] = {k: v for k, v in params.items() if k not in used}
    return endpoint["path"]


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")

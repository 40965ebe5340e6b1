"""`endpoint.response_format`: json (default), jsonl or csv; restsync's key, never dlt's.

A JSON Lines or CSV body is a list of records and nothing else, so what reads a JSON envelope
is refused with it: `data_selector`, and the paginators that read the body (`json_link`,
`json_response`, dlt's `cursor`, a templated cursor reading `response`, a total).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from restsync_assets.specs.errors import Invalid, allowed
from restsync_assets.specs.model import (
    RESPONSE_FORMATS,
    DltPaginatorSpec,
    PaginatorSpec,
    ResourceSpec,
    ResponseFormat,
    TemplatedCursorPaginatorSpec,
)

KEY = "endpoint.response_format"
#: dlt's paginators that read the JSON body
_BODY_PAGINATORS = ("json_link", "json_response", "cursor", "auto")
#: dlt's paginators that read a total from the body unless `total_path: null`
_TOTAL_PAGINATORS = ("page_number", "offset")


def validate_response_format(
    endpoint: dict, resource: str, paginator: PaginatorSpec | None
) -> ResponseFormat:
    """The endpoint's format, removed from `endpoint` (which goes to dlt)."""
    value = endpoint.pop("response_format", "json")
    if value not in RESPONSE_FORMATS:
        raise Invalid(
            f"unknown response format {value!r}; {allowed(RESPONSE_FORMATS)}",
            resource=resource,
            key=KEY,
        )
    if value == "json":
        return value
    if endpoint.get("data_selector") is not None:
        raise Invalid(
            f"a {value} body is a list of records: data_selector does not apply to it",
            resource=resource,
            key="endpoint.data_selector",
        )
    problem = _paginator_problem(paginator)
    if problem:
        raise Invalid(
            f"{problem}; with response_format {value} use offset, page_number, header_link,"
            " header_cursor or single_page",
            resource=resource,
            key="endpoint.paginator",
        )
    return value


def _paginator_problem(paginator: PaginatorSpec | None) -> str | None:
    if isinstance(paginator, TemplatedCursorPaginatorSpec):
        from restsync_assets.specs.templates import compile_template  # Jinja only when used

        templates = (paginator.cursor_value, paginator.stop_condition)
        if any("response" in compile_template(t).variables for t in templates if t):
            return "this cursor paginator reads the response body, which is not JSON"
        return None
    if not isinstance(paginator, DltPaginatorSpec):
        return None
    if paginator.type in _BODY_PAGINATORS:
        return f"{paginator.type} reads the response body as JSON"
    config: Any = paginator.config
    has_total = not isinstance(config, dict) or config.get("total_path", "total") is not None
    if paginator.type in _TOTAL_PAGINATORS and has_total:
        return (
            f"{paginator.type} reads a total from the body; set total_path: null so it stops"
            " on an empty page"
        )
    return None


def check_shared_paths(resources: Iterable[ResourceSpec]) -> None:
    """Resources whose paths match the same URLs must agree on the format: restsync's session
    tells a response's resource by its URL path."""
    seen: dict[str, ResourceSpec] = {}
    for resource in resources:
        path = re.sub(r"\{[^{}/]*\}", "{}", resource.endpoint["path"].split("?")[0].strip("/"))
        other = seen.setdefault(path, resource)
        if other.response_format != resource.response_format:
            raise Invalid(
                f"{resource.response_format}, but resource '{other.name}' reads the same path"
                f" as {other.response_format}; resources of one path share its format",
                resource=resource.name,
                key=KEY,
            )

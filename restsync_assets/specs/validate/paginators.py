"""`paginator` into a paginator model: restsync's templated cursor or offset, or dlt's own."""

from __future__ import annotations

import re
from typing import Any

from restsync_assets.specs.errors import Invalid, allowed, validated
from restsync_assets.specs.model import (
    PAGINATOR_MODELS,
    PAGINATOR_TYPES,
    DltPaginatorSpec,
    OffsetPaginatorSpec,
    PaginatorSpec,
    TemplatedCursorPaginatorSpec,
    paginator_kind,
)


def validate_paginator(paginator: Any, key: str, resource: str | None) -> PaginatorSpec | None:
    """A paginator name or mapping; restsync's templates are compiled to check them."""
    if paginator is None:
        return None
    if isinstance(paginator, str):
        if paginator not in PAGINATOR_TYPES:
            raise Invalid(
                f"unknown paginator {paginator!r}; {allowed(PAGINATOR_TYPES)}",
                resource=resource,
                key=key,
            )
    elif not isinstance(paginator, dict):
        raise Invalid(
            "must be a paginator name or a mapping with a type", resource=resource, key=key
        )
    elif paginator.get("type") not in PAGINATOR_TYPES:
        raise Invalid(
            f"unknown paginator type {paginator.get('type')!r}; {allowed(PAGINATOR_TYPES)}",
            resource=resource,
            key=f"{key}.type",
        )
    kind = paginator_kind(paginator)
    if kind == DltPaginatorSpec.kind:  # dlt's own: dlt checks it (see `check_with_dlt`)
        return DltPaginatorSpec.as_written(paginator)
    spec = validated(PAGINATOR_MODELS[kind], paginator, key, resource)
    if isinstance(spec, TemplatedCursorPaginatorSpec):
        for field_name in ("cursor_value", "stop_condition"):
            template = getattr(spec, field_name)
            if template is not None:
                _check_template(template, resource, f"{key}.{field_name}")
        _check_cursor_target(spec, resource, key)
    if isinstance(spec, OffsetPaginatorSpec):
        _check_scan_end(spec, resource, key)
    return spec


def _check_scan_end(spec: OffsetPaginatorSpec, resource: str | None, key: str) -> None:
    """`stop_after_empty_page: false` leaves the end of the scan to total, has_more or
    maximum_offset: one of them must be set."""
    if spec.stop_after_empty_page or spec.total_path or spec.has_more_path:
        return
    if spec.maximum_offset is not None:
        return
    raise Invalid(
        "false leaves the end of the scan to total_path, has_more_path or maximum_offset,"
        " and none is set: set one (or remove stop_after_empty_page)",
        resource=resource,
        key=f"{key}.stop_after_empty_page",
    )


#: a dotted path of JSON keys: `after`, `variables.after`
BODY_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")
#: an HTTP header name (RFC 9110 token characters)
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: the methods (of dlt's GET and POST) that send a JSON body for `cursor_body_path`
BODY_METHODS = ("POST",)


def _check_cursor_target(
    spec: TemplatedCursorPaginatorSpec, resource: str | None, key: str
) -> None:
    """The cursor goes into the query (`cursor_param`), the JSON body (`cursor_body_path`)
    or a request header (`cursor_header`): one of them."""
    targets = [
        name
        for name in ("cursor_param", "cursor_body_path", "cursor_header")
        if getattr(spec, name) is not None
    ]
    if len(targets) > 1:
        raise Invalid(
            "a cursor goes into the query (cursor_param), the JSON body (cursor_body_path)"
            f" or a request header (cursor_header), one of them: remove {targets[-1]}",
            resource=resource,
            key=f"{key}.{targets[-1]}",
        )
    path = spec.cursor_body_path
    if path is not None and not BODY_PATH.fullmatch(path):
        raise Invalid(
            f"{path!r} is not a dotted path of JSON keys such as after or variables.after",
            resource=resource,
            key=f"{key}.cursor_body_path",
        )
    header = spec.cursor_header
    if header is not None and not HEADER_NAME.fullmatch(header):
        raise Invalid(
            f"{header!r} is not an HTTP header name such as X-Page-Token",
            resource=resource,
            key=f"{key}.cursor_header",
        )
    _check_initial_cursor(spec, targets, resource, key)


def _check_initial_cursor(
    spec: TemplatedCursorPaginatorSpec, targets: list[str], resource: str | None, key: str
) -> None:
    """`initial_cursor` is a value sent where every cursor goes: a param, body path or header."""
    if spec.initial_cursor is not None and not targets:
        raise Invalid(
            "the first request sends initial_cursor where every cursor goes: set"
            " cursor_param, cursor_body_path or cursor_header",
            resource=resource,
            key=f"{key}.initial_cursor",
        )


def check_body_method(paginator: Any, endpoint: dict, resource: str) -> None:
    """A cursor written into the JSON body needs a request that sends one."""
    if not isinstance(paginator, TemplatedCursorPaginatorSpec) or not paginator.cursor_body_path:
        return
    method = str(endpoint.get("method") or "GET").upper()
    if method not in BODY_METHODS:
        raise Invalid(
            f"the paginator writes the cursor into the JSON body (cursor_body_path), which a"
            f" {method} request does not send; {allowed(BODY_METHODS)}",
            resource=resource,
            key="endpoint.method",
        )


#: the variables a paginator template may read (see `TemplatedCursorPaginator`)
PAGINATOR_TEMPLATE_VARIABLES = ("cursor", "headers", "last_page", "links", "response")


def _check_template(template: str, resource: str | None, key: str) -> None:
    from restsync_assets.specs.templates import TemplateError, compile_template

    try:
        compiled = compile_template(template)
    except TemplateError as error:
        raise Invalid(str(error), resource=resource, key=key) from None
    unknown = sorted(compiled.variables - set(PAGINATOR_TEMPLATE_VARIABLES))
    if unknown:
        raise Invalid(
            f"template reads {unknown[0]!r}; {allowed(PAGINATOR_TEMPLATE_VARIABLES)}",
            resource=resource,
            key=key,
        )

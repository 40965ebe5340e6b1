"""`paginator` into a paginator model: restsync's templated cursor or offset, or dlt's own."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, allowed, validated
from restsync_assets.specs.model import (
    PAGINATOR_MODELS,
    PAGINATOR_TYPES,
    DltPaginatorSpec,
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
    return spec


def _check_template(template: str, resource: str | None, key: str) -> None:
    from restsync_assets.specs.templates import TemplateError, compile_template

    try:
        compile_template(template)
    except TemplateError as error:
        raise Invalid(str(error), resource=resource, key=key) from None

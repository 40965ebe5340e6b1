"""One bound resource's fields, validated into a `ResourceSpec`."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.bindings import Bound
from restsync_assets.specs.defaults import merged_error_handler, retry_layer
from restsync_assets.specs.errors import Collector, Invalid, allowed, pydantic_errors
from restsync_assets.specs.model import (
    EXTENSION_RESOURCE_KEYS,
    RESOURCE_FIELD_KEYS,
    WRITE_DISPOSITIONS,
    AsyncJobSpec,
    PaginatorSpec,
    ResourceSpec,
)
from restsync_assets.specs.selectors import compile_jsonpath, normalize_selector
from restsync_assets.specs.validate.async_job import validate_async_job
from restsync_assets.specs.validate.auth import validate_auth
from restsync_assets.specs.validate.catalog import Catalog
from restsync_assets.specs.validate.child_cursor import validate_child_cursor
from restsync_assets.specs.validate.columns import validate_columns
from restsync_assets.specs.validate.deletes import validate_deletes
from restsync_assets.specs.validate.dlt_check import check_with_dlt
from restsync_assets.specs.validate.fan_out import validate_for_each, validate_parent_keys
from restsync_assets.specs.validate.operations import validate_operations
from restsync_assets.specs.validate.paginators import check_body_method, validate_paginator
from restsync_assets.specs.validate.parents import validate_parents
from restsync_assets.specs.validate.quarantine import validate_on_invalid
from restsync_assets.specs.validate.request_values import for_dlt, validate_request_values
from restsync_assets.specs.validate.response_format import validate_response_format
from restsync_assets.specs.validate.step import validate_step
from restsync_assets.specs.validate.transforms import validate_transforms


def validate_resource(
    bound: Bound,
    retry_layers: tuple[dict, dict],
    spec: str,
    catalog: Catalog,
    has_children: bool = False,
) -> ResourceSpec:
    """Every field of one resource; the problems of independent fields are reported together,
    in the order below (dlt's own check only runs once the rest is valid)."""
    raw, name, parent = bound.raw, bound.raw["name"], bound.parent
    problems = Collector()
    endpoint, paginator, response_format, async_job = problems.take(
        _endpoint, bound, spec, default=(dict(bound.endpoint), None, "json", None)
    )
    resource_retries = problems.take(
        retry_layer, raw.get("error_handler"), "error_handler", name, default={}
    )
    error_handler = problems.take(
        merged_error_handler, [*retry_layers, resource_retries], name, default=None
    )
    columns = problems.take(validate_columns, raw.get("schema"), name, default={})
    include = tuple(dict.fromkeys([*(raw.get("include_from_parent") or []), *bound.carried]))
    problems.take(_check_include, include, parent, name, default=None)
    write_disposition = problems.take(
        _write_disposition, raw.get("write_disposition", "append"), name, default="append"
    )
    primary_key = raw.get("primary_key")
    if isinstance(primary_key, list):
        primary_key = tuple(primary_key)
    hints = {
        k: v for k, v in raw.items() if k not in (*RESOURCE_FIELD_KEYS, *EXTENSION_RESOURCE_KEYS)
    }
    operations = problems.take(validate_operations, raw, name, default=None)
    deletes = problems.take(validate_deletes, raw.get("deletes"), name, default=None)
    owners = problems.take(catalog.owners_of, raw, name, default=())
    tags = problems.take(catalog.tags_of, raw, name, default={})
    if problems.clean:  # dlt's check reads the fields above as restsync validated them
        problems.take(
            check_with_dlt,
            name,
            for_dlt(endpoint),
            paginator,
            primary_key,
            write_disposition,
            hints,
            default=None,
        )
    if primary_key is not None and not isinstance(primary_key, str):
        primary_key = tuple(primary_key)  # the columns of any sequence dlt took
    cursor = None
    if parent is not None:
        cursor = problems.take(validate_child_cursor, endpoint, name, default=None)
    transforms = problems.take(
        validate_transforms,
        raw,
        name,
        child=parent is not None,
        keys=_keys(primary_key, endpoint),
        default=None,
    )
    on_invalid = problems.take(
        validate_on_invalid, raw.get("on_invalid"), name, columns, primary_key, default=None
    )
    parents = problems.take(validate_parents, raw.get("parents"), name, parent, default="all")
    for_each = problems.take(
        validate_for_each,
        raw.get("for_each"),
        name,
        parent,
        endpoint,
        async_job is not None,
        default=None,
    )
    parent_keys = problems.take(
        validate_parent_keys,
        endpoint,
        raw,
        name,
        cursor is not None,
        async_job is not None,
        default=None,
    )
    step = problems.take(
        validate_step,
        endpoint,
        raw,
        name,
        parent is not None,
        has_children,
        async_job is not None,
        default=None,
    )
    problems.done()
    with pydantic_errors(ResourceSpec, "", name):
        return ResourceSpec(
            name=name,
            endpoint=endpoint,
            paginator=paginator,
            data_selector=endpoint.get("data_selector"),
            primary_key=primary_key,
            write_disposition=write_disposition,
            error_handler=error_handler,
            columns=columns,
            parent=parent,
            bindings=bound.bindings,
            include_from_parent=include,
            hints=hints,
            partitions=operations.partitions,
            freshness=operations.freshness,
            max_lag_seconds=operations.max_lag_seconds,
            warn_lag_seconds=operations.warn_lag_seconds,
            checks=operations.checks,
            automation=operations.automation,
            cursor=cursor,
            owners=owners,
            tags=tags,
            line=catalog.lines.get(name),
            transforms=transforms,
            response_format=response_format,
            deletes=deletes,
            on_invalid=on_invalid,
            parents=parents,
            async_job=async_job,
            for_each=for_each,
            parent_keys=parent_keys,
            step=step,
        )


def _check_include(include: tuple[str, ...], parent: str | None, resource: str) -> None:
    if include and parent is None:
        raise Invalid(
            "include_from_parent needs a parent resource",
            resource=resource,
            key="include_from_parent",
        )


def _keys(primary_key: Any, endpoint: dict) -> tuple[str, ...]:
    """The fields a row must have after the transforms: primary key and incremental cursor."""
    keys = [primary_key] if isinstance(primary_key, str) else list(primary_key or ())
    incremental = endpoint.get("incremental")
    if isinstance(incremental, dict) and isinstance(incremental.get("cursor_path"), str):
        keys.append(incremental["cursor_path"])
    return tuple(keys)


def _endpoint(
    bound: Bound, spec: str
) -> tuple[dict, PaginatorSpec | None, str, AsyncJobSpec | None]:
    """The endpoint handed to dlt (selector normalized, auth as its model), its paginator
    (handed over separately: restsync's own ones are built at run time), its
    `response_format` (restsync's key, not dlt's) and its `async_job` (restsync's too)."""
    endpoint, name = dict(bound.endpoint), bound.raw["name"]
    async_job = validate_async_job(endpoint, name, child=bound.parent is not None)
    paginator = validate_paginator(endpoint.pop("paginator", None), "endpoint.paginator", name)
    response_format = validate_response_format(endpoint, name, paginator)
    check_body_method(paginator, endpoint, name)
    if endpoint.get("data_selector") is not None:
        endpoint["data_selector"] = _selector(endpoint["data_selector"], name)
    if "auth" in endpoint:
        endpoint["auth"] = validate_auth(endpoint["auth"], "endpoint.auth", spec, name)
    validate_request_values(endpoint, name, child=bound.parent is not None)
    return endpoint, paginator, response_format, async_job


def _selector(selector: Any, resource: str) -> str:
    """A `data_selector` in dlt's JSONPath dialect, with `*` walking arrays too."""
    if not isinstance(selector, str) or not selector:
        raise Invalid(
            "must be a JSONPath string such as data or results[*]",
            resource=resource,
            key="endpoint.data_selector",
        )
    try:
        normalized = normalize_selector(selector)
        compile_jsonpath(selector)
        compile_jsonpath(normalized)
    except Exception as error:  # jsonpath-ng raises several exception types
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise Invalid(
            f"{selector!r} is not valid JSONPath ({detail}); e.g. data, results[*], organizations.*.organization",
            resource=resource,
            key="endpoint.data_selector",
        ) from None
    return normalized


def _write_disposition(value: Any, resource: str) -> Any:
    """A write disposition name, or dlt's mapping form (which dlt checks)."""
    if isinstance(value, str) and value not in WRITE_DISPOSITIONS:
        raise Invalid(
            f"unknown write disposition {value!r}; {allowed(WRITE_DISPOSITIONS)}",
            resource=resource,
            key="write_disposition",
        )
    return value

"""Request-time values of an endpoint: relative times in params and in the incremental, and
the incremental's `param_format` (see `specs.model.request_values`)."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, validated
from restsync_assets.specs.model import FAN_KEYS
from restsync_assets.specs.model.request_values import (
    FORMAT_HELP,
    PARAM_FORMAT_KEY,
    RELATIVE_INCREMENTAL_KEYS,
    RESTSYNC_INCREMENTAL_KEYS,
    RelativeTime,
    check_format,
    is_relative,
)


def validate_request_values(endpoint: dict, resource: str, child: bool) -> None:
    """Every relative time and `param_format` of `endpoint` parses; one line otherwise."""
    for param, value in (endpoint.get("params") or {}).items():
        if is_relative(value):
            validated(RelativeTime, value, f"endpoint.params.{param}", resource)
    incremental = endpoint.get("incremental")
    if not isinstance(incremental, dict):
        return
    for key in RELATIVE_INCREMENTAL_KEYS:
        if is_relative(incremental.get(key)):
            where = f"endpoint.incremental.{key}"
            if child:
                raise Invalid(
                    "a relative time is not supported on a child resource (its cursors are"
                    " kept per parent); write a literal value",
                    resource=resource,
                    key=where,
                )
            validated(RelativeTime, incremental[key], where, resource)
    if PARAM_FORMAT_KEY in incremental:
        _param_format(incremental[PARAM_FORMAT_KEY], resource)


def _param_format(value: Any, resource: str) -> None:
    key = f"endpoint.incremental.{PARAM_FORMAT_KEY}"
    if not isinstance(value, str):
        raise Invalid(f"must be {FORMAT_HELP}", resource=resource, key=key)
    try:
        check_format(value)
    except ValueError as error:
        raise Invalid(str(error), resource=resource, key=key) from None


def for_dlt(endpoint: dict) -> dict:
    """`endpoint` as dlt's validator sees it: without restsync's keys (`param_format`, `step`,
    a resolve param's `batch_size`, `explode`, ...)."""
    params = endpoint.get("params") or {}
    if any(isinstance(v, dict) and set(v) & set(FAN_KEYS) for v in params.values()):
        plain = {
            k: {f: x for f, x in v.items() if f not in FAN_KEYS} if isinstance(v, dict) else v
            for k, v in params.items()
        }
        endpoint = {**endpoint, "params": plain}
    incremental = endpoint.get("incremental")
    if not isinstance(incremental, dict) or not set(RESTSYNC_INCREMENTAL_KEYS) & set(incremental):
        return endpoint
    rest = {k: v for k, v in incremental.items() if k not in RESTSYNC_INCREMENTAL_KEYS}
    return {**endpoint, "incremental": rest}

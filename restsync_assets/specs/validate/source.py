"""The client's remaining fields and the whole spec, validated into a `SourceSpec`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from restsync_assets.specs.defaults import Merged
from restsync_assets.specs.document import Document
from restsync_assets.specs.errors import Collector, Invalid, pydantic_errors, validated
from restsync_assets.specs.model import (
    AUTO_CONCURRENCY,
    MAX_CONCURRENCY,
    AuthSpec,
    ErrorHandler,
    ResourceSpec,
    SourceSpec,
)
from restsync_assets.specs.validate.deletes import check_soft_deletes
from restsync_assets.specs.validate.operations import validate_schedule
from restsync_assets.specs.validate.paginators import check_body_method, validate_paginator
from restsync_assets.specs.validate.rate_limit import validate_budgets
from restsync_assets.specs.validate.secrets import secret_keys


def validate_source(
    document: Document,
    path: Path,
    auth: AuthSpec | None,
    client_retries: dict,
    merged: Merged,
    resources: tuple[ResourceSpec, ...],
) -> SourceSpec:
    """The spec, once its resources are valid: the client's paginator, the schedule,
    concurrency, the rate limit, and the secrets read at run time."""
    client, raw = document.client, document.raw
    problems = Collector()
    headers = dict(client.get("headers") or {})
    paginator = problems.take(
        validate_paginator, client.get("paginator"), "client.paginator", None, default=None
    )
    for resource in resources:
        if resource.paginator is None:  # the client's paginator pages this resource
            problems.take(
                check_body_method, paginator, resource.endpoint, resource.name, default=None
            )
    problems.take(check_soft_deletes, resources, paginator, default=None)
    schedule = problems.take(validate_schedule, raw.get("schedule"), default=None)
    concurrency = problems.take(_concurrency, client.get("concurrency", 1), default=1)
    auto = client.get("concurrency") == "auto"
    budgets, header_budget = problems.take(
        validate_budgets, client.get("rate_limit"), default=((), None)
    )
    error_handler = problems.take(
        validated, ErrorHandler, client_retries, "client.error_handler", default=None
    )
    auths = (auth, *(r.endpoint.get("auth") for r in resources))
    secrets = problems.take(
        secret_keys,
        document.name,
        client,
        merged.defaults,
        merged.resources,
        auths,
        default=(),
    )
    problems.done()
    with pydantic_errors(SourceSpec, "", None):
        return SourceSpec(
            name=document.name,
            path=path,
            base_url=document.base_url.rstrip("/"),
            auth=auth,
            client_headers=headers,
            client_paginator=paginator,
            resources=resources,
            description=_text(raw.get("description")),
            schedule=schedule,
            concurrency=concurrency,
            concurrency_auto=auto,
            rate_limit=budgets[0] if budgets else None,
            rate_limits=budgets,
            rate_limit_headers=header_budget,
            error_handler=error_handler,
            secret_keys=secrets,
        )


def _concurrency(value: Any) -> int:
    """A whole number of parallel requests, or `auto` (then its ceiling)."""
    if value == "auto":
        return AUTO_CONCURRENCY
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise Invalid(
            f"must be a whole number of parallel requests from 1 to {MAX_CONCURRENCY}"
            f" or auto, got {value!r}",
            key="client.concurrency",
        )
    return value


def _text(value: Any) -> str | None:
    """Free text as written (YAML may read `description: 2024` as a number)."""
    return None if value is None else str(value)

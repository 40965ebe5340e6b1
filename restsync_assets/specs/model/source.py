"""A validated spec file: one dlt source, one dataset, one Dagster asset group."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

from pydantic import Field

from restsync_assets.specs.model.auth import AuthSpec
from restsync_assets.specs.model.base import StrictModel
from restsync_assets.specs.model.operations import PartitionsSpec, ScheduleSpec
from restsync_assets.specs.model.paginators import PaginatorSpec
from restsync_assets.specs.model.rate_limit import HeaderBudgetSpec, RateLimitSpec
from restsync_assets.specs.model.resource import ResourceSpec
from restsync_assets.specs.model.retries import ErrorHandler

TOP_LEVEL_KEYS = (
    "name",
    "description",
    "client",
    "resource_defaults",
    "resources",
    "schedule",
    "owners",
    "tags",
)
CLIENT_KEYS = (
    "base_url",
    "headers",
    "auth",
    "paginator",
    "error_handler",
    "concurrency",
    "rate_limit",
)
MAX_CONCURRENCY = 64
#: `client.concurrency: auto`: the most requests in flight it may grow to
AUTO_CONCURRENCY = 32
#: headers as written: values are text, or `{secret: <name>}` read at run time
Headers = dict[Hashable, Any]


class SourceSpec(StrictModel):
    """A validated spec file: one dlt source, one dataset, one Dagster asset group."""

    name: str
    path: Path
    base_url: str
    auth: AuthSpec | None
    client_headers: Headers
    client_paginator: PaginatorSpec | None
    resources: tuple[ResourceSpec, ...]
    description: str | None = None
    schedule: ScheduleSpec | None = None
    #: `client.concurrency` (`auto`: `AUTO_CONCURRENCY`, the ceiling of the adaptive level)
    concurrency: int = Field(1, ge=1, le=MAX_CONCURRENCY)
    #: `client.concurrency: auto`: requests in flight found as the run goes (AIMD)
    concurrency_auto: bool = False
    #: `client.rate_limit`: one request budget for the spec's resources, threads and runs
    rate_limit: RateLimitSpec | None = None
    #: every declared budget of `client.rate_limit` (a list, each with an optional `path`)
    rate_limits: tuple[RateLimitSpec, ...] = ()
    #: `client.rate_limit.from_headers`: the budget the API's answers state
    rate_limit_headers: HeaderBudgetSpec | None = None
    #: the client-level `error_handler` (defaults filled in): token requests use it
    error_handler: ErrorHandler = Field(default_factory=ErrorHandler)
    #: names of the `{secret: <name>}` values in headers and params, read at run time
    secret_keys: tuple[str, ...] = ()
    #: asset key path of a resource renamed by a `dg` component's `translation` (resource
    #: name -> path); a resource not listed has the key `[<spec name>, <resource name>]`
    asset_keys: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    def resource(self, name: str) -> ResourceSpec:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def children(self, name: str) -> list[ResourceSpec]:
        return [r for r in self.resources if r.parent == name]

    def load_groups(self) -> list[tuple[PartitionsSpec | None, tuple[ResourceSpec, ...]]]:
        """Resources split by partitioning: one Dagster multi-asset (one op) per group."""
        groups: dict[PartitionsSpec | None, list[ResourceSpec]] = {}
        for resource in self.resources:
            groups.setdefault(resource.partitions, []).append(resource)
        return [(p, tuple(rs)) for p, rs in groups.items()]

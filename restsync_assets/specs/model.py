"""The typed spec model: what a validated `source_specs/*.yaml` file becomes.

A spec is dlt's `rest_api_source` dict plus a top-level `name` and restsync's extensions
(oauth2 auth, templated cursor paginator, offset without total, `error_handler`, `schema`).
The loader (`specs/loader.py`) validates a YAML file once into a `SourceSpec`; everything
downstream (assets, dlt sources, checks) reads these objects, never the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PAGINATOR_TYPES = (
    "auto",
    "cursor",
    "header_cursor",
    "header_link",
    "json_link",
    "json_response",
    "offset",
    "page_number",
    "single_page",
)
DLT_AUTH_TYPES = ("api_key", "bearer", "http_basic", "oauth2_client_credentials")
AUTH_TYPES = ("oauth2", *DLT_AUTH_TYPES)
WRITE_DISPOSITIONS = ("append", "merge", "replace")
SECRET_AUTH_KEYS = ("client_id", "client_secret", "refresh_token", "access_token")

#: Friendly type names accepted in `schema`, mapped to dlt data types.
COLUMN_TYPES: dict[str, str] = {
    "text": "text",
    "string": "text",
    "bigint": "bigint",
    "integer": "bigint",
    "int": "bigint",
    "double": "double",
    "number": "double",
    "float": "double",
    "bool": "bool",
    "boolean": "bool",
    "timestamp": "timestamp",
    "date-time": "timestamp",
    "datetime": "timestamp",
    "date": "date",
    "time": "time",
    "decimal": "decimal",
    "json": "json",
    "object": "json",
    "array": "json",
    "binary": "binary",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorHandler(_Strict):
    """Retry rules (`error_handler`) on the client, `resource_defaults` or a resource."""

    retry_on_status_codes: tuple[int, ...] = (429, 500, 502, 503, 504)
    max_retries: int = Field(3, ge=0, le=50)
    backoff_factor: float = Field(1.0, ge=0)
    max_retry_delay: float = Field(60.0, gt=0)
    timeout: float = Field(60.0, gt=0)

    @field_validator("retry_on_status_codes")
    @classmethod
    def _http_codes(cls, codes: tuple[int, ...]) -> tuple[int, ...]:
        bad = [c for c in codes if not 100 <= c <= 599]
        if bad:
            raise ValueError(f"{bad} are not HTTP status codes (100-599)")
        return codes


class OAuth2AuthSpec(_Strict):
    """`client.auth: {type: oauth2, token_url: ...}`; secrets come from the credentials resource."""

    type: Literal["oauth2"]
    token_url: str
    scopes: tuple[str, ...] = ()


class OffsetPaginatorSpec(_Strict):
    """`{type: offset, limit: N}`: stops on `total`, or on a short/empty page without one."""

    type: Literal["offset"]
    limit: int = Field(gt=0)
    offset: int = Field(0, ge=0)
    offset_param: str = "offset"
    limit_param: str = "limit"
    total_path: str | None = "total"
    maximum_offset: int | None = None
    has_more_path: str | None = None
    stop_after_empty_page: bool = True


class TemplatedCursorPaginatorSpec(_Strict):
    """`{type: cursor, cursor_value: "{{ ... }}", stop_condition: "{{ ... }}"}` (Jinja templates)."""

    type: Literal["cursor"]
    cursor_value: str
    stop_condition: str | None = None
    cursor_param: str | None = None


PARTITION_TYPES = ("hourly", "daily", "weekly", "monthly")
AUTOMATION_CONDITIONS = ("eager", "on_cron", "on_missing")


class PartitionsSpec(_Strict):
    """`partitions:` time windows for a resource; each run loads exactly its window."""

    type: Literal["hourly", "daily", "weekly", "monthly"]
    start: str
    end_offset: int = 0
    timezone: str = "UTC"
    start_param: str | None = None
    end_param: str | None = None
    cursor_path: str | None = None
    param_format: str | None = None
    backfill: Literal["single_run", "per_partition"] = "single_run"

    @property
    def strftime(self) -> str:
        """How the window's bounds are written into the request params."""
        if self.param_format:
            return self.param_format
        return "%Y-%m-%dT%H:%M:%SZ" if self.type == "hourly" else "%Y-%m-%d"


class FreshnessSpec(_Strict):
    """`freshness: {max_lag: 6h}`: stale when the last materialization is older than that."""

    max_lag: str | int
    warn_lag: str | int | None = None


class ChecksSpec(_Strict):
    """`checks:` options of the generated asset checks."""

    min_rows: int | None = Field(None, ge=0)


class ScheduleSpec(_Strict):
    """`schedule: "0 6 * * *"` or `{cron, timezone, enabled}` at the top of a spec."""

    cron: str
    timezone: str = "UTC"
    enabled: bool = False


class AutomationSpec(_Strict):
    """`automation_condition: eager`, `on_missing` or `{on_cron: "0 * * * *"}`."""

    kind: Literal["eager", "on_cron", "on_missing"]
    cron: str | None = None


@dataclass(frozen=True)
class Column:
    """A declared field of a resource (`schema:`), applied as a dlt column hint."""

    name: str
    data_type: str
    nullable: bool = True


@dataclass(frozen=True)
class Binding:
    """A path placeholder bound to a field of a parent (or ancestor) resource."""

    placeholder: str
    resource: str
    field: str


@dataclass(frozen=True)
class ResourceSpec:
    """One REST resource: one dlt resource, one table, one Dagster asset."""

    name: str
    endpoint: dict[str, Any]
    paginator: OffsetPaginatorSpec | TemplatedCursorPaginatorSpec | dict | str | None
    data_selector: str | None
    primary_key: str | tuple[str, ...] | None
    write_disposition: Any
    error_handler: ErrorHandler
    columns: tuple[Column, ...] = ()
    parent: str | None = None
    bindings: tuple[Binding, ...] = ()
    include_from_parent: tuple[str, ...] = ()
    hints: dict[str, Any] = field(default_factory=dict)
    partitions: PartitionsSpec | None = None
    freshness: FreshnessSpec | None = None
    max_lag_seconds: float | None = None
    warn_lag_seconds: float | None = None
    checks: ChecksSpec = field(default_factory=ChecksSpec)
    automation: AutomationSpec | None = None
    #: the spec's and the resource's `owners` (emails or `team:` names) and `tags`
    owners: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    #: line of the spec file where the resource is declared (1-based), for code references
    line: int | None = None

    @property
    def min_rows(self) -> int:
        """Rows the table must hold: the spec's `checks.min_rows`, else 1 (0 if partitioned)."""
        if self.checks.min_rows is not None:
            return self.checks.min_rows
        return 0 if self.partitions else 1

    @property
    def primary_key_columns(self) -> tuple[str, ...]:
        if self.primary_key is None:
            return ()
        if isinstance(self.primary_key, str):
            return (self.primary_key,)
        return tuple(self.primary_key)


@dataclass(frozen=True)
class SourceSpec:
    """A validated spec file: one dlt source, one dataset, one Dagster asset group."""

    name: str
    path: Path
    base_url: str
    auth: OAuth2AuthSpec | dict | None
    client_headers: dict[str, Any]
    client_paginator: Any
    resources: tuple[ResourceSpec, ...]
    description: str | None = None
    schedule: ScheduleSpec | None = None
    concurrency: int = 1
    #: the client-level `error_handler` (defaults filled in): token requests use it
    error_handler: ErrorHandler = field(default_factory=ErrorHandler)
    #: names of the `{secret: <name>}` values in headers and params, read at run time
    secret_keys: tuple[str, ...] = ()
    #: asset key path of a resource renamed by a `dg` component's `translation` (resource
    #: name -> path); a resource not listed has the key `[<spec name>, <resource name>]`
    asset_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def env_prefix(self) -> str:
        """`<NAME>` of the `<NAME>_CLIENT_ID`-style env vars."""
        return self.name.upper()

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

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
#: auth fields that only ever hold `{secret: <name>}` (a literal value fails validation)
SECRET_AUTH_KEYS = (
    "token",
    "api_key",
    "password",
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
)

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


class SecretRef(_Strict):
    """`{secret: <name>}`: read at run time from `<SPEC NAME>_<NAME>` or `sources.<spec>.<name>`."""

    secret: str

    def env_var(self, spec: str) -> str:
        return f"{spec.upper()}_{self.secret.upper()}"


def _ref(name: str) -> Any:
    return Field(default_factory=lambda: SecretRef(secret=name))


class _AuthSpec(_Strict):
    """An auth type of `client.auth` (or `endpoint.auth`); secrets are `SecretRef`s."""

    def secret_refs(self) -> dict[str, SecretRef]:
        """The auth's secrets by field (defaults included); all must be set at run time."""
        return {name: value for name, value in self if isinstance(value, SecretRef)}


class OAuth2AuthSpec(_AuthSpec):
    """`client.auth: {type: oauth2, token_url: ...}`; restsync's own OAuth2 (refresh tokens).

    `client_id`, `client_secret` and `refresh_token` default to the credentials resource's
    `<NAME>_CLIENT_ID`, `<NAME>_CLIENT_SECRET` and (optional) `<NAME>_REFRESH_TOKEN`;
    `{secret: <name>}` reads another one.
    """

    type: Literal["oauth2"]
    token_url: str
    scopes: tuple[str, ...] = ()
    client_id: SecretRef | None = None
    client_secret: SecretRef | None = None
    refresh_token: SecretRef | None = None


class BearerAuthSpec(_AuthSpec):
    """dlt's `bearer`: `Authorization: Bearer <token>`, token from `<NAME>_TOKEN` by default."""

    type: Literal["bearer"] = "bearer"
    token: SecretRef = _ref("token")


class ApiKeyAuthSpec(_AuthSpec):
    """dlt's `api_key`: the key (`<NAME>_API_KEY`) in a header, query param or cookie `name`."""

    type: Literal["api_key"]
    name: str = "Authorization"
    location: Literal["header", "query", "param", "cookie"] = "header"
    api_key: SecretRef = _ref("api_key")


class HttpBasicAuthSpec(_AuthSpec):
    """dlt's `http_basic`: `username` (YAML or `<NAME>_USERNAME`), password `<NAME>_PASSWORD`."""

    type: Literal["http_basic"]
    username: str | SecretRef = _ref("username")
    password: SecretRef = _ref("password")


class OAuth2ClientCredentialsSpec(_AuthSpec):
    """dlt's `oauth2_client_credentials`: `<NAME>_CLIENT_ID`/`_CLIENT_SECRET` at `access_token_url`."""

    type: Literal["oauth2_client_credentials"]
    access_token_url: str
    client_id: SecretRef = _ref("client_id")
    client_secret: SecretRef = _ref("client_secret")
    access_token_request_data: dict[str, Any] | None = None
    default_token_expiration: int = Field(3600, gt=0)


DltAuthSpec = BearerAuthSpec | ApiKeyAuthSpec | HttpBasicAuthSpec | OAuth2ClientCredentialsSpec
AuthSpec = OAuth2AuthSpec | DltAuthSpec
#: the model of each `auth.type`
AUTH_MODELS: dict[str, type[_AuthSpec]] = {
    "oauth2": OAuth2AuthSpec,
    "bearer": BearerAuthSpec,
    "api_key": ApiKeyAuthSpec,
    "http_basic": HttpBasicAuthSpec,
    "oauth2_client_credentials": OAuth2ClientCredentialsSpec,
}


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
class ChildCursorSpec:
    """`incremental` of a child resource: restsync keeps one cursor per parent row.

    dlt's incremental options with dlt's meaning, applied to each parent's rows separately
    (see `restsync_assets.runtime.child_cursors`). `start_param`/`end_param` and `{incremental.*}`
    placeholders are filled by dlt's own request code, so they are not repeated here.
    """

    cursor_path: str
    initial_value: Any = None
    end_value: Any = None
    lag: float | None = None
    range_start: str = "closed"
    range_end: str = "open"
    on_cursor_value_missing: str = "raise"
    row_order: str | None = None
    #: the key that deduplicates rows at a parent's cursor; None: the resource's primary key
    primary_key: tuple[str, ...] | None = None

    @property
    def stateless(self) -> bool:
        """With an `end_value` the range is closed: every run loads it again, no state is kept."""
        return self.end_value is not None


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
    #: a child's `incremental`, kept per parent row (None for top-level resources: dlt's own)
    cursor: ChildCursorSpec | None = None
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
    auth: AuthSpec | None
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

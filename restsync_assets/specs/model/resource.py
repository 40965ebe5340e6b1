"""One REST resource: one dlt resource, one table, one Dagster asset."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from restsync_assets.specs.model.async_job import AsyncJobSpec
from restsync_assets.specs.model.base import StrictModel
from restsync_assets.specs.model.operations import (
    AutomationSpec,
    ChecksSpec,
    FreshnessSpec,
    PartitionsSpec,
)
from restsync_assets.specs.model.paginators import PaginatorSpec
from restsync_assets.specs.model.retries import ErrorHandler
from restsync_assets.specs.template_functions import parse_duration

#: keys of dlt's `rest_api` `Endpoint` TypedDict
ENDPOINT_KEYS = (
    "path",
    "method",
    "params",
    "json",
    "data",
    "paginator",
    "data_selector",
    "response_actions",
    "incremental",
    "auth",
    "headers",
)
#: the record transform keys of a resource, in the order they apply (see `TransformsSpec`)
TRANSFORM_KEYS = (
    "record_filter",
    "add_fields",
    "remove_fields",
    "remove_values_when",
    "rename_fields",
    "normalize_keys",
)
#: the named steps of `normalize_keys` (the third kind is `{replace: OLD, with: NEW}`)
KEY_CASES = ("lower", "snake_case")
#: endpoint keys restsync reads itself and removes before handing the endpoint to dlt
EXTENSION_ENDPOINT_KEYS = ("response_format", "async_job")
ResponseFormat = Literal["json", "jsonl", "csv"]
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)
#: resource keys restsync reads itself and removes before handing the rest to dlt
EXTENSION_RESOURCE_KEYS = (
    "error_handler",
    "schema",
    "partitions",
    "freshness",
    "checks",
    "automation_condition",
    "owners",
    "tags",
    *TRANSFORM_KEYS,
    "deletes",
    "on_invalid",
    "for_each",
    "parents",
)
#: resource keys that are fields of `ResourceSpec`; every other dlt key is one of its `hints`
RESOURCE_FIELD_KEYS = (
    "name",
    "endpoint",
    "include_from_parent",
    "primary_key",
    "write_disposition",
)

WriteDisposition = Literal["append", "merge", "replace", "skip"]
#: `deletes:`: `soft` marks rows a complete scan no longer returns (`_restsync_deleted_at`)
Deletes = Literal["soft"]
DELETES: tuple[str, ...] = get_args(Deletes)
#: dlt's merge strategies under which a row the scan returns is rewritten, its mark cleared
SOFT_DELETE_STRATEGIES = ("delete-insert", "upsert")
#: what a row that breaks the declared `schema` or lacks its primary key does to the load
OnInvalid = Literal["fail", "quarantine"]
ON_INVALID: tuple[str, ...] = get_args(OnInvalid)
#: `parents:` of a child of an incremental parent: which parents it is asked for each run. `all`: every
#: parent in the warehouse plus this run's (no child row lost); `changed`: only the parents the
#: parent's incremental run returned (fewer requests; children of unchanged parents are missed)
Parents = Literal["all", "changed"]
PARENTS: tuple[str, ...] = get_args(Parents)
#: the table beside `<table>` that holds the rows `on_invalid: quarantine` set aside
REJECTED_SUFFIX = "__rejected"
WRITE_DISPOSITIONS: tuple[str, ...] = get_args(WriteDisposition)
#: dlt's `write_disposition` mapping, e.g. `{disposition: merge, strategy: upsert}` (dlt checks it)
WriteDispositionConfig = dict[str, Any]
#: dlt's `Endpoint` config as restsync hands it over (restsync's auth model under `auth`)
Endpoint = dict[str, Any]
#: dlt's resource hints restsync passes through (`columns`, `table_name`, `max_table_nesting`...)
ResourceHints = dict[str, Any]

#: the dlt data types a `schema` column may declare
ColumnType = Literal[
    "text", "bigint", "double", "bool", "timestamp", "date", "time", "decimal", "json", "binary"
]
#: friendly type names accepted in `schema`, mapped to dlt data types
COLUMN_TYPES: dict[str, ColumnType] = {
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
#: the keys of a column's `{type, nullable}` declaration
COLUMN_KEYS = ("type", "nullable")


class Column(StrictModel):
    """A declared field of a resource (`schema:`), applied as a dlt column hint."""

    name: str
    data_type: ColumnType
    nullable: bool = True


class Binding(StrictModel):
    """A path placeholder bound to a field of a parent (or ancestor) resource."""

    placeholder: str
    resource: str
    field: str


class ChildCursorSpec(StrictModel):
    """`incremental` of a child resource: restsync keeps one cursor per parent row.

    dlt's incremental options with dlt's meaning, applied to each parent's rows separately
    (see `restsync_assets.runtime.child_cursors`). `start_param`/`end_param` and `{incremental.*}`
    placeholders are filled by dlt's own request code, so they are not repeated here.
    Cursor values are whatever the API (or the YAML) gives: strings, numbers, dates.
    """

    cursor_path: str
    initial_value: Any = None
    end_value: Any = None
    lag: int | float | None = None
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


class TransformsSpec(StrictModel):
    """`record_filter`, `add_fields`, `remove_fields`, `remove_values_when`, `rename_fields`,
    `normalize_keys` of a resource.

    Field names are dotted paths (`a.b` is field `b` of the object in field `a`). Templates
    are kept as their source text; `runtime.transforms` compiles each once per run.
    """

    #: a single `{{ expression }}`: rows for which it is false are dropped
    record_filter: str | None = None
    #: field path -> literal value, or a template (a string holding `{{` or `{%`)
    add_fields: dict[str, Any] = Field(default_factory=dict)
    remove_fields: tuple[str, ...] = ()
    #: a single `{{ expression }}` over `value`: every field, at any depth, whose value is a
    #: string, number, boolean or null and makes it true is removed
    remove_values_when: str | None = None
    #: old field path -> new field path
    rename_fields: dict[str, str] = Field(default_factory=dict)
    #: key renames applied in order: `lower` (top-level keys), `snake_case` and
    #: `{replace: OLD, with: NEW}` (keys of nested objects too)
    normalize_keys: tuple[str | dict[str, str], ...] = ()


class ForEachSpec(StrictModel):
    """`for_each`: one request sequence per listed value, the value kept as column `field`.

    The value fills the path placeholder `{<field>}` when the path has one, else the query
    param `param` (default: `field`)."""

    field: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    values: tuple[str | int | float | bool, ...] = Field(min_length=1)
    param: str | None = Field(None, min_length=1)

    @property
    def placeholder(self) -> str:
        return "{" + self.field + "}"


#: the keys of a resolve param that make more (`explode`) or fewer (`batch_size`) requests
#: than one per parent row; restsync's, removed before dlt sees the param
FAN_KEYS = ("batch_size", "separator", "explode", "item_field")


class ParentKeysSpec(StrictModel):
    """A child's resolve param `param` with `batch_size` (one request per that many parent
    rows, their `field` values joined by `separator`) or `explode` (one request per item of
    the list in `field`, or per item's `item_field` when the items are objects)."""

    param: str
    parent: str
    field: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    batch_size: int | None = Field(None, ge=1, le=10_000)
    separator: str = ","
    explode: bool = False
    item_field: str | None = Field(None, min_length=1)
    #: the param is sent in the query (else it fills the path placeholder `{param}`)
    in_query: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> ParentKeysSpec:
        if self.explode == (self.batch_size is not None):
            raise ValueError("give batch_size (many parent rows per request) or explode: true")
        if self.item_field is not None and not self.explode:
            raise ValueError("item_field picks a field of each exploded item: set explode: true")
        return self


class ResourceSpec(StrictModel):
    """One REST resource: one dlt resource, one table, one Dagster asset."""

    name: str
    endpoint: Endpoint
    paginator: PaginatorSpec | None
    data_selector: str | None
    primary_key: str | tuple[str, ...] | None
    #: None (written as `write_disposition: null`): dlt's default
    write_disposition: WriteDisposition | WriteDispositionConfig | None
    error_handler: ErrorHandler
    columns: tuple[Column, ...] = ()
    parent: str | None = None
    bindings: tuple[Binding, ...] = ()
    include_from_parent: tuple[str, ...] = ()
    hints: ResourceHints = Field(default_factory=dict)
    partitions: PartitionsSpec | None = None
    freshness: FreshnessSpec | None = None
    max_lag_seconds: float | None = None
    warn_lag_seconds: float | None = None
    checks: ChecksSpec = Field(default_factory=ChecksSpec)
    automation: AutomationSpec | None = None
    #: a child's `incremental`, kept per parent row (None for top-level resources: dlt's own)
    cursor: ChildCursorSpec | None = None
    #: the spec's and the resource's `owners` (emails or `team:` names) and `tags`
    owners: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    #: record transforms (None: the rows land as the API sends them)
    transforms: TransformsSpec | None = None
    #: how response bodies are read (`endpoint.response_format`)
    response_format: ResponseFormat = "json"
    #: line of the spec file where the resource is declared (1-based), for code references
    line: int | None = None
    #: `soft`: after a complete scan, rows it did not return get `_restsync_deleted_at`
    deletes: Deletes | None = None
    #: `fail` (dlt's behaviour) or `quarantine` (bad rows go to `<table>__rejected`)
    on_invalid: OnInvalid = "fail"
    #: one request sequence per listed value (`for_each`), None: one in all
    for_each: ForEachSpec | None = None
    #: a child's batched or exploded parent keys, None: one request per parent row
    parent_keys: ParentKeysSpec | None = None
    #: a child of an incremental parent: `all` parents (default) or `changed` only
    parents: Parents = "all"
    #: `endpoint.async_job`: a report job to create, poll and download (None: pages of JSON)
    async_job: AsyncJobSpec | None = None
    #: `endpoint.incremental.step` (a duration such as `1d`): a run asks its range one window
    #: of this length after another, each committed on its own (None: one range)
    step: str | None = None

    @property
    def step_delta(self) -> timedelta | None:
        """`step` as a timedelta (None without one)."""
        return None if self.step is None else parse_duration(self.step)

    @property
    def rejected_table(self) -> str | None:
        """`<resource>__rejected` when bad rows are quarantined, else None."""
        return f"{self.name}{REJECTED_SUFFIX}" if self.on_invalid == "quarantine" else None

    @property
    def merge_strategy(self) -> str | None:
        """dlt's merge strategy (`delete-insert` when not named), or None when not merged."""
        disposition = self.write_disposition
        if isinstance(disposition, dict):
            if disposition.get("disposition") != "merge":
                return None
            return disposition.get("strategy", "delete-insert")
        return "delete-insert" if disposition == "merge" else None

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

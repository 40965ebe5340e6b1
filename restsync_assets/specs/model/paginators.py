"""`paginator` (on the client or an endpoint): restsync's two paginators and dlt's own.

dlt's `cursor` and restsync's templated `cursor` share the `type` value, and so do dlt's
`offset` and restsync's offset without a total: `paginator_kind` tells them apart by their
keys, for the union and for the validator alike.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from restsync_assets.specs.model.base import StrictModel, literal_values, tagged_union

#: dlt's paginator names (`rest_api`'s `PaginatorType`); a bare name is one of them too
DltPaginatorType = Literal[
    "auto",
    "cursor",
    "header_cursor",
    "header_link",
    "json_link",
    "json_response",
    "offset",
    "page_number",
    "single_page",
]
#: keys with which an `offset` paginator pages through the request body: dlt's own then
OFFSET_BODY_KEYS = ("offset_body_path", "limit_body_path")


class OffsetPaginatorSpec(StrictModel):
    """`{type: offset, limit: N}`: stops on `total`, or on a short/empty page without one."""

    kind: ClassVar[str] = "offset_without_total"
    type: Literal["offset"]
    limit: int = Field(gt=0)
    offset: int = Field(0, ge=0)
    offset_param: str = "offset"
    limit_param: str = "limit"
    total_path: str | None = "total"
    maximum_offset: int | None = None
    has_more_path: str | None = None
    stop_after_empty_page: bool = True


class TemplatedCursorPaginatorSpec(StrictModel):
    """`{type: cursor, cursor_value: "{{ ... }}", stop_condition: "{{ ... }}"}` (Jinja templates)."""

    kind: ClassVar[str] = "templated_cursor"
    type: Literal["cursor"]
    cursor_value: str
    stop_condition: str | None = None
    #: the query parameter that carries a cursor value (not a URL)...
    cursor_param: str | None = None
    #: ...or the dotted path in the JSON request body it is written to (GraphQL's
    #: `variables.after`), as dlt's `JSONResponseCursorPaginator` does; never both
    cursor_body_path: str | None = None
    #: ...or the request header that carries it (a token only, never a URL); one of the three
    cursor_header: str | None = None
    #: the cursor the first request sends too (an offset `0`, a first page `1`); without it
    #: the first request carries none. Templates read the cursor a page was fetched with as
    #: `cursor` (this value on the first page, else None there)
    initial_cursor: str | int | None = None

    @field_validator("initial_cursor", mode="before")
    @classmethod
    def _a_cursor(cls, value: Any) -> Any:
        """A string or an integer, as written (never a bool, a float or a blank string)."""
        good = isinstance(value, int) and not isinstance(value, bool)
        if value is None or good or (isinstance(value, str) and value.strip()):
            return value
        raise ValueError(f"{value!r} is no cursor: write a string or an integer such as 0 or 1")


class DltPaginatorSpec(StrictModel):
    """One of dlt's own paginators, handed to dlt as written: dlt validates and builds it."""

    kind: ClassVar[str] = "dlt"
    type: DltPaginatorType
    #: as written in the spec: a paginator name, or dlt's paginator config (dlt checks its keys)
    config: DltPaginatorType | dict[Hashable, Any]

    @classmethod
    def as_written(cls, config: str | dict[Hashable, Any]) -> DltPaginatorSpec:
        """The model of a paginator name or of dlt's config mapping, as written in the spec."""
        return cls.model_validate(_type_and_config(config))

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        """A name or dlt's config mapping (as in the YAML) is read `as_written`."""
        if isinstance(value, str) or (isinstance(value, dict) and set(value) != {"type", "config"}):
            return _type_and_config(value)
        return value


def _type_and_config(config: str | dict[Hashable, Any]) -> dict[str, Any]:
    if isinstance(config, str):
        return {"type": config, "config": config}
    return {"type": config.get("type"), "config": dict(config)}


PAGINATOR_TYPES: tuple[str, ...] = literal_values(DltPaginatorSpec, "type")
#: the model of each `paginator_kind`
PAGINATOR_MODELS: dict[str, type[StrictModel]] = {
    model.kind: model
    for model in (TemplatedCursorPaginatorSpec, OffsetPaginatorSpec, DltPaginatorSpec)
}


def paginator_kind(value: Any) -> str:
    """Which model a paginator is (the union's tag): restsync's templated cursor (a `cursor`
    with `cursor_value`), restsync's offset (an `offset` without body paths), else dlt's own."""
    if isinstance(value, StrictModel):
        return getattr(value, "kind", "")
    if not isinstance(value, dict):
        return DltPaginatorSpec.kind
    if value.get("type") == "cursor" and "cursor_value" in value:
        return TemplatedCursorPaginatorSpec.kind
    if value.get("type") == "offset" and not set(OFFSET_BODY_KEYS) & set(value):
        return OffsetPaginatorSpec.kind
    return DltPaginatorSpec.kind


#: any paginator, validated as the model `paginator_kind` names
PaginatorSpec = tagged_union(PAGINATOR_MODELS, paginator_kind)

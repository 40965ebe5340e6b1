"""`on_invalid: quarantine`: rows that break the declared schema go to `<table>__rejected`.

`Quarantine` is a dlt pipe step on the resource, after dlt's incremental step (placement
affinity 1) and before the Arrow fast path (`arrow_pages.ArrowPages`, 1.5). Each row is judged
by dlt's own rules, so a row it lets through is never rejected later by dlt's normalizer and a
row dlt would coerce is never set aside:

- a primary key column missing or null (dlt: `Cannot coerce NULL`, the load fails);
- a field the `schema` declares non-nullable missing or null (the same);
- a declared field whose value dlt cannot coerce to the declared type (`coerce_value` of
  `dlt.common.data_types` raises; dlt would add a variant column such as `amount__v_text`),
  or an object or list in a declared scalar field (dlt would flatten it elsewhere).

A rejected row is sent on as `{"raw": <the row as JSON text>, "reason": <one line>}` marked for
the table `<table>__rejected` (`RejectedRows`, a dlt `TableNameMeta`); the resource carries a
table variant of hints for it (`append`, no keys, two non-nullable text columns), so that table
is a plain top-level table whose schema never changes, and dlt adds `_dlt_load_id`/`_dlt_id`
to it. Steps after this one let such items through untouched (`ArrowPages`, and
`DropRejected` at the head of every child, so rejected parent rows never drive requests).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, ClassVar

from dlt.common.data_types.type_helpers import coerce_value, py_type_to_sc_type
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.extract import DltResource
from dlt.extract.items import DataItemWithMeta, TableNameMeta
from dlt.extract.items_transform import ItemTransform

from restsync_assets.specs.model import ResourceSpec
from restsync_assets.text import short

#: the columns of `<table>__rejected`, besides dlt's `_dlt_load_id` and `_dlt_id`
REJECTED_COLUMNS = {
    "raw": {"data_type": "text", "nullable": False},
    "reason": {"data_type": "text", "nullable": False},
}
#: at most this many characters of an offending value in a reason
VALUE_CHARS = 40

_NON_NULLABLE = "in a non-nullable field"
_SURROGATE = re.compile("[\ud800-\udfff]")

_naming = NamingConvention()


@lru_cache(maxsize=4096)
def normalized(name: str) -> str:
    """A field name as dlt names its column (`createdAt` -> `created_at`)."""
    return _naming.normalize_path(name)


class RejectedRows(TableNameMeta):
    """The meta of rows set aside for `<table>__rejected`."""


class Quarantine(ItemTransform[Any, Any]):
    """dlt pipe step: a page's bad rows go to `<table>__rejected`, the rest go on."""

    #: after dlt's incremental (1) and limit (1.1), before Arrow pages (1.5)
    placement_affinity: ClassVar[float] = 1.2

    def __init__(
        self,
        table: str,
        declared: Mapping[str, str],
        required: tuple[str, ...],
        primary_key: tuple[str, ...] = (),
    ) -> None:
        super().__init__(lambda item: item)
        self.table = table
        self.declared = {normalized(k): (k, v) for k, v in declared.items()}
        self.primary_key = tuple(primary_key)
        self.required = tuple(c for c in required if c not in self.primary_key)
        #: rows an earlier step (`bad_values.BadValues`) set aside, written with the next item
        self._held: list[dict] = []
        self._lock = threading.Lock()

    def hold(self, rejected: list[dict]) -> None:
        """Rows already set aside (`{"raw", "reason"}`), written with the next item."""
        with self._lock:
            self._held.extend(rejected)

    def _take_held(self) -> list[dict]:
        with self._lock:
            held, self._held = self._held, []
        return held

    def __call__(self, item: Any, meta: Any = None) -> Any:
        held = self._take_held()
        if isinstance(meta, TableNameMeta):
            return self._split(item, held, meta) if held else item  # rows for another table
        rows = item if isinstance(item, list) else [item] if isinstance(item, dict) else None
        if not rows:
            return self._split(item, held, meta) if held else item
        good, bad = [], list(held)
        for row in rows:
            reasons = self.problems(row) if isinstance(row, dict) else []
            if reasons:
                bad.append({"raw": raw_json(row), "reason": "; ".join(reasons)})
            else:
                good.append(row)
        if not bad:
            return item
        return self._split(good, bad, meta)

    def _split(self, good: Any, bad: list, meta: Any) -> Iterator[Any]:
        # even empty, the page reaches the table: dlt then knows it was loaded without rows
        yield good if meta is None else DataItemWithMeta(meta, good)
        yield DataItemWithMeta(RejectedRows(self.table), bad)

    def problems(self, row: dict) -> list[str]:
        """Why `row` breaks the schema (empty: it does not), one phrase per field."""
        fields = {normalized(k): v for k, v in row.items()}
        found = []
        for keys, what in ((self.primary_key, "primary key"), (self.required, _NON_NULLABLE)):
            for key in keys:
                name = normalized(key)
                if fields.get(name) is None:
                    found.append(f"{key}: {'null' if name in fields else 'missing'} {what}")
        for name, (key, data_type) in self.declared.items():
            value = fields.get(name)
            if value is not None:
                problem = type_problem(value, data_type)
                if problem:
                    found.append(f"{key}: {problem}")
        return found


def type_problem(value: Any, data_type: str) -> str | None:
    """Why dlt cannot load `value` into a `data_type` column, or None when it can."""
    try:
        value_type = py_type_to_sc_type(type(value))
    except TypeError:
        return f"a {type(value).__name__} value cannot be loaded as {data_type}"
    if value_type == data_type:
        return None
    if value_type == "json":
        kind = "an object" if isinstance(value, Mapping) else "a list"
        return f"{kind} where {data_type} is declared"
    try:
        coerce_value(data_type, value_type, value)  # type: ignore[arg-type]
    except Exception:  # dlt's coercers raise ValueError and its subclasses (and a few others)
        return f"{short(repr(value), VALUE_CHARS)} cannot be coerced to {data_type}"
    return None


def raw_json(row: dict) -> str:
    """`row` as JSON text any warehouse stores: NUL written `\\u0000` (as JSON always does),
    lone surrogates (not Unicode text) escaped too."""
    text = json.dumps(row, ensure_ascii=False, default=str)
    return json.dumps(row, default=str) if _SURROGATE.search(text) else text


class DropRejected(ItemTransform[Any, Any]):
    """dlt pipe step at the head of a child: a parent's rejected rows drive no requests."""

    def __init__(self) -> None:
        super().__init__(lambda item: item)

    def __call__(self, item: Any, meta: Any = None) -> Any:
        return None if isinstance(meta, RejectedRows) else item


def quarantine_step(resource: ResourceSpec) -> Quarantine:
    """The step that judges `resource`'s rows against its schema and primary key."""
    if resource.rejected_table is None:
        raise ValueError(f"resource {resource.name} does not quarantine (on_invalid: fail)")
    return Quarantine(
        table=resource.rejected_table,
        declared={c.name: c.data_type for c in resource.columns},
        required=tuple(c.name for c in resource.columns if not c.nullable),
        primary_key=resource.primary_key_columns,
    )


def add_quarantine(dlt_resource: DltResource, resource: ResourceSpec) -> Quarantine:
    """`Quarantine` on `dlt_resource`, with the hints of its `<table>__rejected` variant;
    returns the step."""
    step = quarantine_step(resource)
    # a variant starts from the resource's hints: empty its columns (and keys, contract)
    # first, then set them
    variant = {"table_name": step.table, "create_table_variant": True}
    dlt_resource.apply_hints(
        columns={}, primary_key="", merge_key="", schema_contract={}, **variant
    )
    dlt_resource.apply_hints(write_disposition="append", columns=REJECTED_COLUMNS, **variant)
    dlt_resource.add_step(step)
    return step


def drop_rejected_in(child: DltResource) -> None:
    """`DropRejected` before the child's own step, which reads its parent's rows."""
    child.add_step(DropRejected(), insert_at=0)

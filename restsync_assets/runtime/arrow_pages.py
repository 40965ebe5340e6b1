"""The fast path: whole pages become Arrow tables, so dlt skips per-row normalization.

dlt normalizes every yielded dict (flattening, type inference, variant columns); for flat
pages that work is the bottleneck. `ArrowPages` is a dlt pipe step placed at the end of a
resource (after incremental filtering and `include_from_parent`): each flat page becomes one
`pyarrow.Table`, which dlt writes straight to parquet. The tables land exactly as dlt's
own row path would land them:

- column types: dlt's inference (ints -> bigint, floats -> double, ISO 8601 timestamp
  strings -> timestamp with time zone, bools, text), or the spec's declared `schema`;
- all-null columns are left out, as dlt leaves out columns that received no data;
- `_dlt_load_id` and `_dlt_id` end every table, in the row path's order: `_dlt_id` is random,
  as dlt's parquet normalizer would make it, and `_dlt_load_id` a placeholder that dlt's
  extractor fills in. With both there, dlt's normalizer imports the parquet file as it is instead
  of rewriting it to add them (restsync turns its `add_dlt_id` off; about 1 s per 1M records).

A page that holds a nested object or list, a null key, or values that do not fit one Arrow
type per column (a field changing type) is passed on unchanged: dlt's row path then flattens
objects into `parent__child` columns, nested lists into child tables and conflicting types
into variant columns, as users of dlt expect. So are pages of fewer than `MIN_ROWS` records
(too small to win back dlt's fixed cost per Arrow item), a page that has a field named like
dlt's own columns, and every page of a resource with children (dlt transformers read the
parent's rows as dicts). Resources merged with `scd2` never get this step (see `source.py`):
dlt's row path gives their `_dlt_id` the row's content hash, which scd2 compares.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema.detections import is_iso_timestamp
from dlt.common.schema.typing import C_DLT_ID, C_DLT_LOAD_ID
from dlt.common.schema.utils import dlt_id_column, dlt_load_id_column
from dlt.extract.items import TableNameMeta
from dlt.extract.items_transform import ItemTransform

#: Smaller pages stay rows: dlt's extractor spends a fixed ~2-3 ms on every Arrow item (schema
#: merge), which a page of a few dozen rows does not win back (measured: 200 child pages of 50
#: rows extract in 0.60 s as rows, 1.10 s as Arrow; pages of 1,000 rows are 4x faster as Arrow).
MIN_ROWS = 100
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_DECLARED: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": _TIMESTAMP,
    "date": pa.date32(),
}


class ArrowPages(ItemTransform[Any, dict[str, Any]]):
    """dlt pipe step: a flat page (list of dicts) -> one `pyarrow.Table`; other items unchanged."""

    #: after dlt's incremental (1) and limit (1.1) steps, before nothing else
    placement_affinity: ClassVar[float] = 1.5

    def __init__(
        self,
        declared: Mapping[str, str] | None = None,
        required: Iterable[str] = (),
        min_rows: int = MIN_ROWS,
    ) -> None:
        super().__init__(lambda item: item)
        self.min_rows = min_rows
        self.declared = {k: _DECLARED[v] for k, v in (declared or {}).items() if v in _DECLARED}
        #: primary key and non-nullable columns: a page with a null there goes the row way, so
        #: dlt rejects it with its own error before anything is written
        self.required = tuple(required)
        self.pages_as_arrow = 0
        self.pages_as_rows = 0
        #: the type each column got on its first page: later pages must agree with it
        self.column_types: dict[str, pa.DataType] = {}

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if isinstance(meta, TableNameMeta):
            return item  # rows for another table (e.g. `<table>__rejected`): dlt's row path
        if not isinstance(item, list) or len(item) < max(1, self.min_rows):
            if isinstance(item, list) and item:
                self.pages_as_rows += 1
            return item
        table = page_to_arrow(item, {**self.column_types, **self.declared})
        if table is None or not self._complete(table) or not self._agrees(table):
            self.pages_as_rows += 1
            return item
        self.pages_as_arrow += 1
        return self._for_dlt(table)

    def _complete(self, table: pa.Table) -> bool:
        names = set(table.column_names)
        if not names.isdisjoint(DLT_COLUMNS):
            return False  # dlt's row path decides what a page's own `_dlt_id` means
        return all(c in names and table.column(c).null_count == 0 for c in self.required)

    def _for_dlt(self, table: pa.Table) -> pa.Table:
        """`table` with required columns (no nulls, checked) non-nullable, as dlt's hints say,
        and dlt's `_dlt_load_id` (a placeholder) and `_dlt_id` columns appended."""
        rows = table.num_rows
        fields = [f.with_nullable(False) if f.name in self.required else f for f in table.schema]
        schema = pa.schema([*fields, *_DLT_FIELDS])
        return pa.Table.from_arrays(
            [*table.columns, pa.repeat("", rows), dlt_ids(rows)], schema=schema
        )

    def _agrees(self, table: pa.Table) -> bool:
        """Whether `table` keeps every column's first type (else dlt's row path must decide)."""
        for field in table.schema:
            known = self.column_types.get(field.name)
            if known is not None and known != field.type:
                return False
        for field in table.schema:
            self.column_types.setdefault(field.name, field.type)
        return True


#: dlt's columns `ArrowPages` adds, in the order dlt's row path adds them (the extractor
#: replaces the load id in place), with the hints its normalizer gives them (`_dlt_id`:
#: unique, row key)
DLT_COLUMNS = {C_DLT_LOAD_ID: dlt_load_id_column(), C_DLT_ID: dlt_id_column()}
_DLT_FIELDS = [pa.field(name, pa.string(), nullable=False) for name in DLT_COLUMNS]
_ID_BYTES = 18  # base64 of 18 bytes is 24 characters, no padding; 22 are kept, as dlt's ids


def dlt_ids(count: int) -> pa.Array:
    """`count` random row ids shaped like dlt's (`many_uniq_ids_base64`: 22 base64 characters,
    132 random bits here), made in one pass over one buffer instead of one string at a time."""
    encoded = base64.b64encode(secrets.token_bytes(_ID_BYTES * count))
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(_ID_BYTES * 4 // 3), count, [None, pa.py_buffer(encoded)]
    )
    return pc.binary_slice(fixed, 0, 22).cast(pa.string())


def page_to_arrow(page: list, declared: Mapping[str, pa.DataType] | None = None) -> pa.Table | None:
    """`page` as an Arrow table typed like dlt would type it, or None when it is not flat."""
    if not all(type(record) is dict for record in page):
        return None
    # Arrow takes the columns from the first record: give it every field of the page (in order
    # of appearance) when another record has one the first lacks; the set says so 4x faster
    first = page[0]
    if len(set().union(*page)) != len(first):
        first = {**dict.fromkeys(chain.from_iterable(page)), **first}
    try:
        table = pa.Table.from_pylist([first, *page[1:]])
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None  # a field with two types in one page: dlt's variant columns handle it
    except (TypeError, UnicodeEncodeError):  # a lone surrogate: `bad_values` names it
        return None
    columns, kept = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        typed = _typed(column, (declared or {}).get(name))
        if typed is None:
            return None
        if typed is not _ALL_NULL:
            columns.append(typed)
            kept.append(name)
    return pa.Table.from_arrays(columns, names=kept)


_ALL_NULL = object()


def _typed(column: pa.ChunkedArray, declared: pa.DataType | None) -> Any:
    if column.null_count == len(column):
        return _ALL_NULL if declared is None else pa.nulls(len(column), declared)
    if declared is not None:
        return _cast(column, declared)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        first = pc.drop_null(column)[0].as_py()
        if is_iso_timestamp(str, first):
            return _cast(column, _TIMESTAMP)
        return column
    if pa.types.is_integer(column.type):
        return column.cast(pa.int64())
    if pa.types.is_floating(column.type):
        return column.cast(pa.float64())
    if pa.types.is_boolean(column.type):
        return column
    return None


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray | None:
    if column.type == target:
        return column
    try:
        return pc.cast(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None

"""Asset checks generated from the spec model, evaluated against the warehouse.

For every asset: `primary_key` (unique, not null), `row_count` (at least the spec's
`checks.min_rows`; default 1, or 0 when partitioned); where the spec declares a `schema`:
`not_null` (declared non-nullable fields) and `column_types` (declared types match the
warehouse columns); where it declares `freshness`: `freshness` (last materialization, or
else the table's last dlt load, no older than `max_lag`). A failing check names a sample of
the offending keys.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    multi_asset_check,
)

from restsync_assets import settings
from restsync_assets.assets import asset_key
from restsync_assets.specs.model import ResourceSpec, SourceSpec

SAMPLE = 5

#: DuckDB column types expected for each dlt data type (prefix match).
DUCKDB_TYPES = {
    "text": ("VARCHAR",),
    "bigint": ("BIGINT",),
    "double": ("DOUBLE",),
    "bool": ("BOOLEAN",),
    "timestamp": ("TIMESTAMP",),
    "date": ("DATE",),
    "time": ("TIME",),
    "decimal": ("DECIMAL",),
    "json": ("JSON",),
    "binary": ("BLOB",),
}


def check_names(resource: ResourceSpec) -> list[str]:
    """The checks generated for `resource`, in evaluation order."""
    names = []
    if resource.primary_key_columns:
        names.append("primary_key")
    if any(not c.nullable for c in resource.columns):
        names.append("not_null")
    if resource.columns:
        names.append("column_types")
    names.append("row_count")
    if resource.max_lag_seconds:
        names.append("freshness")
    return names


def build_spec_checks(
    spec: SourceSpec, clock: Callable[[], float] = time.time
) -> AssetChecksDefinition:
    """One multi-check per spec (one warehouse connection for all its checks)."""
    check_specs = [
        AssetCheckSpec(name, asset=asset_key(spec, r), description=_DESCRIPTIONS[name])
        for r in spec.resources
        for name in check_names(r)
    ]

    @multi_asset_check(specs=check_specs, name=f"{spec.name}_checks", can_subset=True)
    def _checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        selected = {(k.asset_key, k.name) for k in context.selected_asset_check_keys}
        with Warehouse.open() as warehouse:
            for resource in spec.resources:
                for name in check_names(resource):
                    if (asset_key(spec, resource), name) in selected:
                        last = (
                            _last_materialization(context, spec, resource)
                            if name == "freshness"
                            else None
                        )
                        yield evaluate(
                            warehouse, spec, resource, name, now=clock(), last_materialized=last
                        )

    return _checks


class Warehouse:
    """A read-only DuckDB connection, or none when the warehouse file does not exist yet."""

    def __init__(self, connection: Any):
        self.connection = connection

    @classmethod
    def open(cls) -> "Warehouse":
        import duckdb

        path = settings.duckdb_path()
        return cls(duckdb.connect(str(path), read_only=True) if path.exists() else None)

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.connection is not None:
            self.connection.close()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.connection.execute(sql, list(params)).fetchall()

    def has_table(self, dataset: str, table: str) -> bool:
        if self.connection is None:
            return False
        found = self.rows(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            (dataset, table),
        )
        return found[0][0] > 0


def evaluate(
    warehouse: Warehouse,
    spec: SourceSpec,
    resource: ResourceSpec,
    name: str,
    now: float,
    last_materialized: float | None = None,
) -> AssetCheckResult:
    """Evaluate one check of one asset."""
    key = asset_key(spec, resource)
    if not warehouse.has_table(spec.name, resource.name):
        return AssetCheckResult(
            asset_key=key,
            check_name=name,
            passed=False,
            description=f"table {spec.name}.{resource.name} does not exist: materialize {spec.name}/{resource.name} first",
        )
    table = f'"{spec.name}"."{resource.name}"'
    passed, description, metadata = _EVALUATORS[name](
        warehouse, table, spec, resource, now, last_materialized
    )
    return AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=passed,
        description=description,
        metadata=metadata,
        severity=AssetCheckSeverity.ERROR,
    )


def _primary_key(warehouse, table, spec, resource, now, last):
    cols = resource.primary_key_columns
    key_sql = ", ".join(f'"{c}"' for c in cols)
    null_sql = " or ".join(f'"{c}" is null' for c in cols)
    nulls = warehouse.rows(f"select count(*) from {table} where {null_sql}")[0][0]
    dup_rows = warehouse.rows(
        f"select {key_sql}, count(*) from {table} where not ({null_sql}) group by all having count(*) > 1 "
        f"order by count(*) desc, {key_sql} limit {SAMPLE}"
    )
    duplicates = warehouse.rows(
        f"select count(*) from (select 1 from {table} where not ({null_sql}) group by {key_sql} having count(*) > 1)"
    )[0][0]
    sample = [_key(row[:-1]) for row in dup_rows]
    passed = nulls == 0 and duplicates == 0
    parts = []
    if duplicates:
        parts.append(
            f"{duplicates} duplicate {_plural('key', duplicates)} in ({', '.join(cols)}), e.g. {', '.join(sample)}"
        )
    if nulls:
        parts.append(f"{nulls} {_plural('row', nulls)} with a null key")
    description = "; ".join(parts) if parts else f"({', '.join(cols)}) is unique and never null"
    metadata = {
        "duplicate_keys": duplicates,
        "null_keys": nulls,
        "sample": MetadataValue.json(sample),
    }
    return passed, description, metadata


def _not_null(warehouse, table, spec, resource, now, last):
    required = [c.name for c in resource.columns if not c.nullable]
    existing = _columns(warehouse, spec, resource)
    failures, metadata = [], {}
    for column in required:
        if column not in existing:
            failures.append(f"{column} is missing")
            continue
        count = warehouse.rows(f'select count(*) from {table} where "{column}" is null')[0][0]
        metadata[f"nulls.{column}"] = count
        if count:
            sample = _sample_keys(warehouse, table, resource, f'"{column}" is null')
            failures.append(f"{count} null {column} (e.g. {', '.join(sample)})")
    description = "; ".join(failures) if failures else f"{', '.join(required)} never null"
    return not failures, description, metadata


def _column_types(warehouse, table, spec, resource, now, last):
    existing = _columns(warehouse, spec, resource)
    wrong = []
    for column in resource.columns:
        actual = existing.get(column.name)
        expected = DUCKDB_TYPES.get(column.data_type, (column.data_type.upper(),))
        if actual is None:
            wrong.append(f"{column.name} is missing (declared {column.data_type})")
        elif not actual.upper().startswith(expected):
            wrong.append(f"{column.name} is {actual}, declared {column.data_type}")
    description = "; ".join(wrong) if wrong else "every declared column has its declared type"
    return not wrong, description, {"columns": MetadataValue.json(existing)}


def _row_count(warehouse, table, spec, resource, now, last):
    count = warehouse.rows(f"select count(*) from {table}")[0][0]
    minimum = resource.min_rows
    passed = count >= minimum
    description = f"{count} {_plural('row', count)} (minimum {minimum})"
    return passed, description, {"row_count": count, "min_rows": minimum}


def _freshness(warehouse, table, spec, resource, now, last):
    source = "last materialization"
    if last is None:
        last = _last_load(warehouse, spec, table)
        source = "last dlt load into the table"
    max_lag = resource.max_lag_seconds
    if last is None:
        return False, f"never loaded (max lag {_duration(max_lag)})", {}
    lag = max(0.0, now - last)
    stamp = datetime.fromtimestamp(last, tz=timezone.utc).isoformat(timespec="seconds")
    passed = lag <= max_lag
    state = "fresh" if passed else "stale"
    description = f"{state}: {source} {stamp}, {_duration(lag)} ago (max lag {_duration(max_lag)})"
    return passed, description, {"lag_seconds": round(lag, 1), "max_lag_seconds": max_lag}


_EVALUATORS = {
    "primary_key": _primary_key,
    "not_null": _not_null,
    "column_types": _column_types,
    "row_count": _row_count,
    "freshness": _freshness,
}

_DESCRIPTIONS = {
    "primary_key": "The primary key is unique and never null.",
    "not_null": "Fields the spec declares non-nullable hold no nulls.",
    "column_types": "Warehouse columns have the types the spec's schema declares.",
    "row_count": "The table holds at least the spec's minimum number of rows.",
    "freshness": "The asset was loaded within the spec's freshness max_lag.",
}


def _columns(warehouse: Warehouse, spec: SourceSpec, resource: ResourceSpec) -> dict[str, str]:
    rows = warehouse.rows(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ?",
        (spec.name, resource.name),
    )
    return dict(rows)


def _sample_keys(warehouse: Warehouse, table: str, resource: ResourceSpec, where: str) -> list[str]:
    cols = resource.primary_key_columns or ("_dlt_id",)
    key_sql = ", ".join(f'"{c}"' for c in cols)
    return [
        _key(row)
        for row in warehouse.rows(f"select {key_sql} from {table} where {where} limit {SAMPLE}")
    ]


def _last_load(warehouse: Warehouse, spec: SourceSpec, table: str) -> float | None:
    found = warehouse.rows(
        f'select max(l.inserted_at) from "{spec.name}"."_dlt_loads" l '
        f"where l.status = 0 and l.load_id = (select max(_dlt_load_id) from {table})"
    )
    value = found[0][0] if found else None
    return value.timestamp() if value is not None else None


def _last_materialization(
    context: AssetCheckExecutionContext, spec: SourceSpec, resource: ResourceSpec
) -> float | None:
    event = context.instance.get_latest_materialization_event(asset_key(spec, resource))
    return event.timestamp if event is not None else None


def _key(values: Sequence[Any]) -> str:
    return str(values[0]) if len(values) == 1 else "(" + ", ".join(str(v) for v in values) + ")"


def _plural(word: str, count: int) -> str:
    return word if count == 1 else f"{word}s"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"

"""Asset checks generated from the spec model, evaluated against the warehouse.

For every asset: `primary_key` (unique, not null), `row_count` (at least the spec's
`checks.min_rows`; default 1, or 0 when partitioned); where the spec declares a `schema`:
`not_null` (declared non-nullable fields) and `column_types` (declared types match the
warehouse columns); where it declares `freshness`: `freshness` (last materialization, or
else the table's last dlt load, no older than `max_lag`); with `on_invalid: quarantine`:
`rejected_rows` (severity WARN: the latest load set no row aside in `<table>__rejected`). A
failing check names a sample of the offending keys.

Checks read the warehouse the spec's loads write, through the spec's dlt pipeline, under the
loads' lock (`restsync_assets.runtime.warehouse.reading`); the SQL runs on DuckDB and PostgreSQL.
"""

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    Failure,
    MetadataValue,
    multi_asset_check,
)

from restsync_assets.assets import asset_key
from restsync_assets.specs.model import ResourceSpec, SourceSpec
from restsync_assets.text import plural

if TYPE_CHECKING:  # run time only: the checks read through it when they run
    from restsync_assets.runtime.warehouse import Warehouse

SAMPLE = 5


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
    if resource.rejected_table:
        names.append("rejected_rows")
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
        from restsync_assets.runtime.warehouse import WarehouseError, reading

        selected = {(k.asset_key, k.name) for k in context.selected_asset_check_keys}
        try:
            with reading(spec, on_wait=context.log.info) as warehouse:
                rowless = warehouse.tables_without_rows(spec.name)
                for resource in spec.resources:
                    for name in check_names(resource):
                        if (asset_key(spec, resource), name) not in selected:
                            continue
                        last = (
                            _last_materialization(context, spec, resource)
                            if name == "freshness"
                            else None
                        )
                        yield evaluate(warehouse, spec, resource, name, clock(), last, rowless)
        except WarehouseError as error:
            raise Failure(description=str(error)) from None

    return _checks


def evaluate(
    warehouse: "Warehouse",
    spec: SourceSpec,
    resource: ResourceSpec,
    name: str,
    now: float,
    last_materialized: float | None = None,
    rowless: Collection[str] = (),
) -> AssetCheckResult:
    """Evaluate one check of one asset; `rowless` are the tables dlt loaded without a row."""
    key = asset_key(spec, resource)
    if name == "rejected_rows":  # judged even when every row was rejected (no main table)
        passed, description, metadata = _rejected_rows(warehouse, spec, resource)
    elif warehouse.has_table(resource.name):
        passed, description, metadata = _EVALUATORS[name](
            warehouse, warehouse.table(resource.name), spec, resource, now, last_materialized
        )
    elif resource.name in rowless:  # loaded without a single row, so dlt created no table
        passed, description, metadata = _no_rows(resource, name, now, last_materialized)
    else:
        return AssetCheckResult(
            asset_key=key,
            check_name=name,
            passed=False,
            description=f"table {spec.name}.{resource.name} does not exist: materialize {spec.name}/{resource.name} first",
        )
    return AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=passed,
        description=description,
        metadata=metadata,
        severity=_SEVERITIES.get(name, AssetCheckSeverity.ERROR),
    )


def _no_rows(resource: ResourceSpec, name: str, now: float, last: float | None):
    """A check of a resource that dlt loaded without a single row (e.g. an empty partition)."""
    note = "no rows in this partition" if resource.partitions else "no rows loaded"
    if name == "row_count":
        minimum = resource.min_rows
        return (
            minimum <= 0,
            f"0 rows (minimum {minimum}): {note}",
            {"row_count": 0, "min_rows": minimum},
        )
    if name == "freshness" and last is not None:
        passed, description, metadata = _lag(last, "last materialization", now, resource)
        return passed, f"{note}; {description}", metadata
    return True, note, {}


def _primary_key(warehouse, table, spec, resource, now, last):
    cols = resource.primary_key_columns
    key_sql = ", ".join(warehouse.column(c) for c in cols)
    null_sql = " or ".join(f"{warehouse.column(c)} is null" for c in cols)
    nulls = warehouse.rows(f"select count(*) from {table} where {null_sql}")[0][0]
    dup_rows = warehouse.rows(
        f"select {key_sql}, count(*) from {table} where not ({null_sql}) group by {key_sql}"
        f" having count(*) > 1 order by count(*) desc, {key_sql} limit {SAMPLE}"
    )
    duplicates = warehouse.rows(
        f"select count(*) from (select 1 as one from {table} where not ({null_sql})"
        f" group by {key_sql} having count(*) > 1) as duplicated"
    )[0][0]
    sample = [_key(row[:-1]) for row in dup_rows]
    passed = nulls == 0 and duplicates == 0
    parts = []
    if duplicates:
        parts.append(
            f"{plural(duplicates, 'duplicate key')} in ({', '.join(cols)}), e.g. {', '.join(sample)}"
        )
    if nulls:
        parts.append(f"{plural(nulls, 'row')} with a null key")
    description = "; ".join(parts) if parts else f"({', '.join(cols)}) is unique and never null"
    metadata = {
        "duplicate_keys": duplicates,
        "null_keys": nulls,
        "sample": MetadataValue.json(sample),
    }
    return passed, description, metadata


def _not_null(warehouse, table, spec, resource, now, last):
    required = [c.name for c in resource.columns if not c.nullable]
    existing = warehouse.columns(resource.name)
    failures, metadata = [], {}
    for column in required:
        if column not in existing:
            failures.append(f"{column} is missing")
            continue
        is_null = f"{warehouse.column(column)} is null"
        count = warehouse.rows(f"select count(*) from {table} where {is_null}")[0][0]
        metadata[f"nulls.{column}"] = count
        if count:
            sample = _sample_keys(warehouse, table, resource, is_null)
            failures.append(f"{count} null {column} (e.g. {', '.join(sample)})")
    description = "; ".join(failures) if failures else f"{', '.join(required)} never null"
    return not failures, description, metadata


def _column_types(warehouse, table, spec, resource, now, last):
    """Compared in dlt's data types: dlt's type mapper of the destination reads each column's
    type name (DuckDB `VARCHAR`, PostgreSQL `character varying`: `text`)."""
    existing = warehouse.columns(resource.name)
    wrong = []
    for column in resource.columns:
        if column.name not in existing:
            wrong.append(f"{column.name} is missing (declared {column.data_type})")
            continue
        db_type, data_type = existing[column.name]
        if data_type != column.data_type:
            wrong.append(f"{column.name} is {db_type}, declared {column.data_type}")
    description = "; ".join(wrong) if wrong else "every declared column has its declared type"
    types = {name: db_type for name, (db_type, _) in existing.items()}
    return not wrong, description, {"columns": MetadataValue.json(types)}


def _row_count(warehouse, table, spec, resource, now, last):
    count = warehouse.rows(f"select count(*) from {table}")[0][0]
    minimum = resource.min_rows
    passed = count >= minimum
    description = f"{plural(count, 'row')} (minimum {minimum})"
    return passed, description, {"row_count": count, "min_rows": minimum}


def _freshness(warehouse, table, spec, resource, now, last):
    source = "last materialization"
    if last is None:
        last = _last_load(warehouse, table)
        source = "last dlt load into the table"
    if last is None:
        return False, f"never loaded (max lag {_duration(resource.max_lag_seconds)})", {}
    return _lag(last, source, now, resource)


def _lag(last: float, source: str, now: float, resource: ResourceSpec):
    max_lag = resource.max_lag_seconds
    lag = max(0.0, now - last)
    stamp = datetime.fromtimestamp(last, tz=timezone.utc).isoformat(timespec="seconds")
    passed = lag <= max_lag
    state = "fresh" if passed else "stale"
    description = f"{state}: {source} {stamp}, {_duration(lag)} ago (max lag {_duration(max_lag)})"
    return passed, description, {"lag_seconds": round(lag, 1), "max_lag_seconds": max_lag}


def _rejected_rows(warehouse: "Warehouse", spec: SourceSpec, resource: ResourceSpec):
    """Rows the latest load set aside: the newest `_dlt_load_id` in the table or in
    `<table>__rejected` (the latest load that wrote to either), counted in `__rejected`."""
    rejected = resource.rejected_table
    if not warehouse.has_table(rejected):
        return True, f"no row rejected ({spec.name}.{rejected} is empty)", {"rejected_rows": 0}
    load_id, table = warehouse.column("_dlt_load_id"), warehouse.table(rejected)
    loads = [f"select max({load_id}) as id from {table}"]
    if warehouse.has_table(resource.name):
        loads.append(f"select max({load_id}) as id from {warehouse.table(resource.name)}")
    latest = warehouse.rows(f"select max(id) from ({' union all '.join(loads)}) as loads")[0][0]
    count, total = warehouse.rows(
        f"select count(case when {load_id} = %s then 1 end), count(*) from {table}", latest
    )[0]
    metadata: dict[str, Any] = {"rejected_rows": count, "rejected_rows_all_loads": total}
    metadata["load_id"] = str(latest)
    if not count:
        earlier = f"; {plural(total, 'row')} from earlier loads in {rejected}" if total else ""
        return True, f"no row rejected by the latest load ({latest}){earlier}", metadata
    reason = warehouse.rows(
        f"select {warehouse.column('reason')} from {table} where {load_id} = %s"
        f" order by {warehouse.column('reason')} limit 1",
        latest,
    )[0][0]
    metadata["sample_reason"] = reason
    description = (
        f"{plural(count, 'row')} rejected by the latest load ({latest}) into"
        f" {spec.name}.{rejected}, e.g. {reason}"
    )
    return False, description, metadata


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
    "rejected_rows": "The latest load set no row aside in <table>__rejected (on_invalid: quarantine).",
}

#: checks that warn rather than fail: quarantined rows were expected to happen
_SEVERITIES = {"rejected_rows": AssetCheckSeverity.WARN}


def _sample_keys(
    warehouse: "Warehouse", table: str, resource: ResourceSpec, where: str
) -> list[str]:
    cols = resource.primary_key_columns or ("_dlt_id",)
    key_sql = ", ".join(warehouse.column(c) for c in cols)
    return [
        _key(row)
        for row in warehouse.rows(f"select {key_sql} from {table} where {where} limit {SAMPLE}")
    ]


def _last_load(warehouse: "Warehouse", table: str) -> float | None:
    load_id = warehouse.column("_dlt_load_id")
    found = warehouse.rows(
        f"select max(l.inserted_at) from {warehouse.table('_dlt_loads')} l"
        f" where l.status = 0 and l.load_id = (select max({load_id}) from {table})"
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


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"

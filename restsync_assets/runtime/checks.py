"""The asset checks' evaluators: each kind of `restsync_assets.check_kinds` against the warehouse.

The body of a spec's multi-check (`restsync_assets.checks`) calls `evaluate_checks`: it reads
the warehouse the spec's loads write, through the spec's dlt pipeline, under the loads' lock
(`runtime.warehouse.reading`), and evaluates each selected check with the function its kind
names. The SQL runs on DuckDB and PostgreSQL; a failing check names a sample of the
offending keys.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from dagster import AssetCheckExecutionContext, AssetCheckResult, Failure, MetadataValue

from restsync_assets.check_kinds import KINDS_BY_NAME, kinds_for
from restsync_assets.keys import asset_key
from restsync_assets.runtime.warehouse import Warehouse, WarehouseError, reading
from restsync_assets.specs.model import ResourceSpec, SourceSpec
from restsync_assets.text import plural

SAMPLE = 5


def evaluate_checks(
    context: AssetCheckExecutionContext, spec: SourceSpec, clock: Callable[[], float]
) -> Iterator[AssetCheckResult]:
    """The selected checks of `spec`'s assets, in evaluation order (one warehouse connection)."""
    selected = {(k.asset_key, k.name) for k in context.selected_asset_check_keys}
    try:
        with reading(spec, on_wait=context.log.info) as warehouse:
            rowless = warehouse.tables_without_rows(spec.name)
            for resource in spec.resources:
                for kind in kinds_for(resource):
                    if (asset_key(spec, resource), kind.name) not in selected:
                        continue
                    last = (
                        _last_materialization(context, spec, resource)
                        if kind.name == "freshness"
                        else None
                    )
                    yield evaluate(warehouse, spec, resource, kind.name, clock(), last, rowless)
    except WarehouseError as error:
        raise Failure(description=str(error)) from None


#: Every evaluator (named by its kind's `evaluator`) takes (warehouse, the resource's table
#: qualified, or None for a kind that does not need it, spec, resource, now, the last
#: materialization's time or None) and returns (passed, description, metadata).


def evaluate(
    warehouse: Warehouse,
    spec: SourceSpec,
    resource: ResourceSpec,
    name: str,
    now: float,
    last_materialized: float | None = None,
    rowless: Collection[str] = (),
) -> AssetCheckResult:
    """Evaluate one check of one asset; `rowless` are the tables dlt loaded without a row."""
    key = asset_key(spec, resource)
    kind = KINDS_BY_NAME[name]
    evaluator = globals()[kind.evaluator]
    if not kind.needs_table:
        passed, description, metadata = evaluator(
            warehouse, None, spec, resource, now, last_materialized
        )
    elif warehouse.has_table(resource.name):
        passed, description, metadata = evaluator(
            warehouse, warehouse.table(resource.name), spec, resource, now, last_materialized
        )
    elif resource.name in rowless:  # loaded without a single row, so dlt created no table
        passed, description, metadata = _no_rows(resource, name, now, last_materialized)
    else:
        return AssetCheckResult(
            asset_key=key,
            check_name=name,
            passed=False,
            description=f"table {spec.name}.{resource.name} does not exist: load it with"
            f" `{reload_command(spec, resource)}`",
        )
    return AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=passed,
        description=description,
        metadata=metadata,
        severity=kind.severity,
    )


def reload_command(spec: SourceSpec, resource: ResourceSpec) -> str:
    """The command that reloads the resource's table from scratch: a plain run cannot bring back
    rows an incremental resource already passed, remove duplicates, or recreate a table
    dropped by hand (dlt's schema still lists it)."""
    return f"restsync run {spec.name}/{resource.name} --full-refresh"


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


def primary_key(warehouse, table, spec, resource, now, last):
    """The key columns are unique and never null (a sample of duplicated keys)."""
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
    if not passed:
        description += f"; reload: `{reload_command(spec, resource)}`"
    metadata = {
        "duplicate_keys": duplicates,
        "null_keys": nulls,
        "sample": MetadataValue.json(sample),
    }
    return passed, description, metadata


def not_null(warehouse, table, spec, resource, now, last):
    """Declared non-nullable fields hold no nulls (a sample of keys per column)."""
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


def column_types(warehouse, table, spec, resource, now, last):
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


def row_count(warehouse, table, spec, resource, now, last):
    """At least the spec's `min_rows` rows."""
    count = warehouse.rows(f"select count(*) from {table}")[0][0]
    minimum = resource.min_rows
    passed = count >= minimum
    description = f"{plural(count, 'row')} (minimum {minimum})"
    return passed, description, {"row_count": count, "min_rows": minimum}


def freshness(warehouse, table, spec, resource, now, last):
    """Last materialization (else the table's last dlt load) within `max_lag`."""
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


def rejected_rows(warehouse: Warehouse, table, spec: SourceSpec, resource: ResourceSpec, now, last):
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


def _sample_keys(warehouse: Warehouse, table: str, resource: ResourceSpec, where: str) -> list[str]:
    cols = resource.primary_key_columns or ("_dlt_id",)
    key_sql = ", ".join(warehouse.column(c) for c in cols)
    return [
        _key(row)
        for row in warehouse.rows(f"select {key_sql} from {table} where {where} limit {SAMPLE}")
    ]


def _last_load(warehouse: Warehouse, table: str) -> float | None:
    load_id = warehouse.column("_dlt_load_id")
    found = warehouse.rows(
        f"select max(l.inserted_at) from {warehouse.table('_dlt_loads')} l"
        f" where l.status = 0 and l.load_id = (select max({load_id}) from {table})"
    )
    value = found[0][0] if found else None
    return value.timestamp() if value is not None else None


def _key(values: Sequence[Any]) -> str:
    return str(values[0]) if len(values) == 1 else "(" + ", ".join(str(v) for v in values) + ")"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _last_materialization(
    context: AssetCheckExecutionContext, spec: SourceSpec, resource: ResourceSpec
) -> float | None:
    event = context.instance.get_latest_materialization_event(asset_key(spec, resource))
    return event.timestamp if event is not None else None

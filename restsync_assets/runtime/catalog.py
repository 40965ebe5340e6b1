"""Dagster's standard table metadata on each materialization, read at run time.

Added to what dagster-dlt already records (`dagster/column_schema`, `rows_loaded`, dlt's
load info):

- `dagster/row_count`: rows in the table after the load;
- `dagster/partition_row_count` (a run of one partition): rows this run wrote, merged;
- `dagster/table_name`: `<database>.<dataset>.<table>` (dagster-dlt writes the destination
  type, e.g. `duckdb.<dataset>.<table>`, and nothing when the run loaded no rows);
- `restsync/rejected_rows` (`on_invalid: quarantine`): rows this run set aside in
  `<table>__rejected`.

Counts are read through the sql_client of the dlt pipeline the run used, inside the run's
warehouse lock. dagster-dlt's own `fetch_row_count()` is not used: it fails the run when a
table got no new rows and records only `rows_loaded` for partitions. The asset's own
(definition-time) metadata is `restsync_assets.metadata`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue
from dlt.pipeline.pipeline import Pipeline

from restsync_assets.keys import PARTITION_ROW_COUNT, ROW_COUNT, TABLE_NAME, resource_name
from restsync_assets.runtime.soft_deletes import load_ids
from restsync_assets.specs.model import SourceSpec

#: rows a run set aside in `<table>__rejected` (`on_invalid: quarantine`)
REJECTED_ROWS = "restsync/rejected_rows"


def with_table_metadata(
    context: AssetExecutionContext,
    spec: SourceSpec,
    pipeline: Pipeline,
    events: Iterable[Any],
) -> Iterator[Any]:
    """`events` (dagster-dlt's materializations), each with the table's standard metadata."""
    from restsync_assets.runtime.progress import notify_materialized

    for event in events:
        if isinstance(event, MaterializeResult) and event.asset_key is not None:
            table = resource_name(spec, event.asset_key)
            extra = table_metadata(context, pipeline, table) if table else {}
            rejected = spec.resource(table).rejected_table if table else None
            if rejected and extra:
                extra[REJECTED_ROWS] = MetadataValue.int(_rejected_rows(pipeline, rejected))
            event = MaterializeResult(
                asset_key=event.asset_key,
                metadata={**(event.metadata or {}), **extra},
                check_results=event.check_results,
                data_version=event.data_version,
                tags=event.tags,
            )
            notify_materialized(spec, table, event.metadata)
        yield event


def table_metadata(
    context: AssetExecutionContext, pipeline: Pipeline, table: str
) -> dict[str, Any]:
    """Row counts and qualified name of `table` in the pipeline's dataset, as it is now."""
    one_partition = context.has_partition_key
    try:
        with pipeline.sql_client() as client:
            qualified = client.make_qualified_table_name(table)
            path = client.make_qualified_table_name_path(table, quote=False)
            if len(path) == 2:  # connection-scoped database: name it
                path = [*_database(client), *path]
            rows = _count(client, qualified)
            partition_rows = _partition_rows(client, qualified, pipeline) if one_partition else None
    except Exception as error:  # no sql_client (e.g. filesystem): the load itself succeeded
        from restsync_assets.runtime.http.masking import mask_text

        reason = mask_text(str(error).strip().splitlines()[0][:200] if str(error).strip() else "")
        context.log.warning(f"{table}: row counts not recorded ({type(error).__name__}: {reason})")
        return {}
    metadata = {ROW_COUNT: MetadataValue.int(rows), TABLE_NAME: MetadataValue.text(".".join(path))}
    if partition_rows is not None:
        metadata[PARTITION_ROW_COUNT] = MetadataValue.int(partition_rows)
    return metadata


def _rejected_rows(pipeline: Pipeline, rejected: str) -> int:
    """Rows the pipeline's last run wrote to `rejected` (0 when it has no such table)."""
    loads = load_ids(pipeline)
    if not loads:
        return 0
    with pipeline.sql_client() as client:
        return _count(client, client.make_qualified_table_name(rejected), loads)


def _database(client: Any) -> list[str]:
    """The current database (catalog) of the connection, when the destination says."""
    try:
        with client.execute_query("select current_database()") as cursor:
            row = cursor.fetchone()
    except Exception:
        return []
    return [str(row[0])] if row and row[0] else []


def _count(client: Any, qualified: str, load_ids: list[str] | None = None) -> int:
    """Rows of a table (0 when it does not exist), or only those of the given dlt loads."""
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    where = ""
    if load_ids is not None:
        literal = client.capabilities.escape_literal
        where = f" where _dlt_load_id in ({', '.join(literal(i) for i in load_ids)})"
    try:
        with client.execute_query(f"select count(*) from {qualified}{where}") as cursor:
            return int(cursor.fetchone()[0])
    except DatabaseUndefinedRelation:
        return 0


def _partition_rows(client: Any, qualified: str, pipeline: Pipeline) -> int | None:
    """Rows the run wrote (dlt's `_dlt_load_id` of its loads); None when not countable."""
    loads = load_ids(pipeline)
    if not loads:
        return 0
    try:
        return _count(client, qualified, loads)
    except Exception:  # a table without `_dlt_load_id`: no partition count rather than a wrong one
        return None

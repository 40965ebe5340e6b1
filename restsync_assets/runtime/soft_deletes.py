"""`deletes: soft`: after a complete scan, the rows it did not return are marked deleted.

A resource with `deletes: soft` gets the column `_restsync_deleted_at` (timestamp, nullable)
as a dlt column hint, so dlt creates it and every row the merge writes (delete-insert and
upsert rewrite each row the scan returned, with this load's `_dlt_load_id`) has it null: a
row that comes back is unmarked by the merge itself. Once the load succeeded, still under
the run's warehouse lock, one UPDATE sets `_restsync_deleted_at` to the load's time on the
rows whose `_dlt_load_id` is not one of this run's loads and that are not marked yet.

It runs only for a materialization dagster-dlt reports, and dagster-dlt reports only after
`pipeline.run` returned with no failed job: a run that failed anywhere (an HTTP error, the
pagination loop detector, a failed load job) marks nothing. Spec validation keeps it to
resources read in full (`specs.validate.deletes`); `restsync preview` never loads. A scan
that returned no row at all marks nothing either (logged): an empty answer is more often an
outage or a changed filter than every row deleted at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue
from dlt.pipeline.pipeline import Pipeline

from restsync_assets.keys import resource_name
from restsync_assets.specs.model import ResourceSpec, SourceSpec

#: the column a soft-deleting resource's table gets, and its dlt hint
DELETED_AT = "_restsync_deleted_at"
COLUMN = {"data_type": "timestamp", "nullable": True}
#: materialization metadata: rows this load marked, rows marked in the table now
DELETED_ROWS = "restsync/deleted_rows"
MARKED_ROWS = "restsync/marked_deleted_rows"


@dataclass(frozen=True)
class Marking:
    """What one load did to a soft-deleting table."""

    returned: int  # rows of the table this load wrote (the scan, merged by key)
    marked: int  # rows this load marked deleted
    total: int  # rows marked deleted in the table after the load

    def metadata(self) -> dict[str, Any]:
        return {
            DELETED_ROWS: MetadataValue.int(self.marked),
            MARKED_ROWS: MetadataValue.int(self.total),
        }


def with_soft_deletes(
    context: AssetExecutionContext, spec: SourceSpec, pipeline: Pipeline, events: Iterable[Any]
) -> Iterator[Any]:
    """`events` (dagster-dlt's materializations, yielded after a successful load), each of a
    `deletes: soft` resource with the rows its scan missed marked first."""
    for event in events:
        resource = _soft_deleting(spec, event)
        if resource is not None:
            marking = mark_missing_rows(pipeline, resource.name)
            context.log.info(_summary(spec, resource, marking))
            event = MaterializeResult(
                asset_key=event.asset_key,
                metadata={**(event.metadata or {}), **marking.metadata()},
                check_results=event.check_results,
                data_version=event.data_version,
                tags=event.tags,
            )
        yield event


def mark_missing_rows(pipeline: Pipeline, table: str) -> Marking:
    """Mark the rows of `table` the pipeline's last run did not write (see the module)."""
    loads = load_ids(pipeline)
    if not loads:
        return Marking(0, 0, 0)
    with pipeline.sql_client() as client:
        qualified = client.make_qualified_table_name(table)
        column = client.escape_column_name(DELETED_AT)
        load_id = client.escape_column_name("_dlt_load_id")
        ours = ", ".join(client.capabilities.escape_literal(i) for i in loads)
        returned = _count(client, qualified, f"{load_id} in ({ours})")
        if not returned:
            return Marking(0, 0, _marked(client, qualified, column))
        missing = f"{column} is null and {load_id} not in ({ours})"
        with client.begin_transaction():
            marked = _count(client, qualified, missing)
            if marked:
                stamp = load_time(loads)
                client.execute_sql(f"update {qualified} set {column} = %s where {missing}", stamp)
        return Marking(returned, marked, _marked(client, qualified, column))


def load_ids(pipeline: Pipeline) -> list[str]:
    """The dlt load ids of the pipeline's last run (dagster-dlt's `pipeline.run`)."""
    trace = pipeline.last_trace
    info = trace.last_load_info if trace is not None else None
    return list(info.loads_ids) if info is not None else []


def load_time(loads: list[str]) -> datetime:
    """The load's time: dlt's load id is the epoch time its package was created."""
    return datetime.fromtimestamp(max(float(i) for i in loads), tz=timezone.utc)


def _count(client: Any, qualified: str, where: str) -> int:
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    try:
        with client.execute_query(f"select count(*) from {qualified} where {where}") as cursor:
            return int(cursor.fetchone()[0])
    except DatabaseUndefinedRelation:  # no table: the resource never returned a row
        return 0


def _marked(client: Any, qualified: str, column: str) -> int:
    """Rows marked deleted in the table (0 before dlt created the column: no row of this
    table was ever loaded with `deletes: soft`)."""
    from dlt.destinations.exceptions import DatabaseTerminalException

    try:
        return _count(client, qualified, f"{column} is not null")
    except DatabaseTerminalException:
        return 0


def _soft_deleting(spec: SourceSpec, event: Any) -> ResourceSpec | None:
    if not isinstance(event, MaterializeResult) or event.asset_key is None:
        return None
    name = resource_name(spec, event.asset_key)
    resource = spec.resource(name) if name is not None else None
    return resource if resource is not None and resource.deletes == "soft" else None


def _summary(spec: SourceSpec, resource: ResourceSpec, marking: Marking) -> str:
    where = f"{spec.name}/{resource.name}"
    if not marking.returned:
        return (
            f"{where}: the scan returned no rows, so nothing was marked deleted (an empty"
            f" answer is not taken to mean every row was deleted); {marking.total} rows"
            " marked deleted in the table"
        )
    return (
        f"{where}: {marking.marked} rows the scan did not return marked deleted"
        f" ({DELETED_AT}); {marking.total} rows marked deleted in the table"
    )

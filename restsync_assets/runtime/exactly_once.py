"""Exactly-once loads: before a run extracts, remove what an unfinished load left behind.

dlt commits each table's load job on its own and writes the package's `_dlt_loads` row
(status 0) last. A load that fails or is killed in between leaves rows in the tables whose jobs
committed, and its package is never finished: dagster-dlt drops the local package before the
next run, a PostgreSQL load drops the whole local state (`dataset_lock.load_turn`, another
machine may have loaded since), and the next run extracts the same rows again from the cursor
of the last *completed* load. Merge and replace tables heal by themselves (the rows are merged
or replaced again); an append table would hold them twice.

So every run, under the dataset's lock (the `fcntl` lock of `runtime.locks` and, on PostgreSQL,
the advisory lock), deletes from every append table of the dataset the rows whose
`_dlt_load_id` is not a completed load, and from their nested tables (which carry no
`_dlt_load_id`) the rows whose parent row is gone, in one transaction. No other run's load can
be in progress then: every load holds the same lock until it committed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlt.pipeline.pipeline import Pipeline


#: The column that ties a row to its load: `_dlt_load_id` in a root table, the parent row's
#: `_dlt_id` (as `_dlt_parent_id`) in a nested one.
_KEY_COLUMN = {False: "_dlt_load_id", True: "_dlt_parent_id"}


def remove_unfinished_loads(pipeline: Pipeline) -> dict[str, int]:
    """Delete the rows of loads that never completed from `pipeline`'s dataset's append tables
    and their nested tables; `{table: rows deleted}` (tables with none left out).

    The tables and their write dispositions come from the newest schema dlt stored in the
    destination (`_dlt_version`), which a load writes before any of its jobs, so it knows every
    table an unfinished load may have written to.
    """
    from dlt.common.schema.utils import is_nested_table

    with pipeline.destination_client() as client:
        if not client.is_storage_initialized():
            return {}
        stored = client.get_stored_schema()
        if stored is None:
            return {}
        tables = json.loads(stored.schema)["tables"]
        ordered = _append_tables(tables)
        # only tables that exist and carry the column their rows are told by (a table made by
        # other means, e.g. without `_dlt_load_id`, is left alone)
        existing = {
            name
            for name, columns in client.get_storage_tables(ordered)
            if _KEY_COLUMN[is_nested_table(tables[name])] in columns
        }
        loads_table = tables.get("_dlt_loads", {}).get("name", "_dlt_loads")
        if loads_table not in {n for n, c in client.get_storage_tables([loads_table]) if c}:
            return {}
        sql = client.sql_client
        deleted: dict[str, int] = {}
        with sql.begin_transaction():
            for name in (n for n in ordered if n in existing):
                count = _delete_orphans(sql, tables, name, loads_table)
                if count:
                    deleted[name] = count
        return deleted


def _append_tables(tables: dict) -> list[str]:
    """The data tables loaded with `append` (nested ones by their root's disposition), every
    parent before its nested tables."""
    from dlt.common.schema.utils import get_nested_tables, get_write_disposition, is_nested_table

    roots = [
        name
        for name, table in tables.items()
        if not name.startswith("_dlt_")
        and not is_nested_table(table)
        and get_write_disposition(tables, name) == "append"
    ]
    return [t["name"] for root in sorted(roots) for t in get_nested_tables(tables, root)]


def _delete_orphans(sql, tables: dict, name: str, loads_table: str) -> int:
    """Delete the rows of `name` that belong to no completed load; how many."""
    from dlt.common.schema.utils import is_nested_table

    table = sql.make_qualified_table_name(name)
    if is_nested_table(tables[name]):
        # an anti-join: PostgreSQL runs `NOT IN` over a parent too big for `work_mem` row by row
        parent = sql.make_qualified_table_name(tables[name]["parent"])
        where = (
            f"NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE"
            f" p.{sql.escape_column_name('_dlt_id')} = {table}.{sql.escape_column_name('_dlt_parent_id')})"
        )
    else:
        loads = sql.make_qualified_table_name(loads_table)
        where = (
            f"{sql.escape_column_name('_dlt_load_id')} NOT IN"
            f" (SELECT {sql.escape_column_name('load_id')} FROM {loads}"
            f" WHERE {sql.escape_column_name('status')} = 0)"
        )
    rows = sql.execute_sql(f"SELECT count(*) FROM {table} WHERE {where}")
    count = int(rows[0][0]) if rows else 0
    if count:
        sql.execute_sql(f"DELETE FROM {table} WHERE {where}")
    return count

"""Children of incremental parents see every known parent, not only the changed ones.

An incremental parent (`authors` with an `updated_at` cursor) returns only the rows that
changed since its last run. dlt feeds a child (`books`, one request per author) those rows
only, so a new book under an unchanged author was never asked for (and a child with
`write_disposition: replace` lost the books of every unchanged author). With `parents: all`
(the default) a child, incremental or not, is asked, after this run's parents, for every
parent already in the warehouse that this run did not return (an incremental child from
each parent's own cursor, `child_cursors`): no child row is lost.

How the child learns that the parent is done: the parent's generator yields, after its last
page, one empty page that carries a `ParentsDone` marker as dlt item meta. dlt passes the
meta along the parent's steps and through its fork to each child; the child's transformer
then reads the parent table through the pipeline's own `sql_client` (on DuckDB the run
already holds the file; on PostgreSQL a second connection) and fetches the parents it has
not seen. A parent table that does not exist yet (first run) holds no parents. An empty
page loads no row into the parent's table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from typing import Any

import dlt
from dlt.extract.items import DataItemWithMeta

from restsync_assets.errors import RestsyncError
from restsync_assets.runtime.soft_deletes import DELETED_AT
from restsync_assets.specs.model import ResourceSpec, SourceSpec


class ParentsDone:
    """dlt item meta on the empty page a parent yields after its last page."""

    def __repr__(self) -> str:
        return "ParentsDone()"


def parents_done() -> DataItemWithMeta:
    """The empty page that tells each child its parent has yielded every row of this run."""
    return DataItemWithMeta(ParentsDone(), [])


def is_parents_done(meta: Any) -> bool:
    return isinstance(meta, ParentsDone)


def sees_every_parent(
    spec: SourceSpec, child: ResourceSpec, scanned: frozenset[str] = frozenset()
) -> bool:
    """Whether `child` is asked for every known parent: a child with `parents: all` (the
    default; incremental or not) whose parent returns only changed rows (an incremental
    parent, not `scanned` in full in this run). Not a child that batches or explodes its
    parent's keys (`parent_keys`): it sees the parents the run returned."""
    if child.parents != "all" or child.parent is None or child.parent_keys is not None:
        return False
    return child.parent not in scanned and is_incremental(spec.resource(child.parent))


def is_incremental(resource: ResourceSpec) -> bool:
    """Whether a run of `resource` returns only the rows changed since its last run: a dlt
    `incremental` (endpoint key or `type: incremental` param) or a per-parent cursor; not
    with `partitions` (each partition run owns its window's parents)."""
    if resource.partitions is not None:
        return False
    if resource.cursor is not None:
        return True
    endpoint = resource.endpoint
    params = endpoint.get("params") or {}
    return isinstance(endpoint.get("incremental"), dict) or any(
        isinstance(v, dict) and v.get("type") == "incremental" for v in params.values()
    )


def with_parents_done(gen: Any) -> Any:
    """A top-level dlt resource's head step (`resource._pipe.gen`: a generator function or a
    generator) that yields `parents_done()` after its last item."""
    if callable(gen):
        original: Callable[..., Iterator[Any]] = gen

        @wraps(original)
        def then_done(*args: Any, **kwargs: Any) -> Iterator[Any]:
            yield from original(*args, **kwargs)
            yield parents_done()

        return then_done

    def done_after() -> Iterator[Any]:
        yield from gen
        yield parents_done()

    return done_after()


class KnownParentsError(RestsyncError, RuntimeError):
    """The warehouse's parents cannot be read: one line naming the resource and the fix."""

    kind = "warehouse"


class KnownParents:
    """Reads a parent table's rows in the warehouse: the fields a child binds or carries."""

    def __init__(self, child: str, table: str, fields: tuple[str, ...]):
        self.child = child
        self.table = table
        self.fields = fields

    def rows(self) -> list[dict[str, Any]]:
        """One row per parent (its newest load), as nested dicts of `fields` (dotted paths);
        none when the table does not exist yet. Rows `deletes: soft` marked are left out."""
        from dlt.common.destination.exceptions import SqlClientNotAvailable
        from dlt.destinations.exceptions import DatabaseUndefinedRelation

        pipeline = dlt.current.pipeline()
        naming = dlt.current.source_schema().naming
        columns = {
            f: "__".join(naming.normalize_identifier(p) for p in f.split(".")) for f in self.fields
        }
        try:
            with pipeline.sql_client() as client:
                table = client.make_qualified_table_name(
                    naming.normalize_table_identifier(self.table)
                )
                found = _select(client, table, list(dict.fromkeys(columns.values())))
        except DatabaseUndefinedRelation:  # first run: no parent table (or dataset) yet
            return []
        except SqlClientNotAvailable:
            raise KnownParentsError(
                f"resource {self.child}: parents: all reads the parent table {self.table} from"
                f" the warehouse, and destination {pipeline.destination.destination_name} cannot"
                " be queried; set parents: changed on the resource (see its risk in the docs)"
            ) from None
        return [_nested({f: row.get(c) for f, c in columns.items()}) for row in found]


def _select(client: Any, table: str, columns: list[str]) -> list[dict[str, Any]]:
    """`columns` (those the table has) of the table's live rows, newest load first."""
    with client.execute_query(f"select * from {table} where 1 = 0") as cursor:
        present = {d[0] for d in cursor.description}
    wanted = [c for c in columns if c in present]
    if not wanted:
        return []
    sql = f"select {', '.join(client.escape_column_name(c) for c in wanted)} from {table}"
    if DELETED_AT in present:  # `deletes: soft` marked the parent deleted: not asked
        sql += f" where {client.escape_column_name(DELETED_AT)} is null"
    if "_dlt_load_id" in present:
        sql += f" order by {client.escape_column_name('_dlt_load_id')} desc"
    with client.execute_query(sql) as cursor:
        return [dict(zip(wanted, row, strict=True)) for row in cursor.fetchall()]


def _nested(values: dict[str, Any]) -> dict[str, Any]:
    """`{"a.b": 1}` as `{"a": {"b": 1}}`: the shape the child's bindings read."""
    row: dict[str, Any] = {}
    for path, value in values.items():
        *parents, last = path.split(".")
        into = row
        for part in parents:
            into = into.setdefault(part, {})
        into[last] = value
    return row


def scanned_in_full(spec: SourceSpec, selected: Sequence[str] | None) -> frozenset[str]:
    """The incremental resources that only drive a selected child in this run (the parent
    asset is not materialized): they scan in full, without their incremental, so their
    cursor does not move past rows that were never loaded (their children see every live
    parent, none of the warehouse's is needed)."""
    if selected is None:
        return frozenset()
    chosen = set(selected)
    return frozenset(
        r.parent
        for r in spec.resources
        if r.name in chosen
        and r.parent is not None
        and r.parent not in chosen
        and is_incremental(spec.resource(r.parent))
    )


def without_incremental(endpoint: dict[str, Any]) -> dict[str, Any]:
    """`endpoint` with its incremental removed (the `incremental` key, `type: incremental`
    params and params that are `{incremental.*}` placeholders): one full, stateless scan."""
    params = {
        k: v
        for k, v in (endpoint.get("params") or {}).items()
        if not (isinstance(v, dict) and v.get("type") == "incremental")
        and not (isinstance(v, str) and "{incremental." in v)
    }
    stripped = {k: v for k, v in endpoint.items() if k != "incremental"}
    if "params" in endpoint:
        stripped["params"] = params
    return stripped

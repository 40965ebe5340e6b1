"""Reading the warehouse restsync loads into back through dlt (checks, demo, tests).

A reader opens the same dlt pipeline, destination and dataset a spec's loads use
(`destination.build_pipeline`, `destination.destination`) and queries
through that pipeline's own client, so it reads exactly the warehouse the run wrote, whatever
the destination. A reader holds the same lock as loads (`locks.lock_path`: `<file>.lock`
for DuckDB), so it never meets a load halfway nor fails on DuckDB's file lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restsync_assets.errors import RestsyncError

if TYPE_CHECKING:
    from dlt.common.destination import Destination

    from restsync_assets.specs.model import SourceSpec


class WarehouseError(RestsyncError, RuntimeError):
    """The warehouse is not configured or cannot be reached. The message is one line."""

    kind = "warehouse"


def duckdb_file(target: Destination) -> Path | None:
    """The DuckDB file of `target`, or None for another destination."""
    if target.destination_name != "duckdb":
        return None
    return Path(target.config_params["credentials"].database)


class Warehouse:
    """One spec's dataset, read through the client of the spec's dlt pipeline.

    `client` is None when there is nothing to read (the DuckDB file does not exist yet).
    """

    def __init__(self, location: str, client: Any = None):
        self.location = location
        self.client = client

    @property
    def sql(self) -> Any:
        return self.client.sql_client

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        """Rows of `sql`; parameters are `%s` on every destination."""
        return [tuple(row) for row in self.sql.execute_sql(sql, *params) or []]

    def table(self, name: str) -> str:
        """`name` qualified with the dataset and quoted for this destination."""
        return self.sql.make_qualified_table_name(name)

    def column(self, name: str) -> str:
        return self.sql.escape_column_name(name)

    def has_table(self, name: str) -> bool:
        if self.client is None:
            return False
        found = self.rows(
            "select count(*) from information_schema.tables"
            " where table_schema = %s and table_name = %s",
            *self._where(name),
        )
        return found[0][0] > 0

    def columns(self, table: str) -> dict[str, tuple[str, str | None]]:
        """Each column of `table`: (the destination's type name, its dlt data type or None)."""
        rows = self.rows(
            "select column_name, data_type, numeric_precision, numeric_scale"
            " from information_schema.columns where table_schema = %s and table_name = %s",
            *self._where(table),
        )
        return {name: (db_type, self.data_type(db_type, p, s)) for name, db_type, p, s in rows}

    def data_type(self, db_type: str, precision: int | None, scale: int | None) -> str | None:
        """The dlt data type dlt reads `db_type` as; None for a type dlt does not map (dlt
        would call it text)."""
        mapper = self.sql.capabilities.get_type_mapper()
        data_type = mapper.from_destination_type(db_type, precision, scale).get("data_type")
        known = {t.lower() for t in getattr(mapper, "dbt_to_sct", {})} | {"text"}
        if data_type == "text" and db_type.split("(")[0].strip().lower() not in known:
            return None
        return data_type

    def tables_without_rows(self, schema_name: str) -> set[str]:
        """Tables dlt loaded into this dataset without ever seeing a row (e.g. a resource whose
        only partitions so far were empty): dlt creates no table for them, but lists them in
        the newest schema it stored here, not marked `seen-data`."""
        from dlt.common.destination.exceptions import DestinationUndefinedEntity

        if self.client is None:
            return set()
        try:
            stored = self.client.get_stored_schema(schema_name)
        except DestinationUndefinedEntity:  # nothing loaded into this dataset yet
            return set()
        tables = json.loads(stored.schema)["tables"] if stored is not None else {}
        return {
            name
            for name, table in tables.items()
            if not (table.get("x-normalizer") or {}).get("seen-data")
        }

    def ids(self, table: str) -> list | None:
        """Every `id` of `table`, or None when the table does not exist."""
        keys = self.keys(table, ("id",))
        return None if keys is None else [key[0] for key in keys]

    def keys(self, table: str, columns: tuple[str, ...]) -> list[tuple] | None:
        """The `columns` (a primary key) of every row of `table`, or None when it does not
        exist."""
        if not self.has_table(table):
            return None
        selected = ", ".join(self.column(c) for c in columns)
        return [tuple(row) for row in self.rows(f"select {selected} from {self.table(table)}")]

    def _where(self, table: str) -> tuple[str, str]:
        fold = self.sql.capabilities.casefold_identifier
        return self.sql.dataset_name, fold(table)


@contextmanager
def reading(
    spec: SourceSpec, on_wait: Callable[[str], None] = lambda _msg: None
) -> Iterator[Warehouse]:
    """The warehouse `spec`'s loads write, open for reading under the loads' lock."""
    from restsync_assets.runtime.destination import build_pipeline, destination
    from restsync_assets.runtime.failures import warehouse_problem
    from restsync_assets.runtime.locks import exclusive, lock_path

    with exclusive(lock_path(spec), on_wait=on_wait):
        target = destination(read_only=True)
        path = duckdb_file(target)
        if path is not None and not path.exists():
            yield Warehouse(f"duckdb {path}")
            return
        try:
            client = build_pipeline(spec, target=target).destination_client()
            sql = client.sql_client
            sql.__enter__()
        except Exception as error:
            problem = warehouse_problem(error) or f"{target.destination_name} warehouse: {error}"
            raise WarehouseError(problem.strip().splitlines()[0]) from None
        try:
            if hasattr(sql, "create_views_for_all_tables"):  # files (filesystem): views on them
                sql.create_views_for_all_tables()
            yield Warehouse(location(target, client), client)
        finally:
            sql.__exit__(None, None, None)


def location(target: Destination, client: Any = None) -> str:
    """`duckdb <file>`, `<destination> <URL without its password>` or `<destination> <bucket>`."""
    from dlt.common.configuration.specs import ConnectionStringCredentials

    from restsync_assets.runtime.http.masking import mask_text

    path = duckdb_file(target)
    if path is not None:
        return f"duckdb {path}"
    config = getattr(client, "config", None)
    credentials = getattr(config, "credentials", None)
    if isinstance(credentials, ConnectionStringCredentials):  # renders without the password
        return mask_text(f"{target.destination_name} {credentials}", [])
    bucket = getattr(config, "bucket_url", None)
    return f"{target.destination_name} {bucket}" if bucket else target.destination_name

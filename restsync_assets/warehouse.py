"""Read-only queries against the DuckDB warehouse (demo summary, checks, tests)."""

from __future__ import annotations

from pathlib import Path

from restsync_assets import settings


def table_ids(dataset: str, table: str, path: Path | None = None) -> list | None:
    """Every `id` of `dataset.table`, or None when the file or table does not exist."""
    return query(f'select id from "{dataset}"."{table}"', path, scalar_rows=True)


def query(sql: str, path: Path | None = None, *, scalar_rows: bool = False) -> list | None:
    """Run `sql` read-only; None when the warehouse or a table in the query is missing."""
    import duckdb

    path = path or settings.duckdb_path()
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        try:
            rows = con.execute(sql).fetchall()
        except duckdb.CatalogException:
            return None
    return [r[0] for r in rows] if scalar_rows else rows

"""The same seed specs loaded into DuckDB and into PostgreSQL (dlt's parquet path through ADBC)
give the same tables: same columns with the same dlt data types, same rows, same values."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterInstance

from restsync_assets.cli.run import materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.runtime.destination import (
    build_pipeline,
    declares_unique,
    destination,
    loader_file_format,
)
from restsync_assets.runtime.warehouse import reading
from restsync_assets.specs import load_specs

from .real_servers import pg_query
from .support import ROW_IDS, SEED_SPECS, normal, sorted_rows, write_spec

Tables = dict[str, tuple[dict[str, str | None], list[tuple]]]


def _load_all_seeds() -> None:
    """Every seed asset (partitioned ones as one run over all partitions), checks included."""
    specs = load_specs(SEED_SPECS)
    defs = build_definitions(specs)
    instance = DagsterInstance.ephemeral()
    results = [r for spec in specs for r in materialize_spec(defs, spec, instance)]
    assert results and all(r.success for r in results), "a seed run failed"
    failed = [e for r in results for e in r.get_asset_check_evaluations() if not e.passed]
    assert failed == [], f"checks failed: {[e.check_name for e in failed]}"


def _tables() -> dict[str, Tables]:
    """`{spec: {table: ({column: dlt type}, sorted rows)}}` of the configured warehouse,
    dlt's and restsync's own tables and row-id columns left out (their values differ per
    load; restsync's async job records are a table on PostgreSQL only, empty after a load)."""
    found: dict[str, Tables] = {}
    for spec in load_specs(SEED_SPECS):
        with reading(spec) as wh:
            names = [
                n
                for (n,) in wh.rows(
                    "select table_name from information_schema.tables where table_schema = %s",
                    wh.sql.dataset_name,
                )
                if not n.startswith(("_dlt_", "_restsync_"))
            ]
            for (n,) in wh.rows(
                "select table_name from information_schema.tables where table_schema = %s"
                " and table_name like '\\_restsync\\_%%'",
                wh.sql.dataset_name,
            ):  # restsync's own (PostgreSQL's async job records): nothing left after a load
                assert wh.rows(f"select * from {wh.table(n)}") == [], f"{spec.name}.{n}"
            tables: Tables = {}
            for name in names:
                columns = {c: kind for c, (_, kind) in wh.columns(name).items() if c not in ROW_IDS}
                listed = ", ".join(wh.column(c) for c in sorted(columns))
                rows = wh.rows(f"select {listed} from {wh.table(name)}")
                tables[name] = (columns, sorted_rows(_normal_row(r) for r in rows))
            found[spec.name] = tables
    return found


def _normal_row(row: tuple) -> tuple[Any, ...]:
    return tuple(normal(v) for v in row)


def test_duckdb_and_postgresql_hold_the_same_tables_after_the_same_seed_loads(
    sandbox_env, postgres_warehouse, seed_partitions, tmp_path, monkeypatch
) -> None:
    """All five seed specs into DuckDB, then into a fresh PostgreSQL database: every table has
    the same columns, dlt data types and rows in both; PostgreSQL got parquet through ADBC
    (no fallback to another format) and no UNIQUE index on dlt's random `_dlt_id`."""
    monkeypatch.delenv("RESTSYNC_DESTINATION")
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines-duckdb"))
    _load_all_seeds()
    duckdb_tables = _tables()

    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines-postgres"))
    assert loader_file_format(destination(read_only=True)) == "parquet"
    _load_all_seeds()
    postgres_tables = _tables()

    assert sorted(postgres_tables) == sorted(duckdb_tables)
    for spec, tables in duckdb_tables.items():
        assert sorted(postgres_tables[spec]) == sorted(tables), f"{spec}: other tables"
        for name, (columns, rows) in tables.items():
            pg_columns, pg_rows = postgres_tables[spec][name]
            assert pg_columns == columns, f"{spec}.{name}: columns or types differ"
            assert rows, f"{spec}.{name}: no rows to compare"
            assert pg_rows == rows, f"{spec}.{name}: rows differ"
    unique = pg_query(
        postgres_warehouse,
        "select c.table_schema, c.table_name from information_schema.table_constraints c"
        " join information_schema.constraint_column_usage u using (constraint_name)"
        " where c.constraint_type = 'UNIQUE' and u.column_name = '_dlt_id'"
        " and c.table_schema not like '%staging' and c.table_name not like '\\_dlt\\_%'",
    )
    assert unique == [], "dlt's UNIQUE index on _dlt_id is back on data tables"


UNIQUE_CASES = [  # (resource hints, whether the spec declares a unique column)
    ({}, False),
    ({"columns": {"email": {"data_type": "text"}}}, False),
    ({"columns": {"email": {"unique": False}}}, False),
    ({"columns": {"email": {"unique": True}}}, True),
]


@pytest.mark.parametrize(("hints", "unique"), UNIQUE_CASES)
def test_postgresql_builds_unique_indexes_only_for_specs_that_ask(
    hints, unique, tmp_path, monkeypatch
) -> None:
    """A spec whose columns hint `unique` keeps dlt's UNIQUE indexes on PostgreSQL; any other
    spec's pipeline loads without them (dlt's only one would be on the random `_dlt_id`)."""
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    resource = {"name": "items", "endpoint": {"path": "items"}, **hints}
    write_spec(
        tmp_path / "specs",
        {"name": "shop", "client": {"base_url": "http://127.0.0.1:9"}, "resources": [resource]},
    )
    (spec,) = load_specs(tmp_path / "specs")
    assert declares_unique(spec) is unique
    params = build_pipeline(spec).destination.config_params
    assert params.get("create_indexes", True) is unique


MEMORY_CASES = [  # (write_disposition, RESTSYNC_DUCKDB_MEMORY_LIMIT, DuckDB's memory_limit)
    (None, None, "default cap"),
    ("append", None, "default cap"),
    ("merge", None, None),
    ({"disposition": "merge", "strategy": "upsert"}, None, None),
    ("append", "512MB", "512MB"),
    ("merge", "512MB", "512MB"),
]


@pytest.mark.parametrize(("disposition", "limit", "expected"), MEMORY_CASES)
def test_duckdb_loads_cap_their_memory_unless_they_merge(
    disposition, limit, expected, tmp_path, warehouse, monkeypatch
) -> None:
    """Appending loads get a capped buffer pool by default (a 32nd of RAM, at most 64 MB);
    merging loads keep DuckDB's default (its delete-and-insert ran out of memory under small
    caps); `RESTSYNC_DUCKDB_MEMORY_LIMIT` applies to both."""
    from restsync_assets import settings

    if limit:
        monkeypatch.setenv("RESTSYNC_DUCKDB_MEMORY_LIMIT", limit)
    else:
        monkeypatch.delenv("RESTSYNC_DUCKDB_MEMORY_LIMIT", raising=False)
    resource = {"name": "items", "endpoint": {"path": "items"}, "primary_key": "id"}
    if disposition is not None:
        resource["write_disposition"] = disposition
    write_spec(
        tmp_path / "specs",
        {"name": "shop", "client": {"base_url": "http://127.0.0.1:9"}, "resources": [resource]},
    )
    (spec,) = load_specs(tmp_path / "specs")
    config = build_pipeline(spec).destination.config_params["credentials"].global_config
    if expected == "default cap":
        expected = settings.default_duckdb_memory_limit()
        assert int(expected.removesuffix("MB")) <= settings.DUCKDB_MEMORY_CAP_MB
    assert config.get("memory_limit") == expected
    assert config["preserve_insertion_order"] is False

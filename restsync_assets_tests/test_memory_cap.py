"""restsync's default DuckDB buffer cap for appending loads never makes a load fail: DuckDB
reads a parquet row group in one piece, so rows of tens of kilobytes can need more than the
cap. Such a load runs again without the cap (one warning), after the rows the failed attempt
committed were removed; a cap the user set is kept, and its failure says which setting to
change."""

from __future__ import annotations

import duckdb
from dagster import DagsterInstance

from .support import NARROW_ROWS, failure_message, load_wide, wide_rows


def test_a_load_too_wide_for_the_default_cap_runs_again_without_it(
    tmp_path, monkeypatch, small_cap
):
    instance = DagsterInstance.ephemeral()
    result, db, requests = load_wide(tmp_path, monkeypatch, instance)
    assert result.success, failure_message(result)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select id, body from wiki.docs order by id").fetchall()
    assert rows == [(r["id"], r["body"]) for r in wide_rows()]  # every row once, none twice
    assert requests == 6, "the pages are fetched once per attempt: 3 pages, two attempts"
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    warnings = [m for m in logged if "ran out of memory" in m]
    assert len(warnings) == 1 and "loading again without it" in warnings[0], warnings


def test_a_cap_the_user_set_is_kept_and_its_failure_names_it(tmp_path, monkeypatch, small_cap):
    monkeypatch.setenv("RESTSYNC_DUCKDB_MEMORY_LIMIT", "16MB")
    result, _, requests = load_wide(tmp_path, monkeypatch)
    assert not result.success
    line = failure_message(result)
    assert "DuckDB ran out of memory" in line and "RESTSYNC_DUCKDB_MEMORY_LIMIT=16MB" in line, line
    assert "\n" not in line
    assert requests == 3, "no second attempt under a cap the user chose"


def test_a_package_whose_other_tables_loaded_is_loaded_again_once(tmp_path, monkeypatch, small_cap):
    """`spaces` (narrow) loads, `docs` (wide) runs out of memory: the rows `spaces` committed
    are removed before the load runs again without the cap, so each table holds its rows once."""
    result, db, requests = load_wide(tmp_path, monkeypatch, names=("spaces", "docs"))
    assert result.success, failure_message(result)
    assert requests == 6, "the pages are fetched once per attempt: 3 pages, two attempts"
    with duckdb.connect(str(db), read_only=True) as con:
        spaces = con.execute("select id from wiki.spaces order by id").fetchall()
        docs = con.execute("select id from wiki.docs order by id").fetchall()
    assert spaces == [(r["id"],) for r in NARROW_ROWS]  # once, not twice
    assert docs == [(r["id"],) for r in wide_rows()]

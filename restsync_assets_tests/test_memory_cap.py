"""restsync's default DuckDB buffer cap for appending loads never makes a load fail: DuckDB
reads a parquet row group in one piece, so rows of tens of kilobytes can need more than the
cap. Such a load runs again without the cap (one warning), after the rows the failed attempt
committed were removed; a cap the user set is kept, and its failure says which setting to
change."""

from __future__ import annotations

import secrets
from functools import cache

import duckdb
import pytest
from dagster import DagsterInstance

from restsync_assets import settings

from .fake_servers import JsonApi, page
from .support import failure_message, materialize_specs, use_specs, use_warehouse, write_spec


@cache
def wide_rows() -> list[dict]:
    """1,200 rows of 20 KB of random text (one parquet row group of about 24 MB), made when a
    test first asks, not when pytest collects the module."""
    return [{"id": i, "body": secrets.token_hex(10_000)} for i in range(1, 1201)]


#: a narrow table beside it
NARROW = [{"id": i, "name": f"space {i}"} for i in range(1, 11)]


def _resource(name: str) -> dict:
    paginator = {"type": "page_number", "page_param": "page", "total_path": "total_pages"}
    endpoint = {
        "path": f"/{name}",
        "data_selector": "data",
        "paginator": {**paginator, "base_page": 1},
    }
    return {"name": name, "primary_key": "id", "write_disposition": "append", "endpoint": endpoint}


def _wide_spec(*names: str) -> dict:
    resources = [_resource(name) for name in names]
    return {"name": "wiki", "client": {"base_url": "http://unused"}, "resources": resources}


@pytest.fixture
def small_cap(monkeypatch):
    """restsync's default cap at its floor (16 MB), below what one row group of `wide_rows()` needs."""
    monkeypatch.setattr(settings, "DUCKDB_MEMORY_CAP_MB", 16)
    assert settings.default_duckdb_memory_limit() == "16MB"


def _load(tmp_path, monkeypatch, instance=None, names=("docs",)):
    api = JsonApi(
        {
            "GET /docs": lambda request: page(wide_rows(), request.query, 400),
            "GET /spaces": lambda request: page(NARROW, request.query, 400),
        }
    )
    with api:
        specs = write_spec(tmp_path / "specs", _wide_spec(*names)).parent
        use_specs(monkeypatch, specs, {"wiki": api.url})
        db = use_warehouse(monkeypatch, tmp_path / "warehouse.duckdb")
        result = materialize_specs(specs, instance=instance)
        requests = len(api.calls_to("/docs"))
    return result, db, requests


def test_a_load_too_wide_for_the_default_cap_runs_again_without_it(
    tmp_path, monkeypatch, small_cap
):
    instance = DagsterInstance.ephemeral()
    result, db, requests = _load(tmp_path, monkeypatch, instance)
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
    result, _, requests = _load(tmp_path, monkeypatch)
    assert not result.success
    line = failure_message(result)
    assert "DuckDB ran out of memory" in line and "RESTSYNC_DUCKDB_MEMORY_LIMIT=16MB" in line, line
    assert "\n" not in line
    assert requests == 3, "no second attempt under a cap the user chose"


def test_a_package_whose_other_tables_loaded_is_loaded_again_once(tmp_path, monkeypatch, small_cap):
    """`spaces` (narrow) loads, `docs` (wide) runs out of memory: the rows `spaces` committed
    are removed before the load runs again without the cap, so each table holds its rows once."""
    result, db, requests = _load(tmp_path, monkeypatch, names=("spaces", "docs"))
    assert result.success, failure_message(result)
    assert requests == 6, "the pages are fetched once per attempt: 3 pages, two attempts"
    with duckdb.connect(str(db), read_only=True) as con:
        spaces = con.execute("select id from wiki.spaces order by id").fetchall()
        docs = con.execute("select id from wiki.docs order by id").fetchall()
    assert spaces == [(r["id"],) for r in NARROW]  # once, not twice
    assert docs == [(r["id"],) for r in wide_rows()]

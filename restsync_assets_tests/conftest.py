"""Shared fixtures: a real sandbox API on 127.0.0.1, a private warehouse per test, and a
fresh PostgreSQL database per session."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from pathlib import Path

import pytest

from restsync_assets.sandbox import Sandbox

REPO = Path(__file__).resolve().parent.parent
SEED_SPECS = REPO / "source_specs"


@pytest.fixture
def sandbox():
    """The sandbox serving all five seed APIs on a free loopback port."""
    with Sandbox() as running:
        yield running


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    """A DuckDB file and dlt pipelines folder of this test's own."""
    path = tmp_path / "warehouse" / "restsync_test.duckdb"
    monkeypatch.setenv("RESTSYNC_DUCKDB_PATH", str(path))
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(SEED_SPECS))
    return path


@pytest.fixture
def sandbox_env(sandbox, warehouse, monkeypatch):
    """Every seed spec pointed at the sandbox through the documented env vars."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    return sandbox


@contextmanager
def serving(server: HTTPServer) -> Iterator[HTTPServer]:
    """Run a stdlib HTTP server on a daemon thread for the duration of the block."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- servers

#: The local PostgreSQL server tests use (trust authentication, user postgres).
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def server_unavailable(reason: str) -> None:
    """Skip the test with `reason`, or fail it when `RESTSYNC_REQUIRE_SERVERS=1` (CI)."""
    if os.environ.get("RESTSYNC_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{reason}, and RESTSYNC_REQUIRE_SERVERS=1 requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database with a unique name on 127.0.0.1:5432, dropped after the session."""
    try:
        import psycopg2
    except ImportError:
        server_unavailable('psycopg2 is not installed (pip install -e ".[postgres]")')
    try:
        admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **POSTGRES)
    except psycopg2.OperationalError as error:
        reason = str(error).strip().splitlines()[0]
        server_unavailable(f"no PostgreSQL on 127.0.0.1:5432 ({reason})")
    admin.autocommit = True
    name = f"restsync_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'create database "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


def postgres_sql(database: str, sql: str) -> list[tuple]:
    """Run `sql` on `database` (committed); its rows, if it returns any."""
    import psycopg2

    with psycopg2.connect(dbname=database, **POSTGRES) as con, con.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def postgres_warehouse(postgres_database, warehouse, monkeypatch) -> str:
    """Loads and reads go to the session's PostgreSQL database, emptied first; dlt's state stays
    in this test's own folder (`warehouse`). Returns the database name."""
    schemas = postgres_sql(
        postgres_database,
        "select nspname from pg_namespace where nspname not like 'pg\\_%'"
        " and nspname not in ('public', 'information_schema')",
    )
    for (schema,) in schemas:
        postgres_sql(postgres_database, f'drop schema "{schema}" cascade')
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__CREDENTIALS",
        f"postgresql://postgres:@127.0.0.1:5432/{postgres_database}",
    )
    return postgres_database

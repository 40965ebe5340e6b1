"""Shared fixtures: a real sandbox API on 127.0.0.1 and a private warehouse per test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from pathlib import Path

import pytest

from restsync_assets.sandbox import Sandbox

REPO = Path(__file__).resolve().parent.parent
#: PostgreSQL / Dagster instance / RabbitMQ fixtures of the production path
pytest_plugins = ("restsync_assets_tests.servers",)
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

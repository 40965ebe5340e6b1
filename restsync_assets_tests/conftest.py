"""Shared fixtures: a real sandbox API on 127.0.0.1 and a private warehouse per test."""

from __future__ import annotations

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

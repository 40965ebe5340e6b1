"""The Arrow fast path lands exactly what dlt's row path lands."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from dagster import DagsterInstance

from restsync_assets.definitions import build_definitions
from restsync_assets.runner import materialize_spec
from restsync_assets.runtime.arrow_pages import ArrowPages, page_to_arrow
from restsync_assets.specs import load_specs

from .support import SEED_SPECS, typed_tables, use_warehouse

PAGE = [
    {
        "id": 1,
        "name": "a",
        "amount": 1.5,
        "active": True,
        "at": "2026-01-01T10:00:00Z",
        "note": None,
    },
    {
        "id": 2,
        "name": "b",
        "amount": 2.0,
        "active": False,
        "at": "2026-01-02T10:00:00+02:00",
        "note": None,
    },
]


def test_flat_page_becomes_a_table_typed_like_dlt():
    table = page_to_arrow(PAGE)
    assert table.column_names == [
        "id",
        "name",
        "amount",
        "active",
        "at",
    ]  # all-null `note` left out
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("amount").type == pa.float64()
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.column("at").to_pylist()[1].hour == 8


def test_small_pages_stay_rows():
    step = ArrowPages()
    small = PAGE * 10
    assert step(small) is small
    assert isinstance(step(PAGE * 50), pa.Table)
    assert (step.pages_as_arrow, step.pages_as_rows) == (1, 1)


def test_fields_missing_from_the_first_rows_are_kept():
    table = page_to_arrow([{"id": 1}, {"id": 2, "late": "x"}, {"id": 3, "later": 4.5}])
    assert table.column_names == ["id", "late", "later"]
    assert table.to_pylist() == [
        {"id": 1, "late": None, "later": None},
        {"id": 2, "late": "x", "later": None},
        {"id": 3, "late": None, "later": 4.5},
    ]


@pytest.mark.parametrize(
    "page",
    [
        [{"id": 1, "tags": ["x"]}],  # nested list: dlt makes a child table
        [{"id": 1, "owner": {"id": 2}}],  # nested object: dlt flattens to owner__id
        [{"id": 1, "v": 1}, {"id": 2, "v": "two"}],  # a field with two types: variant columns
        [{"id": 1, "at": "2026-01-01T10:00:00Z"}, {"id": 2, "at": "not a time"}],
        ["not a record"],
        [{"id": 1}, "not a record"],
    ],
)
def test_pages_dlt_must_normalize_stay_rows(page):
    assert page_to_arrow(page) is None
    step = ArrowPages(min_rows=1)
    assert step(page) is page and step.pages_as_rows == 1


def test_declared_types_win_and_later_pages_keep_the_first_type():
    step = ArrowPages({"name": "text", "day": "date"}, required=["id"], min_rows=1)
    first = step([{"id": 1, "name": 10, "day": "2026-01-07", "x": 1.5}])
    assert first.schema.field("name").type == pa.string()
    assert first.schema.field("day").type == pa.date32()
    assert (
        step([{"id": 2, "name": "b", "day": "2026-01-08", "x": 2}]).schema.field("x").type
        == pa.float64()
    )
    assert isinstance(step([{"id": 3, "name": "c", "day": "2026-01-09", "x": 2.5}]), pa.Table)
    null_key = [{"id": None, "name": "d", "day": "2026-01-09", "x": 1.0}]
    assert step(null_key) is null_key  # dlt's row path rejects it with its own clear error
    assert (step.pages_as_arrow, step.pages_as_rows) == (3, 1)


def _load(tmp_path, monkeypatch, sandbox, arrow: bool, spec_name: str) -> Path:
    db = use_warehouse(monkeypatch, tmp_path / ("arrow" if arrow else "rows") / "warehouse.duckdb")
    monkeypatch.setenv("RESTSYNC_ARROW_PAGES", "1" if arrow else "0")
    specs = {s.name: s for s in load_specs(SEED_SPECS)}
    defs = build_definitions(list(specs.values()))
    assert all(
        r.success for r in materialize_spec(defs, specs[spec_name], DagsterInstance.ephemeral())
    )
    return db


@pytest.mark.parametrize("spec_name", ["ad_analytics", "ledger", "workspace_docs"])
def test_arrow_and_row_paths_land_identical_tables(tmp_path, monkeypatch, sandbox_env, spec_name):
    """A seed spec loaded with Arrow pages and without: the same tables, column types and
    rows (dlt's row ids aside)."""
    rows_db = _load(tmp_path, monkeypatch, sandbox_env, arrow=False, spec_name=spec_name)
    arrow_db = _load(tmp_path, monkeypatch, sandbox_env, arrow=True, spec_name=spec_name)
    by_rows, by_arrow = typed_tables(rows_db, spec_name), typed_tables(arrow_db, spec_name)
    assert by_rows.keys() == by_arrow.keys()
    for name in by_rows:
        assert by_arrow[name].columns == by_rows[name].columns, f"{name}: column types differ"
        assert by_arrow[name].rows == by_rows[name].rows, f"{name}: values differ"

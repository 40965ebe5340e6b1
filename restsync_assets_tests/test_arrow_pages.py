"""The Arrow fast path lands exactly what dlt's row path lands."""

from __future__ import annotations

import string
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from dagster import DagsterInstance

from restsync_assets.cli.run import materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.runtime.arrow_pages import ArrowPages, dlt_ids, page_to_arrow
from restsync_assets.specs import load_specs

from .fake_servers import JsonApi, page
from .support import (
    SEED_SPECS,
    arrow_pages_seen,
    materialize_specs,
    typed_tables,
    use_specs,
    use_warehouse,
    write_spec,
)

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


def test_arrow_pages_end_with_dlts_columns_in_the_row_paths_order():
    """`_dlt_load_id` (filled in by dlt's extractor) and `_dlt_id` are added here, so dlt's
    normalizer can take the parquet file as it is."""
    table = ArrowPages(required=["id"], min_rows=1)(PAGE)
    assert table.column_names[-2:] == ["_dlt_load_id", "_dlt_id"]
    assert not table.schema.field("_dlt_id").nullable
    assert not table.schema.field("id").nullable
    ids = table.column("_dlt_id").to_pylist()
    assert len(set(ids)) == len(PAGE) and all(len(i) == 22 for i in ids)


def test_row_ids_are_unique_and_shaped_like_dlts():
    ids = dlt_ids(100_000).to_pylist()
    assert len(set(ids)) == 100_000
    assert {len(i) for i in ids} == {22}
    assert set("".join(ids)) <= set(string.ascii_letters + string.digits + "+/")
    assert dlt_ids(0).to_pylist() == []


def test_a_page_with_dlts_own_column_names_stays_rows():
    page_with_id = [{"id": 1, "_dlt_id": "mine"}]
    assert ArrowPages(min_rows=1)(page_with_id) is page_with_id


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
def test_arrow_and_row_paths_land_identical_tables(
    tmp_path, monkeypatch, sandbox_env, seed_partitions, spec_name
):
    """A seed spec loaded with Arrow pages and without: the same tables, column types and
    rows (dlt's row ids aside)."""
    rows_db = _load(tmp_path, monkeypatch, sandbox_env, arrow=False, spec_name=spec_name)
    arrow_db = _load(tmp_path, monkeypatch, sandbox_env, arrow=True, spec_name=spec_name)
    by_rows, by_arrow = typed_tables(rows_db, spec_name), typed_tables(arrow_db, spec_name)
    assert by_rows.keys() == by_arrow.keys()
    for name in by_rows:
        assert by_arrow[name].columns == by_rows[name].columns, f"{name}: column types differ"
        assert by_arrow[name].rows == by_rows[name].rows, f"{name}: values differ"


ITEMS = [{"id": i, "name": f"n{i}", "amount": i * 1.5} for i in range(1, 301)]
CHANGED = [{**row, "name": "changed"} if row["id"] == 7 else row for row in ITEMS]
SCD2 = {"disposition": "merge", "strategy": "scd2"}


def _items_spec(write_disposition) -> dict:
    paginator = {
        "type": "page_number",
        "page_param": "page",
        "total_path": "total_pages",
        "base_page": 1,
    }
    endpoint = {"path": "/items", "data_selector": "data", "paginator": paginator}
    resource = {"name": "items", "primary_key": "id", "endpoint": endpoint}
    return {
        "name": "shop",
        "client": {"base_url": "http://unused"},
        "resources": [{**resource, "write_disposition": write_disposition}],
    }


#: write disposition -> (rows, rows with `_dlt_valid_to` set) after loading ITEMS twice and
#: then CHANGED (row 7 renamed)
DISPOSITIONS = [
    ("append", (900, None), True),
    ("merge", (300, None), True),
    ({"disposition": "merge", "strategy": "upsert"}, (300, None), True),
    (SCD2, (301, 1), False),  # scd2 compares dlt's content hash: the row path
]


@pytest.mark.parametrize(("write_disposition", "expected", "arrow"), DISPOSITIONS)
def test_write_dispositions_over_reruns_and_no_parquet_rewrite(
    tmp_path, monkeypatch, write_disposition, expected, arrow
):
    """Pages of 150 rows through Dagster's materialize, three runs: each disposition keeps the
    rows it should (scd2 retires exactly the changed row; before, the Arrow path's random
    `_dlt_id` made scd2 retire every row on every run), and dlt's normalizer never rewrites
    an Arrow page's parquet file."""
    from dlt.normalize.items_normalizers.arrow import ArrowItemsNormalizer

    rewritten: list[str] = []
    original = ArrowItemsNormalizer._write_with_dlt_columns

    def rewrite(self, extracted_file, table, add_dlt_id):
        rewritten.append(table)
        return original(self, extracted_file, table, add_dlt_id)

    monkeypatch.setattr(ArrowItemsNormalizer, "_write_with_dlt_columns", rewrite)
    seen = arrow_pages_seen(monkeypatch)
    served = [ITEMS]
    api = JsonApi({"GET /items": lambda request: page(served[0], request.query, 150)})
    with api:
        specs = write_spec(tmp_path / "specs", _items_spec(write_disposition)).parent
        use_specs(monkeypatch, specs, {"shop": api.url})
        db = use_warehouse(monkeypatch, tmp_path / "warehouse.duckdb")
        for rows in (ITEMS, ITEMS, CHANGED):
            served[0] = rows
            assert materialize_specs(specs).success
    current = "_dlt_valid_to is null" if write_disposition == SCD2 else "true"
    with duckdb.connect(str(db), read_only=True) as con:
        count = con.execute("select count(*) from shop.items").fetchone()[0]
        retired = None
        if write_disposition == SCD2:
            retired = con.execute("select count(_dlt_valid_to) from shop.items").fetchone()[0]
        names = dict(con.execute(f"select id, name from shop.items where {current}").fetchall())
    assert (count, retired) == expected
    assert names[7] == "changed" and names[8] == "n8"
    assert bool(seen) == arrow, f"Arrow pages seen: {seen}"
    assert rewritten == [], f"dlt rewrote the parquet files of {rewritten}"

"""Bad values from the API: NUL stripped, the rest one line or a quarantined row.

A fake API serves items (each with one note, a child resource); each case injects one value
into one row, in one position (top-level or child, incremental or not), under `on_invalid:
fail` or `quarantine`, and loads into DuckDB and PostgreSQL. The warehouse must then hold
exactly the API's rows as a multiset (NUL removed from every string, nested ones too; a
quarantined row, and the notes of a quarantined item, left out), `<table>__rejected` exactly
the quarantined row with its reason; or the run fails with one line naming the spec file, the
resource, the field and the value's type.
"""

from __future__ import annotations

import copy
import decimal
import json
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from restsync_assets.runtime.bad_values import page_suspect, strip_nul

from .fake_servers import JsonApi, page
from .real_servers import pg_query, pg_table
from .support import (
    DELETE,
    canonical,
    edited,
    failure_message,
    materialize_specs,
    table,
    write_spec,
)

INITIAL = "2000-01-01T00:00:00Z"
SPEC = {
    "name": "badvalues",
    "client": {
        "base_url": "http://127.0.0.1:9",
        "paginator": {"type": "page_number", "base_page": 1, "total_path": "total_pages"},
    },
    "resources": [
        {
            "name": "items",
            "endpoint": {"path": "/items", "data_selector": "data"},
            "primary_key": "id",
            "write_disposition": "merge",
        },
        {
            "name": "notes",
            "endpoint": {"path": "/items/{resources.items.id}/notes", "paginator": "single_page"},
            "primary_key": "id",
            "write_disposition": "merge",
        },
    ],
}
ITEMS_INCREMENTAL = {"cursor_path": "updated", "start_param": "since", "initial_value": INITIAL}
NOTES_INCREMENTAL = {"cursor_path": "updated", "start_param": "since", "initial_value": INITIAL}


def items() -> list[dict]:
    return [
        {
            "id": n,
            "name": f"item {n}",
            "updated": f"2026-01-0{n}T00:00:00Z",
            "tags": {"color": "red", "labels": ["a", "b"]},
        }
        for n in range(1, 5)
    ]


def notes() -> dict[int, list[dict]]:
    return {
        n: [{"id": n * 10, "item_id": n, "text": f"note {n}", "updated": "2026-01-02T00:00:00Z"}]
        for n in range(1, 5)
    }


@dataclass
class Case:
    """One bad value: where it goes, the mode, and what must happen."""

    id: str
    #: `items` or `notes`, the row's index (items) or item id (notes), and the fields set
    table: str
    row: int
    values: dict[str, Any]
    on_invalid: str = "fail"
    #: `items` and/or `notes` read incrementally
    incremental: tuple[str, ...] = ()
    #: the spec's `primary_key` of the table, when not `id`
    primary_key: str = "id"
    #: substrings of the one-line failure (empty: the run succeeds)
    error: tuple[str, ...] = ()
    #: the reason the row is quarantined with (None: it loads, cleaned)
    reason: str | None = None


FILE = "specs/badvalues.yaml"
CASES = [
    # NUL is stripped, wherever it is and whatever the mode
    Case("nul-top", "items", 1, {"name": "it\x00em 2"}),
    Case(
        "nul-nested",
        "items",
        2,
        {"tags": {"color": "r\x00ed", "labels": ["a\x00", "b"]}},
    ),
    Case("nul-child", "notes", 3, {"text": "no\x00te"}),
    Case("nul-child-incremental", "notes", 3, {"text": "no\x00te"}, incremental=("notes",)),
    Case("nul-quarantine-cleaned", "items", 1, {"name": "it\x00em 2"}, on_invalid="quarantine"),
    # a primary key of another type
    Case(
        "key-type",
        "items",
        3,
        {"id": "id-21"},
        error=(
            f"badvalues: resource items ({FILE}): field `id`: a str primary key ('id-21')"
            " where earlier keys are bigint; ",
        ),
    ),
    Case(
        "key-type-quarantine",
        "items",
        3,
        {"id": "id-21"},
        on_invalid="quarantine",
        reason="id: a str primary key ('id-21') where earlier keys are bigint",
    ),
    Case(
        "child-key-type-incremental-quarantine",
        "notes",
        2,
        {"id": "n-20"},
        on_invalid="quarantine",
        incremental=("notes",),
        reason="id: a str primary key ('n-20') where earlier keys are bigint",
    ),
    # a primary key holding NUL (never stripped: two keys could become one)
    Case(
        "key-nul",
        "items",
        3,
        {"id": "4\x00"},
        error=(f"resource items ({FILE}): field `id`: a str primary key holding \\u0000 (NUL)",),
    ),
    Case(
        "key-nul-quarantine",
        "items",
        3,
        {"id": "4\x00"},
        on_invalid="quarantine",
        reason="id: a str primary key holding \\u0000 (NUL)",
    ),
    # a lone surrogate: not Unicode text
    Case(
        "surrogate",
        "items",
        2,
        {"name": "\ud800"},
        error=(
            f"resource items ({FILE}): field `name`: a str holding a lone surrogate ('\\ud800')",
        ),
    ),
    Case(
        "surrogate-nested-child",
        "notes",
        2,
        {"meta": {"by": ["x\udc00"]}},
        error=(f"resource notes ({FILE}): field `meta.by.0`: a str holding a lone surrogate",),
    ),
    Case(
        "surrogate-quarantine",
        "items",
        2,
        {"name": "\ud800"},
        on_invalid="quarantine",
        reason="name: a str holding a lone surrogate ('\\ud800'), not Unicode text",
    ),
    # a primary key that is no field
    Case(
        "unknown-primary-key",
        "items",
        0,
        {},
        primary_key="idd",
        error=(
            f"resource items ({FILE}): field `idd`: missing primary key (the row's fields: id,"
            " name, tags, updated); fix primary_key in the spec if it names no field",
        ),
    ),
    # a row without its key, in every position
    Case(
        "parent-keyless",
        "items",
        2,
        {"id": DELETE},
        error=(f"resource items ({FILE}): field `id`: missing primary key",),
    ),
    Case(
        "parent-keyless-incremental-quarantine",
        "items",
        3,
        {"id": DELETE},
        on_invalid="quarantine",
        incremental=("items",),
        reason="id: missing primary key",
    ),
    Case(
        "parent-without-the-bound-field",
        "items",
        2,
        {"id": DELETE},
        primary_key="name",
        error=(
            "badvalues: resource items: a row has no field `id`, which its child's path param",
            "(the row's fields: name, updated, tags); fix the binding in the spec, or declare"
            " `id` non-nullable in items's schema with on_invalid: quarantine",
        ),
    ),
    Case(
        "child-keyless",
        "notes",
        2,
        {"id": DELETE},
        error=(f"resource notes ({FILE}): field `id`: missing primary key",),
    ),
    Case(
        "child-keyless-incremental",
        "notes",
        2,
        {"id": DELETE},
        incremental=("notes",),
        error=(f"resource notes ({FILE}): field `id`: missing primary key",),
    ),
    Case(
        "child-keyless-incremental-quarantine",
        "notes",
        2,
        {"id": DELETE},
        on_invalid="quarantine",
        incremental=("notes",),
        reason="id: missing primary key",
    ),
]


def changed(row: dict, values: dict[str, Any]) -> dict:
    row = copy.deepcopy(row)
    for name, value in values.items():
        if value is DELETE:
            row.pop(name)
        else:
            row[name] = value
    return row


def api_data(case: Case) -> tuple[list[dict], dict[int, list[dict]]]:
    """The API's items and notes (by item id) with the case's value injected."""
    rows, by_item = items(), notes()
    if case.table == "items":
        rows[case.row] = changed(rows[case.row], case.values)
    else:
        by_item[case.row] = [changed(by_item[case.row][0], case.values)]
    return rows, by_item


def serve(rows: list[dict], by_item: dict[int, list[dict]]) -> JsonApi:
    def notes_of(request: Any) -> list[dict]:
        return by_item.get(int(request.params["id"]), [])

    return JsonApi(
        {"GET /items": lambda r: page(rows, r.query, 10), "GET /items/{id}/notes": notes_of}
    )


def spec_of(case: Case) -> dict:
    spec = edited(SPEC)
    for resource in spec["resources"]:
        resource["on_invalid"] = case.on_invalid
        if resource["name"] in case.incremental:
            incremental = ITEMS_INCREMENTAL if resource["name"] == "items" else NOTES_INCREMENTAL
            resource["endpoint"]["incremental"] = dict(incremental)
        if resource["name"] == case.table:
            resource["primary_key"] = case.primary_key
    return spec


def flat(row: dict) -> dict:
    """An item as its table holds it: `tags` flattened, `labels` in their own table."""
    out = {k: v for k, v in row.items() if k != "tags"}
    out["tags__color"] = row["tags"]["color"]
    return out


def truth(case: Case) -> dict[str, list[dict]]:
    """Every table as the warehouse must hold it: the API's rows, NUL stripped, the
    quarantined row (and the notes of a quarantined item) left out."""
    rows, by_item = api_data(case)
    rows, by_item = strip_nul(rows), {k: strip_nul(v) for k, v in by_item.items()}
    if case.reason is not None and case.table == "items":
        rows.pop(case.row)
    if case.reason is not None and case.table == "notes":
        by_item.pop(case.row)
    loaded_ids = {r["id"] for r in rows}
    note_rows = [n for item_id, ns in by_item.items() if item_id in loaded_ids for n in ns]
    return {
        "items": canonical(flat(r) for r in rows),
        "items__tags__labels": canonical({"value": v} for r in rows for v in r["tags"]["labels"]),
        "notes": canonical(note_rows),
    }


def rejected_truth(case: Case) -> list[dict]:
    rows, by_item = api_data(case)
    row = rows[case.row] if case.table == "items" else by_item[case.row][0]
    return [{"raw": row, "reason": case.reason}]


def read(destination: str, database: str | None, name: str) -> list[dict] | None:
    """Every row of `badvalues.<name>` without dlt's columns, in one order; None if missing."""
    rows = (
        table("badvalues", name)
        if destination == "duckdb"
        else pg_table(database, "badvalues", name)
    )
    if rows is None:
        return None
    return canonical({k: v for k, v in r.items() if not k.startswith("_dlt")} for r in rows)


@pytest.fixture(params=["duckdb", "postgres"])
def destination(request, warehouse) -> tuple[str, str | None]:
    """Each case loads into DuckDB and into PostgreSQL."""
    if request.param == "duckdb":
        return "duckdb", None
    return "postgres", request.getfixturevalue("postgres_warehouse")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_value_is_stripped_named_in_one_line_or_quarantined(
    case, destination, specs_dir, monkeypatch
):
    """NUL loads stripped (the same rows on both warehouses); any other bad value fails the run
    with one line naming file, resource, field and type, or is quarantined with its reason,
    the other rows loading as the API has them."""
    name, database = destination
    monkeypatch.chdir(specs_dir.parent)
    write_spec(specs_dir, spec_of(case))
    rows, by_item = api_data(case)
    with serve(rows, by_item) as api:
        monkeypatch.setenv("BADVALUES_BASE_URL", api.url)
        result = materialize_specs(specs_dir)
    if case.error:
        assert not result.success
        message = failure_message(result)
        assert "\n" not in message and "Traceback" not in message
        for part in case.error:
            assert part in message, message
        return
    assert result.success, failure_message(result)
    expected = truth(case)
    for table_name, rows_expected in expected.items():
        assert read(name, database, table_name) == rows_expected, table_name
    rejected = read(name, database, f"{case.table}__rejected")
    if case.reason is None:
        assert rejected is None
    else:
        assert [{**r, "raw": json.loads(r["raw"])} for r in rejected] == rejected_truth(case)


# --------------------------------------------------------------------------- the console

CONSTRAINED = {
    "name": "badvalues",
    "client": {"base_url": "http://127.0.0.1:9", "paginator": "single_page"},
    "resources": [{"name": "items", "endpoint": {"path": "/items"}, "write_disposition": "append"}],
}


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_failed_postgres_load_is_one_line_on_the_console_tracebacks_only_when_verbose(
    verbose, specs_dir, postgres_warehouse, monkeypatch, commands
):
    """PostgreSQL refuses a row (a CHECK constraint on the table restsync loads into): `restsync
    run` (a real process) prints no traceback (dlt logs one per retry) unless `--verbose`, and
    its last line keeps PostgreSQL's CONTEXT, which names the table and line."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    pg_query(
        postgres_warehouse,
        "create schema badvalues; create table badvalues.items"
        " (id bigint check (id < 100), name text)",
    )
    write_spec(specs_dir, CONSTRAINED)
    rows = [{"id": 1, "name": "a"}, {"id": 200, "name": "b"}]
    with JsonApi({"GET /items": lambda r: rows}) as api:
        monkeypatch.setenv("BADVALUES_BASE_URL", api.url)
        argv = ["run", "badvalues", "--no-checks", *(["--verbose"] if verbose else [])]
        command = commands([sys.executable, "-m", "restsync_assets.cli", *argv])
        assert command.finish() == 1
    output = command.text
    (error,) = [line for line in output.splitlines() if line.startswith("error: ")]
    assert 'violates check constraint "items_id_check"' in error
    assert "(CONTEXT: COPY items, line 2)" in error
    assert ("Traceback" in output) is verbose


# --------------------------------------------------------------------------- the step itself


def test_a_page_without_bad_values_passes_unchanged_and_nul_is_stripped_at_any_depth():
    """The common page is handed on as it is (the same object); a page with NUL is handed on
    with NUL removed from every string, keys' field names and nested lists included."""
    from restsync_assets.runtime.bad_values import BadValues

    step = BadValues("items", "specs/x.yaml", ("id",))
    clean = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert step(clean) is clean
    assert step(clean) is clean  # keys of the known type: the quick path
    dirty = [{"id": 3, "na\x00me": {"x": ["a\x00", {"y": "\x00b"}]}}]
    assert step(dirty) == [{"id": 3, "name": {"x": ["a", {"y": "b"}]}}]


def test_preview_judges_like_a_run():
    """`judge` (what `restsync preview` counts) gives a quarantined run's reason: the schema's
    rules first, then the bad-value rules for fields they did not name; None for a good row."""
    from restsync_assets.runtime.bad_values import BadValues
    from restsync_assets.runtime.quarantine import Quarantine

    quarantine = Quarantine("items__rejected", {"amount": "double"}, ("amount",), ("id",))
    step = BadValues("items", "specs/x.yaml", ("id",), quarantine=quarantine)
    assert step.judge({"id": 1, "amount": 1.5}) is None
    assert step.judge({"id": 2, "amount": 2.0, "name": "\ud800"}) == (
        "name: a str holding a lone surrogate ('\\ud800'), not Unicode text"
    )
    assert step.judge({"id": "id-3", "amount": "x"}) == (
        "amount: 'x' cannot be coerced to double; id: a str primary key ('id-3') where earlier"
        " keys are bigint"
    )


@pytest.mark.parametrize(
    ("primary_key", "row"),
    [("created_at", {"createdAt": 1}), ("data__id", {"data": {"id": 5}}), ("id", {"id": 0})],
)
def test_a_key_is_found_under_the_name_dlt_gives_its_column(primary_key, row):
    """A primary key named as dlt names the column (`created_at` for `createdAt`, `data__id`
    for a nested `id`) is found in the row: the row is good, on both the slow and quick path."""
    from restsync_assets.runtime.bad_values import BadValues

    step = BadValues("items", "specs/x.yaml", (primary_key,))
    assert step.problem(row, suspect=False) is None
    page_of_rows = [row, row]
    assert step(page_of_rows) is page_of_rows


def test_a_page_arrow_cannot_encode_goes_the_row_way():
    """A lone surrogate is not Unicode text: Arrow cannot encode the page, which then goes
    dlt's row path (where `BadValues` has named the field) instead of failing there."""
    from restsync_assets.runtime.arrow_pages import page_to_arrow

    assert page_to_arrow([{"id": 1, "name": "\ud800"}]) is None


#: pages and whether a string in them may hold NUL or a lone surrogate (rows orjson cannot
#: write, a Decimal here, are read value by value)
SUSPECT_PAGES = [
    ([{"a": "x", "n": 1, "f": 1.5, "b": True, "none": None}], False),
    ([{"a": "x\x00"}], True),
    ([{"a": "\ud800"}], True),
    ([{"a": [{"b": "deep\x00"}]}], True),
    ([{"a": decimal.Decimal(1), "b": "ok"}], False),
    ([{"a": decimal.Decimal(1), "b": "o\x00k"}], True),
    ([{1: "a key that is not a str"}], False),
    ([{1: "a key that is not a str", "a": "x\x00"}], True),
    ([{"a": 'a "quote", a \\ backslash and a tab\t are escaped, not NUL'}], False),
    # the text `\u0000` is written `\\u0000`: suspect, and the rows' own check passes it
    ([{"a": "\\u0000"}], True),
]


@pytest.mark.parametrize(("rows", "suspect"), SUSPECT_PAGES)
def test_a_page_is_suspect_only_when_a_string_may_hold_nul_or_a_surrogate(rows, suspect):
    """The page check (orjson's bytes, or each value when orjson cannot write the page) finds
    NUL and lone surrogates at any depth and passes a clean page."""
    assert page_suspect(rows) is suspect

"""`on_invalid: quarantine`: bad rows go to `<table>__rejected`, the rest loads.

A fake API serves events (with one note per event, a child resource) and the same rows as
readings (a leaf resource, whose full pages take the Arrow fast path), of which some break the
declared schema; the warehouse must hold exactly the good rows, `__rejected` exactly the bad
ones with their reasons, on the Arrow fast path and dlt's row path, sequentially and with
`client.concurrency: 4`, on DuckDB and PostgreSQL. The sandbox's `exports` readings, some of
them broken, are quarantined end to end too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from dagster import AssetCheckSeverity

from restsync_assets.definitions import build_definitions
from restsync_assets.runtime.quarantine import VALUE_CHARS, Quarantine, type_problem
from restsync_assets.sandbox import exports
from restsync_assets.specs import load_specs

from .fake_servers import JsonApi, page
from .support import (
    arrow_pages_seen,
    canonical,
    check_evaluations,
    edited,
    failure_message,
    materialize_specs,
    query,
    table,
    typed_tables,
    use_specs,
    use_warehouse,
    write_spec,
)

#: rows the schema accepts, some only after dlt's coercion (a string id, an int amount)
GOOD = [
    {
        "id": n,
        "amount": n + 0.5,
        "at": f"2026-01-{n % 28 + 1:02d}T10:00:00Z",
        "active": n % 2 == 0,
    }
    for n in range(1, 131)
]
#: coerced by dlt (an int amount, a "true"), on the last page: the first stays Arrow-typable
GOOD[125] = {"id": "126", "amount": 7, "at": None, "active": "true"}
#: (row, the reason it is set aside)
BAD = [
    ({"id": None, "amount": 1.0}, "id: null primary key"),
    ({"amount": 1.0, "active": True}, "id: missing primary key"),
    ({"id": 1001, "amount": None}, "amount: null in a non-nullable field"),
    ({"id": 1002, "at": "2026-01-01T10:00:00Z"}, "amount: missing in a non-nullable field"),
    ({"id": 1003, "amount": "abc"}, "amount: 'abc' cannot be coerced to double"),
    (
        {"id": 1004, "amount": 1.0, "at": "not a time"},
        "at: 'not a time' cannot be coerced to timestamp",
    ),
    ({"id": 1005, "amount": 2.0, "active": "maybe"}, "active: 'maybe' cannot be coerced to bool"),
    ({"id": 1006, "amount": {"value": 3}}, "amount: an object where double is declared"),
    (
        {"id": "x7", "amount": [1], "active": 2.5},
        "id: 'x7' cannot be coerced to bigint; amount: a list where double is declared",
    ),
]
#: a note per good event; events in BAD_NOTES get one without its required `text`
BAD_NOTES = {5, 6}
COLUMNS = ("id", "amount", "at", "active")
INITIAL = "2000-01-01T00:00:00Z"
PAGE_SIZE = 120  # the first page is 120 good rows: it takes the Arrow fast path


def note(event_id: int) -> dict:
    row = {"id": event_id * 10, "event_id": event_id, "updated": "2026-01-02T00:00:00Z"}
    return row if event_id in BAD_NOTES else {**row, "text": f"note {event_id}"}


def events_api() -> JsonApi:
    rows = [*GOOD, *(row for row, _ in BAD)]
    return JsonApi(
        {
            "GET /events": lambda r: page(rows, r.query, PAGE_SIZE),
            "GET /readings": lambda r: page(rows, r.query, PAGE_SIZE),
            "GET /events/{id}/notes": lambda r: [note(int(r.params["id"]))],
        }
    )


#: what `events` and `readings` share: merged by id, bad rows set aside, a declared schema
QUARANTINED = {
    "primary_key": "id",
    "write_disposition": "merge",
    "on_invalid": "quarantine",
    "schema": {
        "id": "integer",
        "amount": {"type": "number", "nullable": False},
        "at": "date-time",
        "active": "boolean",
    },
}
SPEC = {
    "name": "quarantined",
    "client": {
        "base_url": "http://127.0.0.1:9",
        "paginator": {"type": "page_number", "base_page": 1, "total_path": "total_pages"},
    },
    "resources": [
        {
            "name": "events",
            "endpoint": {"path": "/events", "data_selector": "data"},
            **QUARANTINED,
        },
        {
            "name": "readings",
            "endpoint": {"path": "/readings", "data_selector": "data"},
            **QUARANTINED,
        },
        {
            "name": "notes",
            "endpoint": {
                "path": "/events/{resources.events.id}/notes",
                "paginator": "single_page",
            },
            "primary_key": "id",
            "write_disposition": "merge",
            "on_invalid": "quarantine",
            "schema": {"text": {"type": "string", "nullable": False}},
        },
    ],
}


def expected_events() -> list[dict]:
    """The good events as the warehouse holds them (dlt's coercions applied)."""
    rows = []
    for row in GOOD:
        loaded = {c: row.get(c) for c in COLUMNS}
        loaded["id"], loaded["amount"] = int(loaded["id"]), float(loaded["amount"])
        loaded["active"] = loaded["active"] in (True, "true")
        rows.append(loaded)
    return canonical(rows)


def expected_notes() -> list[dict]:
    return canonical(note(int(row["id"])) for row in GOOD if int(row["id"]) not in BAD_NOTES)


def rejected(name: str) -> list[dict]:
    """`<name>__rejected` as {raw (parsed), reason}, sorted."""
    rows = table("quarantined", f"{name}__rejected") or []
    return canonical({"raw": json.loads(r["raw"]), "reason": r["reason"]} for r in rows)


def load(specs_dir, monkeypatch, api: JsonApi, spec: dict = SPEC) -> Any:
    write_spec(specs_dir, spec)
    monkeypatch.setenv("QUARANTINED_BASE_URL", api.url)
    return materialize_specs(specs_dir)


@pytest.mark.parametrize("concurrency", [1, 4], ids=["sequential", "concurrency-4"])
@pytest.mark.parametrize("arrow", [True, False], ids=["arrow-pages", "row-path"])
def test_bad_rows_go_to_rejected_and_the_rest_loads(specs_dir, monkeypatch, arrow, concurrency):
    """Good rows land row for row, bad rows land in `__rejected` with their reasons, and a
    rejected parent row drives no child request; the same on both paths, any concurrency."""
    monkeypatch.setenv("RESTSYNC_ARROW_PAGES", "1" if arrow else "0")
    spec = edited(SPEC, client__concurrency=concurrency)
    with events_api() as api:
        result = load(specs_dir, monkeypatch, api, spec)
        assert result.success, failure_message(result)
        assert api.calls_to(r"/events/1001/notes") == []  # a rejected event
        assert len(api.calls_to(r"/events/\d+/notes")) == len(GOOD)
    for name in ("events", "readings"):
        assert table("quarantined", name) == expected_events()
        assert rejected(name) == canonical({"raw": row, "reason": why} for row, why in BAD)
    assert table("quarantined", "notes") == expected_notes()
    assert rejected("notes") == canonical(
        {"raw": note(n), "reason": "text: missing in a non-nullable field"} for n in BAD_NOTES
    )


@pytest.mark.parametrize("concurrency", [1, 4], ids=["sequential", "concurrency-4"])
def test_an_incremental_child_with_per_parent_cursors_quarantines_too(
    specs_dir, monkeypatch, concurrency
):
    """restsync's per-parent-cursor child (it replaces dlt's transformer) judges its rows and
    never sees its parent's rejected rows. A rejected row was read, so it counts for its
    parent's cursor: the second run asks from there and rejects nothing again."""
    incremental = {"cursor_path": "updated", "start_param": "since", "initial_value": INITIAL}
    spec = edited(
        SPEC, client__concurrency=concurrency, resources__2__endpoint__incremental=incremental
    )
    with events_api() as api:
        for _ in range(2):
            result = load(specs_dir, monkeypatch, api, spec)
            assert result.success, failure_message(result)
        sinces = {c.query.get("since") for c in api.calls_to(r"/events/\d+/notes")}
    assert sinces == {INITIAL, note(1)["updated"]}  # the second run asked from each cursor
    assert table("quarantined", "notes") == expected_notes()
    assert rejected("notes") == canonical(
        {"raw": note(n), "reason": "text: missing in a non-nullable field"} for n in BAD_NOTES
    )


def test_arrow_pages_and_the_row_path_land_identical_tables(tmp_path, monkeypatch):
    """Column types and rows of every table (`__rejected` ones too) are the same whether the
    pages went to dlt as Arrow tables or as rows; the first events page did go as Arrow."""
    arrow_pages = arrow_pages_seen(monkeypatch)
    # pages one by one: read ahead, a busy machine may join the first page with the second
    # (bad rows: the row path) before dlt takes it, and the first page's path is asserted
    monkeypatch.setenv("RESTSYNC_READ_AHEAD", "0")
    tables = {}
    for arrow in (True, False):
        db = use_warehouse(monkeypatch, tmp_path / f"arrow-{arrow}" / "w.duckdb")
        specs = use_specs(monkeypatch, tmp_path / f"specs-{arrow}")
        monkeypatch.setenv("RESTSYNC_ARROW_PAGES", "1" if arrow else "0")
        with events_api() as api:
            result = load(specs, monkeypatch, api)
        assert result.success, failure_message(result)
        tables[arrow] = typed_tables(db, "quarantined")
    assert arrow_pages == [PAGE_SIZE]  # readings' first page (events has children: rows)
    names = {"events", "readings", "notes"}
    assert set(tables[True]) == names | {f"{n}__rejected" for n in names}
    assert tables[True] == tables[False]


def test_rejected_rows_check_warns_and_a_rerun_records_its_own_load(specs_dir, monkeypatch):
    """The check warns with the latest load's count and a sample reason; a second run appends
    its own rejections under its own load id, and the check still counts one load's worth."""
    with events_api() as api:
        for _ in range(2):
            result = load(specs_dir, monkeypatch, api)
            assert result.success, failure_message(result)
    defs = build_definitions(load_specs(specs_dir))
    evaluations = check_evaluations(defs)
    check = evaluations[(("quarantined", "events"), "rejected_rows")]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["rejected_rows"].value == len(BAD)
    assert check.metadata["rejected_rows_all_loads"].value == 2 * len(BAD)
    assert check.metadata["sample_reason"].value == min(why for _, why in BAD)
    assert check.description.startswith(f"{len(BAD)} rows rejected by the latest load (")
    others = {k: e.passed for k, e in evaluations.items() if k[1] != "rejected_rows"}
    assert all(others.values()), others  # __rejected breaks no other check
    raws = [r["raw"] for r in table("quarantined", "events__rejected")]
    assert len(raws) == 2 * len(BAD) and len(set(raws)) == len(BAD)
    loads = {r[0] for r in _load_ids("events__rejected")}
    assert len(loads) == 2


def _load_ids(name: str) -> list[tuple]:
    return query(f'select _dlt_load_id from quarantined."{name}"') or []


def test_clean_load_passes_the_check_and_records_zero(specs_dir, monkeypatch):
    """No bad row: no `__rejected` table, the check passes; the materialization says 0."""
    clean = JsonApi({"GET /events": lambda r: page(GOOD, r.query, PAGE_SIZE)})
    spec = edited(SPEC, resources=[SPEC["resources"][0]])
    with clean:
        result = load(specs_dir, monkeypatch, clean, spec)
    assert result.success, failure_message(result)
    (event,) = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    assert metadata["restsync/rejected_rows"].value == 0
    evaluations = check_evaluations(build_definitions(load_specs(specs_dir)))
    check = evaluations[(("quarantined", "events"), "rejected_rows")]
    assert (
        check.passed
        and check.description == "no row rejected (quarantined.events__rejected is empty)"
    )


def test_on_invalid_fail_fails_the_load_naming_resource_and_field(specs_dir, monkeypatch):
    """Without quarantine the first bad row (a null key) fails the run with one line naming
    the spec file, the resource and the field; nothing is written."""
    spec = edited(SPEC, resources=[{**SPEC["resources"][0], "on_invalid": "fail"}])
    with events_api() as api:
        result = load(specs_dir, monkeypatch, api, spec)
    assert not result.success
    message = failure_message(result)
    assert message == (
        f"quarantined: resource events ({specs_dir / 'quarantined.yaml'}): field `id`: null"
        " primary key; fix the API's value, or set on_invalid: quarantine to set such rows aside"
    )
    assert table("quarantined", "events") is None
    assert table("quarantined", "events__rejected") is None


def test_rejected_row_count_is_in_the_materialization_and_the_asset_names_the_table(
    specs_dir, monkeypatch
):
    with events_api() as api:
        result = load(specs_dir, monkeypatch, api)
    assert result.success, failure_message(result)
    counts = {
        e.asset_key.path[-1]: e.event_specific_data.materialization.metadata[
            "restsync/rejected_rows"
        ].value
        for e in result.get_asset_materialization_events()
    }
    assert counts == {"events": len(BAD), "readings": len(BAD), "notes": len(BAD_NOTES)}
    defs = build_definitions(load_specs(specs_dir))
    metadata = defs.resolve_assets_def(("quarantined", "events")).specs_by_key
    (spec,) = [s for k, s in metadata.items() if k.path[-1] == "events"]
    assert spec.metadata["restsync/rejected_table"] == "events__rejected"


def test_on_postgres_the_good_rows_load_and_the_bad_rows_are_rejected(
    specs_dir, monkeypatch, postgres_warehouse
):
    from .real_servers import pg_query

    with events_api() as api:
        result = load(specs_dir, monkeypatch, api)
    assert result.success, failure_message(result)
    ids = pg_query(postgres_warehouse, "select id from quarantined.events order by id")
    assert [i for (i,) in ids] == sorted(int(r["id"]) for r in GOOD)
    reasons = pg_query(postgres_warehouse, "select reason from quarantined.events__rejected")
    assert sorted(r for (r,) in reasons) == sorted(why for _, why in BAD)
    raws = pg_query(postgres_warehouse, "select raw from quarantined.notes__rejected")
    assert sorted(json.loads(r)["event_id"] for (r,) in raws) == sorted(BAD_NOTES)
    evaluations = check_evaluations(build_definitions(load_specs(specs_dir)))
    assert not evaluations[(("quarantined", "events"), "rejected_rows")].passed


# --------------------------------------------------------------------------- the rules

#: (declared type, value, accepted): dlt's own coercion decides
TYPE_CASES = [
    ("bigint", "12", True),
    ("bigint", "0x1F", True),
    ("bigint", 1.0, True),
    ("bigint", 1.5, False),
    ("bigint", True, False),
    ("double", 3, True),
    ("double", "2.5", True),
    ("double", "two", False),
    ("bool", "yes", True),
    ("bool", 0, True),
    ("bool", "maybe", False),
    ("text", 12, True),
    ("text", {"a": 1}, False),  # dlt would flatten it into text__a, leaving text empty
    ("timestamp", "2026-01-01", True),
    ("timestamp", 1767225600, True),
    ("timestamp", "soon", False),
    ("date", "2026-01-01", True),
    ("date", "Jan 1st", False),
    ("json", {"a": 1}, True),
    ("json", "[1, 2]", True),
    ("json", "not json", False),
    ("decimal", "1.25", True),
    ("decimal", "x", False),
    ("bigint", [1], False),
]


@pytest.mark.parametrize(("data_type", "value", "accepted"), TYPE_CASES)
def test_a_value_is_rejected_exactly_when_dlt_cannot_coerce_it(data_type, value, accepted):
    assert (type_problem(value, data_type) is None) is accepted


def test_a_long_value_is_cut_short_in_its_reason():
    """At most `VALUE_CHARS` characters of the value's repr, ending in `…` when cut."""
    assert VALUE_CHARS == 40
    assert type_problem("x" * 100, "bigint") == f"'{'x' * 38}… cannot be coerced to bigint"
    assert type_problem("x" * 37, "bigint") == f"'{'x' * 37}' cannot be coerced to bigint"


def test_rows_for_another_table_and_pages_without_bad_rows_pass_unchanged():
    step = Quarantine("events__rejected", {"id": "bigint"}, (), ("id",))
    page_of_rows = [{"id": 1}, {"id": "2"}]
    assert step(page_of_rows) is page_of_rows
    from dlt.extract.items import TableNameMeta

    other = [{"id": None}]
    assert step(other, TableNameMeta("elsewhere")) is other


def test_a_camel_case_field_is_judged_under_dlts_column_name():
    step = Quarantine("t__rejected", {"created_at": "timestamp"}, ("created_at",), ())
    assert step.problems({"createdAt": "2026-01-01T00:00:00Z"}) == []
    assert step.problems({"createdAt": None}) == ["created_at: null in a non-nullable field"]


def test_on_invalid_is_read_from_the_resource_or_its_defaults(tmp_path):
    from restsync_assets.specs import load_spec_file

    spec = edited(SPEC, resource_defaults={"on_invalid": "quarantine"})
    spec["resources"][0]["on_invalid"] = "fail"
    for resource in spec["resources"][1:]:
        del resource["on_invalid"]
    loaded = load_spec_file(write_spec(tmp_path, spec))
    assert {r.name: r.rejected_table for r in loaded.resources} == {
        "events": None,
        "readings": "readings__rejected",
        "notes": "notes__rejected",
    }


def test_restsync_run_and_check_report_the_warning_without_failing(specs_dir, monkeypatch, capsys):
    """`restsync run` and `restsync check` show the rejected rows as a warning and exit 0."""
    from restsync_assets.cli import main

    write_spec(specs_dir, edited(SPEC, resources=[SPEC["resources"][1]]))  # readings alone
    with events_api() as api:
        monkeypatch.setenv("QUARANTINED_BASE_URL", api.url)
        assert main(["run", "quarantined"]) == 0
        out = capsys.readouterr().out
    assert re.search(
        r"^quarantined/readings\s+130\s+130\s+\d+\s+0\s+[\d.]+s\s+[\d.]+\s+4/5 passed, 1 warned"
        r"\s+ok$",
        out,
        re.M,
    ), out
    assert re.search(r"^1/1 asset materialized, 4/5 checks passed, 1 warned in", out, re.M), out
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        rf"^quarantined/readings\s+rejected_rows\s+WARN\s+{len(BAD)} rows rejected by the",
        out,
        re.M,
    ), out
    assert out.splitlines()[-1] == "4/5 checks passed, 1 warned"


def test_preview_shows_every_record_and_says_which_a_run_would_set_aside(
    specs_dir, monkeypatch, capsys
):
    """The bad rows are shown as the API sent them, counted, and left out of dlt's typing
    (which would otherwise fail on a null key)."""
    from restsync_assets.cli import main

    write_spec(specs_dir, SPEC)
    with events_api() as api:
        monkeypatch.setenv("QUARANTINED_BASE_URL", api.url)
        assert main(["preview", "quarantined", "readings", "--limit", "200", "--pages", "2"]) == 0
        text = capsys.readouterr().out
    assert f"quarantined/readings: {len(GOOD) + len(BAD)} records read in 2 requests" in text
    reason = BAD[0][1]
    assert f"{len(BAD)} of these records would go to readings__rejected" in text
    assert f"(on_invalid: quarantine), e.g. {reason}" in text
    assert "readings  amount  double     no" in text


def test_every_row_rejected_still_warns_with_the_count(specs_dir, monkeypatch):
    """No good row: dlt creates no table, `row_count` fails (0 rows), `rejected_rows` warns
    with every row (it does not need the table)."""
    only_bad = JsonApi({"GET /readings": lambda r: page([b for b, _ in BAD], r.query, 50)})
    with only_bad:
        result = load(
            specs_dir, monkeypatch, only_bad, edited(SPEC, resources=[SPEC["resources"][1]])
        )
    assert result.success, failure_message(result)
    assert table("quarantined", "readings") is None
    assert len(rejected("readings")) == len(BAD)
    evaluations = check_evaluations(build_definitions(load_specs(specs_dir)))
    check = evaluations[(("quarantined", "readings"), "rejected_rows")]
    assert not check.passed and check.metadata["rejected_rows"].value == len(BAD)
    row_count = evaluations[(("quarantined", "readings"), "row_count")]
    assert not row_count.passed and row_count.description.startswith("0 rows (minimum 1)")


def test_a_child_materialized_alone_is_driven_by_its_parents_good_rows_only(specs_dir, monkeypatch):
    """The parent is read to drive the child, not written: neither it nor its `__rejected`."""
    write_spec(specs_dir, SPEC)
    with events_api() as api:
        monkeypatch.setenv("QUARANTINED_BASE_URL", api.url)
        result = materialize_specs(specs_dir, select=[("quarantined", "notes")])
        assert result.success, failure_message(result)
        assert api.calls_to(r"/events/1001/notes") == []
    assert table("quarantined", "notes") == expected_notes()
    assert table("quarantined", "events") is None
    assert table("quarantined", "events__rejected") is None


# --------------------------------------------------------------------------- against the sandbox

#: why each broken sandbox reading (`exports.BROKEN`, by index) is set aside; None: it is good
#: (after dlt's coercion)
READING_REASONS = {
    10: "id: missing primary key",
    12: "value: null in a non-nullable field",
    25: "id: null primary key",
    40: "value: null in a non-nullable field",
    55: "value: missing in a non-nullable field",
    70: "value: 'n/a' cannot be coerced to double",
    85: "taken_at: 'yesterday' cannot be coerced to timestamp",
    100: "id: 'r-101' cannot be coerced to bigint",
    115: "value: an object where double is declared",
    130: None,
}


def readings_spec(url: str) -> dict:
    return {
        "name": "exports",
        "client": {"base_url": f"{url}/exports"},
        "resources": [
            {
                "name": "readings",
                "primary_key": "id",
                "write_disposition": "merge",
                "on_invalid": "quarantine",
                "endpoint": {
                    "path": "v1/offset/readings.json",
                    "paginator": {"type": "offset", "limit": 50, "total_path": None},
                },
                "schema": exports.READING_SCHEMA,
            }
        ],
    }


def test_the_sandboxs_bad_readings_are_rejected_and_the_rest_loads(sandbox, specs_dir):
    """End to end against the sandbox's `exports` readings (JSON, offset-paged): the table
    holds exactly the good readings (a string id and value coerced), `readings__rejected`
    exactly the broken ones with their reasons, and the `rejected_rows` check warns."""
    assert set(READING_REASONS) == set(exports.BROKEN)
    truth = sandbox.rows("exports", "readings")
    bad = {i for i, why in READING_REASONS.items() if why is not None}
    good = [
        {**row, "id": int(row["id"]), "value": float(row["value"])}
        for i, row in enumerate(truth)
        if i not in bad
    ]
    write_spec(specs_dir, readings_spec(sandbox.url))
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert table("exports", "readings") == canonical(good)
    landed = table("exports", "readings__rejected")
    assert canonical({"raw": json.loads(r["raw"]), "reason": r["reason"]} for r in landed) == (
        canonical({"raw": truth[i], "reason": READING_REASONS[i]} for i in bad)
    )
    (event,) = result.get_asset_materialization_events()
    assert event.event_specific_data.materialization.metadata[
        "restsync/rejected_rows"
    ].value == len(bad)
    check = check_evaluations(build_definitions(load_specs(specs_dir)))[
        (("exports", "readings"), "rejected_rows")
    ]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["rejected_rows"].value == len(bad)

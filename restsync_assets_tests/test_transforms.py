"""Record transforms (`record_filter`, `add_fields`, `remove_fields`, `rename_fields`): what they
do to rows, where they run in dlt's pipe, their validation, and end to end through Dagster into
DuckDB, on the Arrow fast path and off it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dlt.extract.incremental import IncrementalResourceWrapper

from restsync_assets.resources import Credentials
from restsync_assets.runtime import source as runtime_source
from restsync_assets.runtime.arrow_pages import ArrowPages
from restsync_assets.runtime.transforms import RecordTransforms, TransformError, TransformStep
from restsync_assets.specs import load_spec_file
from restsync_assets.specs.model import TransformsSpec

from .support import (
    canonical,
    failure_message,
    materialize_specs,
    refusal,
    table,
    typed_tables,
    use_warehouse,
    write_spec,
)

ROW = {"id": 1, "status": "open", "qty": 4, "meta": {"src": "web", "x": 1}, "notes": "n"}
#: (case, transforms, parent, row in, row out (None: dropped))
ROWS = [
    ("filter keeps", {"record_filter": "{{ record.status != 'archived' }}"}, None, ROW, ROW),
    (
        "filter drops",
        {"record_filter": "{{ record.qty > 10 }}"},
        None,
        ROW,
        None,
    ),
    (
        "literals stay literal, templates are native or text",
        {
            "add_fields": {
                "n": 7,
                "tags": ["a"],
                "double": "{{ record.qty * 2 }}",
                "label": "#{{ record.id }}",
                "plain": "eu",
            }
        },
        None,
        ROW,
        {**ROW, "n": 7, "tags": ["a"], "double": 8, "label": "#1", "plain": "eu"},
    ),
    (
        "nested add, remove and rename",
        {
            "add_fields": {"meta.region": "eu", "extra.deep.v": "{{ record.meta.src }}"},
            "remove_fields": ["meta.x", "notes", "absent.field"],
            "rename_fields": {"meta.src": "source", "id": "event_id", "missing": "never"},
        },
        None,
        ROW,
        {
            "event_id": 1,
            "status": "open",
            "qty": 4,
            "meta": {"region": "eu"},
            "extra": {"deep": {"v": "web"}},
            "source": "web",
        },
    ),
    (
        "order: filter, add, remove, rename",
        {
            "record_filter": "{{ record.status == 'open' }}",
            "add_fields": {"copy": "{{ record.notes }}"},
            "remove_fields": ["notes"],
            "rename_fields": {"copy": "notes_copy"},
        },
        None,
        ROW,
        {**{k: v for k, v in ROW.items() if k != "notes"}, "notes_copy": "n"},
    ),
    (
        "values removed by a condition, at any depth; lists left alone",
        {"remove_values_when": "{{ value is none or value == 'web' }}"},
        None,
        {"id": 1, "a": None, "meta": {"src": "web", "b": None, "x": 1}, "tags": [None, "web"]},
        {"id": 1, "meta": {"x": 1}, "tags": [None, "web"]},
    ),
    (
        "key steps in order: replace, then snake case (nested keys too, as Airbyte splits them)",
        {
            "normalize_keys": [
                {"replace": " ", "with": ""},
                "snake_case",
            ]
        },
        None,
        {"Created At": 1, "userID": 2, "Meta": {"Source Name": "x"}, "2fa": True, "Ünit": "C"},
        {"created_at": 1, "user_id": 2, "meta": {"source_name": "x"}, "_2_fa": True, "unit": "C"},
    ),
    (
        "lower renames top-level keys only, after add_fields",
        {"add_fields": {"Extra": 1}, "normalize_keys": ["lower"]},
        None,
        {"ID": 1, "Meta": {"Src": "web"}},
        {"id": 1, "meta": {"Src": "web"}, "extra": 1},
    ),
    (
        "a child's templates read its parent",
        {
            "record_filter": "{{ parent.active }}",
            "add_fields": {"region": "{{ parent.region }}"},
        },
        {"region": "eu", "active": True},
        ROW,
        {**ROW, "region": "eu"},
    ),
]


@pytest.mark.parametrize(
    ("case", "spec", "parent", "row", "expected"), ROWS, ids=[c[0] for c in ROWS]
)
def test_transforms_change_rows_as_declared(case, spec, parent, row, expected):
    transforms = RecordTransforms(TransformsSpec(**spec), "events")
    before = repr(row)
    assert transforms.row(row, parent) == expected
    assert repr(row) == before, "the API's row itself is left as it was"


def test_a_template_failing_on_a_row_names_resource_and_key():
    transforms = RecordTransforms(
        TransformsSpec(add_fields={"x": "{{ record.missing + 1 }}"}), "events"
    )
    with pytest.raises(TransformError) as caught:
        transforms.row({"id": 1})
    assert str(caught.value).startswith("resource events: add_fields.x: template ")
    assert "\n" not in str(caught.value)


def test_the_step_runs_before_dlt_incremental_and_arrow_pages(tmp_path):
    """Keys, cursors and the Arrow step see transformed rows: the step sits first in the pipe."""
    spec = load_spec_file(
        write_spec(
            tmp_path,
            {
                "name": "shop",
                "client": {"base_url": "http://127.0.0.1:9/api"},
                "resources": [
                    {
                        "name": "events",
                        "primary_key": "event_id",
                        "endpoint": {
                            "path": "v1/events",
                            "incremental": {"cursor_path": "created", "initial_value": "2020"},
                        },
                        "rename_fields": {"id": "event_id", "created_at": "created"},
                    }
                ],
            },
        )
    )
    credentials = Credentials("shop", None, None, None, None, None)
    source = runtime_source.build_source(spec, credentials)
    resource = source.resources["events"]
    resource.add_step(ArrowPages())
    kinds = [type(step) for step in resource._pipe.steps]
    assert kinds.index(TransformStep) < kinds.index(IncrementalResourceWrapper)
    assert kinds.index(IncrementalResourceWrapper) < kinds.index(ArrowPages)
    assert TransformStep.placement_affinity == 0.5


def _spec(resource: dict, *, child: bool = False) -> dict:
    parent = {"name": "batches", "endpoint": {"path": "v1/batches"}}
    events = {"name": "events", "endpoint": {"path": "v1/events"}, **resource}
    if child:
        events["endpoint"] = {"path": "v1/batches/{resources.batches.id}/events"}
    return {
        "name": "shop",
        "client": {"base_url": "https://api.example.com"},
        "resources": [parent, events] if child else [events],
    }


VALID = [
    (
        "issue example",
        {
            "record_filter": "{{ record.status != 'archived' }}",
            "add_fields": {"region": "eu", "synced_by": "{{ 'restsync' }}"},
            "remove_fields": ["internal_notes"],
            "rename_fields": {"old_name": "new_name"},
        },
    ),
    (
        "primary key named as after a rename",
        {"primary_key": "event_id", "rename_fields": {"id": "event_id"}},
    ),
    ("literal mapping added", {"add_fields": {"meta": {"a": 1}, "n": 3, "flag": False}}),
    (
        "values removed by a condition, keys normalized",
        {
            "remove_values_when": "{{ value is none }}",
            "normalize_keys": ["lower", {"replace": "-", "with": "_"}, "snake_case"],
        },
    ),
    (
        "nested paths",
        {"add_fields": {"a.b": 1}, "remove_fields": ["c.d"], "rename_fields": {"e.f": "g"}},
    ),
]
INVALID = [
    (
        "remove_values_when not one expression",
        {"remove_values_when": "x {{ value }}"},
        "remove_values_when",
        "must be a single {{ expression }} whose truth removes the field,"
        ' e.g. "{{ value is none }}"',
    ),
    (
        "remove_values_when reads an unknown name",
        {"remove_values_when": "{{ property is none }}"},
        "remove_values_when",
        "template reads 'property'; it may read value and record (parent only on a child resource)",
    ),
    (
        "normalize_keys not a list",
        {"normalize_keys": "lower"},
        "normalize_keys",
        "must be a list of steps (lower, snake_case or {replace: OLD, with: NEW}), e.g."
        " [snake_case]",
    ),
    (
        "an unknown key step",
        {"normalize_keys": ["lower", "camel_case"]},
        "normalize_keys.1",
        "'camel_case' is no key step; allowed: lower, snake_case or {replace: OLD, with: NEW}"
        " (OLD a non-empty string)",
    ),
    (
        "a replace step without its new text",
        {"normalize_keys": [{"replace": " "}]},
        "normalize_keys.0",
        "{'replace': ' '} is no key step; allowed: lower, snake_case or {replace: OLD, with:"
        " NEW} (OLD a non-empty string)",
    ),
    (
        "filter not a template",
        {"record_filter": "true"},
        "record_filter",
        "must be a template string, e.g. \"{{ record.status != 'archived' }}\"",
    ),
    (
        "filter not a string",
        {"record_filter": 1},
        "record_filter",
        "must be a template string, e.g. \"{{ record.status != 'archived' }}\"",
    ),
    (
        "filter is text, not one expression",
        {"record_filter": "x {{ record.a }}"},
        "record_filter",
        "must be a single {{ expression }} whose truth keeps the row, e.g."
        " \"{{ record.status != 'archived' }}\"",
    ),
    (
        "filter syntax error",
        {"record_filter": "{{ record.a == }}"},
        "record_filter",
        "template '{{ record.a == }}': syntax error: TemplateSyntaxError: unexpected"
        " 'end of print statement'",
    ),
    (
        "parent on a top-level resource",
        {"add_fields": {"r": "{{ parent.region }}"}},
        "add_fields.r",
        "template reads 'parent'; it may read record (parent only on a child resource)",
    ),
    (
        "unknown variable",
        {"add_fields": {"r": "{{ response.x }}"}},
        "add_fields.r",
        "template reads 'response'; it may read record (parent only on a child resource)",
    ),
    (
        "add syntax error",
        {"add_fields": {"r": "{% if %}"}},
        "add_fields.r",
        "template '{% if %}': syntax error: TemplateSyntaxError: Expected an expression, got"
        " 'end of statement block'",
    ),
    (
        "add not a mapping",
        {"add_fields": ["a"]},
        "add_fields",
        "must map field names to a literal or a template, e.g. {region: eu}",
    ),
    (
        "add empty path part",
        {"add_fields": {"a..b": 1}},
        "add_fields.a..b",
        "field 'a..b' must be a name or a dotted path such as a.b",
    ),
    (
        "remove not a list",
        {"remove_fields": "notes"},
        "remove_fields",
        "must be a list of field names, e.g. [internal_notes]",
    ),
    (
        "remove a non-string",
        {"remove_fields": [1]},
        "remove_fields",
        "field 1 must be a name or a dotted path such as a.b",
    ),
    ("remove twice", {"remove_fields": ["a", "a"]}, "remove_fields", "field 'a' is listed twice"),
    (
        "rename not a mapping",
        {"rename_fields": ["a"]},
        "rename_fields",
        "must map old field names to new ones, e.g. {old_name: new_name}",
    ),
    (
        "rename to a non-string",
        {"rename_fields": {"a": 1}},
        "rename_fields.a",
        "field 1 must be a name or a dotted path such as a.b",
    ),
    (
        "two fields renamed to one",
        {"rename_fields": {"a": "c", "b": "c"}},
        "rename_fields.b",
        "'a' and 'b' are both renamed to 'c'",
    ),
    (
        "rename chain",
        {"rename_fields": {"a": "b", "b": "c"}},
        "rename_fields.a",
        "'b' is itself renamed; rename each field to a name no other rename uses",
    ),
    (
        "rename onto an added field",
        {"add_fields": {"c": 1}, "rename_fields": {"a": "c"}},
        "rename_fields.a",
        "'a' is renamed to 'c', which add_fields adds too",
    ),
    (
        "add then remove",
        {"add_fields": {"c": 1}, "remove_fields": ["c"]},
        "remove_fields",
        "'c' is added by add_fields and removed again",
    ),
    (
        "primary key removed",
        {"primary_key": "id", "remove_fields": ["id"]},
        "remove_fields",
        "takes away 'id', a key of the resource (primary_key or incremental cursor_path); keys"
        " name fields as they are after the transforms",
    ),
    (
        "primary key renamed away",
        {"primary_key": ["id", "day"], "rename_fields": {"day": "d"}},
        "rename_fields.day",
        "takes away 'day', a key of the resource (primary_key or incremental cursor_path); keys"
        " name fields as they are after the transforms",
    ),
    (
        "cursor renamed away",
        {
            "endpoint": {"path": "v1/events", "incremental": {"cursor_path": "updated_at"}},
            "rename_fields": {"updated_at": "updated"},
        },
        "rename_fields.updated_at",
        "takes away 'updated_at', a key of the resource (primary_key or incremental cursor_path);"
        " keys name fields as they are after the transforms",
    ),
]


@pytest.mark.parametrize(("case", "resource"), VALID, ids=[c[0] for c in VALID])
def test_valid_transforms_load(tmp_path, case, resource):
    spec = load_spec_file(write_spec(tmp_path, _spec(resource)))
    assert spec.resources[0].transforms is not None


def test_a_child_template_may_read_its_parent(tmp_path):
    spec = load_spec_file(
        write_spec(tmp_path, _spec({"add_fields": {"r": "{{ parent.region }}"}}, child=True))
    )
    assert spec.resources[1].transforms.add_fields == {"r": "{{ parent.region }}"}


@pytest.mark.parametrize(
    ("case", "resource", "key", "expected"), INVALID, ids=[c[0] for c in INVALID]
)
def test_invalid_transforms_give_one_line(tmp_path, monkeypatch, case, resource, key, expected):
    monkeypatch.chdir(tmp_path)
    expected = f"shop.yaml: resource 'events': {key}: {expected}"
    assert refusal(tmp_path, _spec(resource)) == expected


# --------------------------------------------------------------------------- end to end

#: the rows per page of the top-level feed: enough kept rows for Arrow pages (`MIN_ROWS`)
FEED_PAGE = 200


def exports_spec(url: str) -> dict:
    """batches (renamed key, read by the child's placeholder), their events (a child reading
    `parent`), and the whole feed (top-level, incremental on a renamed cursor)."""
    return {
        "name": "exports",
        "client": {"base_url": f"{url}/exports"},
        "resource_defaults": {"write_disposition": "replace"},
        "resources": [
            {
                "name": "batches",
                "primary_key": "batch_key",
                "endpoint": {"path": "v1/batches", "data_selector": "data"},
                "add_fields": {"region_upper": "{{ record.region | upper }}"},
                "rename_fields": {"id": "batch_key"},
            },
            {
                "name": "batch_events",
                "primary_key": "id",
                "endpoint": {
                    "path": "v1/batches/{resources.batches.batch_key}/events",
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": 20, "total_path": None},
                },
                "record_filter": "{{ record.status != 'archived' }}",
                "add_fields": {
                    "region": "{{ parent.region }}",
                    "synced_by": "{{ 'restsync' }}",
                    "priority": 3,
                    "meta.weight": "{{ record.quantity * 2 }}",
                    "title": "{{ record.name }} ({{ parent.label }})",
                },
                "remove_fields": ["internal_notes", "batch_id"],
                "rename_fields": {"old_name": "legacy_name"},
            },
            {
                "name": "feed",
                "primary_key": "event_id",
                "write_disposition": "merge",
                "endpoint": {
                    "path": "v1/offset/events.json",
                    "paginator": {"type": "offset", "limit": FEED_PAGE, "total_path": None},
                    "incremental": {
                        "cursor_path": "created",
                        "initial_value": "2025-06-01T00:00:00Z",
                    },
                },
                "schema": {"event_id": {"type": "integer", "nullable": False}},
                "record_filter": "{{ record.active }}",
                "add_fields": {
                    "tier": "{{ 'big' if record.amount > 2500 else 'small' }}",
                    "version": 2,
                },
                "remove_fields": ["internal_notes"],
                "rename_fields": {"id": "event_id", "created_at": "created"},
            },
        ],
    }


def expected_tables(batches: list[dict], events: list[dict]) -> dict[str, list[dict]]:
    """What each table must hold, computed from the sandbox's rows in plain Python."""
    by_id = {b["id"]: b for b in batches}
    batch_rows = [
        {
            "batch_key": b["id"],
            "label": b["label"],
            "region": b["region"],
            "region_upper": b["region"].upper(),
        }
        for b in batches
    ]
    batch_events = []
    for e in events:
        if e["status"] == "archived":
            continue
        parent = by_id[e["batch_id"]]
        row = {k: v for k, v in e.items() if k not in ("internal_notes", "batch_id", "old_name")}
        batch_events.append(
            {
                **row,
                "legacy_name": e["old_name"],
                "region": parent["region"],
                "synced_by": "restsync",
                "priority": 3,
                "meta__weight": e["quantity"] * 2,
                "title": f"{e['name']} ({parent['label']})",
            }
        )
    feed = []
    for e in events:
        if not e["active"]:
            continue
        row = {k: v for k, v in e.items() if k not in ("internal_notes", "id", "created_at")}
        feed.append(
            {
                **row,
                "event_id": e["id"],
                "created": e["created_at"],
                "tier": "big" if e["amount"] > 2500 else "small",
                "version": 2,
            }
        )
    return {"batches": batch_rows, "batch_events": batch_events, "feed": feed}


class CountingArrowPages(ArrowPages):
    """`ArrowPages` that remembers itself, to tell whether the fast path ran."""

    made: list[ArrowPages] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        CountingArrowPages.made.append(self)


def _load(tmp_path: Path, monkeypatch, sandbox, arrow: bool) -> Path:
    specs = tmp_path / ("arrow" if arrow else "rows") / "specs"
    db = use_warehouse(monkeypatch, specs.parent / "warehouse.duckdb")
    monkeypatch.setenv("RESTSYNC_ARROW_PAGES", "1" if arrow else "0")
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(specs))
    write_spec(specs, exports_spec(sandbox.url))
    result = materialize_specs(specs)
    assert result.success, failure_message(result)
    return db


def test_transforms_land_the_same_tables_on_and_off_the_arrow_path(tmp_path, monkeypatch, sandbox):
    """The exports spec loaded with Arrow pages and without: each table equals the sandbox's
    rows transformed in plain Python, and both warehouses hold the same typed tables."""
    CountingArrowPages.made = []
    monkeypatch.setattr(runtime_source, "ArrowPages", CountingArrowPages)
    rows_db = _load(tmp_path, monkeypatch, sandbox, arrow=False)
    arrow_db = _load(tmp_path, monkeypatch, sandbox, arrow=True)
    assert sum(step.pages_as_arrow for step in CountingArrowPages.made) > 0, "no Arrow page"
    expected = expected_tables(
        sandbox.rows("exports", "batches"), sandbox.rows("exports", "events")
    )
    for db in (rows_db, arrow_db):
        for name, rows in expected.items():
            assert table("exports", name, db) == canonical(rows), f"{db.parent.name}: {name}"
    by_rows, by_arrow = typed_tables(rows_db, "exports"), typed_tables(arrow_db, "exports")
    assert by_rows.keys() == by_arrow.keys()
    for name in by_rows:
        assert by_arrow[name].columns == by_rows[name].columns, f"{name}: column types differ"
        assert by_arrow[name].rows == by_rows[name].rows, f"{name}: values differ"


def _with_child_cursor(spec: dict, concurrency: int) -> dict:
    """The exports spec with an incremental child (per-parent cursors) on a renamed field."""
    spec["client"]["concurrency"] = concurrency
    child = spec["resources"][1]
    child["rename_fields"] = {**child["rename_fields"], "created_at": "created"}
    child["endpoint"]["incremental"] = {
        "cursor_path": "created",
        "initial_value": "2025-06-01T00:00:00Z",
    }
    return spec


@pytest.mark.parametrize("concurrency", [1, 4])
def test_an_incremental_child_keeps_cursors_on_transformed_rows(
    tmp_path, monkeypatch, sandbox, concurrency
):
    """A child with per-parent cursors filters its rows on the transformed cursor field; read
    sequentially or parent by parent on worker threads, the tables are the same."""
    specs = tmp_path / "specs"
    use_warehouse(monkeypatch, tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(specs))
    write_spec(specs, _with_child_cursor(exports_spec(sandbox.url), concurrency))
    result = materialize_specs(specs)
    assert result.success, failure_message(result)
    expected = expected_tables(
        sandbox.rows("exports", "batches"), sandbox.rows("exports", "events")
    )
    expected["batch_events"] = [
        {**{k: v for k, v in row.items() if k != "created_at"}, "created": row["created_at"]}
        for row in expected["batch_events"]
    ]
    for name, rows in expected.items():
        assert table("exports", name, tmp_path / "warehouse.duckdb") == canonical(rows), name


def _preview(capsys, *args: str) -> dict:
    from restsync_assets.cli import main

    assert main(["preview", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_preview_shows_rows_as_a_run_transforms_them(sandbox, specs_dir, capsys):
    """`restsync preview` of a child and of a top-level resource: the records a run would
    load, transforms applied (a child's `parent` and placeholders too)."""
    write_spec(specs_dir, exports_spec(sandbox.url))
    expected = expected_tables(
        sandbox.rows("exports", "batches"), sandbox.rows("exports", "events")
    )
    child = {row["id"]: row for row in expected["batch_events"]}
    records = _preview(capsys, "exports", "batch_events", "--limit", "5")["records"]
    assert len(records) == 5
    for record in records:
        want = dict(child[record["id"]])
        assert record.pop("meta") == {"weight": want.pop("meta__weight")}
        assert record == want
    feed = {row["event_id"]: row for row in expected["feed"]}
    records = _preview(capsys, "exports", "feed", "--limit", "5")["records"]
    assert len(records) == 5
    assert all(record == feed[record["event_id"]] for record in records)


#: (resource, key, a template failing on every sandbox row, the template's error)
FAILING = [
    (
        "feed",
        "record_filter",
        "{{ record.quantity > 'x' }}",
        "TypeError: '>' not supported between instances of 'int' and 'str'",
    ),
    (
        "batch_events",
        "add_fields.x",
        "{{ record.quantity + 'x' }}",
        "TypeError: unsupported operand type(s) for +: 'int' and 'str'",
    ),
]


@pytest.mark.parametrize(
    ("resource", "key", "template", "reason"), FAILING, ids=[c[0] for c in FAILING]
)
def test_a_template_failing_in_a_run_fails_it_naming_resource_and_key(
    sandbox, specs_dir, resource, key, template, reason
):
    """The run's one-line failure says which resource and which key, on a top-level resource
    (a pipe step) and on a child (read parent by parent) alike."""
    spec = exports_spec(sandbox.url)
    (target,) = [r for r in spec["resources"] if r["name"] == resource]
    if key == "record_filter":
        target["record_filter"] = template
    else:
        target["add_fields"] = {**target["add_fields"], "x": template}
    write_spec(specs_dir, spec)
    result = materialize_specs(specs_dir, select=[("exports", resource)])
    assert failure_message(result) == (
        f"exports: resource {resource}: {key}: template {template!r}: evaluation failed: {reason}"
    )

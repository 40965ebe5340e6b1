"""`deletes: soft`: rows a complete scan no longer returns get `_restsync_deleted_at`, and
lose it when they come back; a scan that failed or stopped early marks nothing. End to end
through Dagster into DuckDB (and once into PostgreSQL) against the sandbox's marketing API
(organizations and their ad accounts, a child), rows deleted and restored at the source
between runs; the key's validation, table-driven."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from restsync_assets.runtime import warehouse
from restsync_assets.runtime.soft_deletes import DELETED_AT, DELETED_ROWS, MARKED_ROWS
from restsync_assets.sandbox import Fault, FaultPlan
from restsync_assets.specs import load_spec_file, load_specs

from .fake_servers import JsonApi
from .support import (
    DELETE,
    REPO,
    arrow_pages_seen,
    assert_live_rows_are_the_truth,
    copy_seed_specs,
    edited,
    failure_message,
    marked_deleted,
    marketing_truth,
    materialize_specs,
    normal,
    refusal,
    soft_delete_rows,
    use_specs,
    write_spec,
)

SPEC = "marketing_api"
ORGS, ACCOUNTS = "organizations", "adaccounts"
LOADED = [(SPEC, ORGS), (SPEC, ACCOUNTS)]

# --------------------------------------------------------------------------- validation

BASE = {
    "name": "shop",
    "client": {"base_url": "https://api.example.com"},
    "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
    "resources": [
        {"name": "organizations", "endpoint": {"path": "/v1/orgs"}, "deletes": "soft"},
        {"name": "adaccounts", "endpoint": {"path": "/v1/organizations/{organization_id}/ads"}},
    ],
}
INCREMENTAL = {"cursor_path": "updated_at", "initial_value": "2026-01-01T00:00:00Z"}
PARTITIONS = {"type": "daily", "start": "2026-01-01", "start_param": "since"}


def spec_with(**changes) -> dict:
    return edited(BASE, **changes)


def child_with(**changes) -> dict:
    """BASE with `deletes: soft` on the child instead, and `changes`."""
    return spec_with(resources__0__deletes=DELETE, resources__1__deletes="soft", **changes)


VALID = [
    ("top level", BASE, 1),
    ("merge mapping", spec_with(resources__0__write_disposition={"disposition": "merge"}), 1),
    (
        "upsert",
        spec_with(resources__0__write_disposition={"disposition": "merge", "strategy": "upsert"}),
        1,
    ),
    ("null", spec_with(resources__0__deletes=None), 0),
    ("a child of a parent read in full", child_with(), 1),
    (
        "in resource_defaults",
        spec_with(resource_defaults__deletes="soft", resources__0__deletes=DELETE),
        2,
    ),
    (
        "offset paginator without a cap",
        spec_with(resources__0__endpoint__paginator={"type": "offset", "limit": 50}),
        1,
    ),
]
WHERE = "resource 'organizations': deletes"
CHILD = "resource 'adaccounts': deletes"
INVALID = [
    (
        "a bad value",
        spec_with(resources__0__deletes="hard"),
        f"{WHERE}: unknown value 'hard'; allowed: soft (or leave deletes out)",
    ),
    (
        "true",
        spec_with(resources__0__deletes=True),
        f"{WHERE}: unknown value True; allowed: soft (or leave deletes out)",
    ),
    (
        "append",
        spec_with(resources__0__write_disposition="append"),
        f"{WHERE}: marks rows of a merged table; set write_disposition: merge (it is 'append')",
    ),
    (
        "replace mapping",
        spec_with(resources__0__write_disposition={"disposition": "replace"}),
        f"{WHERE}: marks rows of a merged table; set write_disposition: merge (it is 'replace')",
    ),
    (
        "scd2",
        spec_with(resources__0__write_disposition={"disposition": "merge", "strategy": "scd2"}),
        f"{WHERE}: needs a merge that rewrites every row read (strategy delete-insert or"
        " upsert), not 'scd2'",
    ),
    (
        "no primary key",
        spec_with(resource_defaults__primary_key=DELETE),
        f"{WHERE}: rows are matched by key: set primary_key",
    ),
    (
        "incremental",
        spec_with(resources__0__endpoint__incremental=INCREMENTAL),
        f"{WHERE}: rows a run does not read would be marked deleted: the resource is read"
        " incrementally (only new and changed rows)",
    ),
    (
        "an incremental param",
        spec_with(resources__0__endpoint__params={"since": {"type": "incremental", **INCREMENTAL}}),
        f"{WHERE}: rows a run does not read would be marked deleted: the resource is read"
        " incrementally (a type: incremental param)",
    ),
    (
        "partitioned",
        spec_with(resources__0__partitions=PARTITIONS),
        f"{WHERE}: rows a run does not read would be marked deleted: the resource is"
        " partitioned (a run reads one window)",
    ),
    (
        "restsync's offset capped",
        spec_with(
            resources__0__endpoint__paginator={"type": "offset", "limit": 5, "maximum_offset": 20}
        ),
        f"{WHERE}: rows a run does not read would be marked deleted: the resource is read up"
        " to the paginator's maximum_offset only",
    ),
    (
        "dlt's page number capped on the client",
        spec_with(client__paginator={"type": "page_number", "maximum_page": 3, "total_path": None}),
        f"{WHERE}: rows a run does not read would be marked deleted: the resource is read up"
        " to the paginator's maximum_page only",
    ),
    (
        "a child of an incremental parent",
        child_with(resources__0__endpoint__incremental=INCREMENTAL),
        f"{CHILD}: a child's rows are all known only when every parent's children were read,"
        " but its parent 'organizations' is read incrementally (only new and changed rows)",
    ),
    (
        "a child of a partitioned parent",
        child_with(resources__0__partitions=PARTITIONS),
        f"{CHILD}: a child's rows are all known only when every parent's children were read,"
        " but its parent 'organizations' is partitioned (a run reads one window)",
    ),
    (
        "quarantined rows (they are invalid, not deleted)",
        spec_with(resources__0__on_invalid="quarantine"),
        f"{WHERE}: rows a run does not read would be marked deleted: the resource sets invalid"
        " rows aside (on_invalid: quarantine), and those rows are not deleted",
    ),
    (
        "a child of a quarantining parent",
        child_with(resources__0__on_invalid="quarantine"),
        f"{CHILD}: a child's rows are all known only when every parent's children were read,"
        " but its parent 'organizations' sets invalid rows aside (on_invalid: quarantine), and"
        " those rows are not deleted",
    ),
    (
        "an incremental child (a cursor per parent)",
        child_with(resources__1__endpoint__incremental=INCREMENTAL),
        f"{CHILD}: rows a run does not read would be marked deleted: the resource is read"
        " incrementally (only new and changed rows)",
    ),
]


@pytest.mark.parametrize(("case", "spec", "soft"), VALID, ids=[c[0] for c in VALID])
def test_valid_deletes_load(tmp_path, case, spec, soft):
    """Each loads, with `deletes: soft` on as many resources as it says."""
    loaded = load_spec_file(write_spec(tmp_path, spec))
    assert [r.deletes for r in loaded.resources].count("soft") == soft


@pytest.mark.parametrize(("case", "spec", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_deletes_give_one_line_naming_file_resource_and_key(
    tmp_path, monkeypatch, case, spec, expected
):
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, spec) == f"shop.yaml: {expected}"


def test_restsync_validate_prints_the_readme_line(tmp_path, monkeypatch, capsys):
    """The spec reference's example of a refused `deletes: soft` is what `restsync validate` prints for
    the marketing API's organizations read incrementally."""
    from restsync_assets.cli import main

    readme = (REPO / "docs" / "spec-reference.md").read_text()
    section = readme.split("## Deletes: `deletes: soft`", 1)[1]
    expected = re.search(r"```text\n(.*?)\n```", section, re.DOTALL).group(1)

    def incremental(raw: dict) -> None:
        raw["resources"][0]["deletes"] = "soft"
        raw["resources"][0]["endpoint"]["incremental"] = INCREMENTAL

    copy_seed_specs(tmp_path / "source_specs", [SPEC], edit=incremental)
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    assert capsys.readouterr().err.strip() == expected


# --------------------------------------------------------------------------- end to end


def _soft(raw: dict) -> None:
    for resource in raw["resources"]:
        if resource["name"] in (ORGS, ACCOUNTS):
            resource["deletes"] = "soft"


@pytest.fixture(params=["duckdb", "postgres"])
def marketing(request, sandbox_env, specs_dir):
    """The marketing API seed spec with `deletes: soft` on organizations and adaccounts,
    pointed at the sandbox; into this test's DuckDB file or the PostgreSQL warehouse."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_warehouse")
    copy_seed_specs(specs_dir, [SPEC], edit=_soft)
    return sandbox_env


def run(specs_dir, select=LOADED):
    result = materialize_specs(specs_dir, select=select)
    assert result.success, failure_message(result)
    return {
        e.asset_key.path[-1]: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def test_rows_deleted_at_the_source_are_marked_and_cleared_when_they_come_back(
    marketing, specs_dir
):
    """Run 1 loads everything, nothing marked. Two organizations (one with an ad account)
    and one ad account are deleted at the source; a run of organizations alone leaves the
    ad accounts untouched; run 2 marks exactly the missing rows, with the load's time. One
    organization is restored; run 3 clears its mark and keeps the other's timestamp."""
    sandbox = marketing
    meta = run(specs_dir)
    for table in (ORGS, ACCOUNTS):
        assert meta[table][DELETED_ROWS] == 0 and meta[table][MARKED_ROWS] == 0
        assert_live_rows_are_the_truth(
            soft_delete_rows(specs_dir, table), marketing_truth(sandbox, table)
        )
        assert marked_deleted(soft_delete_rows(specs_dir, table)) == {}

    orgs = sandbox.rows(SPEC, ORGS)
    gone_orgs = [orgs[1], orgs[5]]  # organization 2 has no ad accounts, 6 has one
    for org in gone_orgs:
        sandbox.delete_row(SPEC, ORGS, org["id"])
    orphaned = {
        a["id"] for a in sandbox.rows(SPEC, ACCOUNTS) if a["organization_id"] == orgs[5]["id"]
    }
    assert len(orphaned) == 1
    gone_account = sandbox.rows(SPEC, ACCOUNTS)[0]
    sandbox.delete_row(SPEC, ACCOUNTS, gone_account["id"])
    before = soft_delete_rows(specs_dir, ACCOUNTS)

    only_orgs = run(specs_dir, select=[(SPEC, ORGS)])
    assert set(only_orgs) == {ORGS}
    assert soft_delete_rows(specs_dir, ACCOUNTS) == before  # not read, not marked

    meta = run(specs_dir)
    loaded = soft_delete_rows(specs_dir, ORGS)
    assert set(marked_deleted(loaded)) == {o["id"] for o in gone_orgs}
    assert meta[ORGS][DELETED_ROWS] == 0  # the run of organizations alone marked them
    assert only_orgs[ORGS][DELETED_ROWS] == 2
    accounts = soft_delete_rows(specs_dir, ACCOUNTS)
    assert set(marked_deleted(accounts)) == orphaned | {gone_account["id"]}
    assert meta[ACCOUNTS][DELETED_ROWS] == 2 and meta[ACCOUNTS][MARKED_ROWS] == 2
    for table in (ORGS, ACCOUNTS):
        assert_live_rows_are_the_truth(
            soft_delete_rows(specs_dir, table), marketing_truth(sandbox, table)
        )
    stamps = set(marked_deleted(accounts).values())
    load_id = max(r["_dlt_load_id"] for r in accounts.values())
    assert stamps == {normal(dt.datetime.fromtimestamp(float(load_id), dt.timezone.utc))}

    sandbox.upsert_row(SPEC, ORGS, gone_orgs[0])
    kept = marked_deleted(soft_delete_rows(specs_dir, ORGS))[gone_orgs[1]["id"]]
    meta = run(specs_dir)
    assert marked_deleted(soft_delete_rows(specs_dir, ORGS)) == {gone_orgs[1]["id"]: kept}
    assert meta[ORGS][DELETED_ROWS] == 0 and meta[ORGS][MARKED_ROWS] == 1
    assert_live_rows_are_the_truth(
        soft_delete_rows(specs_dir, ORGS), marketing_truth(sandbox, ORGS)
    )


FAILED_SCANS = [
    ("a 500 on the second page", Fault("status", SPEC, ORGS, nth=2, status=500)),
    ("a repeated cursor", Fault("repeat_cursor", SPEC, ORGS, nth=2)),
    ("a child page failing", Fault("status", SPEC, ACCOUNTS, nth=4, status=500)),
]


@pytest.mark.parametrize("marketing", ["duckdb"], indirect=True)
@pytest.mark.parametrize(("case", "fault"), FAILED_SCANS, ids=[c[0] for c in FAILED_SCANS])
def test_a_scan_that_fails_midway_marks_nothing(marketing, specs_dir, case, fault):
    """Rows deleted at the source, then a run that fails mid-scan (an HTTP error, the loop
    detector): the run fails and both tables are exactly as before, nothing marked."""
    sandbox = marketing
    run(specs_dir)
    before = {table: soft_delete_rows(specs_dir, table) for table in (ORGS, ACCOUNTS)}
    sandbox.delete_row(SPEC, ORGS, sandbox.rows(SPEC, ORGS)[3]["id"])
    sandbox.delete_row(SPEC, ACCOUNTS, sandbox.rows(SPEC, ACCOUNTS)[0]["id"])
    sandbox.faults = FaultPlan(fault)
    result = materialize_specs(specs_dir, select=LOADED)
    assert not result.success and sandbox.faults.fired() == 1
    assert {table: soft_delete_rows(specs_dir, table) for table in (ORGS, ACCOUNTS)} == before


@pytest.mark.parametrize("marketing", ["duckdb"], indirect=True)
def test_a_scan_that_returns_no_rows_marks_nothing(marketing, specs_dir):
    """Every organizations page empty: the scan returns zero rows (and so no ad accounts)
    and the run succeeds, but an empty answer is not taken to mean every row was deleted:
    nothing is marked in either table."""
    sandbox = marketing
    run(specs_dir)
    before = {table: soft_delete_rows(specs_dir, table) for table in (ORGS, ACCOUNTS)}
    sandbox.faults = FaultPlan(Fault("empty_page", SPEC, ORGS))
    meta = run(specs_dir)
    assert sandbox.faults.fired() == 3  # 13 organizations, 5 a page
    for table in (ORGS, ACCOUNTS):
        assert meta[table][DELETED_ROWS] == 0 and meta[table][MARKED_ROWS] == 0
        assert soft_delete_rows(specs_dir, table) == before[table]


def test_arrow_pages_soft_delete_too(specs_dir, monkeypatch):
    """Pages of 100 rows and more reach DuckDB as Arrow tables (without the column): the
    marked rows are the deleted ones, and a restored row comes back unmarked."""
    items = [{"id": i, "name": f"item {i}", "price": i * 1.5} for i in range(1, 151)]
    spec = {
        "name": "shop",
        "client": {"base_url": "http://127.0.0.1"},
        "resources": [
            {
                "name": "items",
                "primary_key": "id",
                "write_disposition": "merge",
                "deletes": "soft",
                "endpoint": {"path": "/items", "data_selector": "data", "paginator": "single_page"},
            }
        ],
    }
    arrow = arrow_pages_seen(monkeypatch)
    with JsonApi({"GET /items": lambda request: {"data": items}}) as api:
        use_specs(monkeypatch, specs_dir, {"shop": api.url})
        write_spec(specs_dir, spec)
        materialize_specs(specs_dir)
        gone = items.pop(9), items.pop(99)
        result = materialize_specs(specs_dir)
        assert result.success, failure_message(result)
        (spec_model,) = load_specs(specs_dir)
        with warehouse.reading(spec_model) as place:
            found = dict(place.rows(f"select id, {DELETED_AT} from {place.table('items')}"))
        assert {k for k, v in found.items() if v is not None} == {g["id"] for g in gone}
        items.append(gone[0])
        assert materialize_specs(specs_dir).success
        with warehouse.reading(spec_model) as place:
            found = dict(place.rows(f"select id, {DELETED_AT} from {place.table('items')}"))
        assert {k for k, v in found.items() if v is not None} == {gone[1]["id"]}
        assert len(found) == 150
    assert arrow == [150, 148, 149]  # each run's one page went to dlt as an Arrow table

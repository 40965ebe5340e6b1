"""No partial scan passes as complete (issue 18, found 3 and 10).

A 2xx page that is not whole is retried by the resource's `error_handler` and, when it never
comes whole, fails the resource with one line naming it and the page's URL:

* a body without the `data_selector` path (`{"error": {...}}` with status 200, as APIs
  answer during an outage) as opposed to an empty list;
* a page that ends the scan although its `total` says rows are left;
* a body cut short (right status and framing, JSON that ends open).

A failed scan loads nothing: `deletes: soft` marks no live row deleted and an incremental
cursor never moves past pages not read, so a later clean run loads every row. End to end
through Dagster into DuckDB (and PostgreSQL for the soft deletes) against the sandbox; every
warehouse table is compared with the sandbox's rows, field for field, as a set of rows with
unique keys.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from restsync_assets.sandbox import Fault, FaultPlan

from .support import (
    STAMP_FORMAT,
    assert_live_rows_are_the_truth,
    assert_table_equals_truth,
    assert_table_is,
    copy_seed_specs,
    failure_message,
    marked_deleted,
    marketing_truth,
    materialize_specs,
    soft_delete_rows,
    table_rows,
)

MARKETING, ORGS, ACCOUNTS = "marketing_api", "organizations", "adaccounts"
#: the marketing API's (and the ledger's) `error_handler.max_retries`
RETRIES = 3
#: one fault on every attempt at the second request: the page never comes whole
EVERY_ATTEMPT = tuple(range(2, RETRIES + 3))

# --------------------------------------------------------------------------- soft deletes

#: (case, fault kind, options, attempts it fires on, whether the run succeeds)
SOFT_DELETE_CASES = [
    ("error body once, retried", "error_body", {}, (2,), True),
    ("error body on every attempt", "error_body", {}, EVERY_ATTEMPT, False),
    (
        "error body with status 200 and data null",
        "error_body",
        {"body": {"data": None}},
        (2,),
        True,
    ),
    ("body cut short once, retried", "truncated", {}, (2,), True),
    ("body cut short on every attempt", "truncated", {}, EVERY_ATTEMPT, False),
]


def _soft(raw: dict) -> None:
    for resource in raw["resources"]:
        if resource["name"] in (ORGS, ACCOUNTS):
            resource["deletes"] = "soft"


@pytest.fixture(params=["duckdb", "postgres"])
def marketing(request, sandbox_env, specs_dir, retry_clock):
    """The marketing API with `deletes: soft` on organizations and ad accounts, loaded once
    cleanly; into DuckDB or PostgreSQL; retries wait on a fake clock."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_warehouse")
    copy_seed_specs(specs_dir, [MARKETING], edit=_soft)
    _run(specs_dir, succeeds=True)
    return sandbox_env


def _run(specs_dir, succeeds: bool) -> str:
    result = materialize_specs(specs_dir, select=[(MARKETING, ORGS), (MARKETING, ACCOUNTS)])
    assert result.success is succeeds, failure_message(result)
    return "" if succeeds else failure_message(result)


def _assert_warehouse_is_the_truth(sandbox, specs_dir) -> None:
    for table in (ORGS, ACCOUNTS):
        loaded = soft_delete_rows(specs_dir, table)
        assert marked_deleted(loaded) == {}, f"{table}: live rows marked deleted"
        assert_live_rows_are_the_truth(loaded, marketing_truth(sandbox, table))


def _check_soft_delete_case(sandbox, specs_dir, kind, options, attempts, succeeds) -> None:
    """The second organizations page (13 rows, 5 a page) gets the fault on `attempts`: a run
    either retries it and loads everything, or fails naming the resource and the page; no
    live row is ever marked deleted, and a clean run afterwards loads everything."""
    sandbox.faults = FaultPlan(Fault(kind, MARKETING, ORGS, nth=attempts, **options))
    message = _run(specs_dir, succeeds)
    assert sandbox.faults.fired() == len(attempts)
    _assert_warehouse_is_the_truth(sandbox, specs_dir)
    if succeeds:
        return
    assert "\n" not in message
    assert re.search(
        rf"^marketing_api: resource organizations: GET http://\S+/v1/me/organizations\?\S*cursor="
        rf"\S+ failed after {RETRIES + 1} attempts: HTTP 200 OK, but ",
        message,
    ), message
    assert "the scan is incomplete, so nothing of it was loaded" in message
    sandbox.faults = FaultPlan()
    _run(specs_dir, succeeds=True)
    _assert_warehouse_is_the_truth(sandbox, specs_dir)


@pytest.mark.parametrize("marketing", ["duckdb"], indirect=True)
@pytest.mark.parametrize(
    ("case", "kind", "options", "attempts", "succeeds"),
    SOFT_DELETE_CASES,
    ids=[c[0] for c in SOFT_DELETE_CASES],
)
def test_a_page_not_whole_never_marks_live_rows_deleted(
    marketing, specs_dir, case, kind, options, attempts, succeeds
):
    """Today the error body ended the scan as its last page (8 of 13 live organizations
    marked deleted, the run ok) and a cut body failed at once as 'not JSON'."""
    _check_soft_delete_case(marketing, specs_dir, kind, options, attempts, succeeds)


@pytest.mark.parametrize("marketing", ["postgres"], indirect=True)
def test_an_error_body_on_every_attempt_marks_nothing_in_postgres(marketing, specs_dir):
    """The same in PostgreSQL: the run fails, nothing is marked, a clean run loads all."""
    _check_soft_delete_case(marketing, specs_dir, "error_body", {}, EVERY_ATTEMPT, False)


@pytest.mark.parametrize("marketing", ["duckdb"], indirect=True)
def test_a_child_page_not_whole_on_a_worker_thread_fails_its_own_resource(marketing, specs_dir):
    """The marketing API reads ad accounts on dlt's worker threads (`concurrency: 4`): one
    organization's ad accounts answer an error body with status 200 on every attempt. The
    run fails naming `adaccounts` and that organization's URL; nothing is marked deleted
    and a clean run loads everything. Today that organization's ad accounts were taken as
    none and marked deleted."""
    sandbox = marketing
    org = sandbox.rows(MARKETING, ACCOUNTS)[0]["organization_id"]
    path = f"/organizations/{org}/adaccounts"
    sandbox.faults = FaultPlan(
        Fault("error_body", MARKETING, ACCOUNTS, when=lambda r: r.path.endswith(path))
    )
    message = _run(specs_dir, succeeds=False)
    assert sandbox.faults.fired() == RETRIES + 1
    assert message.startswith("marketing_api: resource adaccounts: GET http://"), message
    assert f"{path} failed after {RETRIES + 1} attempts: HTTP 200 OK, but the body has no" in (
        message
    )
    _assert_warehouse_is_the_truth(sandbox, specs_dir)
    sandbox.faults = FaultPlan()
    _run(specs_dir, succeeds=True)
    _assert_warehouse_is_the_truth(sandbox, specs_dir)


# --------------------------------------------------------------------------- incremental

LEDGER, RECORDS = "ledger", "resource_name"
#: rows the source changes after the first run: more than three pages of five, newest first
CHANGED = 15


def _newest_first(raw: dict) -> None:
    raw["resources"][0]["endpoint"]["params"] = {"order": "newest_first"}


def _change_rows(sandbox) -> None:
    """The first `CHANGED` ledger rows get a newer `updated_at` each (and a new name)."""
    newest = max(
        dt.datetime.strptime(r["updated_at"], STAMP_FORMAT) for r in sandbox.rows(LEDGER, RECORDS)
    )
    for i, row in enumerate(sandbox.rows(LEDGER, RECORDS)[:CHANGED]):
        stamp = (newest + dt.timedelta(minutes=i + 1)).strftime(STAMP_FORMAT)
        sandbox.upsert_row(LEDGER, RECORDS, {**row, "updated_at": stamp, "name": f"v2 {i}"})


INCREMENTAL_CASES = [
    ("error body once, retried", "error_body", (2,), True),
    ("error body on every attempt", "error_body", EVERY_ATTEMPT, False),
    ("body cut short on every attempt", "truncated", EVERY_ATTEMPT, False),
]


@pytest.mark.parametrize(
    ("case", "kind", "attempts", "succeeds"),
    INCREMENTAL_CASES,
    ids=[c[0] for c in INCREMENTAL_CASES],
)
def test_an_incremental_cursor_never_moves_past_unread_pages(
    sandbox_env, specs_dir, retry_clock, case, kind, attempts, succeeds
):
    """The ledger listed newest first, read incrementally. After a clean first run 15 rows
    change; the next run's second page is not whole on `attempts`. Either the retry reads
    it, or the run fails naming the resource; then a clean run loads every change. Today
    the error body ended the scan and the cursor jumped to the newest row: the changes on
    the unread pages were never loaded by any later run."""
    sandbox = sandbox_env
    copy_seed_specs(specs_dir, [LEDGER], edit=_newest_first)
    assert materialize_specs(specs_dir).success
    _change_rows(sandbox)
    sandbox.faults = FaultPlan(Fault(kind, LEDGER, RECORDS, nth=attempts))
    result = materialize_specs(specs_dir)
    assert result.success is succeeds, failure_message(result)
    assert sandbox.faults.fired() == len(attempts)
    if not succeeds:
        message = failure_message(result)
        assert message.startswith("ledger: resource resource_name: GET http://"), message
        assert "offset=5" in message and "the scan is incomplete" in message
        sandbox.faults = FaultPlan()
        assert materialize_specs(specs_dir).success
    assert_table_equals_truth(sandbox, LEDGER, RECORDS)


# --------------------------------------------------------------------------- offset total

ANALYTICS, ACCOUNTS_TABLE = "ad_analytics", "accounts"


@pytest.mark.parametrize(
    ("case", "attempts", "succeeds"),
    [("once, retried", (1,), True), ("on every attempt", tuple(range(1, RETRIES + 2)), False)],
)
def test_a_page_short_of_its_total_is_retried_then_fails(
    sandbox_env, specs_dir, retry_clock, case, attempts, succeeds
):
    """ad_analytics' accounts answer `{"data": [], "total": N}` (an empty page that ends the
    offset scan although `total` says N rows are left): retried, then one line naming the
    resource, the page and the total. Today the scan stopped there with a warning and the
    run passed with no row loaded."""
    sandbox = sandbox_env
    copy_seed_specs(specs_dir, [ANALYTICS])
    select = [(ANALYTICS, ACCOUNTS_TABLE)]
    sandbox.faults = FaultPlan(Fault("empty_page", ANALYTICS, ACCOUNTS_TABLE, nth=attempts))
    result = materialize_specs(specs_dir, select=select)
    assert result.success is succeeds, failure_message(result)
    if not succeeds:
        message = failure_message(result)
        total = len(sandbox.rows(ANALYTICS, ACCOUNTS_TABLE))
        assert message.startswith("ad_analytics: resource accounts: GET http://"), message
        assert f"the page at offset 0 has 0 of the 100 rows its total {total}" in message
        assert table_rows(ANALYTICS, ACCOUNTS_TABLE) is None
        sandbox.faults = FaultPlan()
        assert materialize_specs(specs_dir, select=select).success
    assert_table_equals_truth(sandbox, ANALYTICS, ACCOUNTS_TABLE)


def _keep_going(raw: dict) -> None:
    for resource in raw["resources"]:
        if resource["name"] == ACCOUNTS_TABLE:
            resource["endpoint"]["paginator"]["stop_after_empty_page"] = False


def test_stop_after_empty_page_false_reads_past_an_empty_page(sandbox_env, specs_dir):
    """`paginator: {type: offset, limit: 100, stop_after_empty_page: false}`: the API filters
    after paging and serves the second of three pages empty; the scan goes on to the third,
    ended by `total`. The table holds the rows of pages one and three, exactly. Today the
    key was ignored: the empty page ended the scan and the third page was never read."""
    sandbox = sandbox_env
    copy_seed_specs(specs_dir, [ANALYTICS], edit=_keep_going)
    sandbox.faults = FaultPlan(
        Fault("empty_page", ANALYTICS, ACCOUNTS_TABLE, when=lambda r: r.query["offset"] == "100")
    )
    result = materialize_specs(specs_dir, select=[(ANALYTICS, ACCOUNTS_TABLE)])
    assert result.success, failure_message(result)
    truth = sandbox.rows(ANALYTICS, ACCOUNTS_TABLE)
    assert len(truth) > 200
    assert_table_is(table_rows(ANALYTICS, ACCOUNTS_TABLE), truth[:100] + truth[200:])
    served = [r.query["offset"] for r in sandbox.requests if r.resource == ACCOUNTS_TABLE]
    assert served == ["0", "100", "200"]

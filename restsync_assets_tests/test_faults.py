"""Every sandbox fault through the real stack: sandbox -> dlt -> Dagster materialize -> DuckDB.

Each case writes a small spec into a tmp dir (pointed at sandbox routes through the usual
env vars), injects one fault deterministically, materializes with Dagster and then checks
the table against the sandbox's truth, or the run's one-line failure message word for word
(and that the warehouse kept what an earlier run loaded). Retry waits go through a fake
clock: nothing sleeps, and the waits restsync chose are asserted exactly.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from restsync_assets.sandbox import Sandbox
from restsync_assets.sandbox.faults import Fault, FaultPlan, demo_plan

from .sandbox_specs import (
    AD_ACCOUNTS,
    LEDGER,
    MARKETING_ORGS,
    NATIVE_ACCOUNTS,
    NATIVE_CAMPAIGNS,
    native_child,
    offset,
    sandbox_spec,
)
from .support import (
    SEED_SPECS,
    FakeClock,
    assert_table_equals_truth,
    assert_table_is,
    failure_message,
    materialize_specs,
    table_rows,
    use_specs,
    use_warehouse,
    write_spec,
)

# --- survived faults ----------------------------------------------------------------------


@dataclass
class Survived:
    """A fault restsync survives: the table equals the sandbox truth afterwards."""

    id: str
    spec: str
    resources: list[dict]
    faults: Callable[[], list[Fault]]
    sleeps: list[float] = field(default_factory=list)
    error_handler: dict = field(default_factory=dict)
    check: Callable[[Sandbox, FakeClock], None] | None = None


def _ledger(kind: str, nth: Any = 2, **options: Any) -> Callable[[], list[Fault]]:
    return lambda: [Fault(kind, "ledger", "resource_name", nth=nth, **options)]


def _token_posts(sandbox: Sandbox, spec: str) -> list[int]:
    return [r.status for r in sandbox.requests if r.spec == spec and r.resource == "oauth"]


def _refreshed_once(sandbox: Sandbox, clock: FakeClock) -> None:
    assert _token_posts(sandbox, "ledger") == [200, 200]  # the first token, then one refresh
    statuses = [r.status for r in sandbox.requests if r.resource == "resource_name"]
    assert statuses.count(401) == 1


SURVIVED = [
    Survived(
        "429-retry-after-seconds", "ledger", [LEDGER], _ledger("rate_limit", retry_after=7), [7.0]
    ),
    Survived(
        "429-retry-after-http-date",
        "ledger",
        [LEDGER],
        _ledger("rate_limit", retry_after=9, retry_after_format="http-date"),
        [9.0],
    ),
    Survived("429-retry-after-0", "ledger", [LEDGER], _ledger("rate_limit", retry_after=0), [0.0]),
    Survived(
        "429-retry-after-missing",
        "ledger",
        [LEDGER],
        _ledger("rate_limit", retry_after=None),
        [0.5],
    ),
    Survived(
        "429-retry-after-capped",
        "ledger",
        [LEDGER],
        _ledger("rate_limit", retry_after=3600),
        [12.0],
        error_handler={"max_retry_delay": 12},
    ),
    Survived(
        "5xx-bursts",
        "ledger",
        [LEDGER],
        lambda: [
            Fault("status", "ledger", "resource_name", nth=2, status=500),
            Fault("status", "ledger", "resource_name", nth=3, status=502),
            Fault("status", "ledger", "resource_name", nth=4, status=503),
            Fault("status", "ledger", "resource_name", nth=(6, 7, 8), status=504),
        ],
        [0.5, 1.0, 2.0, 0.5, 1.0, 2.0],
    ),
    Survived("connection-reset-mid-body", "ledger", [LEDGER], _ledger("reset"), [0.5]),
    Survived(
        "slower-than-timeout",
        "ledger",
        [LEDGER],
        _ledger("slow", seconds=30),
        [0.5],
        error_handler={"timeout": 0.3},
    ),
    Survived(
        "401-before-expiry",
        "ledger",
        [LEDGER],
        _ledger("revoke_token", nth=3),
        [],
        check=_refreshed_once,
    ),
    Survived(
        "token-endpoint-down",
        "ledger",
        [LEDGER],
        lambda: [Fault("token_down", "ledger", "oauth", nth=(1, 2))],
        [0.5, 1.0],
    ),
    Survived(  # 310 rows in 4 pages of 100: one odd `total` per page
        "total-missing-null-string-garbage",
        "ad_analytics",
        [offset("/v1/ad_campaign_analytics", "ad_campaign_analytics", 100)],
        lambda: [
            Fault("total", "ad_analytics", "ad_campaign_analytics", nth=n, mode=mode)
            for n, mode in enumerate(("missing", "null", "string", "garbage"), 1)
        ],
    ),
    Survived(  # 389 rows in 4 pages of 100, has_more decides (no total_path)
        "has_more-missing-null-garbage-string",
        "workspace_docs",
        [offset("/v1/blocks", "blocks", 100, total_path=None, has_more_path="has_more")],
        lambda: [
            Fault("has_more", "workspace_docs", "blocks", nth=n, mode=mode)
            for n, mode in enumerate(("missing", "null", "garbage", "string"), 1)
        ],
    ),
    *(
        Survived(
            f"{kind}-last-page",
            "ledger",
            [offset("/v1/resource", "resource_name", 23)],  # 23 rows: page 2 is the end
            _ledger(kind, nth=2),
        )
        for kind in ("empty_page", "null_page")
    ),
    Survived(
        "duplicate-pk-in-page",
        "ledger",
        [LEDGER],
        _ledger("duplicate_pk", nth=(1, 3)),
    ),
]


@pytest.mark.parametrize("case", SURVIVED, ids=lambda c: c.id)
def test_survived_fault_loads_the_truth(
    case: Survived, specs_dir, sandbox_env, retry_clock
) -> None:
    """The run succeeds, the fault fired, every table equals the sandbox's truth, and
    restsync waited exactly the case's `sleeps` between attempts."""
    write_spec(specs_dir, sandbox_spec(case.spec, case.resources, case.error_handler))
    plan = FaultPlan(*case.faults(), clock=retry_clock)
    sandbox_env.faults = plan
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert plan.fired() >= 1
    for resource in case.resources:
        assert_table_equals_truth(sandbox_env, case.spec, resource["name"])
    assert retry_clock.sleeps == case.sleeps
    if case.check:
        case.check(sandbox_env, retry_clock)


# --- faults that fail the run -------------------------------------------------------------


@dataclass
class Failed:
    """A fault restsync fails on: one exact line, and the earlier load stays as it was."""

    id: str
    spec: str
    resources: list[dict]
    faults: Callable[[], list[Fault]]
    message: Callable[[Sandbox], str]
    error_handler: dict = field(default_factory=dict)
    sleeps: list[float] = field(default_factory=list)


def _faulted_url(sandbox: Sandbox, resource: str) -> str:
    records = [r for r in sandbox.requests if r.resource == resource and r.faults]
    query = f"?{urlencode(records[0].query)}" if records[0].query else ""
    return f"{sandbox.url}{records[0].path}{query}"


HTML_START = (
    "<!DOCTYPE html> <html><head><title>Service temporarily unavailable</title></head>"
    "<body><h1>We'll be back soon</h1><p>Sch…"
)

FAILED = [
    Failed(
        "retries-exhausted",
        "ledger",
        [LEDGER],
        _ledger("status", nth=(2, 3, 4, 5), status=503),
        lambda sb: (
            f"ledger: resource resource_name: GET {_faulted_url(sb, 'resource_name')} failed"
            " after 4 attempts: HTTP 503 Service Unavailable; raise error_handler.max_retries"
            " or check the API status"
        ),
        sleeps=[0.5, 1.0, 2.0],
    ),
    Failed(
        "429-exhausted",
        "ledger",
        [LEDGER],
        _ledger("rate_limit", nth=(2, 3), retry_after=5),
        lambda sb: (
            f"ledger: resource resource_name: GET {_faulted_url(sb, 'resource_name')} failed"
            " after 2 attempts: HTTP 429 Too Many Requests; raise error_handler.max_retries"
            " or check the API status"
        ),
        error_handler={"max_retries": 1},
        sleeps=[5.0],
    ),
    Failed(
        "connection-resets-exhausted",
        "ledger",
        [LEDGER],
        _ledger("reset", nth=(2, 3)),
        lambda sb: (
            f"ledger: resource resource_name: GET {_faulted_url(sb, 'resource_name')} failed"
            " after 2 attempts: ChunkedEncodingError (ConnectionResetError: Connection reset by"
            " peer); check the network / the API status or raise error_handler.max_retries"
        ),
        error_handler={"max_retries": 1},
        sleeps=[0.5],
    ),
    Failed(
        "html-200",
        "ledger",
        [LEDGER],
        _ledger("html"),
        lambda sb: (
            f"ledger: resource resource_name: GET {_faulted_url(sb, 'resource_name')} answered"
            " HTTP 200 with Content-Type 'text/html; charset=utf-8', not JSON (after 1 attempt);"
            f" the body starts with {HTML_START!r}; the API may be down for maintenance or"
            " behind a proxy or login page"
        ),
    ),
    Failed(
        "repeated-cursor",
        "marketing_api",
        [MARKETING_ORGS],
        lambda: [Fault("repeat_cursor", "marketing_api", "organizations", nth=2)],
        lambda sb: (
            "marketing_api: resource organizations: pagination loop, the API returned the"
            f" cursor {_faulted_url(sb, 'organizations')!r} again; check cursor_value /"
            " stop_condition of the paginator"
        ),
    ),
    Failed(
        "null-pk-in-page",
        "ledger",
        [LEDGER],
        _ledger("null_pk", nth=3),
        lambda sb: (
            "ledger: resource resource_name ({spec_file}): field `id`: null primary key; fix the"
            " API's value, or set on_invalid: quarantine to set such rows aside"
        ),
    ),
    Failed(
        "401-after-refresh",
        "ledger",
        [LEDGER],
        lambda: [Fault("revoke_token", "ledger", "resource_name", nth=(2, 3))],
        lambda sb: (
            f"ledger: resource resource_name: GET {_faulted_url(sb, 'resource_name')} failed"
            ' after 1 attempt: HTTP 401 Unauthorized {"error": "invalid_token",'
            ' "error_description": "missing, unknown or expired access token"}; a freshly'
            " fetched access token was rejected too; check the client's access"
        ),
    ),
    Failed(
        "token-endpoint-down-too-long",
        "ledger",
        [LEDGER],
        lambda: [Fault("token_down", "ledger", "oauth", retry_after=1)],
        lambda sb: (
            f"ledger: token request to {sb.token_url('ledger')} failed after 4 attempts:"
            " HTTP 503 temporarily_unavailable (the authorization server failed; retry later)"
        ),
        sleeps=[1.0, 1.0, 1.0],
    ),
    *(
        Failed(
            f"child-{status}-not-declared",
            "native_ads",
            [NATIVE_ACCOUNTS, native_child("campaigns", NATIVE_CAMPAIGNS)],
            lambda status=status: [
                Fault("status", "native_ads", "campaigns", nth=2, status=status)
            ],
            message,
        )
        for status, message in (
            (
                404,
                lambda sb: (
                    f"native_ads: resource campaigns: GET {_faulted_url(sb, 'campaigns')} failed"
                    ' after 1 attempt: HTTP 404 Not Found {"error": "not_found",'
                    ' "error_description": "no such resource for this parent"}; if it means'
                    " 'no data' (e.g. a parent without children), add response_actions:"
                    " [{status_code: 404, action: ignore}] to the resource"
                ),
            ),
            (
                204,
                lambda sb: (
                    f"native_ads: resource campaigns: GET {_faulted_url(sb, 'campaigns')}"
                    " answered HTTP 204 with an empty body, not JSON (after 1 attempt); if it"
                    " means 'no data', add response_actions: [{status_code: 204, action:"
                    " ignore}] to the resource"
                ),
            ),
        )
    ),
]


@pytest.fixture(scope="module")
def clean_loads(tmp_path_factory) -> dict[str, Path]:
    """Warehouses after a clean load, per spec and resources (the sandbox is deterministic)."""
    return {"dir": tmp_path_factory.mktemp("clean_loads")}


def preload(cache: dict, specs_dir: Path, spec: str, resources: list[dict]) -> None:
    """Make this test's warehouse hold a clean load of `resources` (a real run, cached)."""
    key = json.dumps([spec, resources], sort_keys=True)
    db = Path(os.environ["RESTSYNC_DUCKDB_PATH"])
    if key not in cache:
        assert materialize_specs(specs_dir).success
        cache[key] = cache["dir"] / f"{len(cache)}.duckdb"
        shutil.copy(db, cache[key])
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(cache[key], db)


@pytest.mark.parametrize("case", FAILED, ids=lambda c: c.id)
def test_fault_fails_with_one_line_and_keeps_the_warehouse(
    case: Failed, specs_dir, sandbox_env, retry_clock, clean_loads
) -> None:
    """After a clean load, the faulted run fails with the case's exact one-line message,
    waits exactly its `sleeps`, and leaves every table as the clean load wrote it."""
    write_spec(specs_dir, sandbox_spec(case.spec, case.resources, case.error_handler))
    preload(clean_loads, specs_dir, case.spec, case.resources)  # an earlier, clean load
    assert_table_equals_truth(sandbox_env, case.spec, case.resources[-1]["name"])
    before = {r["name"]: table_rows(case.spec, r["name"]) for r in case.resources}
    sandbox_env.clear_requests()
    sandbox_env.faults = FaultPlan(*case.faults(), clock=retry_clock)
    result = materialize_specs(specs_dir)
    assert not result.success
    spec_file = str(specs_dir / f"{case.spec}.yaml")
    assert failure_message(result) == case.message(sandbox_env).replace("{spec_file}", spec_file)
    assert retry_clock.sleeps == case.sleeps
    for resource in case.resources:
        assert table_rows(case.spec, resource["name"]) == before[resource["name"]]


# --- faults with their own story -----------------------------------------------------------


def _children_of(sandbox: Sandbox, parent_index: int) -> tuple[str, list[dict]]:
    parent = sandbox.rows("native_ads", "accounts")[parent_index]["id"]
    rows = sandbox.rows("native_ads", "campaigns")
    return parent, [r for r in rows if r["account_id"] == parent]


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("status", {"status": 404}),
        ("status", {"status": 204}),
        ("null_page", {}),
        ("empty_page", {}),
    ],
    ids=["404", "204", "null-page", "empty-page"],
)
def test_child_without_children_when_the_spec_says_so(
    kind, options, specs_dir, sandbox_env, retry_clock
) -> None:
    """404/204 for one parent is "no children" only with response_actions; null/[] always."""
    actions = [{"status_code": 404, "action": "ignore"}, {"status_code": 204, "action": "ignore"}]
    resources = [NATIVE_ACCOUNTS, native_child("campaigns", NATIVE_CAMPAIGNS, actions)]
    write_spec(specs_dir, sandbox_spec("native_ads", resources))
    parent, missing = _children_of(sandbox_env, 3)  # acct-004 has 4 campaigns
    assert missing
    sandbox_env.faults = FaultPlan(Fault(kind, "native_ads", "campaigns", nth=4, **options))
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    truth = [r for r in sandbox_env.rows("native_ads", "campaigns") if r["account_id"] != parent]
    assert_table_is(table_rows("native_ads", "campaigns"), truth)
    assert_table_equals_truth(sandbox_env, "native_ads", "accounts")


def test_rotating_refresh_token_is_stored_and_used_by_the_next_run(
    specs_dir, sandbox_env, retry_clock
) -> None:
    """A rotated refresh token is kept in a 0600 store (never the configured one) and the
    next run uses it; without the store, the dead configured token fails in one line."""
    write_spec(specs_dir, sandbox_spec("ledger", [LEDGER]))
    configured = sandbox_env.credentials("ledger")["refresh_token"]
    plan = FaultPlan(
        Fault("rotate_refresh_token", "ledger", "oauth"),
        Fault("revoke_token", "ledger", "resource_name", nth=3),  # a refresh mid-run
    )
    sandbox_env.faults = plan
    assert materialize_specs(specs_dir).success
    assert plan.fired("rotate_refresh_token") == 2
    store = Path(os.environ["RESTSYNC_PIPELINES_DIR"]) / "ledger.refresh_token"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    live = sandbox_env.refresh_token("ledger")
    assert live != configured
    assert json.loads(store.read_text())["refresh_token"] == live
    assert configured not in store.read_text()

    sandbox_env.clear_requests()  # the configured token is dead now; the stored one works
    assert materialize_specs(specs_dir).success
    assert _token_posts(sandbox_env, "ledger") == [200]
    assert_table_equals_truth(sandbox_env, "ledger", "resource_name")

    store.unlink()  # without the store only the dead configured token is left
    result = materialize_specs(specs_dir)
    message = failure_message(result)
    assert message == (
        f"ledger: token request to {sandbox_env.token_url('ledger')} failed: HTTP 401"
        " invalid_grant: unknown, revoked or already rotated refresh_token (check"
        " LEDGER_REFRESH_TOKEN, it may have expired or been revoked; also check"
        " LEDGER_CLIENT_ID / LEDGER_CLIENT_SECRET)"
    )


@pytest.mark.parametrize("mode", ["insert", "delete"])
def test_rows_shifting_between_offset_pages(
    mode, specs_dir, sandbox_env, retry_clock, caplog
) -> None:
    """What offset pages can and cannot promise when rows move while paging.

    Can: no duplicate keys (a row seen twice is merged), nothing loaded is lost, the next
    run converges. Cannot: see rows inserted before the current offset during the run, see
    rows that slid back into an already read page, or learn about deleted rows (a list
    endpoint gives no delete signal; merge keeps them).
    """
    write_spec(specs_dir, sandbox_spec("ad_analytics", [AD_ACCOUNTS]))
    before = sandbox_env.rows("ad_analytics", "accounts")
    sandbox_env.faults = FaultPlan(
        Fault("shift_rows", "ad_analytics", "accounts", nth=2, count=3, mode=mode)
    )
    with caplog.at_level(logging.WARNING, logger="restsync_assets"):
        assert materialize_specs(specs_dir).success
    after = sandbox_env.rows("ad_analytics", "accounts")
    loaded = table_rows("ad_analytics", "accounts")
    old_ids = [r["id"] for r in before]
    if mode == "insert":
        new = {r["id"] for r in after} - set(old_ids)
        assert len(new) == 3
        assert set(loaded) == set(old_ids)  # rows 98-100 came twice, merged; the new 3 wait
        shifted = "total changed from 233 to 236"
    else:
        skipped, deleted = set(old_ids[100:103]), set(old_ids[:3])
        assert set(loaded) == set(old_ids) - skipped
        shifted = "total changed from 233 to 230"
    assert any(shifted in r.getMessage() for r in caplog.records)

    sandbox_env.faults = None
    assert materialize_specs(specs_dir).success
    truth = sandbox_env.rows("ad_analytics", "accounts")
    if mode == "insert":
        assert_table_is(table_rows("ad_analytics", "accounts"), truth)
    else:  # converged, except that deleted rows are never removed by a merge
        final = table_rows("ad_analytics", "accounts")
        assert set(final) == {r["id"] for r in truth} | deleted
        assert_table_is({k: v for k, v in final.items() if k not in deleted}, truth)


def test_a_field_changing_type(specs_dir, sandbox_env, retry_clock) -> None:
    """A coercible change is loaded as the column's type; the rest lands in a variant column."""
    write_spec(specs_dir, sandbox_spec("ledger", [LEDGER]))
    sandbox_env.faults = FaultPlan(
        Fault("type_change", "ledger", "resource_name", nth=2, field="balance", to="string"),
        Fault(
            "type_change", "ledger", "resource_name", nth=3, field="balance", to=lambda v: f"~{v}"
        ),
    )
    assert materialize_specs(specs_dir).success
    truth = sandbox_env.rows("ledger", "resource_name")
    rows = table_rows("ledger", "resource_name")
    assert_table_is(rows, truth, ignore=("balance",))
    for index, expected in enumerate(truth):
        got = rows[expected["id"]]
        if 10 <= index < 15:  # the third page: "~123.4" cannot be a double
            assert got["balance"] is None and got["balance__v_text"] == f"~{expected['balance']}"
        else:  # "123.4" on the second page was coerced back to a double
            assert got["balance"] == expected["balance"] and got.get("balance__v_text") is None


def test_new_fields_appearing(specs_dir, sandbox_env, retry_clock) -> None:
    """A field that appears on later pages becomes a column: filled there, null elsewhere."""
    write_spec(specs_dir, sandbox_spec("ledger", [LEDGER]))
    sandbox_env.faults = FaultPlan(
        Fault(
            "new_field",
            "ledger",
            "resource_name",
            nth=(3, 4),
            name="region",
            value=lambda r: f"eu-{r['id']}",
        )
    )
    assert materialize_specs(specs_dir).success
    truth = sandbox_env.rows("ledger", "resource_name")
    rows = table_rows("ledger", "resource_name")
    assert_table_is(rows, truth)
    regions = {k: v["region"] for k, v in rows.items() if v["region"] is not None}
    assert regions == {r["id"]: f"eu-{r['id']}" for r in truth[10:20]}


def test_demo_plan_loads_every_seed_table(
    tmp_path, monkeypatch, retry_clock, seed_partitions
) -> None:
    """`restsync demo --faults`: every fault of the demo plan fires, all 20 tables are right."""
    from restsync_assets.cli.demo import run_demo

    use_warehouse(monkeypatch, tmp_path / "demo.duckdb")
    use_specs(monkeypatch, SEED_SPECS)
    plan = demo_plan()
    out = io.StringIO()
    report = run_demo(out=out, faults=plan)
    assert report.ok, out.getvalue()
    assert len(report.rows) == 20 and all(r.status == "ok" for r in report.rows)
    assert [f for f in plan.faults if not f.fired] == []

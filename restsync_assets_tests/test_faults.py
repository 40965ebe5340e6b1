"""Every sandbox fault through the real stack: sandbox -> dlt -> Dagster materialize -> DuckDB.

Each case writes a small spec into a tmp dir (pointed at sandbox routes through the usual
env vars), injects one fault deterministically, materializes with Dagster and then checks
the table against the sandbox's truth, or the run's one-line failure message word for word
(and that the warehouse kept what an earlier run loaded). Retry waits go through a fake
clock: nothing sleeps, and the waits restsync chose are asserted exactly.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, materialize

from restsync_assets.definitions import build_definitions
from restsync_assets.runtime.http import retry
from restsync_assets.sandbox import Sandbox
from restsync_assets.sandbox.faults import Fault, FaultPlan, demo_plan
from restsync_assets.specs import load_specs

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
NOW = 1_800_000_000.0  # whole seconds: HTTP dates in Retry-After are exact

# --- shared helpers (also used by test_recovery.py and test_security.py) --------------------


class FakeClock(retry.Clock):
    """Retry clock that records the waits instead of sleeping (and advances its time)."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(retry, "CLOCK", fake)
    return fake


ERROR_HANDLER = {"max_retries": 3, "backoff_factor": 0.5, "max_retry_delay": 30, "timeout": 5}


def spec_text(
    name: str, resources: list[dict], error_handler: dict | None = None, **client: Any
) -> str:
    """A spec for sandbox API `name` (URLs and credentials come from the env vars)."""
    spec = {
        "name": name,
        "client": {
            "base_url": "https://api.example.com",
            "auth": {"type": "oauth2", "token_url": "https://auth.example.com/token"},
            "error_handler": {**ERROR_HANDLER, **(error_handler or {})},
            **client,
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": resources,
    }
    return yaml.safe_dump(spec, sort_keys=False)


def offset(path: str, name: str, limit: int, **paginator: Any) -> dict:
    return {
        "name": name,
        "endpoint": {
            "path": path,
            "data_selector": "data",
            "paginator": {"type": "offset", "limit": limit, **paginator},
        },
    }


LEDGER = offset("/v1/resource", "resource_name", 5)
AD_ACCOUNTS = offset("/v1/accounts", "accounts", 100)
MARKETING_ORGS = {
    "name": "organizations",
    "endpoint": {
        "path": "/v1/me/organizations",
        "data_selector": "organizations.*.organization",
        "paginator": {
            "type": "cursor",
            "cursor_value": "{{ response.get('paging', {}).get('next_link', {}) }}",
            "stop_condition": "{{ not response.get('paging', {}).get('next_link', {}) }}",
        },
    },
}
NATIVE_ACCOUNTS = {
    "name": "accounts",
    "endpoint": {
        "path": "/v1/users/current/allowed-accounts",
        "data_selector": "results",
        "paginator": "single_page",
    },
}


def native_child(name: str, path: str, response_actions: list | None = None) -> dict:
    endpoint: dict[str, Any] = {
        "path": path,
        "data_selector": "results",
        "paginator": "single_page",
    }
    if response_actions is not None:
        endpoint["response_actions"] = response_actions
    return {"name": name, "endpoint": endpoint}


NATIVE_CAMPAIGNS = "/v1/{account_id}/campaigns/"


def write_spec(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = yaml.safe_load(text)["name"]
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return directory


def run(specs_dir: Path, select: list[tuple[str, str]] | None = None, instance=None) -> Any:
    """Materialize the specs of `specs_dir` (all assets, or `select`) in this process."""
    defs = build_definitions(load_specs(specs_dir))
    return materialize(
        list(defs.assets),
        resources=defs.resources,
        selection=[AssetKey(list(k)) for k in select] if select else None,
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config=QUIET,
    )


def failure_message(result: Any) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    return failure.step_failure_data.user_failure_data.description


def _normal(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def table_rows(spec: str, resource: str) -> dict[Any, dict] | None:
    """`{id: row}` of a warehouse table (None when missing); asserts ids are unique."""
    import duckdb

    path = Path(os.environ["RESTSYNC_DUCKDB_PATH"])
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        try:
            cursor = con.execute(f'select * from "{spec}"."{resource}"')
        except duckdb.CatalogException:
            return None
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, map(_normal, r), strict=True)) for r in cursor.fetchall()]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{spec}.{resource} has duplicate primary keys"
    return {r["id"]: r for r in rows}


def assert_table_is(
    rows: dict[Any, dict] | None, truth: list[dict], *, ignore: tuple[str, ...] = ()
) -> None:
    """The table holds exactly the `truth` rows, every scalar field equal."""
    assert rows is not None, "table not loaded"
    assert set(rows) == {t["id"] for t in truth}
    for expected in truth:
        got = rows[expected["id"]]
        for key, value in expected.items():
            if key in ignore or isinstance(value, (dict, list)):
                continue
            assert got.get(key) == value, (expected["id"], key, got.get(key), value)


def assert_table_equals_truth(sandbox: Sandbox, spec: str, resource: str, **kw: Any) -> None:
    assert_table_is(table_rows(spec, resource), sandbox.rows(spec, resource), **kw)


@pytest.fixture
def specs_dir(tmp_path, sandbox_env, monkeypatch) -> Path:
    directory = tmp_path / "specs"
    directory.mkdir()
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(directory))
    return directory


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
def test_survived_fault_loads_the_truth(case: Survived, specs_dir, sandbox_env, clock) -> None:
    write_spec(specs_dir, spec_text(case.spec, case.resources, case.error_handler))
    plan = FaultPlan(*case.faults(), clock=clock.time)
    sandbox_env.faults = plan
    result = run(specs_dir)
    assert result.success, failure_message(result)
    assert plan.fired() >= 1
    for resource in case.resources:
        assert_table_equals_truth(sandbox_env, case.spec, resource["name"])
    assert clock.sleeps == case.sleeps
    if case.check:
        case.check(sandbox_env, clock)


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


def _url_of(sandbox: Sandbox, index: int = -1, **where: Any) -> str:
    """The URL of a request in the sandbox log (the last one matching `where`)."""
    records = [r for r in sandbox.requests if all(getattr(r, k) == v for k, v in where.items())]
    record = records[index]
    query = f"?{urlencode(record.query)}" if record.query else ""
    return f"{sandbox.url}{record.path}{query}"


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
            "ledger: resource resource_name: the API returned a row whose `id` is null, but"
            " `id` is a primary key (or non-nullable) column, so the row cannot be merged;"
            " nothing from this run was written"
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
    import json
    import shutil

    key = json.dumps([spec, resources], sort_keys=True)
    db = Path(os.environ["RESTSYNC_DUCKDB_PATH"])
    if key not in cache:
        assert run(specs_dir).success
        cache[key] = cache["dir"] / f"{len(cache)}.duckdb"
        shutil.copy(db, cache[key])
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(cache[key], db)


@pytest.mark.parametrize("case", FAILED, ids=lambda c: c.id)
def test_fault_fails_with_one_line_and_keeps_the_warehouse(
    case: Failed, specs_dir, sandbox_env, clock, clean_loads
) -> None:
    write_spec(specs_dir, spec_text(case.spec, case.resources, case.error_handler))
    preload(clean_loads, specs_dir, case.spec, case.resources)  # an earlier, clean load
    assert_table_equals_truth(sandbox_env, case.spec, case.resources[-1]["name"])
    before = {r["name"]: table_rows(case.spec, r["name"]) for r in case.resources}
    sandbox_env.clear_requests()
    sandbox_env.faults = FaultPlan(*case.faults(), clock=clock.time)
    result = run(specs_dir)
    assert not result.success
    assert failure_message(result) == case.message(sandbox_env)
    assert clock.sleeps == case.sleeps
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
    kind, options, specs_dir, sandbox_env, clock
) -> None:
    """404/204 for one parent is "no children" only with response_actions; null/[] always."""
    actions = [{"status_code": 404, "action": "ignore"}, {"status_code": 204, "action": "ignore"}]
    resources = [NATIVE_ACCOUNTS, native_child("campaigns", NATIVE_CAMPAIGNS, actions)]
    write_spec(specs_dir, spec_text("native_ads", resources))
    parent, missing = _children_of(sandbox_env, 3)  # acct-004 has 4 campaigns
    assert missing
    sandbox_env.faults = FaultPlan(Fault(kind, "native_ads", "campaigns", nth=4, **options))
    result = run(specs_dir)
    assert result.success, failure_message(result)
    truth = [r for r in sandbox_env.rows("native_ads", "campaigns") if r["account_id"] != parent]
    assert_table_is(table_rows("native_ads", "campaigns"), truth)
    assert_table_equals_truth(sandbox_env, "native_ads", "accounts")


def test_rotating_refresh_token_is_stored_and_used_by_the_next_run(
    specs_dir, sandbox_env, clock
) -> None:
    import json

    write_spec(specs_dir, spec_text("ledger", [LEDGER]))
    configured = sandbox_env.credentials("ledger")["refresh_token"]
    plan = FaultPlan(
        Fault("rotate_refresh_token", "ledger", "oauth"),
        Fault("revoke_token", "ledger", "resource_name", nth=3),  # a refresh mid-run
    )
    sandbox_env.faults = plan
    assert run(specs_dir).success
    assert plan.fired("rotate_refresh_token") == 2
    store = Path(os.environ["RESTSYNC_PIPELINES_DIR"]) / "ledger.refresh_token"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    live = sandbox_env.refresh_token("ledger")
    assert live != configured
    assert json.loads(store.read_text())["refresh_token"] == live
    assert configured not in store.read_text()

    sandbox_env.clear_requests()  # the configured token is dead now; the stored one works
    assert run(specs_dir).success
    assert _token_posts(sandbox_env, "ledger") == [200]
    assert_table_equals_truth(sandbox_env, "ledger", "resource_name")

    store.unlink()  # without the store only the dead configured token is left
    result = run(specs_dir)
    message = failure_message(result)
    assert message == (
        f"ledger: token request to {sandbox_env.token_url('ledger')} failed: HTTP 401"
        " invalid_grant: unknown, revoked or already rotated refresh_token (check"
        " LEDGER_REFRESH_TOKEN, it may have expired or been revoked; also check"
        " LEDGER_CLIENT_ID / LEDGER_CLIENT_SECRET)"
    )


@pytest.mark.parametrize("mode", ["insert", "delete"])
def test_rows_shifting_between_offset_pages(mode, specs_dir, sandbox_env, clock, caplog) -> None:
    """What offset pages can and cannot promise when rows move while paging.

    Can: no duplicate keys (a row seen twice is merged), nothing loaded is lost, the next
    run converges. Cannot: see rows inserted before the current offset during the run, see
    rows that slid back into an already read page, or learn about deleted rows (a list
    endpoint gives no delete signal; merge keeps them).
    """
    write_spec(specs_dir, spec_text("ad_analytics", [AD_ACCOUNTS]))
    before = sandbox_env.rows("ad_analytics", "accounts")
    sandbox_env.faults = FaultPlan(
        Fault("shift_rows", "ad_analytics", "accounts", nth=2, count=3, mode=mode)
    )
    with caplog.at_level(logging.WARNING, logger="restsync_assets"):
        assert run(specs_dir).success
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
    assert run(specs_dir).success
    truth = sandbox_env.rows("ad_analytics", "accounts")
    if mode == "insert":
        assert_table_is(table_rows("ad_analytics", "accounts"), truth)
    else:  # converged, except that deleted rows are never removed by a merge
        final = table_rows("ad_analytics", "accounts")
        assert set(final) == {r["id"] for r in truth} | deleted
        assert_table_is({k: v for k, v in final.items() if k not in deleted}, truth)


def test_a_field_changing_type(specs_dir, sandbox_env, clock) -> None:
    """A coercible change is loaded as the column's type; the rest lands in a variant column."""
    write_spec(specs_dir, spec_text("ledger", [LEDGER]))
    sandbox_env.faults = FaultPlan(
        Fault("type_change", "ledger", "resource_name", nth=2, field="balance", to="string"),
        Fault(
            "type_change", "ledger", "resource_name", nth=3, field="balance", to=lambda v: f"~{v}"
        ),
    )
    assert run(specs_dir).success
    truth = sandbox_env.rows("ledger", "resource_name")
    rows = table_rows("ledger", "resource_name")
    assert_table_is(rows, truth, ignore=("balance",))
    for index, expected in enumerate(truth):
        got = rows[expected["id"]]
        if 10 <= index < 15:  # the third page: "~123.4" cannot be a double
            assert got["balance"] is None and got["balance__v_text"] == f"~{expected['balance']}"
        else:  # "123.4" on the second page was coerced back to a double
            assert got["balance"] == expected["balance"] and got.get("balance__v_text") is None


def test_new_fields_appearing(specs_dir, sandbox_env, clock) -> None:
    write_spec(specs_dir, spec_text("ledger", [LEDGER]))
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
    assert run(specs_dir).success
    truth = sandbox_env.rows("ledger", "resource_name")
    rows = table_rows("ledger", "resource_name")
    assert_table_is(rows, truth)
    regions = {k: v["region"] for k, v in rows.items() if v["region"] is not None}
    assert regions == {r["id"]: f"eu-{r['id']}" for r in truth[10:20]}


def test_demo_plan_loads_every_seed_table(tmp_path, monkeypatch, clock) -> None:
    """`restsync demo --faults`: every fault of the demo plan fires, all 19 tables are right."""
    import io

    from restsync_assets.demo import run_demo

    from .conftest import SEED_SPECS

    monkeypatch.setenv("RESTSYNC_DUCKDB_PATH", str(tmp_path / "demo.duckdb"))
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(SEED_SPECS))
    plan = demo_plan()
    out = io.StringIO()
    report = run_demo(out=out, faults=plan)
    assert report.ok, out.getvalue()
    assert len(report.rows) == 19 and all(r.status == "ok" for r in report.rows)
    assert [f for f in plan.faults if not f.fired] == []

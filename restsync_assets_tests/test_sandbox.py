"""Tests for the local sandbox (restsync_assets.sandbox) using plain requests."""

from __future__ import annotations

import base64
import re
import socket
import threading
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from restsync_assets.sandbox import SANDBOX_SPECS, SEEDS, FaultPlan, Response, Sandbox, reports
from restsync_assets.sandbox.data import RESOURCES
from restsync_assets.sandbox.faults import Fault

from .support import FakeClock

#: The sandbox clock's start: 2026-01-01T00:00:00Z.
SANDBOX_NOW = 1_767_225_600.0
REFRESH_SPECS = {"marketing_api", "ledger"}
OFFSET_RESOURCES = [
    ("ad_analytics", "accounts", "/v1/accounts", 100),
    ("ad_analytics", "account_users", "/v1/account_users", 100),
    ("ad_analytics", "ad_campaign_analytics", "/v1/ad_campaign_analytics", 100),
    ("ledger", "resource_name", "/v1/resource", 5),
    *(("workspace_docs", name, f"/v1/{name}", 100) for name in RESOURCES["workspace_docs"]),
]
NATIVE_ACCOUNT_CHILDREN = {
    "audiences": "/v1/{account_id}/combined_audiences/resources/audiences",
    "campaigns": "/v1/{account_id}/campaigns/",
    "audience_rules": "/v1/{account_id}/universal_pixel/custom_audience_rule",
    "conversion_rules": "/v1/{account_id}/universal_pixel/conversion_rule",
}
NATIVE_CAMPAIGN_CHILDREN = {
    "motion_ads": "/v1/{account_id}/campaigns/{campaign_id}/performance-video/items/",
    "campaign_items": "/v1/{account_id}/campaigns/{campaign_id}/items/",
}
MARKETING_CHILDREN = {
    "adaccounts": ("organizations", "organization_id", "/v1/organizations/{}/adaccounts"),
    "creatives": ("adaccounts", "adaccount_id", "/v1/adaccounts/{}/creatives"),
    "ads": ("adaccounts", "adaccount_id", "/v1/adaccounts/{}/ads"),
}
SINGULAR = {"organizations": "organization", "adaccounts": "adaccount"}
SINGULAR |= {"creatives": "creative", "ads": "ad"}


@pytest.fixture
def clock() -> FakeClock:
    """The sandbox's clock (token expiry), moved by hand."""
    return FakeClock(SANDBOX_NOW)


@pytest.fixture
def sandbox(clock):
    with Sandbox(port=0, token_ttl=600, clock=clock) as sb:
        yield sb


def token_response(sb: Sandbox, spec: str, **overrides) -> requests.Response:
    form = {"grant_type": sb.grant_type(spec), **sb.credentials(spec), **overrides}
    return requests.post(sb.token_url(spec), data={k: v for k, v in form.items() if v is not None})


class Client:
    """Authenticated GETs against one spec."""

    def __init__(self, sb: Sandbox, spec: str):
        response = token_response(sb, spec)
        assert response.status_code == 200, response.text
        self.base = sb.base_url(spec)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str, **params) -> requests.Response:
        return self.session.get(self.base + path, params=params)

    def get_url(self, url: str) -> requests.Response:
        return self.session.get(url)

    def ok(self, path: str, **params) -> dict:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json"
        return response.json()


def walk_offset(client: Client, path: str, limit: int, **params) -> list[list[dict]]:
    """Pages until a short page (checks the spec envelope on the way)."""
    pages, offset = [], 0
    while True:
        body = client.ok(path, offset=offset, limit=limit, **params)
        pages.append(body["data"])
        if len(body["data"]) < limit:
            return pages
        offset += limit


def walk_cursor(client: Client, path: str, resource: str, **params) -> list[list[dict]]:
    """Follows paging.next_link to the end; returns unwrapped pages."""
    pages = []
    body = client.ok(path, **params)
    while True:
        assert body["request_status"] == "SUCCESS"
        pages.append([item[SINGULAR[resource]] for item in body[resource]])
        if "paging" not in body:
            return pages
        link = body["paging"]["next_link"]
        parts = urlsplit(link)
        assert parts.scheme == "http" and parts.netloc == urlsplit(client.base).netloc
        assert "cursor" in parse_qs(parts.query)
        response = client.get_url(link)
        assert response.status_code == 200, response.text
        body = response.json()


def flat(pages: list[list[dict]]) -> list[dict]:
    return [row for page in pages for row in page]


# --------------------------------------------------------------------------- credentials / oauth


def test_credentials_and_env(sandbox):
    """Each spec's deterministic credentials (refresh tokens only where the grant uses them) and the
    env vars that point a spec at the sandbox."""
    for spec in SANDBOX_SPECS:
        creds = sandbox.credentials(spec)
        assert creds["client_id"] == f"sandbox-{spec}-id"
        assert re.fullmatch(rf"sandbox-{spec}-secret-[0-9a-f]{{8}}", creds["client_secret"])
        assert ("refresh_token" in creds) == (spec in REFRESH_SPECS)
        if spec in REFRESH_SPECS:
            assert re.fullmatch(rf"sandbox-{spec}-refresh-[0-9a-f]+", creds["refresh_token"])
    env = sandbox.env()
    assert env["LEDGER_REFRESH_TOKEN"] == sandbox.credentials("ledger")["refresh_token"]
    assert "AD_ANALYTICS_REFRESH_TOKEN" not in env
    assert env["NATIVE_ADS_BASE_URL"] == f"{sandbox.url}/native_ads"
    assert env["LEDGER_TOKEN_URL"] == f"{sandbox.url}/ledger/oauth2/v1/tokens/bearer"
    assert set(sandbox.env(["ledger"])) == {
        f"LEDGER_{k}"
        for k in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "BASE_URL", "TOKEN_URL")
    }
    assert Sandbox().credentials("ledger") == sandbox.credentials("ledger")


def test_the_reports_seed_env_rows_and_secrets(sandbox):
    """The `reports` seed (async report jobs) is served like the others: its env vars (bearer
    token and base URL, no token URL), its campaign report's rows (the vendor's truth of all
    days) and its token among the secrets; a resource it does not report is refused."""
    assert "reports" in SEEDS
    assert sandbox.env(["reports"]) == {
        "REPORTS_TOKEN": reports.TOKEN,
        "REPORTS_BASE_URL": f"{sandbox.url}/reports",
    }
    assert sandbox.env()["REPORTS_TOKEN"] == sandbox.credentials("reports")["token"]
    rows = sandbox.rows("reports", "campaign_report")
    assert len(rows) == reports.DAYS * reports.CAMPAIGNS
    assert rows == sandbox.reports.truth("campaign")
    assert reports.TOKEN in sandbox.secrets()
    with pytest.raises(KeyError, match=r"reports\.nothing"):
        sandbox.rows("reports", "nothing")


@pytest.mark.parametrize("spec", SANDBOX_SPECS)
def test_token_grants(sandbox, spec):
    """The right credentials (form or Basic) get a 600 s Bearer token; a wrong secret, client, grant
    type or refresh token gets 401 with its OAuth error; GET is 405."""
    good = token_response(sandbox, spec)
    assert good.status_code == 200
    body = good.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and body["access_token"]

    creds = sandbox.credentials(spec)
    basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
    form = {"grant_type": sandbox.grant_type(spec), "refresh_token": creds.get("refresh_token")}
    via_basic = requests.post(
        sandbox.token_url(spec),
        data={k: v for k, v in form.items() if v},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert via_basic.status_code == 200

    for overrides, error in [
        ({"client_secret": "nope"}, "invalid_client"),
        ({"client_id": "sandbox-other-id"}, "invalid_client"),
        ({"client_id": None, "client_secret": None}, "invalid_client"),
        ({"grant_type": "password"}, "invalid_grant"),
        ({"grant_type": None}, "invalid_grant"),
    ]:
        bad = token_response(sandbox, spec, **overrides)
        assert bad.status_code == 401, overrides
        assert bad.json()["error"] == error

    other = "client_credentials" if spec in REFRESH_SPECS else "refresh_token"
    assert token_response(sandbox, spec, grant_type=other).status_code == 401
    if spec in REFRESH_SPECS:
        wrong = token_response(sandbox, spec, refresh_token="sandbox-x-refresh-00")
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_grant"
        missing = token_response(sandbox, spec, refresh_token=None)
        assert missing.status_code == 401
    assert requests.get(sandbox.token_url(spec)).status_code == 405


def test_bearer_required(sandbox):
    """Data routes answer 401 `invalid_token` without a valid Bearer token of their own spec."""
    url = sandbox.base_url("ad_analytics") + "/v1/accounts"
    for headers in ({}, {"Authorization": "Bearer bogus"}, {"Authorization": "Basic abc"}):
        response = requests.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # A token issued for another spec is not accepted.
    other = Client(sandbox, "workspace_docs")
    assert other.get_url(url).status_code == 401
    assert Client(sandbox, "ad_analytics").get_url(url).status_code == 200


def test_token_expiry_uses_injected_clock(sandbox, clock):
    """A token works until its 600 s pass on the injected clock, then gets 401; `expire_tokens` ends
    every token at once."""
    client = Client(sandbox, "ledger")
    assert client.get("/v1/resource").status_code == 200
    clock.now += 599
    assert client.get("/v1/resource").status_code == 200
    clock.now += 1
    expired = client.get("/v1/resource")
    assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"

    fresh = Client(sandbox, "ledger")
    assert fresh.get("/v1/resource").status_code == 200
    sandbox.expire_tokens()
    assert fresh.get("/v1/resource").status_code == 401
    assert Client(sandbox, "ledger").get("/v1/resource").status_code == 200


# --------------------------------------------------------------------------- offset pagination


@pytest.mark.parametrize(("spec", "resource", "path", "limit"), OFFSET_RESOURCES)
def test_offset_pagination(sandbox, spec, resource, path, limit):
    """Offset pages walk every row exactly, full pages then a short one, with each API's envelope
    (`total`, `has_more` or bare `data`)."""
    client = Client(sandbox, spec)
    pages = walk_offset(client, path, limit)
    truth = sandbox.rows(spec, resource)
    assert len(pages) >= 3
    assert all(len(page) == limit for page in pages[:-1])
    assert 0 < len(pages[-1]) < limit
    assert flat(pages) == truth
    first = client.ok(path, offset=0, limit=limit)
    beyond = client.ok(path, offset=len(truth), limit=limit)
    assert beyond["data"] == []
    if spec == "ad_analytics":
        assert first["total"] == beyond["total"] == len(truth)
    elif spec == "workspace_docs":
        assert first["has_more"] is True and beyond["has_more"] is False
        last = client.ok(path, offset=(len(pages) - 1) * limit, limit=limit)
        assert last["has_more"] is False
    else:
        assert set(first) == {"data"}


def test_offset_rejects_bad_params(sandbox):
    """A non-numeric or negative offset, or a limit out of range, gets 400 `invalid_request`."""
    client = Client(sandbox, "ad_analytics")
    for params in ({"offset": "x"}, {"offset": -1}, {"limit": 0}, {"limit": 100000}):
        response = client.get("/v1/accounts", **params)
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"


# --------------------------------------------------------------------------- marketing cursor


def test_marketing_organizations_cursor(sandbox):
    """Organizations page by `next_link` cursors to exactly the rows; `limit` is carried into the
    next link; a garbage cursor gets 400."""
    client = Client(sandbox, "marketing_api")
    pages = walk_cursor(client, "/v1/me/organizations", "organizations")
    assert [len(p) for p in pages] == [5, 5, 3]
    assert flat(pages) == sandbox.rows("marketing_api", "organizations")
    # limit is honoured and carried into next_link.
    body = client.ok("/v1/me/organizations", limit=4)
    assert len(body["organizations"]) == 4
    assert parse_qs(urlsplit(body["paging"]["next_link"]).query)["limit"] == ["4"]
    pages = walk_cursor(client, "/v1/me/organizations", "organizations", limit=4)
    assert [len(p) for p in pages] == [4, 4, 4, 1]
    assert client.get("/v1/me/organizations", cursor="!!").status_code == 400


@pytest.mark.parametrize("resource", MARKETING_CHILDREN)
def test_marketing_children_page_shapes(sandbox, resource):
    """Each parent's children, walked by cursor, are exactly its rows; parents have none, one or
    several pages; an unknown parent gets 404."""
    parent_resource, key, template = MARKETING_CHILDREN[resource]
    client = Client(sandbox, "marketing_api")
    children = sandbox.rows("marketing_api", resource)
    counts = Counter(row[key] for row in children)
    parents = [p["id"] for p in sandbox.rows("marketing_api", parent_resource)]
    page_counts = {}
    for parent in parents:
        pages = walk_cursor(client, template.format(parent), resource)
        got = flat(pages)
        assert got == [row for row in children if row[key] == parent]
        assert len(got) == counts[parent]
        page_counts[parent] = 0 if not got else len(pages)
    shapes = set(page_counts.values())
    assert {0, 1} <= shapes and max(shapes) >= 3
    assert client.get(template.format("does-not-exist")).status_code == 404


# --------------------------------------------------------------------------- native_ads


def test_native_ads_single_page_and_children(sandbox):
    """Accounts and their children come in one page with `metadata`; children per parent number 0, 1
    and 3 or more."""
    client = Client(sandbox, "native_ads")
    accounts = client.ok("/v1/users/current/allowed-accounts")
    assert set(accounts) == {"results", "metadata"}
    assert accounts["metadata"] == {"total": len(accounts["results"])}
    assert accounts["results"] == sandbox.rows("native_ads", "accounts")
    assert all({"id", "name", "country", "currency"} <= set(a) for a in accounts["results"])
    assert all(isinstance(a["id"], str) for a in accounts["results"])

    for resource, template in NATIVE_ACCOUNT_CHILDREN.items():
        sizes = set()
        for account in accounts["results"]:
            response = client.get(template.format(account_id=account["id"]))
            assert "Link" not in response.headers
            body = response.json()
            assert set(body) == {"results", "metadata"}
            assert all(row["account_id"] == account["id"] for row in body["results"])
            sizes.add(len(body["results"]))
        assert 0 in sizes and 1 in sizes and max(sizes) >= 3, resource

    campaigns = sandbox.rows("native_ads", "campaigns")
    for resource, template in NATIVE_CAMPAIGN_CHILDREN.items():
        sizes = {
            len(
                client.ok(
                    template.format(**{"account_id": c["account_id"], "campaign_id": c["id"]})
                )["results"]
            )
            for c in campaigns
        }
        assert 0 in sizes and 1 in sizes and max(sizes) >= 3, resource


def test_native_ads_campaign_must_belong_to_account(sandbox):
    """A campaign's children under another account, an unknown account, or without the trailing
    slash get 404."""
    client = Client(sandbox, "native_ads")
    campaign = sandbox.rows("native_ads", "campaigns")[0]
    other = next(
        a["id"] for a in sandbox.rows("native_ads", "accounts") if a["id"] != campaign["account_id"]
    )
    for template in NATIVE_CAMPAIGN_CHILDREN.values():
        right = template.format(account_id=campaign["account_id"], campaign_id=campaign["id"])
        wrong = template.format(account_id=other, campaign_id=campaign["id"])
        assert client.get(right).status_code == 200
        mismatch = client.get(wrong)
        assert mismatch.status_code == 404 and mismatch.json()["error"] == "not_found"
    assert client.get("/v1/acct-999/campaigns/").status_code == 404
    # Trailing slashes are part of the paths.
    assert client.get(f"/v1/{campaign['account_id']}/campaigns").status_code == 404


# --------------------------------------------------------------------------- filters / incremental


def test_ledger_updated_since_and_upsert(sandbox):
    """`updated_since`/`updated_until` filter the ledger (Z or +00:00), a bad date gets 400, and
    `upsert_row` changes the truth."""
    client = Client(sandbox, "ledger")
    truth = sandbox.rows("ledger", "resource_name")
    assert truth == sorted(truth, key=lambda r: (r["updated_at"], r["id"]))
    pivot = truth[10]["updated_at"]
    since = flat(walk_offset(client, "/v1/resource", 5, updated_since=pivot))
    assert since == [r for r in truth if r["updated_at"] >= pivot]
    until = flat(walk_offset(client, "/v1/resource", 5, updated_until=pivot))
    assert until == [r for r in truth if r["updated_at"] < pivot]
    offset_form = pivot.replace("Z", "+00:00")
    assert flat(walk_offset(client, "/v1/resource", 5, updated_since=offset_form)) == since
    assert client.get("/v1/resource", updated_since="yesterday").status_code == 400

    changed = {**truth[0], "name": "renamed", "updated_at": "2026-03-01T00:00:00Z"}
    added = {**truth[1], "id": "rec-new", "updated_at": "2026-03-01T00:00:00Z"}
    sandbox.upsert_row("ledger", "resource_name", changed)
    sandbox.upsert_row("ledger", "resource_name", added)
    new_rows = client.ok("/v1/resource", updated_since="2026-02-01T00:00:00Z", limit=5)["data"]
    assert new_rows == [changed, added]  # sorted by (updated_at, id): rec-001 < rec-new
    assert len(sandbox.rows("ledger", "resource_name")) == len(truth) + 1
    assert "rec-new" in sandbox.ids("ledger", "resource_name")


def test_ad_campaign_analytics_date_filter(sandbox):
    """`start_date`/`end_date` (end exclusive) select exactly those days of analytics; a bad date
    gets 400."""
    client = Client(sandbox, "ad_analytics")
    truth = sandbox.rows("ad_analytics", "ad_campaign_analytics")
    assert len(truth) == 310 and len({r["campaign_id"] for r in truth}) == 10
    assert truth[0]["id"] == f"{truth[0]['campaign_id']}:{truth[0]['date']}"
    body = client.ok("/v1/ad_campaign_analytics", start_date="2026-01-07", end_date="2026-01-10")
    assert body["total"] == 30
    assert {r["date"] for r in body["data"]} == {"2026-01-07", "2026-01-08", "2026-01-09"}
    tail = client.ok("/v1/ad_campaign_analytics", start_date="2026-01-31")
    assert tail["total"] == 10
    bad = client.get("/v1/ad_campaign_analytics", start_date="01/07/2026")
    assert bad.status_code == 400


# --------------------------------------------------------------------------- whole-API walk


def walk_everything(sb: Sandbox) -> dict[tuple[str, str], list[dict]]:
    got: dict[tuple[str, str], list[dict]] = {}
    for spec, resource, path, limit in OFFSET_RESOURCES:
        got[spec, resource] = flat(walk_offset(Client(sb, spec), path, limit))

    mk = Client(sb, "marketing_api")
    got["marketing_api", "organizations"] = flat(
        walk_cursor(mk, "/v1/me/organizations", "organizations")
    )
    for resource, (parent_resource, _, template) in MARKETING_CHILDREN.items():
        got["marketing_api", resource] = [
            row
            for parent in got["marketing_api", parent_resource]
            for row in flat(walk_cursor(mk, template.format(parent["id"]), resource))
        ]

    na = Client(sb, "native_ads")
    accounts = na.ok("/v1/users/current/allowed-accounts")["results"]
    got["native_ads", "accounts"] = accounts
    for resource, template in NATIVE_ACCOUNT_CHILDREN.items():
        got["native_ads", resource] = [
            row for a in accounts for row in na.ok(template.format(account_id=a["id"]))["results"]
        ]
    for resource, template in NATIVE_CAMPAIGN_CHILDREN.items():
        got["native_ads", resource] = [
            row
            for c in got["native_ads", "campaigns"]
            for row in na.ok(template.format(account_id=c["account_id"], campaign_id=c["id"]))[
                "results"
            ]
        ]
    return got


def test_walking_every_endpoint_returns_exactly_rows(sandbox):
    """Walking every endpoint of every API gives exactly `rows()`, ids unique and never null."""
    got = walk_everything(sandbox)
    assert set(got) == {(spec, r) for spec in SANDBOX_SPECS for r in RESOURCES[spec]}
    total = 0
    for (spec, resource), rows in got.items():
        truth = sandbox.rows(spec, resource)
        assert rows == truth, (spec, resource)
        ids = [row["id"] for row in rows]
        assert None not in ids and len(ids) == len(set(ids)) == len(sandbox.ids(spec, resource))
        total += len(rows)
    assert total < 5000


def test_dataset_is_deterministic():
    """Two sandboxes hold the same rows."""
    a, b = Sandbox(), Sandbox()
    for spec in SANDBOX_SPECS:
        for resource in RESOURCES[spec]:
            assert a.rows(spec, resource) == b.rows(spec, resource)


# --------------------------------------------------------------------------- plumbing


def test_unknown_routes_and_request_log(sandbox):
    """Unknown routes get a JSON 404; the request log records method, status, spec, path, query and
    resource, and `clear_requests` empties it."""
    sandbox.clear_requests()
    for path in ("/nope", "/ledger/v1/nothing", "/ledger/v1/resource/"):
        response = requests.get(sandbox.url + path)
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"] == "not_found"
    client = Client(sandbox, "ledger")
    client.get("/v1/resource", offset=5, limit=5)
    log = sandbox.requests
    assert [(r.method, r.status, r.spec) for r in log] == [
        ("GET", 404, None),
        ("GET", 404, "ledger"),
        ("GET", 404, "ledger"),
        ("POST", 200, "ledger"),
        ("GET", 200, "ledger"),
    ]
    assert log[-1].path == "/ledger/v1/resource" and log[-1].query == {"offset": "5", "limit": "5"}
    assert log[-1].resource == "resource_name" and log[-2].resource == "oauth"
    sandbox.clear_requests()
    assert sandbox.requests == []


def test_fault_hook_overrides_response(sandbox):
    """A `FaultPlan.intercept` answer replaces the response for the requests it picks, and only
    those."""

    class Unavailable(FaultPlan):
        def intercept(self, request):
            if request.resource == "accounts":
                return Response(503, {"error": "unavailable"}, {"Retry-After": "0"})
            return None

    client = Client(sandbox, "ad_analytics")
    sandbox.faults = Unavailable()
    response = client.get("/v1/accounts")
    assert response.status_code == 503 and response.headers["Retry-After"] == "0"
    assert sandbox.requests[-1].status == 503
    assert client.get("/v1/account_users").status_code == 200
    sandbox.faults = None
    assert client.get("/v1/accounts").status_code == 200


def test_stop_closes_socket(clock):
    """After `stop()` new and kept-alive connections fail; `stop()` can be called twice."""
    sb = Sandbox(clock=clock).start()
    port = sb.port
    session = requests.Session()  # keep-alive connection open while stopping
    assert session.get(sb.url + "/nope").status_code == 404
    sb.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{port}/nope", timeout=2)
    sb.stop()  # idempotent


# --------------------------------------------------------------------------- fault injection


def test_fault_counts_per_rule_nth_every_and_limit(sandbox):
    """`nth`, `every` and `limit` pick which requests a fault hits, and `fired()` counts them."""
    client = Client(sandbox, "ad_analytics")
    sandbox.faults = FaultPlan(
        Fault("status", "ad_analytics", "accounts", nth=(2, 3), status=502),
        Fault("status", "ad_analytics", "account_users", every=2, limit=2, status=500),
    )
    accounts = [client.get("/v1/accounts").status_code for _ in range(4)]
    users = [client.get("/v1/account_users").status_code for _ in range(7)]
    assert accounts == [200, 502, 502, 200]
    assert users == [200, 500, 200, 500, 200, 200, 200]
    assert sandbox.faults.fired() == 4 and sandbox.faults.fired("status") == 4
    assert [r.faults for r in sandbox.requests[-7:]][:2] == [(), ("status",)]


def test_unknown_fault_kind_is_refused():
    """A fault of an unknown kind is refused when it is created."""
    with pytest.raises(ValueError, match="unknown fault kind 'teapot'"):
        Fault("teapot")


@pytest.mark.parametrize(
    ("options", "header"),
    [
        ({"retry_after": 7}, "7"),
        ({"retry_after": 0}, "0"),
        ({"retry_after": None}, None),
        ({"retry_after": 30, "retry_after_format": "http-date"}, "Thu, 01 Jan 2026 00:00:30 GMT"),
    ],
)
def test_rate_limit_retry_after_forms(sandbox, options, header):
    """A 429's `Retry-After` is seconds, 0, absent or an HTTP date from the plan's clock."""
    client = Client(sandbox, "ledger")
    sandbox.faults = FaultPlan(
        Fault("rate_limit", "ledger", nth=1, **options), clock=FakeClock(SANDBOX_NOW)
    )
    response = client.get("/v1/resource")
    assert response.status_code == 429
    assert response.headers.get("Retry-After") == header


def test_html_and_204_answers(sandbox):
    """The `html` fault answers an HTML 200 page; a 204 fault answers no body and no Content-Type."""
    client = Client(sandbox, "native_ads")
    sandbox.faults = FaultPlan(
        Fault("html", "native_ads", "accounts", nth=1),
        Fault("status", "native_ads", "campaigns", nth=1, status=204),
    )
    html = client.get("/v1/users/current/allowed-accounts")
    assert html.status_code == 200 and html.headers["Content-Type"] == "text/html; charset=utf-8"
    assert html.text.startswith("<!DOCTYPE html>")
    empty = client.get("/v1/acct-001/campaigns/")
    assert empty.status_code == 204 and empty.content == b""
    assert "Content-Type" not in empty.headers


def test_connection_reset_mid_body(sandbox):
    """The `reset` fault breaks the connection mid-body once; the next request succeeds."""
    client = Client(sandbox, "ledger")
    sandbox.faults = FaultPlan(Fault("reset", "ledger", "resource_name", nth=1))
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        client.get("/v1/resource")
    assert client.get("/v1/resource").status_code == 200


def test_slow_answer_is_released_by_event_or_times_out_the_client(sandbox):
    client = Client(sandbox, "ledger")
    release = threading.Event()
    sandbox.faults = FaultPlan(
        Fault("slow", "ledger", "resource_name", nth=1, seconds=60),
        Fault("slow", "ledger", "resource_name", nth=2, seconds=60, until=release),
    )
    with pytest.raises(requests.Timeout):
        client.session.get(client.base + "/v1/resource", timeout=0.2)
    release.set()
    assert client.get("/v1/resource").status_code == 200


def test_revoked_token_gets_401_before_its_expiry(sandbox):
    """A revoked token gets 401 `invalid_token` though it has not expired."""
    client = Client(sandbox, "ledger")
    sandbox.faults = FaultPlan(Fault("revoke_token", "ledger", "resource_name", nth=2))
    assert client.get("/v1/resource").status_code == 200
    revoked = client.get("/v1/resource")
    assert revoked.status_code == 401 and revoked.json()["error"] == "invalid_token"


def test_rotating_refresh_token(sandbox):
    """With rotation, a token request returns a new refresh token and the used one dies; both tokens
    count as secrets."""
    sandbox.faults = FaultPlan(Fault("rotate_refresh_token", "ledger", "oauth"))
    first = token_response(sandbox, "ledger")
    rotated = first.json()["refresh_token"]
    assert (
        rotated == sandbox.refresh_token("ledger") != sandbox.credentials("ledger")["refresh_token"]
    )
    dead = token_response(sandbox, "ledger")  # the configured token was used once already
    assert dead.status_code == 401 and dead.json()["error"] == "invalid_grant"
    assert token_response(sandbox, "ledger", refresh_token=rotated).status_code == 200
    assert rotated in sandbox.secrets() and first.json()["access_token"] in sandbox.secrets()


def test_token_endpoint_down(sandbox):
    """The token endpoint answers 503 for the faulted requests, then 200."""
    sandbox.faults = FaultPlan(Fault("token_down", "ledger", "oauth", nth=(1, 2)))
    assert [token_response(sandbox, "ledger").status_code for _ in range(3)] == [503, 503, 200]


def test_body_faults_on_offset_and_cursor_pages(sandbox):
    """Body faults change one page each (total, duplicate or null keys, types, new fields, empty or
    null pages, a repeated cursor) and never the truth."""
    client = Client(sandbox, "ad_analytics")
    sandbox.faults = FaultPlan(
        Fault("total", "ad_analytics", "accounts", nth=1, mode="missing"),
        Fault("total", "ad_analytics", "accounts", nth=2, mode="null"),
        Fault("total", "ad_analytics", "accounts", nth=3, mode="string"),
        Fault("duplicate_pk", "ad_analytics", "accounts", nth=4),
        Fault("null_pk", "ad_analytics", "accounts", nth=5, index=1),
        Fault("type_change", "ad_analytics", "accounts", nth=6, field="id"),
        Fault(
            "new_field", "ad_analytics", "accounts", nth=7, name="tier", value=lambda r: r["id"] % 2
        ),
        Fault("empty_page", "ad_analytics", "accounts", nth=8),
        Fault("null_page", "ad_analytics", "accounts", nth=9),
    )
    pages = [client.ok("/v1/accounts", limit=3) for _ in range(9)]
    assert "total" not in pages[0] and pages[1]["total"] is None and pages[2]["total"] == "233"
    assert pages[3]["data"][0] == pages[3]["data"][1] and len(pages[3]["data"]) == 4
    assert pages[4]["data"][1]["id"] is None and pages[4]["data"][0]["id"] == 507000
    assert [r["id"] for r in pages[5]["data"]] == ["507000", "507001", "507002"]
    assert [r["tier"] for r in pages[6]["data"]] == [0, 1, 0]
    assert pages[7]["data"] == [] and pages[8]["data"] is None
    assert sandbox.rows("ad_analytics", "accounts")[0]["id"] == 507000  # truth untouched

    marketing = Client(sandbox, "marketing_api")
    sandbox.faults = FaultPlan(
        Fault("repeat_cursor", "marketing_api", "organizations", nth=2),
        Fault("null_pk", "marketing_api", "organizations", nth=1),
    )
    first = marketing.ok("/v1/me/organizations")
    assert first["organizations"][0]["organization"]["id"] is None
    second = marketing.get_url(first["paging"]["next_link"]).json()
    assert second["paging"]["next_link"] == first["paging"]["next_link"]


def test_shift_rows_changes_the_truth(sandbox):
    """`shift_rows` inserts or deletes rows ahead of the pages, changing `total` and the truth."""
    client = Client(sandbox, "ad_analytics")
    before = sandbox.ids("ad_analytics", "accounts")
    sandbox.faults = FaultPlan(
        Fault("shift_rows", "ad_analytics", "accounts", nth=1, count=2),
        Fault("shift_rows", "ad_analytics", "accounts", nth=2, count=1, mode="delete"),
    )
    first = client.ok("/v1/accounts", limit=5)
    assert [r["id"] for r in first["data"][:2]] == [990000, 990001] and first["total"] == 235
    second = client.ok("/v1/accounts", limit=5)
    assert second["data"][0]["id"] == 990001 and second["total"] == 234
    assert sandbox.ids("ad_analytics", "accounts") == before | {990001}


def test_wait_for_requests(sandbox):
    """`wait_for_requests` is false before a request was served and true after."""
    assert not sandbox.wait_for_requests(1, 0)
    requests.get(sandbox.url + "/nope")
    assert sandbox.wait_for_requests(1, 5)


def test_demo_plan_faults_are_survivable_kinds():
    """The demo's fault plan holds only faults restsync survives, and the main kinds of them."""
    from restsync_assets.sandbox.faults import demo_plan

    kinds = {f.kind for f in demo_plan().faults}
    assert not kinds & {"html", "repeat_cursor", "null_pk", "null_page", "empty_page"}
    assert {"rate_limit", "status", "reset", "revoke_token", "token_down"} <= kinds

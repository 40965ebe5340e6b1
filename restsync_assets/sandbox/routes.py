"""Data routes of the five sandbox APIs: paths, filters, pagination and envelopes.

Paths are relative to ``/<spec>`` and matched exactly (trailing slashes matter).
Pagination styles:

* ``offset`` - ``offset``/``limit`` query params (default limit 100, max 1000);
  envelope depends on the spec (``total`` / ``has_more`` / nothing).
* ``cursor`` - marketing_api: pages of ``page_size`` (or ``limit``), the next
  page's absolute URL in ``paging.next_link`` (absent on the last page).
* ``none`` - native_ads: everything in one response.
* ``graphql`` - the ``codehost`` vendor: ``POST`` a GraphQL search (``sandbox.graphql``).

The ledger's ``/v1/resource`` filters by ``updated_since`` / ``updated_until`` and lists its
rows oldest first, or newest first with ``order=newest_first``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from urllib.parse import unquote, urlencode

from . import chat, graphql
from .models import ApiError, IncomingRequest, Response
from .vendors import VENDORS

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Route:
    """One endpoint (GET; POST for ``graphql``). ``parent_keys``/``child_keys`` map row
    fields to path params."""

    spec: str
    resource: str
    template: str
    pager: str
    parent: str | None = None
    parent_keys: tuple[tuple[str, str], ...] = ()
    child_keys: tuple[tuple[str, str], ...] = ()

    @property
    def method(self) -> str:
        return "POST" if self.pager == "graphql" else "GET"

    @property
    def regex(self) -> re.Pattern[str]:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        return re.compile(f"^{pattern}$")


def _children(spec, resource, template, pager, parent, *params):
    keys = tuple((p, p) for p in params)
    parent_keys = (("id", params[-1]), *keys[:-1])
    return Route(spec, resource, template, pager, parent, parent_keys, keys)


_NATIVE_ACCOUNT = "/v1/{account_id}"
_NATIVE_CAMPAIGN = "/v1/{account_id}/campaigns/{campaign_id}"

ROUTES: tuple[Route, ...] = (
    Route("ad_analytics", "accounts", "/v1/accounts", "offset"),
    Route("ad_analytics", "account_users", "/v1/account_users", "offset"),
    Route("ad_analytics", "ad_campaign_analytics", "/v1/ad_campaign_analytics", "offset"),
    Route("marketing_api", "organizations", "/v1/me/organizations", "cursor"),
    _children(
        "marketing_api",
        "adaccounts",
        "/v1/organizations/{organization_id}/adaccounts",
        "cursor",
        "organizations",
        "organization_id",
    ),
    _children(
        "marketing_api",
        "creatives",
        "/v1/adaccounts/{adaccount_id}/creatives",
        "cursor",
        "adaccounts",
        "adaccount_id",
    ),
    _children(
        "marketing_api",
        "ads",
        "/v1/adaccounts/{adaccount_id}/ads",
        "cursor",
        "adaccounts",
        "adaccount_id",
    ),
    Route("native_ads", "accounts", "/v1/users/current/allowed-accounts", "none"),
    *(
        _children("native_ads", resource, _NATIVE_ACCOUNT + tail, "none", "accounts", "account_id")
        for resource, tail in (
            ("audiences", "/combined_audiences/resources/audiences"),
            ("campaigns", "/campaigns/"),
            ("audience_rules", "/universal_pixel/custom_audience_rule"),
            ("conversion_rules", "/universal_pixel/conversion_rule"),
        )
    ),
    *(
        _children(
            "native_ads",
            resource,
            _NATIVE_CAMPAIGN + tail,
            "none",
            "campaigns",
            "account_id",
            "campaign_id",
        )
        for resource, tail in (
            ("motion_ads", "/performance-video/items/"),
            ("campaign_items", "/items/"),
        )
    ),
    Route("ledger", "resource_name", "/v1/resource", "offset"),
    *(
        Route("workspace_docs", name, f"/v1/{name}", "offset")
        for name in ("blocks", "databases", "pages", "users")
    ),
    *(Route(v.name, v.resource, v.path, v.pager) for v in VENDORS.values()),
    # one region's reports: the path placeholder filters on the rows' `region`
    Route(
        "partnerhub",
        "reports",
        "/v1/regions/{region}/reports",
        "offset",
        child_keys=(("region", "region"),),
    ),
    Route("partnerhub", "teams", "/v1/teams", "offset"),
    # one member by id, or every member (`?ids=1,2,3`: those members)
    Route("partnerhub", "members", "/v1/members/{id}", "none", child_keys=(("id", "id"),)),
    Route("partnerhub", "members", "/v1/members", "offset"),
)

_COMPILED = tuple((route, route.regex) for route in ROUTES)


def match(spec: str, subpath: str) -> tuple[Route, dict[str, str]] | None:
    """Find the route for ``subpath`` (path after ``/<spec>``) and its path params."""
    for route, regex in _COMPILED:
        if route.spec == spec and (m := regex.match(subpath)):
            return route, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


# --------------------------------------------------------------------------- query params


def _bad(description: str) -> ApiError:
    return ApiError(400, "invalid_request", description)


def int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    """The whole number `name` of the query (`default` when absent or empty); 400 when it is
    not one or outside [low, high]."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise _bad(f"{name} must be between {low} and {high}")
    return value


def _date_param(query: dict[str, str], name: str) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise _bad(f"{name} must be a date YYYY-MM-DD") from None


def parse_timestamp(raw: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` or offset; naive means UTC)."""
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", raw.strip())  # '+' decoded as space
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _ts_param(query: dict[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise _bad(f"{name} must be an ISO 8601 timestamp") from None


def apply_filters(route: Route, rows: list[dict], query: dict[str, str]) -> list[dict]:
    """Apply the resource's optional query filters."""
    if route.resource == "ad_campaign_analytics":
        start, end = _date_param(query, "start_date"), _date_param(query, "end_date")
        return [
            r
            for r in rows
            if (start is None or r["date"] >= start) and (end is None or r["date"] < end)
        ]
    if route.spec == "partnerhub" and "region" in query:
        return [r for r in rows if r["region"] == query["region"]]
    if route.spec == "partnerhub" and "ids" in query:
        wanted = set(query["ids"].split(","))
        return [r for r in rows if str(r["id"]) in wanted]
    if route.spec == "ledger":
        since, until = _ts_param(query, "updated_since"), _ts_param(query, "updated_until")
        kept = [
            r
            for r in rows
            if (since is None or parse_timestamp(r["updated_at"]) >= since)
            and (until is None or parse_timestamp(r["updated_at"]) < until)
        ]
        return kept[::-1] if query.get("order") == "newest_first" else kept
    return rows


# --------------------------------------------------------------------------- rendering

_SINGULAR = {
    "organizations": "organization",
    "adaccounts": "adaccount",
    "creatives": "creative",
    "ads": "ad",
}


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "offset" or not value.isdigit():
            raise ValueError
        return int(value)
    except ValueError:
        raise ApiError(400, "invalid_cursor", "cursor is not valid") from None


def render(
    route: Route, rows: list[dict], request: IncomingRequest, host: str, page_size: int
) -> Response:
    """Filter, paginate and wrap ``rows`` (already restricted to the parent) for ``route``."""
    if route.pager == "graphql":
        return graphql.answer(request, rows)
    if route.pager == "link":
        return chat.answer(request, rows, host)
    rows = apply_filters(route, rows, request.query)
    total = len(rows)
    if route.pager == "none":
        return Response(200, {"results": rows, "metadata": {"total": total}})
    if route.pager == "cursor":
        limit = int_param(request.query, "limit", page_size, 1, MAX_LIMIT)
        cursor = request.query.get("cursor")
        offset = decode_cursor(cursor) if cursor else 0
        plural, singular = route.resource, _SINGULAR[route.resource]
        body: dict = {
            "request_status": "SUCCESS",
            plural: [
                {"sub_request_status": "SUCCESS", singular: row}
                for row in rows[offset : offset + limit]
            ],
        }
        if offset + limit < total:
            params = {k: v for k, v in request.query.items() if k != "cursor"}
            params["cursor"] = encode_cursor(offset + limit)
            body["paging"] = {"next_link": f"http://{host}{request.path}?{urlencode(params)}"}
        return Response(200, body)
    offset = int_param(request.query, "offset", 0, 0, 10**9)
    limit = int_param(request.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    body = {"data": rows[offset : offset + limit]}
    if route.spec == "ad_analytics":
        body["total"] = total
    elif route.spec == "workspace_docs":
        body["has_more"] = offset + limit < total
    return Response(200, body)

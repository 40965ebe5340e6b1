"""Sandbox vendors with static credentials: one per kind of dlt auth besides OAuth.

Served beside the seed APIs under ``/<vendor>/...``, each with one resource, offset-paginated
(``{"data": [...]}``, ``offset``/``limit`` params, no total) but for ``codehost``'s GraphQL
search, and fixed credentials derived from the vendor's name:

========  =====================================  ========  ================================
vendor    auth                                   resource  credentials (env vars of its spec)
========  =====================================  ========  ================================
helpdesk  bearer token                           tickets   ``HELPDESK_TOKEN``
crm       API key in the ``X-Api-Key`` header    contacts  ``CRM_API_KEY``
weather   API key in the ``appid`` query param   stations  ``WEATHER_APP_KEY``
billing   HTTP basic                             invoices  ``BILLING_USERNAME``,
                                                           ``BILLING_PASSWORD``
codehost  bearer token; GraphQL                  repos*    ``CODEHOST_TOKEN``
          (``POST /graphql``, `sandbox.graphql`)
chat      bearer token; Slack-like ``ok`` body,  messages  ``CHAT_TOKEN``
          ``Link`` header paging (`sandbox.chat`)
partner-  OAuth2 with Basic client auth, a       reports   ``PARTNERHUB_CLIENT_ID``,
hub       custom grant and an absolute expiry              ``PARTNERHUB_CLIENT_SECRET``
          (`sandbox.logins`)
kiosk     a session login (JSON user and         orders    ``KIOSK_USERNAME``,
          password), ``X-Session-Id`` header               ``KIOSK_PASSWORD``
========  =====================================  ========  ================================

(*) ``repositories``, a GraphQL search, and ``messages`` (``Link`` header, epoch filters,
``{"ok": false}`` on a bad parameter) are the resources not paged by offset alone.

A request without the right credential gets a 401 whose body repeats the credential it
received, as careless APIs do, so tests can prove restsync masks it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from . import chat, graphql, logins
from .data import _rng, _stamp
from .models import ApiError, IncomingRequest


@dataclass(frozen=True)
class Vendor:
    """A sandbox API with static credentials, and the one resource it serves."""

    name: str
    auth: str
    resource: str
    path: str
    #: the credential a request presents (None when absent)
    presented: Callable[[IncomingRequest], str | None]
    challenge: dict[str, str]
    #: how the resource pages: `offset` (GET, `offset`/`limit`), `graphql` (POST, see
    #: `sandbox.graphql`) or `link` (`sandbox.chat`)
    pager: str = "offset"
    #: the vendor's token or login endpoint, for vendors that issue tokens (`sandbox.logins`)
    login_path: str | None = None


def _bearer(request: IncomingRequest) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _basic(request: IncomingRequest) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "basic" else None


VENDORS: dict[str, Vendor] = {
    v.name: v
    for v in (
        Vendor(
            "helpdesk",
            "bearer",
            "tickets",
            "/v1/tickets",
            _bearer,
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ),
        Vendor(
            "crm",
            "api_key_header",
            "contacts",
            "/v1/contacts",
            lambda r: r.headers.get("x-api-key"),
            {},
        ),
        Vendor(
            "weather",
            "api_key_query",
            "stations",
            "/v1/stations",
            lambda r: r.query.get("appid"),
            {},
        ),
        Vendor(
            "billing",
            "http_basic",
            "invoices",
            "/v1/invoices",
            _basic,
            {"WWW-Authenticate": 'Basic realm="billing"'},
        ),
        Vendor(
            graphql.VENDOR,
            "bearer",
            graphql.RESOURCE,
            graphql.PATH,
            _bearer,
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            pager="graphql",
        ),
        Vendor(
            chat.VENDOR,
            "bearer",
            chat.RESOURCE,
            chat.PATH,
            _bearer,
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            pager="link",
        ),
        Vendor(
            logins.PARTNERHUB,
            "oauth2_options",
            "reports",
            "/v1/reports",
            lambda r: None,
            {},
            login_path=logins.LOGIN_PATHS[logins.PARTNERHUB],
        ),
        Vendor(
            logins.KIOSK,
            "session",
            "orders",
            "/v1/orders",
            lambda r: None,
            {},
            login_path=logins.LOGIN_PATHS[logins.KIOSK],
        ),
    )
}
#: the resources a vendor serves besides its own (`partnerhub`'s teams and their members)
EXTRA_RESOURCES: dict[str, tuple[str, ...]] = {logins.PARTNERHUB: ("teams", "members")}
RESOURCES: dict[str, tuple[str, ...]] = {
    v.name: (v.resource, *EXTRA_RESOURCES.get(v.name, ())) for v in VENDORS.values()
}


def _digest(vendor: str, purpose: str) -> str:
    return hashlib.sha256(f"restsync-sandbox:{vendor}:{purpose}".encode()).hexdigest()[:16]


def credentials_for(vendor: str) -> dict[str, str]:
    """The vendor's credentials, keyed by the secret names its spec reads (`<VENDOR>_<KEY>`)."""
    kind = VENDORS[vendor].auth
    if VENDORS[vendor].login_path is not None:
        return logins.credentials(vendor)
    if kind == "bearer":
        return {"token": f"sandbox-{vendor}-token-{_digest(vendor, 'token')}"}
    if kind == "api_key_header":
        return {"api_key": f"sandbox-{vendor}-key-{_digest(vendor, 'key')}"}
    if kind == "api_key_query":
        return {"app_key": f"sandbox-{vendor}-appid-{_digest(vendor, 'appid')}"}
    return {
        "username": f"sandbox-{vendor}-user",
        "password": f"sandbox-{vendor}-password-{_digest(vendor, 'password')}",
    }


def expected_credential(vendor: str) -> str:
    """What a request must present: the token or key, or the basic `user:password` base64."""
    creds = credentials_for(vendor)
    if VENDORS[vendor].auth == "http_basic":
        pair = f"{creds['username']}:{creds['password']}"
        return base64.b64encode(pair.encode()).decode()
    return next(iter(creds.values()))


def secrets_of(vendor: str) -> list[str]:
    """Every secret value of the vendor, in every form it travels in (for secret scans)."""
    if VENDORS[vendor].login_path is not None:
        return logins.secrets_of(vendor)
    creds = credentials_for(vendor)
    return list(dict.fromkeys([*creds.values(), expected_credential(vendor)]))


def require_credential(vendor: str, request: IncomingRequest) -> None:
    """Raise a 401 (echoing what was presented) unless the request carries the credential."""
    spec = VENDORS[vendor]
    given = spec.presented(request)
    expected = expected_credential(vendor)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", f"rejected credential {given!r}", spec.challenge)


# --------------------------------------------------------------------------- data


def _tickets() -> list[dict]:
    rng = _rng("helpdesk", "tickets")
    return [
        {
            "id": 1001 + i,
            "subject": f"Ticket {i + 1}: cannot log in",
            "status": ("open", "pending", "solved", "closed")[i % 4],
            "priority": None if i % 5 == 0 else ("low", "normal", "high", "urgent")[i % 4],
            "requester_email": f"customer{i + 1:03d}@example.com",
            "satisfaction": None if i % 3 else rng.randint(1, 5),
            "created_at": _stamp(i, 3),
        }
        for i in range(47)
    ]


def _contacts() -> list[dict]:
    rng = _rng("crm", "contacts")
    return [
        {
            "id": f"cont-{i + 1:04d}",
            "email": f"lead{i + 1:03d}@example.org",
            "first_name": f"First{i + 1}",
            "lifecycle_stage": ("lead", "opportunity", "customer")[i % 3],
            "score": rng.randint(0, 100),
            "unsubscribed": i % 7 == 0,
            "created_at": _stamp(i, 11),
        }
        for i in range(53)
    ]


def _stations() -> list[dict]:
    rng = _rng("weather", "stations")
    return [
        {
            "id": f"ST{i + 1:05d}",
            "name": f"Station {i + 1}",
            "country": ("US", "DE", "JP", "BR", "ZA")[i % 5],
            "latitude": round(rng.uniform(-60, 70), 4),
            "longitude": round(rng.uniform(-180, 180), 4),
            "elevation_m": None if i % 6 == 0 else rng.randint(0, 3_000),
            "active": i % 9 != 0,
        }
        for i in range(41)
    ]


def _invoices() -> list[dict]:
    rng = _rng("billing", "invoices")
    return [
        {
            "id": f"in_{i + 1:06d}",
            "customer": f"cus_{(i * 7) % 23 + 1:04d}",
            "amount_due": rng.randint(500, 250_000),
            "currency": ("usd", "eur", "gbp")[i % 3],
            "paid": i % 4 != 1,
            "issued_at": _stamp(i, 17),
        }
        for i in range(59)
    ]


_BUILDERS = {
    "helpdesk": _tickets,
    "crm": _contacts,
    "weather": _stations,
    "billing": _invoices,
    graphql.VENDOR: graphql.build_rows,
    chat.VENDOR: chat.build_rows,
    logins.PARTNERHUB: lambda: _simple_rows(logins.PARTNERHUB, "rep", 44),
    logins.KIOSK: lambda: _simple_rows(logins.KIOSK, "ord", 51),
}


def _simple_rows(vendor: str, prefix: str, count: int) -> list[dict]:
    rng = _rng(vendor, prefix)
    return [
        {
            "id": f"{prefix}-{i + 1:04d}",
            "amount": rng.randint(100, 90_000),
            "region": ("emea", "amer", "apac")[i % 3],
            "created_at": _stamp(i, 9),
        }
        for i in range(count)
    ]


def _members() -> list[dict]:
    rng = _rng(logins.PARTNERHUB, "members")
    return [{"id": i + 1, "name": f"Member {i + 1}", "seats": rng.randint(1, 9)} for i in range(23)]


def _teams() -> list[dict]:
    """Seven teams whose `member_ids` list members (some twice, one team empty, and members
    17 to 23 in no team)."""
    members = [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10], [2, 11], [12, 13, 14, 15], [16, 1]]
    return [{"id": f"team-{i + 1}", "member_ids": ids} for i, ids in enumerate(members)]


_EXTRA_BUILDERS = {"teams": _teams, "members": _members}


def build_dataset() -> dict[str, dict[str, list[dict]]]:
    """A fresh copy of every vendor's rows: ``{vendor: {resource: [row, ...]}}``."""
    return {
        name: {
            v.resource: _BUILDERS[name](),
            **{extra: _EXTRA_BUILDERS[extra]() for extra in EXTRA_RESOURCES.get(name, ())},
        }
        for name, v in VENDORS.items()
    }

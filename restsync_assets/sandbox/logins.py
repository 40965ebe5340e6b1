"""Sandbox vendors that hand out tokens: ``partnerhub`` (OAuth2 with its own token request)
and ``kiosk`` (a session login).

``partnerhub``: ``POST /partnerhub/oauth/token`` wants the client's credentials in an HTTP
Basic header only (form fields are refused), ``grant_type=urn:partnerhub:grant:account`` with
``account=acme`` and ``audience=reports``, and answers ``{"data": {"token": ..., "valid_until":
"YYYY-MM-DD HH:MM:SS"}}`` (UTC, absolute). ``GET /partnerhub/v1/reports`` wants that token as
``Authorization: Bearer``; so do ``GET /partnerhub/v1/reports?region=<region>`` and
``GET /partnerhub/v1/regions/<region>/reports`` (one region's reports), ``/v1/teams`` (each
with a ``member_ids`` list), ``/v1/members/<id>`` (``{"results": [member]}``) and
``/v1/members`` (every member, or ``?ids=1,2,3``: those).

``kiosk``: ``POST /kiosk/api/login`` with JSON ``{"user": ..., "pass": ...}`` answers
``{"session": {"id": ...}}``; ``GET /kiosk/v1/orders`` wants it in the ``X-Session-Id``
header or the ``session`` query param. A wrong password is a 401 whose description repeats it, as careless APIs do.

Tokens of both are issued by the sandbox's :class:`TokenStore` under the vendor's name (so they
expire with its TTL, a ``revoke_token`` fault kills them, and secret scans see them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timezone

from .auth import TokenStore, _basic, _form
from .models import ApiError, IncomingRequest, Response

PARTNERHUB = "partnerhub"
KIOSK = "kiosk"
LOGIN_PATHS = {PARTNERHUB: "/oauth/token", KIOSK: "/api/login"}
GRANT = "urn:partnerhub:grant:account"
ACCOUNT = "acme"
AUDIENCE = "reports"
EXPIRY_FORMAT = "%Y-%m-%d %H:%M:%S"
SESSION_HEADER = "X-Session-Id"
SESSION_PARAM = "session"
_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def _digest(vendor: str, purpose: str) -> str:
    return hashlib.sha256(f"restsync-sandbox:{vendor}:{purpose}".encode()).hexdigest()[:16]


def credentials(vendor: str) -> dict[str, str]:
    """The vendor's secrets, keyed by the secret names its spec reads (`<VENDOR>_<KEY>`)."""
    if vendor == PARTNERHUB:
        return {
            "client_id": f"sandbox-{vendor}-id",
            "client_secret": f"sandbox-{vendor}-secret-{_digest(vendor, 'secret')}",
        }
    return {
        "username": f"sandbox-{vendor}-user",
        "password": f"sandbox-{vendor}-pw-{_digest(vendor, 'pw')}",
    }


def secrets_of(vendor: str) -> list[str]:
    """The vendor's secrets in every form they travel in (the Basic header's base64)."""
    creds = credentials(vendor)
    values = [v for k, v in creds.items() if k not in ("client_id", "username")]
    if vendor == PARTNERHUB:
        pair = f"{creds['client_id']}:{creds['client_secret']}"
        values.append(base64.b64encode(pair.encode()).decode())
    return values


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def login(vendor: str, request: IncomingRequest, store: TokenStore) -> Response:
    """The vendor's token (``partnerhub``) or login (``kiosk``) endpoint."""
    if request.method != "POST":
        raise ApiError(405, "method_not_allowed", "use POST", {"Allow": "POST"})
    return (
        _partnerhub_token(request, store) if vendor == PARTNERHUB else _kiosk_login(request, store)
    )


def _partnerhub_token(request: IncomingRequest, store: TokenStore) -> Response:
    form = _form(request)
    if "client_secret" in form or "client_id" in form:
        raise ApiError(400, "invalid_request", "send the client's credentials in a Basic header")
    user, password = _basic(request)
    creds = credentials(PARTNERHUB)
    if not (_same(user, creds["client_id"]) and _same(password, creds["client_secret"])):
        raise ApiError(401, "invalid_client", "unknown client or wrong secret")
    if form.get("grant_type") != GRANT:
        raise ApiError(400, "unsupported_grant_type", f"use grant_type={GRANT}")
    if form.get("account") != ACCOUNT or form.get("audience") != AUDIENCE:
        raise ApiError(400, "invalid_request", "account and audience are required")
    until = datetime.fromtimestamp(store.clock() + store.ttl, timezone.utc)
    body = {
        "data": {"token": store.issue(PARTNERHUB), "valid_until": until.strftime(EXPIRY_FORMAT)}
    }
    return Response(200, body, {"Cache-Control": "no-store"})


def _kiosk_login(request: IncomingRequest, store: TokenStore) -> Response:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise ApiError(400, "invalid_request", "the body must be JSON") from None
    creds = credentials(KIOSK)
    given = body.get("pass") if isinstance(body, dict) else None
    if not (_same(body.get("user"), creds["username"]) and _same(given, creds["password"])):
        raise ApiError(401, "invalid_login", f"rejected password {given!r}")
    return Response(200, {"session": {"id": store.issue(KIOSK)}}, {"Cache-Control": "no-store"})


def require_token(vendor: str, request: IncomingRequest, store: TokenStore) -> None:
    """A 401 unless the request carries a live token the vendor issued."""
    if vendor == PARTNERHUB:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
    else:
        token = request.headers.get(SESSION_HEADER.lower()) or request.query.get(SESSION_PARAM, "")
    if not store.is_valid(token, vendor):
        raise ApiError(401, "invalid_token", "missing, unknown or expired token", _INVALID)

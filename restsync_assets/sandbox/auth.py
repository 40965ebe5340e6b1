"""Fake OAuth2 for the sandbox: fixed credentials, token endpoint, bearer checks.

Credentials per spec (deterministic, derived from the spec name)::

    client_id     = "sandbox-<spec>-id"
    client_secret = "sandbox-<spec>-secret-<8 hex>"
    refresh_token = "sandbox-<spec>-refresh-<16 hex>"   # refresh_token specs only

The token endpoint accepts a form (or JSON) POST with ``grant_type``,
``client_id``/``client_secret`` (or HTTP Basic) and, for refresh-token specs,
``refresh_token``. A rotation fault makes a refresh-token grant answer with a new
``refresh_token``; the one just used then fails with ``invalid_grant``.

Single-use refresh tokens (:meth:`TokenStore.single_use`, as Salesforce enforces rotation):
the spec starts from a fresh refresh token, every grant spends the token it was given and
answers with a new one, atomically (two grants with one token: the second is refused), and
every attempt to use a spent token is counted (:meth:`TokenStore.reuses`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

from .models import ApiError, IncomingRequest, Response

GRANT_TYPES: dict[str, str] = {
    "ad_analytics": "client_credentials",
    "marketing_api": "refresh_token",
    "native_ads": "client_credentials",
    "ledger": "refresh_token",
    "workspace_docs": "client_credentials",
}

TOKEN_PATHS: dict[str, str] = {
    "ad_analytics": "/oauth/token",
    "marketing_api": "/oauth2/token",
    "native_ads": "/oauth/token",
    "ledger": "/oauth2/v1/tokens/bearer",
    "workspace_docs": "/oauth/token",
}

_INVALID_TOKEN_HEADERS = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def _digest(spec: str, purpose: str, length: int) -> str:
    return hashlib.sha256(f"restsync-sandbox:{spec}:{purpose}".encode()).hexdigest()[:length]


def credentials_for(spec: str) -> dict[str, str]:
    """Return ``client_id``, ``client_secret`` and (refresh specs) ``refresh_token``."""
    if spec not in GRANT_TYPES:
        raise KeyError(f"unknown sandbox spec {spec!r}")
    creds = {
        "client_id": f"sandbox-{spec}-id",
        "client_secret": f"sandbox-{spec}-secret-{_digest(spec, 'secret', 8)}",
    }
    if GRANT_TYPES[spec] == "refresh_token":
        creds["refresh_token"] = f"sandbox-{spec}-refresh-{_digest(spec, 'refresh', 16)}"
    return creds


class TokenStore:
    """Issued access tokens with expiry measured by an injectable clock, and the live refresh
    token of each refresh-token spec (fixed unless a fault rotates it)."""

    def __init__(self, ttl: int = 3600, clock: Callable[[], float] | None = None):
        self.ttl = ttl
        self.clock = clock or time.time
        self._tokens: dict[str, tuple[str, float]] = {}
        self._refresh: dict[str, str] = {}
        self._single_use: set[str] = set()
        self._spent: dict[str, set[str]] = {}
        self._reuses: dict[str, int] = {}
        self._issued: list[str] = []
        self._lock = threading.Lock()

    def issue(self, spec: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (spec, self.clock() + self.ttl)
            self._issued.append(token)
        return token

    def is_valid(self, token: str, spec: str) -> bool:
        with self._lock:
            entry = self._tokens.get(token)
        return entry is not None and entry[0] == spec and self.clock() < entry[1]

    def expire_all(self) -> None:
        with self._lock:
            self._tokens.clear()

    def revoke(self, spec: str) -> int:
        """Invalidate the live access tokens of ``spec`` before their stated expiry."""
        with self._lock:
            revoked = [t for t, (owner, _) in self._tokens.items() if owner == spec]
            for token in revoked:
                del self._tokens[token]
        return len(revoked)

    def refresh_token(self, spec: str) -> str:
        """The refresh token ``spec``'s token endpoint accepts now."""
        with self._lock:
            return self._refresh.get(spec) or credentials_for(spec)["refresh_token"]

    def rotate_refresh_token(self, spec: str) -> str:
        """Issue a new refresh token for ``spec``; the previous one stops working."""
        new = f"sandbox-{spec}-refresh-{secrets.token_hex(12)}"
        with self._lock:
            self._refresh[spec] = new
            self._issued.append(new)
        return new

    def single_use(self, spec: str) -> str:
        """Make ``spec``'s refresh tokens single-use, starting from a fresh one (returned)."""
        first = f"sandbox-{spec}-refresh-{secrets.token_hex(12)}"
        with self._lock:
            self._single_use.add(spec)
            self._refresh[spec] = first
            self._issued.append(first)
        return first

    def reuses(self, spec: str) -> int:
        """How many grants of ``spec`` came with a refresh token already spent."""
        with self._lock:
            return self._reuses.get(spec, 0)

    def redeem(self, spec: str, given: str | None, rotate: bool) -> tuple[bool, str | None]:
        """A refresh-token grant with ``given``, atomically: (accepted, the new refresh token
        when it rotates: ``rotate`` or a single-use spec)."""
        with self._lock:
            live = self._refresh.get(spec) or credentials_for(spec)["refresh_token"]
            spent = self._spent.setdefault(spec, set())
            if not _same(given, live):
                if given in spent:
                    self._reuses[spec] = self._reuses.get(spec, 0) + 1
                return False, None
            if not (rotate or spec in self._single_use):
                return True, None
            new = f"sandbox-{spec}-refresh-{secrets.token_hex(12)}"
            spent.add(live)
            self._refresh[spec] = new
            self._issued.append(new)
            return True, new

    def issued(self) -> list[str]:
        """Every access and rotated refresh token issued so far (for secret scans)."""
        with self._lock:
            return list(self._issued)


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _form(request: IncomingRequest) -> dict[str, str]:
    text = request.body.decode("utf-8", "replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(text or "{}")
        except ValueError as exc:
            raise ApiError(400, "invalid_request", "body is not valid JSON") from exc
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(text, keep_blank_values=True))


def _basic(request: IncomingRequest) -> tuple[str | None, str | None]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except ValueError:
        return None, None
    return user, password


def token_endpoint(spec: str, request: IncomingRequest, store: TokenStore) -> Response:
    """Handle a POST to the spec's token endpoint."""
    if request.method != "POST":
        raise ApiError(405, "method_not_allowed", "use POST", {"Allow": "POST"})
    form = _form(request)
    basic_id, basic_secret = _basic(request)
    client_id = form.get("client_id") or basic_id
    client_secret = form.get("client_secret") or basic_secret
    creds = credentials_for(spec)
    if not (_same(client_id, creds["client_id"]) and _same(client_secret, creds["client_secret"])):
        raise ApiError(401, "invalid_client", "unknown client or wrong secret")
    grant = GRANT_TYPES[spec]
    if form.get("grant_type") != grant:
        raise ApiError(401, "invalid_grant", f"this client must use grant_type={grant}")
    rotated = None
    if grant == "refresh_token":
        accepted, rotated = store.redeem(
            spec, form.get("refresh_token"), request.rotate_refresh_token
        )
        if not accepted:
            raise ApiError(
                401, "invalid_grant", "unknown, revoked or already rotated refresh_token"
            )
    body = {"access_token": store.issue(spec), "token_type": "Bearer", "expires_in": store.ttl}
    if rotated is not None:
        body["refresh_token"] = rotated
    return Response(200, body, {"Cache-Control": "no-store"})


def require_bearer(spec: str, request: IncomingRequest, store: TokenStore) -> None:
    """Raise a 401 ``invalid_token`` unless the request carries a live token for ``spec``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not store.is_valid(token.strip(), spec):
        raise ApiError(
            401, "invalid_token", "missing, unknown or expired access token", _INVALID_TOKEN_HEADERS
        )

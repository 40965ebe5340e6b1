"""OAuth 2.0 bearer authentication (client_credentials or refresh_token grant) for dlt sources.

One :class:`OAuth2Auth` instance holds one access token shared by all resources of a source.
It can be used as ``client.auth`` in dlt's ``rest_api_source`` (it is an ``AuthConfigBase``)
and as a plain ``requests`` auth hook.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from dlt.sources.helpers.rest_client.auth import AuthConfigBase

from restsync_assets.specs.token_urls import is_secure_token_url

from . import retry
from .masking import MASK, mask, mask_url, register_secret

__all__ = ["InsecureTokenUrlError", "OAuth2Auth", "OAuth2Error"]

logger = logging.getLogger(__name__)

_MAX_DETAIL = 200

#: Token endpoint answers retried whatever the spec's error_handler says about its API.
TOKEN_RETRY_STATUS_CODES = (429, 500, 502, 503, 504)


class OAuth2Error(RuntimeError):
    """Obtaining an access token failed. The message is one line and never contains a secret."""


class InsecureTokenUrlError(ValueError):
    """The token URL is not https (and not a loopback address)."""


def _validate_token_url(token_url: str, source: str) -> None:
    if is_secure_token_url(token_url):
        return
    raise InsecureTokenUrlError(
        f"{source}: OAuth2 token_url {token_url!r} must be an https:// URL"
        " (plain http is only allowed for loopback hosts such as 127.0.0.1 or localhost),"
        " because client secrets and tokens are sent to it"
    )


def _is_invalid_grant(response: requests.Response, body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return response.status_code in (400, 401) and error == "invalid_grant"


def _env_prefix(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", source).strip("_").upper() or "SOURCE"


def _one_line(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


class OAuth2Auth(AuthConfigBase):
    """Fetches, caches and refreshes an OAuth 2.0 access token; sets ``Authorization: Bearer``.

    Args:
        token_url: token endpoint; must be https unless the host is loopback.
        client_id, client_secret: client credentials, sent as form fields.
        refresh_token: when given the ``refresh_token`` grant is used, else
            ``client_credentials``.
        scopes: sent space separated as ``scope``.
        session: ``requests`` session for token requests (default: a plain new session).
        on_refresh_token_rotated: called with the new refresh token when the server rotates
            it, so it can be persisted.
        expiry_skew_seconds: refresh this many seconds before ``expires_in`` runs out.
            Tokens without ``expires_in`` are used until a 401 or :meth:`invalidate`.
        clock: time source in seconds (inject in tests).
        timeout: token request timeout in seconds.
        source: source name used in messages and in the suggested env variable names.
        refresh_token_candidates: returns refresh tokens to try, best first (e.g. one a
            previous run stored after a rotation, then the configured one). Called before
            each refresh-token grant; a token the server rejects with ``invalid_grant`` is
            skipped for the next. The in-memory token is tried last.
        max_retries, backoff_factor, max_retry_delay, retry_on_status_codes: retries of the
            token request itself (connection errors, timeouts and these statuses), with
            exponential backoff honouring ``Retry-After``, capped at ``max_retry_delay``.
        sleep: sleep between token request attempts (default: :data:`retry.CLOCK`'s).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str | None = None,
        scopes: list[str] | None = None,
        session: requests.Session | None = None,
        on_refresh_token_rotated: Callable[[str], None] | None = None,
        expiry_skew_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
        source: str = "?",
        refresh_token_candidates: Callable[[], list[str]] | None = None,
        max_retries: int = 3,
        backoff_factor: float = 1.0,
        max_retry_delay: float = 60.0,
        retry_on_status_codes: tuple[int, ...] = TOKEN_RETRY_STATUS_CODES,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        _validate_token_url(token_url, source)
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = list(scopes) if scopes else None
        self.grant_type = "refresh_token" if refresh_token else "client_credentials"
        self.source = source
        self.expiry_skew_seconds = expiry_skew_seconds
        self.timeout = timeout
        self._refresh_token = refresh_token
        self._session = session
        self._on_rotated = on_refresh_token_rotated
        self._clock = clock
        self._lock = threading.RLock()
        self._access_token: str | None = None
        self._expires_at: float | None = None
        self._old_secrets: list[str] = []
        self._candidates = refresh_token_candidates
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.max_retry_delay = max_retry_delay
        self.retry_on_status_codes = tuple(retry_on_status_codes)
        self._sleep = sleep
        register_secret(client_secret, refresh_token)
        # an explicit instance: tell dlt's create_auth() there is nothing to resolve from config
        self.__is_resolved__ = True

    # --- requests auth hook -------------------------------------------------------------

    def __call__(self, request: Any) -> Any:
        """Ensure a valid token and set ``Authorization: Bearer <token>`` on ``request``."""
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def token(self) -> str:
        """The current access token, fetched or refreshed when needed."""
        with self._lock:
            if self._access_token is None or self._expired():
                self._fetch_token()
            return self._access_token

    def invalidate(self, token: str | None = None) -> None:
        """Force the next call to fetch a new token.

        With ``token``, only invalidate when it is still the current token (another thread
        may have refreshed it already after the same 401).
        """
        with self._lock:
            if token is None or token == self._access_token:
                self._remember(self._access_token)
                self._access_token = None
                self._expires_at = None

    def owns_authorization(self, header_value: str | None) -> bool:
        """True when ``header_value`` is a Bearer header carrying a token from this instance."""
        if not header_value or not header_value.startswith("Bearer "):
            return False
        token = header_value[len("Bearer ") :]
        with self._lock:
            return token == self._access_token or token in self._old_secrets

    def secrets(self) -> list[str]:
        """Every secret value known (client secret, refresh and access tokens) for masking."""
        with self._lock:
            values = [self.client_secret, self._refresh_token, self._access_token]
            values.extend(self._old_secrets)
        return list(dict.fromkeys(v for v in values if v))

    # --- token request ------------------------------------------------------------------

    def _expired(self) -> bool:
        if self._expires_at is None:
            return False
        return self._clock() >= self._expires_at - self.expiry_skew_seconds

    def _form(self, refresh_token: str | None = None) -> dict[str, str]:
        form = {
            "grant_type": self.grant_type,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.grant_type == "refresh_token":
            form["refresh_token"] = refresh_token or self._refresh_token
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        return form

    def _post_once(self, refresh_token: str | None) -> requests.Response:
        if self._session is None:
            self._session = requests.Session()
        try:
            return self._session.post(
                self.token_url,
                data=self._form(refresh_token),
                headers={"Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.HTTPError as exc:
            if exc.response is not None:
                return exc.response  # a raise_for_status session was passed in
            raise

    def _post(self, refresh_token: str | None = None) -> tuple[requests.Response, int]:
        """POST to the token endpoint with retries; the last response and the attempt count."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._post_once(refresh_token)
            except requests.RequestException as exc:
                if attempt > self.max_retries:
                    raise OAuth2Error(
                        f"{self.source}: token request to {self._url()} failed after"
                        f" {attempt} attempt{'s' if attempt != 1 else ''}:"
                        f" {type(exc).__name__}; check that the token URL is correct and"
                        " reachable from this machine (network, proxy, DNS)"
                    ) from None
                what, retry_after = type(exc).__name__, None
            else:
                if response.status_code not in self.retry_on_status_codes:
                    return response, attempt
                if attempt > self.max_retries:
                    return response, attempt
                what = f"HTTP {response.status_code}"
                retry_after = response.headers.get("Retry-After")
                response.close()
            delay = retry.retry_delay(
                attempt, self.backoff_factor, self.max_retry_delay, retry_after
            )
            logger.warning(
                "%s: token request to %s got %s, retrying in %.1fs (attempt %d)",
                self.source,
                self._url(),
                what,
                delay,
                attempt,
            )
            (self._sleep or retry.clock().sleep)(delay)

    def _refresh_tokens_to_try(self) -> list[str | None]:
        if self.grant_type != "refresh_token":
            return [None]
        candidates = list(self._candidates()) if self._candidates is not None else []
        register_secret(*candidates)
        for candidate in candidates:
            if candidate != self._refresh_token:
                self._remember(candidate)
        return list(dict.fromkeys(t for t in [*candidates, self._refresh_token] if t))

    def _fetch_token(self) -> None:
        started = self._clock()
        candidates = self._refresh_tokens_to_try()
        for index, candidate in enumerate(candidates):
            response, attempts = self._post(candidate)
            body = self._json(response)
            if not response.ok:
                last = index == len(candidates) - 1
                if not last and _is_invalid_grant(response, body):
                    logger.info(
                        "%s: refresh token #%d of %d was rejected (invalid_grant);"
                        " trying the next one",
                        self.source,
                        index + 1,
                        len(candidates),
                    )
                    continue
                raise self._http_error(response, body, attempts)
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise OAuth2Error(
                    f"{self.source}: token request to {self._url()} failed: HTTP"
                    f" {response.status_code} response has no access_token; check the token URL"
                )
            register_secret(token)
            self._remember(self._access_token)
            self._access_token = token
            self._expires_at = self._expiry(body, started)
            if candidate is not None and candidate != self._refresh_token:
                self._remember(self._refresh_token)
                self._refresh_token = candidate
            self._adopt_refresh_token(body.get("refresh_token"))
            return

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    @staticmethod
    def _expiry(body: dict[str, Any], started: float) -> float | None:
        try:
            expires_in = float(body.get("expires_in"))
        except (TypeError, ValueError):
            return None
        return started + expires_in if expires_in > 0 else None

    def _http_error(self, response: requests.Response, body: Any, attempts: int = 1) -> OAuth2Error:
        if isinstance(body, dict) and body.get("error"):
            detail = str(body["error"])
            if body.get("error_description"):
                detail += f": {body['error_description']}"
        else:
            detail = response.text or response.reason or ""
        detail = _one_line(mask(detail, self.secrets()))
        status = f"HTTP {response.status_code} {detail}".strip()
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return OAuth2Error(
            f"{self.source}: token request to {self._url()} failed{tries}: {status}"
            f" ({self._hint(response, body)})"
        )

    def _url(self) -> str:
        return mask_url(self.token_url, self.secrets())

    def _hint(self, response: requests.Response, body: Any) -> str:
        prefix = _env_prefix(self.source)
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        if self.grant_type == "refresh_token" and (error == "invalid_grant" or not error):
            return (
                f"check {prefix}_REFRESH_TOKEN, it may have expired or been revoked;"
                f" also check {prefix}_CLIENT_ID / {prefix}_CLIENT_SECRET"
            )
        if error == "invalid_scope":
            return "check the scopes configured for this source"
        if response.status_code >= 500:
            return "the authorization server failed; retry later"
        return f"check {prefix}_CLIENT_ID / {prefix}_CLIENT_SECRET"

    def _adopt_refresh_token(self, new: Any) -> None:
        if not isinstance(new, str) or not new or new == self._refresh_token:
            return
        register_secret(new)
        if self.grant_type != "refresh_token":
            self._remember(new)  # not used for client_credentials, but still masked
            return
        self._remember(self._refresh_token)
        self._refresh_token = new
        if self._on_rotated is None:
            logger.warning(
                "%s: the authorization server rotated the refresh token and no callback"
                " stores it; the configured refresh token may stop working",
                self.source,
            )
            return
        try:
            self._on_rotated(new)
        except Exception as exc:
            raise OAuth2Error(
                f"{self.source}: the refresh token was rotated but on_refresh_token_rotated"
                f" failed with {type(exc).__name__}: {_one_line(mask(str(exc), self.secrets()))};"
                f" the new refresh token is only kept in memory"
            ) from None

    def _remember(self, value: str | None) -> None:
        if value and value not in self._old_secrets:
            self._old_secrets.append(value)
            del self._old_secrets[:-32]

    # --- identity, copies and display ---------------------------------------------------

    def __deepcopy__(self, memo: dict[int, Any]) -> OAuth2Auth:
        # one token per instance: dlt deep-copies configs during validation; share, don't fork
        return self

    def __copy__(self) -> OAuth2Auth:
        return self

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return (
            f"OAuth2Auth(source={self.source!r}, token_url={self.token_url!r},"
            f" grant_type={self.grant_type!r}, client_id={self.client_id!r},"
            f" client_secret={MASK!r}"
            + (f", refresh_token={MASK!r}" if self._refresh_token else "")
            + (f", scopes={self.scopes!r}" if self.scopes else "")
            + ")"
        )

    __str__ = __repr__

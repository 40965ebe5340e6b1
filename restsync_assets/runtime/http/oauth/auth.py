"""OAuth 2.0 bearer authentication for dlt sources: one access token shared by all resources.

:class:`OAuth2Auth` can be used as ``client.auth`` in dlt's ``rest_api_source`` (it is an
``AuthConfigBase``) and as a plain ``requests`` auth hook. It asks its
:class:`~.token_client.TokenClient` for a token when it has none or the one it has expires,
trying the refresh tokens its :class:`~.rotation.RefreshTokenRotation` offers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

from ..errors import OAuth2Error
from ..masking import MASK
from ..renewable import RenewableAuth
from ..retry import Clock, RetryPolicy, current_clock
from .rotation import RefreshTokenRotation, remember
from .token_client import TOKEN_POLICY, TokenClient, TokenRequest

__all__ = ["OAuth2Auth"]

logger = logging.getLogger(__name__)


class OAuth2Auth(RenewableAuth):
    """Fetches, caches and refreshes an OAuth 2.0 access token; sets ``Authorization: Bearer``.

    Args:
        token_url: token endpoint; must be https unless the host is loopback.
        client_id, client_secret: client credentials, sent as form fields.
        refresh_token: when given the ``refresh_token`` grant is used, else
            ``client_credentials``.
        scopes: sent space separated as ``scope``.
        source: source name used in messages and in the suggested env variable names.
        policy: retries and timeout of the token request (default: ``TOKEN_POLICY``; a
            spec's: ``token_policy(spec.error_handler)``).
        session: ``requests`` session for token requests (default: a plain new session).
        clock: time source of the expiry, and sleeper between token request attempts
            (default: :data:`retry.CLOCK`).
        expiry_skew_seconds: refresh this many seconds before ``expires_in`` runs out.
            Tokens without ``expires_in`` are used until a 401 or :meth:`invalidate`.
        refresh_token_candidates: returns refresh tokens to try, best first (e.g. one a
            previous run stored after a rotation, then the configured one).
        on_refresh_token_rotated: called with the new refresh token when the server rotates
            it, so it can be persisted.
        refresh_lease: returns a context manager held around each refresh-token grant
            (``refresh_token_candidates``, the request, ``on_refresh_token_rotated``), so
            workers sharing a token store never send one single-use refresh token twice
            (restsync's ``RefreshTokenStore.refreshing``).
        request: the token request's options (:class:`TokenRequest`: grant type, client
            auth, more form fields, where the answer keeps the token and its expiry).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str | None = None,
        scopes: list[str] | None = None,
        *,
        source: str = "?",
        policy: RetryPolicy = TOKEN_POLICY,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        expiry_skew_seconds: float = 60.0,
        refresh_token_candidates: Callable[[], list[str]] | None = None,
        on_refresh_token_rotated: Callable[[str], None] | None = None,
        refresh_lease: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
        request: TokenRequest | None = None,
    ) -> None:
        self.client = TokenClient(
            token_url,
            client_id,
            client_secret,
            scopes=scopes,
            source=source,
            policy=policy,
            session=session,
            clock=clock,
            request=request,
        )
        self.rotation = RefreshTokenRotation(
            refresh_token,
            candidates=refresh_token_candidates,
            on_rotated=on_refresh_token_rotated,
            source=source,
        )
        self.expiry_skew_seconds = expiry_skew_seconds
        self._refresh_lease = refresh_lease
        self._lock = threading.RLock()
        self._access_token: str | None = None
        self._expires_at: float | None = None
        self._old_tokens: list[str] = []
        # an explicit instance: tell dlt's create_auth() there is nothing to resolve from config
        self.__is_resolved__ = True

    source = property(lambda self: self.client.source)
    token_url = property(lambda self: self.client.token_url)
    client_id = property(lambda self: self.client.client_id)
    client_secret = property(lambda self: self.client.client_secret)
    scopes = property(lambda self: self.client.scopes)
    grant_type = property(lambda self: self.rotation.grant_type)

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
                remember(self._old_tokens, self._access_token)
                self._access_token = None
                self._expires_at = None

    def owns_authorization(self, header_value: str | None) -> bool:
        """True when ``header_value`` is a Bearer header carrying a token from this instance."""
        if not header_value or not header_value.startswith("Bearer "):
            return False
        token = header_value[len("Bearer ") :]
        with self._lock:
            return token == self._access_token or token in self._old_tokens

    def presented(self, request: Any) -> str | None:
        """The Bearer token `request` carries when this instance issued it."""
        header = request.headers.get("Authorization")
        return header[len("Bearer ") :] if self.owns_authorization(header) else None

    def secrets(self) -> list[str]:
        """Every secret value known (client secret, refresh and access tokens) for masking."""
        with self._lock:
            values = [self.client_secret, *self.rotation.secrets(), self._access_token]
            values.extend(self._old_tokens)
        return list(dict.fromkeys(v for v in values if v))

    # --- fetching -----------------------------------------------------------------------

    def _expired(self) -> bool:
        if self._expires_at is None:
            return False
        now = current_clock(self.client.clock).time()
        return now >= self._expires_at - self.expiry_skew_seconds

    def _fetch_token(self) -> None:
        if self.rotation.current is None or self._refresh_lease is None:
            self._fetch_with(self.rotation.to_try())
            return
        with self._refresh_lease():  # candidates read under the lease: no token sent twice
            self._fetch_with(self.rotation.to_try())

    def _fetch_with(self, candidates: list[str | None]) -> None:
        for index, candidate in enumerate(candidates, start=1):
            try:
                token = self.client.fetch(candidate)
            except OAuth2Error as error:
                if not error.invalid_grant or index == len(candidates):
                    raise
                logger.info(
                    "%s: refresh token #%d of %d was rejected (invalid_grant); trying the next one",
                    self.source,
                    index,
                    len(candidates),
                )
                continue
            remember(self._old_tokens, self._access_token)
            self._access_token = token.access_token
            self._expires_at = token.expires_at
            self.rotation.succeeded(candidate, token.refresh_token)
            return

    # --- identity, copies and display ---------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"OAuth2Auth(source={self.source!r}, token_url={self.token_url!r},"
            f" grant_type={self.grant_type!r}, client_id={self.client_id!r},"
            f" client_secret={MASK!r}"
            + (f", refresh_token={MASK!r}" if self.rotation.current else "")
            + (f", scopes={self.scopes!r}" if self.scopes else "")
            + ")"
        )

    __str__ = __repr__

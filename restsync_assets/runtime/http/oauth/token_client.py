"""Asking an OAuth 2.0 token endpoint for an access token.

One :meth:`TokenClient.fetch` is one grant (``refresh_token`` when given a refresh token,
else ``client_credentials``), POSTed as a form and retried like every restsync request
(:func:`restsync_assets.runtime.http.retry.retrying`) on 429/5xx, connection errors and
timeouts. Its answer is a :class:`Token` (the access token, when it expires, the refresh
token the server sent along); a refusal is an :class:`OAuth2Error` of one line, without a
secret, naming the env vars to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from tenacity import RetryCallState

from restsync_assets.specs.model import ErrorHandler
from restsync_assets.specs.token_urls import is_secure_token_url

from .. import errors
from ..errors import InsecureTokenUrlError, OAuth2Error
from ..masking import mask_url, register_secret
from ..retry import Clock, RetryPolicy, current_clock, retrying

#: Token endpoint answers retried whatever the spec's error_handler says about its API.
TOKEN_RETRY_STATUS_CODES = (429, 500, 502, 503, 504)
#: Token requests of an `OAuth2Auth` built without a spec.
TOKEN_POLICY = RetryPolicy(retry_on_status_codes=TOKEN_RETRY_STATUS_CODES, timeout=30.0)


def token_policy(handler: ErrorHandler) -> RetryPolicy:
    """Token requests of a spec: the client-level `error_handler`'s `max_retries`,
    `backoff_factor`, `max_retry_delay` and `timeout`, on 429/5xx."""
    return RetryPolicy.from_handler(handler, retry_on_status_codes=TOKEN_RETRY_STATUS_CODES)


def validate_token_url(token_url: str, source: str) -> None:
    """Raise :class:`InsecureTokenUrlError` unless ``token_url`` is https (or loopback http)."""
    if not is_secure_token_url(token_url):
        raise InsecureTokenUrlError(errors.insecure_token_url(source, token_url))


@dataclass(frozen=True)
class Token:
    """A token endpoint's answer."""

    access_token: str
    #: epoch seconds (measured from the request's start); None: no usable `expires_in`
    expires_at: float | None
    #: the refresh token the server sent along (a rotation when it differs), else None
    refresh_token: str | None


class TokenClient:
    """Requests access tokens from ``token_url`` for one client.

    Args:
        token_url: token endpoint; must be https unless the host is loopback.
        client_id, client_secret: client credentials, sent as form fields.
        scopes: sent space separated as ``scope``.
        source: source name used in messages and in the suggested env variable names.
        policy: retries and timeout of the token request (default :data:`TOKEN_POLICY`).
        session: ``requests`` session for token requests (default: a plain new session).
        clock: time source of the expiry and sleeper between attempts (default:
            :data:`retry.CLOCK`).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scopes: list[str] | None = None,
        source: str = "?",
        policy: RetryPolicy = TOKEN_POLICY,
        session: requests.Session | None = None,
        clock: Clock | None = None,
    ) -> None:
        validate_token_url(token_url, source)
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = list(scopes) if scopes else None
        self.source = source
        self.policy = policy
        self.clock = clock
        self.session = session
        register_secret(client_secret)

    def fetch(self, refresh_token: str | None = None) -> Token:
        """One grant, retried; raises :class:`OAuth2Error` (``invalid_grant`` set when the
        server refused the refresh token itself)."""
        started = current_clock(self.clock).time()
        response, attempts = self._post(self._form(refresh_token))
        body = _json(response)
        secrets = [self.client_secret, refresh_token or ""]
        if not response.ok:
            refused = errors.token_refused(
                self.source, self._url(), response, body, attempts, bool(refresh_token), secrets
            )
            raise OAuth2Error(refused, invalid_grant=_is_invalid_grant(response, body))
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise OAuth2Error(errors.token_missing(self.source, self._url(), response))
        register_secret(token)
        offered = body.get("refresh_token")
        return Token(
            access_token=token,
            expires_at=_expiry(body, started),
            refresh_token=offered if isinstance(offered, str) and offered else None,
        )

    def _form(self, refresh_token: str | None) -> dict[str, str]:
        form = {
            "grant_type": "refresh_token" if refresh_token else "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if refresh_token:
            form["refresh_token"] = refresh_token
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        return form

    def _post(self, form: dict[str, str]) -> tuple[requests.Response, int]:
        """POST ``form`` with retries: the last response and the number of attempts."""
        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            return self._post_once(form)

        def give_up(state: RetryCallState) -> requests.Response:
            if state.outcome.failed:  # the endpoint never answered
                error = state.outcome.exception()
                raise OAuth2Error(
                    errors.token_unreachable(self.source, self._url(), attempts, error)
                ) from None
            return state.outcome.result()

        response = retrying(
            self.policy,
            label=lambda: f"{self.source}: token request to {self._url()}",
            on_give_up=give_up,
            secrets=lambda: [self.client_secret],
            retry_on=(requests.RequestException,),
            clock=self.clock,
        )(attempt)
        return response, attempts

    def _post_once(self, form: dict[str, str]) -> requests.Response:
        if self.session is None:
            self.session = requests.Session()
        try:
            return self.session.post(
                self.token_url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=self.policy.timeout,
            )
        except requests.HTTPError as exc:
            if exc.response is not None:
                return exc.response  # a raise_for_status session was passed in
            raise

    def _url(self) -> str:
        return mask_url(self.token_url, [self.client_secret])


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_invalid_grant(response: requests.Response, body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return response.status_code in (400, 401) and error == "invalid_grant"


def _expiry(body: dict[str, Any], started: float) -> float | None:
    try:
        expires_in = float(body.get("expires_in"))
    except (TypeError, ValueError):
        return None
    return started + expires_in if expires_in > 0 else None

"""Asking an OAuth 2.0 token endpoint for an access token.

One :meth:`TokenClient.fetch` is one grant (``refresh_token`` when given a refresh token,
else ``client_credentials``), POSTed as a form and retried like every restsync request
(:func:`restsync_assets.runtime.http.retry.retrying`) on 429/5xx, connection errors and
timeouts. Its answer is a :class:`Token` (the access token, when it expires, the refresh
token the server sent along); a refusal is an :class:`OAuth2Error` of one line, without a
secret, naming the env vars to check.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from tenacity import RetryCallState

from restsync_assets.specs.model import ErrorHandler
from restsync_assets.specs.template_functions import to_datetime
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
class TokenRequest:
    """How a token endpoint wants to be asked, and where its answer keeps the token
    (the options of a spec's `oauth2` auth; the defaults are RFC 6749's)."""

    #: None: `refresh_token` when a refresh token is sent, else `client_credentials`
    grant_type: str | None = None
    #: `body`: client_id/client_secret as form fields; `basic`: an HTTP Basic header
    client_auth: str = "body"
    #: more form fields (secrets already resolved)
    body: Mapping[str, Any] = field(default_factory=dict)
    access_token_field: str = "access_token"
    expires_in_field: str = "expires_in"
    #: an absolute expiry instead of `expires_in_field`, written as `expires_at_format`
    expires_at_field: str | None = None
    expires_at_format: str = "iso"


def field_at(body: Any, path: str) -> Any:
    """The value at a dotted path of a JSON body (`data.token`), None when absent."""
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


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
        request: the token request's options (grant type, client auth, more form fields,
            the answer's token and expiry fields); default RFC 6749's.
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
        request: TokenRequest | None = None,
    ) -> None:
        validate_token_url(token_url, source)
        self.request = request or TokenRequest()
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = list(scopes) if scopes else None
        self.source = source
        self.policy = policy
        self.clock = clock
        self.session = session
        register_secret(client_secret)
        if self.request.client_auth == "basic":  # the form the secret travels in
            register_secret(base64.b64encode(f"{client_id}:{client_secret}".encode()).decode())

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
        token = field_at(body, self.request.access_token_field)
        if not isinstance(token, str) or not token:
            raise OAuth2Error(
                errors.token_missing(
                    self.source, self._url(), response, self.request.access_token_field
                )
            )
        register_secret(token)
        offered = body.get("refresh_token")
        return Token(
            access_token=token,
            expires_at=self._expiry(body, started),
            refresh_token=offered if isinstance(offered, str) and offered else None,
        )

    def _expiry(self, body: dict[str, Any], started: float) -> float | None:
        """When the token expires (epoch seconds): `expires_at_field` read in its format,
        else `started` plus `expires_in_field`; None when neither is usable."""
        if self.request.expires_at_field is None:
            return _expiry(field_at(body, self.request.expires_in_field), started)
        value = field_at(body, self.request.expires_at_field)
        fmt = self.request.expires_at_format
        try:
            if fmt in ("epoch", "epoch_ms"):
                return float(value) / (1000 if fmt == "epoch_ms" else 1)
            moment = to_datetime(value, None if fmt in ("iso", "date") else fmt)
        except (TypeError, ValueError):
            return None
        return moment.timestamp()

    def _form(self, refresh_token: str | None) -> dict[str, str]:
        default_grant = "refresh_token" if refresh_token else "client_credentials"
        form = {"grant_type": self.request.grant_type or default_grant}
        if self.request.client_auth == "body":
            form["client_id"] = self.client_id
            form["client_secret"] = self.client_secret
        form.update({k: str(v) for k, v in self.request.body.items()})
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
            basic = self.request.client_auth == "basic"
            return self.session.post(
                self.token_url,
                data=form,
                headers={"Accept": "application/json"},
                auth=(self.client_id, self.client_secret) if basic else None,
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


def _expiry(value: Any, started: float) -> float | None:
    try:
        expires_in = float(value)
    except (TypeError, ValueError):
        return None
    return started + expires_in if expires_in > 0 else None

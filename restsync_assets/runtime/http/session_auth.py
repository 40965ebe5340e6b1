"""restsync's `session` auth: log in with a request, send the token it answers with.

:class:`SessionLoginAuth` sends the spec's login request (credentials from secrets, retried
like a token request on 429/5xx, connection errors and timeouts), reads the token at
`token_path` of the JSON answer and sets it on every request as a header or query param. It
logs in again when `expires_after` has passed and, through :class:`RestsyncSession`, once
when the API answers 401 to a token it set.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from tenacity import RetryCallState

from . import errors
from .errors import LoginError
from .masking import MASK, mask_url, register_secret
from .oauth.rotation import remember
from .oauth.token_client import TOKEN_POLICY, field_at
from .renewable import RenewableAuth
from .retry import Clock, RetryPolicy, current_clock, retrying

__all__ = ["LoginRequest", "SessionLoginAuth"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginRequest:
    """The login request, its secrets resolved (`json` or `data` is the body)."""

    url: str
    method: str = "POST"
    json: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)


def with_query_param(url: str, name: str, value: str) -> str:
    """`url` with the query param `name` set to `value` (replacing any earlier one)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode([*query, (name, value)])))


def query_param(url: str, name: str) -> str | None:
    """The value of the query param `name` of `url`, if any."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)).get(name)


class SessionLoginAuth(RenewableAuth):
    """Logs in with `login`, sends the token as header (or query param) `name` after `prefix`.

    Args:
        login: the login request.
        token_path: dotted path of the token in the login answer (`session.id`).
        location: `header` or `query`.
        name, prefix: the header or param name, and what precedes the token in it.
        expires_after: seconds after a login when the next request logs in again first;
            None: until the API answers 401.
        source: source name used in messages.
        secret_env_vars: the env vars the login's secrets come from (named in failures).
        policy, clock: retries of the login request and their clock.
    """

    def __init__(
        self,
        login: LoginRequest,
        token_path: str,
        *,
        location: str = "header",
        name: str = "Authorization",
        prefix: str = "",
        expires_after: float | None = None,
        source: str = "?",
        secret_env_vars: tuple[str, ...] = (),
        policy: RetryPolicy = TOKEN_POLICY,
        clock: Clock | None = None,
    ) -> None:
        self.login = login
        self.token_path = token_path
        self.location = location
        self.name = name
        self.prefix = prefix
        self.expires_after = expires_after
        self.source = source
        self.secret_env_vars = secret_env_vars
        self.policy = policy
        self.clock = clock
        #: the plain session the login request goes through (`restsync preview` records it)
        self.session = requests.Session()
        self._lock = threading.RLock()
        self._token: str | None = None
        self._expires_at: float | None = None
        self._old_tokens: list[str] = []
        self.__is_resolved__ = True  # an explicit instance: dlt resolves nothing from config

    # --- requests auth hook -------------------------------------------------------------

    def __call__(self, request: Any) -> Any:
        """Set the session token (logging in first when needed) on `request`."""
        value = self.prefix + self.token()
        if self.location == "query":
            request.url = with_query_param(request.url, self.name, value)
        else:
            request.headers[self.name] = value
        return request

    def token(self) -> str:
        """The current session token; logs in when there is none or it expired."""
        with self._lock:
            if self._token is None or self._expired():
                self._log_in()
            return self._token

    def presented(self, request: Any) -> str | None:
        """The token `request` carries, when this auth set it."""
        if self.location == "query":
            value = query_param(request.url, self.name)
        else:
            value = request.headers.get(self.name)
        if not value or not value.startswith(self.prefix):
            return None
        token = value[len(self.prefix) :]
        with self._lock:
            return token if token == self._token or token in self._old_tokens else None

    def invalidate(self, token: str | None = None) -> None:
        with self._lock:
            if token is None or token == self._token:
                remember(self._old_tokens, self._token)
                self._token = None
                self._expires_at = None

    def secrets(self) -> list[str]:
        with self._lock:
            values = [self._token, *self._old_tokens]
        return [v for v in values if v]

    # --- logging in ---------------------------------------------------------------------

    def _expired(self) -> bool:
        return self._expires_at is not None and current_clock(self.clock).time() >= self._expires_at

    def _url(self) -> str:
        return mask_url(self.login.url, self.secrets())

    def _log_in(self) -> None:
        started = current_clock(self.clock).time()
        response = self._post()
        if not response.ok:
            raise LoginError(
                errors.login_refused(self.source, self._url(), response, self.secret_env_vars)
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        token = field_at(body, self.token_path)
        if isinstance(token, (int, float)) and not isinstance(token, bool):
            token = str(token)
        if not isinstance(token, str) or not token:
            raise LoginError(errors.login_without_token(self.source, self._url(), self.token_path))
        register_secret(token)
        remember(self._old_tokens, self._token)
        self._token = token
        self._expires_at = None if self.expires_after is None else started + self.expires_after
        logger.info("%s: logged in (session token from %s)", self.source, self._url())

    def _post(self) -> requests.Response:
        def give_up(state: RetryCallState) -> requests.Response:
            if state.outcome.failed:
                error = state.outcome.exception()
                raise LoginError(
                    errors.login_unreachable(self.source, self._url(), state.attempt_number, error)
                ) from None
            return state.outcome.result()

        return retrying(
            self.policy,
            label=lambda: f"{self.source}: login request to {self._url()}",
            on_give_up=give_up,
            retry_on=(requests.RequestException,),
            clock=self.clock,
        )(self._post_once)

    def _post_once(self) -> requests.Response:
        login = self.login
        return self.session.request(
            login.method,
            login.url,
            json=login.json,
            data=login.data,
            params=login.params or None,
            headers={"Accept": "application/json", **login.headers},
            timeout=self.policy.timeout,
        )

    # --- identity, copies and display ---------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"SessionLoginAuth(source={self.source!r}, login={self._url()!r},"
            f" location={self.location!r}, name={self.name!r}, token={MASK!r})"
        )

    __str__ = __repr__

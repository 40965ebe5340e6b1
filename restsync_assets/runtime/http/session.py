"""A ``requests.Session`` with per-resource retry policies, for dlt's ``rest_api_source``.

dlt's ``rest_api`` takes one session per source (``client.session``). :class:`RestsyncSession`
picks the retry policy of the resource a request belongs to by matching the URL path against
each resource's path template and retries with :func:`restsync_assets.runtime.http.retry.retrying`
(statuses of the policy, connection errors, timeouts; ``Retry-After`` or backoff, capped). It
refreshes an OAuth token once on 401 and raises :class:`RequestFailedError` (with secrets
masked) when retries run out. Non-retryable responses (404, 400, ...) go to dlt's hooks
(``response_actions``, ``raise_for_status``) unchanged; an HTTP error they raise becomes
:class:`HttpStatusError` and a 2xx that is not JSON (an HTML page, an empty body)
:class:`NotJsonError`, both one line naming source, resource, masked URL, status and attempts
(texts in :mod:`restsync_assets.runtime.http.errors`).

With a :class:`~restsync_assets.runtime.http.rate_limit.RateLimiter` (``client.rate_limit``)
every request it sends (each attempt, retries and the resend after a 401 included) first waits
for a slot of the spec's budget and gives it back once answered.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from requests.hooks import default_hooks, dispatch_hook
from tenacity import RetryCallState

from . import errors
from .errors import (
    HttpStatusError,
    NotJsonError,
    RequestFailedError,
    RequestFailure,
    ResponseRuleError,
)
from .masking import mask_text, mask_url
from .rate_limit import RateLimiter
from .renewable import RenewableAuth
from .response_rules import ResponseRules, matched_rule
from .retry import Clock, RetryPolicy, retrying

__all__ = ["RestsyncSession", "Route"]

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")
_Failure = TypeVar("_Failure", bound=RequestFailure)


@dataclass(frozen=True)
class Route:
    """Maps a path template (relative to ``base_url``) to a resource and its policy."""

    resource: str
    path_template: str
    policy: RetryPolicy
    #: reads a successful body (content, URL) into what ``response.json()`` returns, for a
    #: resource whose bodies are not plain JSON (``endpoint.response_format``); None: JSON
    read_body: Callable[[bytes, str], Any] | None = None
    #: the resource's `error_handler.response_rules`, compiled; None: no rules
    rules: ResponseRules | None = None


@dataclass
class _SendState:
    attempts: int = 0
    refreshed: bool = False


def _lease(timeout: Any) -> float:
    """How long a request may take to reach the server: its connect plus read timeout."""
    if isinstance(timeout, (int, float)):
        return 2.0 * timeout
    if isinstance(timeout, tuple):
        return float(sum(t for t in timeout if t is not None))
    return 120.0


def _is_json(response: requests.Response) -> bool:
    """True when the body is JSON; the parse is kept as ``response.json()``.

    dlt reads ``response.json()`` two or three times per page (data selector, paginator), so
    the body is parsed once here, with orjson (stdlib ``json`` for what orjson refuses, such
    as integers beyond 64 bits), and every later call returns that parse.
    """
    if "json" in vars(response):
        return True
    try:
        parsed = orjson.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        try:
            parsed = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            return False
    response.json = lambda **_kwargs: parsed  # type: ignore[method-assign]
    return True


def _is_parsed(response: requests.Response, route: Route | None) -> bool:
    """True when the body is in the route's format (JSON unless the route reads it); the
    parse is kept as ``response.json()``, as ``_is_json`` does."""
    if route is None or route.read_body is None:
        return _is_json(response)
    if "json" in vars(response):
        return True
    try:
        parsed = route.read_body(response.content, response.url)
    except (ValueError, UnicodeDecodeError, OSError, EOFError):  # gzip: OSError, EOFError
        return False
    response.json = lambda **_kwargs: parsed  # type: ignore[method-assign]
    return True


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    pattern: re.Pattern[str]
    specificity: tuple[int, int]


def _compile_route(route: Route, index: int) -> _CompiledRoute:
    template = route.path_template.split("?", 1)[0]
    template = template if template.startswith("/") else "/" + template
    literals = _PLACEHOLDER.split(template)
    pattern = "[^/]+".join(re.escape(part) for part in literals)
    return _CompiledRoute(route, re.compile(pattern), (sum(map(len, literals)), -index))


class RestsyncSession(requests.Session):
    """Session for one source; use as ``client.session`` in dlt's ``rest_api_source``.

    Args:
        source: source name, used in messages.
        base_url: the source's base URL; its path prefix is removed before route matching.
        routes: one :class:`Route` per resource with its own policy.
        default_policy: policy for URLs that match no route.
        auth: restsync's OAuth2 or session auth (a :class:`RenewableAuth`) whose token is
            renewed once when a request it authorized gets a 401. Also pass the same instance as ``client.auth``; the session does not apply
            it to requests by itself.
        secrets: returns secret values to mask in messages (``auth.secrets()`` is added).
        clock: sleeps between retries and dates ``Retry-After`` (default: :data:`retry.CLOCK`,
            looked up at each wait so tests can swap it).
        rate_limiter: the spec's shared request budget; each request sent waits for a slot.
    """

    def __init__(
        self,
        source: str,
        base_url: str,
        routes: list[Route],
        default_policy: RetryPolicy,
        auth: RenewableAuth | None = None,
        secrets: Callable[[], list[str]] | None = None,
        clock: Clock | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.base_url = base_url
        self.default_policy = default_policy
        self.routes = list(routes)
        self._compiled = [_compile_route(r, i) for i, r in enumerate(self.routes)]
        self._prefix = urlsplit(base_url).path.rstrip("/")
        self._oauth = auth
        self._secrets = secrets
        self._clock = clock
        self.rate_limiter = rate_limiter
        adapter = HTTPAdapter(pool_maxsize=50)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    # --- routing ------------------------------------------------------------------------

    def route_for(self, url: str) -> Route | None:
        """The route whose template matches the URL path; the most literal characters wins."""
        path = urlsplit(url).path
        if self._prefix:
            if path != self._prefix and not path.startswith(self._prefix + "/"):
                return None
            path = path[len(self._prefix) :]
        path = path or "/"
        matches = [c for c in self._compiled if c.pattern.fullmatch(path)]
        if not matches:
            return None
        return max(matches, key=lambda c: c.specificity).route

    def policy_for(self, url: str) -> RetryPolicy:
        """The retry policy for ``url`` (the route's or the default)."""
        route = self.route_for(url)
        return route.policy if route else self.default_policy

    # --- masking ------------------------------------------------------------------------

    def secret_values(self) -> list[str]:
        """All secrets to mask: from ``secrets()`` and from ``auth.secrets()``."""
        values = list(self._secrets()) if self._secrets else []
        if self._oauth is not None:
            values.extend(self._oauth.secrets())
        return values

    def mask_url(self, url: str) -> str:
        """``url`` with secret query params and every known secret replaced by ``***``."""
        return mask_url(url, self.secret_values())

    # --- sending ------------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send with the route's timeout and retries; response hooks run once, at the end.

        After the hooks (dlt's ``raise_for_status`` and ``response_actions``): an HTTP error
        is raised as :class:`HttpStatusError` and a 2xx whose body is not JSON as
        :class:`NotJsonError`, both one line naming source, resource, URL and attempts.
        """
        route = self.route_for(request.url)
        policy = route.policy if route else self.default_policy
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = policy.timeout
        # hooks (dlt's raise_for_status, response_actions) must see the final response only,
        # not each attempt: a 503 would otherwise raise before it can be retried
        hooks, request.hooks = request.hooks, default_hooks()
        state = _SendState()
        try:
            response = self._send_with_retries(request, route, policy, kwargs, state)
        finally:
            request.hooks = hooks
        self._apply_rule(request, route, response, state)
        hook_kwargs = {k: v for k, v in kwargs.items() if k != "allow_redirects"}
        failure: Exception | None = None
        try:
            response = dispatch_hook("response", hooks, response, **hook_kwargs)
        except requests.HTTPError as error:
            failed = error.response if error.response is not None else response
            failure = self._status_error(request, route, failed, state)
        except ValueError:
            if _is_parsed(response, route):
                raise
            failure = self._not_json_error(request, route, response, state)
        if failure is not None:
            # raised outside the `except`: requests' own error names the unmasked URL, and
            # dlt's trace (trace.pickle) records every `__context__`, even one `from None` hides
            raise failure
        ok = 200 <= response.status_code < 300 and request.method != "HEAD"
        if ok and not _is_parsed(response, route):
            raise self._not_json_error(request, route, response, state)
        return response

    def _send_with_retries(
        self,
        request: requests.PreparedRequest,
        route: Route | None,
        policy: RetryPolicy,
        kwargs: dict[str, Any],
        state: _SendState,
    ) -> requests.Response:
        resource = route.resource if route else "?"
        attempts = retrying(
            policy,
            label=lambda: (
                f"{self.source}/{resource}: {request.method} {self.mask_url(request.url)}"
            ),
            on_give_up=lambda retry_state: self._give_up(retry_state, request, route),
            secrets=self.secret_values,
            clock=self._clock,
        )
        return attempts(self._attempt, request, kwargs, state, route)

    def _attempt(
        self,
        request: requests.PreparedRequest,
        kwargs: dict[str, Any],
        state: _SendState,
        route: Route | None = None,
    ) -> requests.Response:
        response = self._attempt_once(request, kwargs, state)
        if route is not None and route.rules:
            body = lambda: response.json() if _is_parsed(response, route) else None  # noqa: E731
            route.rules.match(response, body, lambda text: mask_text(text, self.secret_values()))
        return response

    def _apply_rule(
        self,
        request: requests.PreparedRequest,
        route: Route | None,
        response: requests.Response,
        state: _SendState,
    ) -> None:
        """The final response matched a `response_rules` entry: `fail` raises restsync's
        one-line error, `ignore` ends this request sequence with no records (dlt's
        `IgnoreResponseException`); `retry` was retried already and is handled as its answer."""
        matched = matched_rule(response)
        if matched is None:
            return
        if matched.action == "fail":
            message = errors.rule_failed(self._where(request, route), state.attempts, response)
            raise self._failure(
                ResponseRuleError,
                message,
                request,
                route,
                state.attempts,
                response.status_code,
                response,
            )
        if matched.action == "ignore":
            from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException

            logger.info(
                "%s: ignored (no records) %s",
                self._where(request, route),
                matched.describe(),
            )
            raise IgnoreResponseException

    def _attempt_once(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any], state: _SendState
    ) -> requests.Response:
        state.attempts += 1
        response = self._send_once(request, kwargs)
        if response.status_code != 401 or state.refreshed or self._oauth is None:
            return response
        failed = self._oauth.presented(request)
        if failed is None:
            return response
        # the token was rejected before its stated expiry: refresh once and resend (the
        # resend is part of this attempt, not a retry)
        state.refreshed = True
        response.close()
        logger.info(
            "%s: access token rejected with HTTP 401; fetching a new one and resending once",
            self.source,
        )
        self._oauth.invalidate(failed)
        self._oauth(request)
        return self._send_once(request, kwargs)

    def _send_once(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any]
    ) -> requests.Response:
        """One request on the wire; with a rate limit, inside a slot of the budget."""
        if self.rate_limiter is None:
            return super().send(request, **kwargs)
        with self.rate_limiter.slot(lease=_lease(kwargs.get("timeout"))):
            return super().send(request, **kwargs)

    # --- failures -----------------------------------------------------------------------

    def _where(self, request: requests.PreparedRequest, route: Route | None) -> str:
        resource = route.resource if route else "?"
        return f"{self.source}: resource {resource}: {request.method} {self.mask_url(request.url)}"

    def _give_up(
        self, state: RetryCallState, request: requests.PreparedRequest, route: Route | None
    ) -> requests.Response:
        what, status = errors.describe(state, self.secret_values())
        attempts = state.attempt_number
        raise self._failure(
            RequestFailedError,
            errors.gave_up(self._where(request, route), attempts, what, status),
            request,
            route,
            attempts,
            status,
            None if state.outcome.failed else state.outcome.result(),
        )

    def _status_error(
        self,
        request: requests.PreparedRequest,
        route: Route | None,
        response: requests.Response,
        state: _SendState,
    ) -> HttpStatusError:
        message = errors.status_failed(
            self._where(request, route),
            state.attempts,
            response,
            state.refreshed,
            self.secret_values(),
        )
        return self._failure(
            HttpStatusError,
            message,
            request,
            route,
            state.attempts,
            response.status_code,
            response,
        )

    def _not_json_error(
        self,
        request: requests.PreparedRequest,
        route: Route | None,
        response: requests.Response,
        state: _SendState,
    ) -> NotJsonError:
        where = self._where(request, route)
        message = errors.not_json(where, state.attempts, response, self.secret_values())
        return self._failure(
            NotJsonError, message, request, route, state.attempts, response.status_code, response
        )

    def _failure(
        self,
        kind: type[_Failure],
        message: str,
        request: requests.PreparedRequest,
        route: Route | None,
        attempts: int,
        status: int | None,
        response: requests.Response | None,
    ) -> _Failure:
        """One of restsync's one-line HTTP errors, with where and how the request failed."""
        return kind(
            message,
            source=self.source,
            resource=route.resource if route else "?",
            method=str(request.method),
            url=self.mask_url(request.url),
            attempts=attempts,
            status=status,
            response=response,
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> RestsyncSession:
        # dlt deep-copies the config (incl. client.session) during validation; share it
        return self

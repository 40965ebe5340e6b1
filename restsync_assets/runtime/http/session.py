"""A ``requests.Session`` with per-resource retry policies, for dlt's ``rest_api_source``.

dlt's ``rest_api`` takes one session per source (``client.session``). :class:`RestsyncSession`
picks the retry policy of the resource a request belongs to by matching the URL path against
each resource's path template and retries with tenacity: statuses of the policy, connection
errors (resets included) and timeouts, waiting ``Retry-After`` (seconds, 0 or an HTTP date)
or exponential backoff, capped (see :mod:`restsync_assets.runtime.http.retry`). It refreshes an OAuth
token once on 401 and raises :class:`RequestFailedError` (with secrets masked) when retries
run out. Non-retryable responses (404, 400, ...) go to dlt's hooks (``response_actions``,
``raise_for_status``) unchanged; an HTTP error they raise becomes :class:`HttpStatusError`
and a 2xx that is not JSON (an HTML page, an empty body) :class:`NotJsonError`, both one line
naming source, resource, masked URL, status and attempts.
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
from requests.exceptions import ChunkedEncodingError
from requests.hooks import default_hooks, dispatch_hook
from tenacity import (
    RetryCallState,
    Retrying,
    retry_any,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
)

from . import retry
from .masking import mask, mask_text, mask_url
from .oauth import OAuth2Auth

__all__ = [
    "RETRYABLE_EXCEPTIONS",
    "HttpStatusError",
    "NotJsonError",
    "RequestFailedError",
    "RestsyncSession",
    "RetryPolicy",
    "Route",
    "mask",
    "mask_url",
]

logger = logging.getLogger(__name__)

RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    ChunkedEncodingError,
)
_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry rules of one resource (or the source default)."""

    retry_on_status_codes: tuple[int, ...] = (429, 500, 502, 503, 504)
    max_retries: int = 3
    """Retries after the first attempt."""
    backoff_factor: float = 1.0
    """Exponential backoff: ``backoff_factor * 2**n`` seconds, capped at ``max_retry_delay``."""
    max_retry_delay: float = 60.0
    """Cap of the backoff, also caps ``Retry-After``."""
    timeout: float = 60.0
    """Per request, seconds (used when the caller gives none)."""
    respect_retry_after: bool = True


@dataclass(frozen=True)
class Route:
    """Maps a path template (relative to ``base_url``) to a resource and its policy."""

    resource: str
    path_template: str
    policy: RetryPolicy


class _RequestFailure:
    """The fields restsync's one-line HTTP errors carry: where and how a request failed."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        resource: str,
        method: str,
        url: str,
        attempts: int,
        status: int | None = None,
        response: requests.Response | None = None,
    ) -> None:
        if isinstance(self, requests.RequestException):
            super().__init__(message, response=response)  # type: ignore[call-arg]
        else:
            super().__init__(message)  # type: ignore[call-arg]
            self.response = response
        self.source = source
        self.resource = resource
        self.method = method
        self.url = url
        self.attempts = attempts
        self.status = status


_Failure = TypeVar("_Failure", bound=_RequestFailure)


class RequestFailedError(_RequestFailure, RuntimeError):
    """Retries ran out. One-line message with source, resource, method, masked URL, attempts."""


class NotJsonError(RequestFailedError):
    """A 2xx answer whose body is not JSON (an HTML maintenance page, an empty 204, ...)."""


class HttpStatusError(_RequestFailure, requests.HTTPError):
    """A non-retryable HTTP error (or a 401 after one token refresh), in one line.

    A :class:`requests.HTTPError` (as dlt's ``raise_for_status`` would raise) carrying the
    same fields as :class:`RequestFailedError`.
    """


@dataclass
class _SendState:
    attempts: int = 0
    refreshed: bool = False


_SNIPPET_BYTES = 120


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


def _socket_error(error: BaseException) -> OSError | None:
    """The operating system's error under a requests/urllib3 exception (reset, refused...)."""
    stack, seen = [error], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if (
            isinstance(current, OSError)
            and current.strerror
            and not isinstance(current, requests.RequestException)
        ):
            return current
        stack.extend(a for a in current.args if isinstance(a, BaseException))
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    pattern: re.Pattern[str]
    specificity: tuple[int, int]


def _normalize_template(template: str) -> str:
    path = template.split("?", 1)[0]
    return path if path.startswith("/") else "/" + path


def _compile_route(route: Route, index: int) -> _CompiledRoute:
    template = _normalize_template(route.path_template)
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
        auth: OAuth2 auth whose token is refreshed once when a request it authorized gets a
            401. Also pass the same instance as ``client.auth``; the session does not apply
            it to requests by itself.
        secrets: returns secret values to mask in messages (``auth.secrets()`` is added).
        sleep: sleep function used between retries (default: :data:`retry.CLOCK`'s, looked
            up at each wait so tests can swap the clock).
        now: time source for ``Retry-After`` dates (default: :data:`retry.CLOCK`'s).
    """

    def __init__(
        self,
        source: str,
        base_url: str,
        routes: list[Route],
        default_policy: RetryPolicy,
        auth: OAuth2Auth | None = None,
        secrets: Callable[[], list[str]] | None = None,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], float] | None = None,
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
        self._sleep = sleep if sleep is not None else (lambda sec: retry.clock().sleep(sec))
        self._now = now if now is not None else (lambda: retry.clock().time())
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
        hook_kwargs = {k: v for k, v in kwargs.items() if k != "allow_redirects"}
        failure: Exception | None = None
        try:
            response = dispatch_hook("response", hooks, response, **hook_kwargs)
        except requests.HTTPError as error:
            failed = error.response if error.response is not None else response
            failure = self._status_error(request, route, failed, state, policy)
        except ValueError:
            if _is_json(response):
                raise
            failure = self._not_json_error(request, route, response, state)
        if failure is not None:
            # raised outside the `except`: requests' own error names the unmasked URL, and
            # dlt's trace (trace.pickle) records every `__context__`, even one `from None` hides
            raise failure
        ok = 200 <= response.status_code < 300 and request.method != "HEAD"
        if ok and not _is_json(response):
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
        codes = frozenset(policy.retry_on_status_codes)
        retrying = Retrying(
            stop=stop_after_attempt(policy.max_retries + 1),
            wait=lambda retry_state: self._wait(retry_state, policy),
            retry=retry_any(
                retry_if_exception_type(RETRYABLE_EXCEPTIONS),
                retry_if_result(lambda r: r.status_code in codes),
            ),
            sleep=self._sleep,
            before_sleep=lambda retry_state: self._before_sleep(retry_state, request, route),
            retry_error_callback=lambda retry_state: self._give_up(retry_state, request, route),
        )
        return retrying(self._attempt, request, kwargs, state)

    def _wait(self, state: RetryCallState, policy: RetryPolicy) -> float:
        retry_after = None
        if policy.respect_retry_after and not state.outcome.failed:
            retry_after = state.outcome.result().headers.get("Retry-After")
        return retry.retry_delay(
            state.attempt_number,
            policy.backoff_factor,
            policy.max_retry_delay,
            retry_after,
            now=self._now(),
        )

    def _attempt(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any], state: _SendState
    ) -> requests.Response:
        state.attempts += 1
        response = super().send(request, **kwargs)
        if response.status_code != 401 or state.refreshed or not self._owns_auth(request):
            return response
        # the token was rejected before its stated expiry: refresh once and resend (the
        # resend is part of this attempt, not a retry)
        state.refreshed = True
        failed = request.headers["Authorization"][len("Bearer ") :]
        response.close()
        logger.info(
            "%s: access token rejected with HTTP 401; fetching a new one and resending once",
            self.source,
        )
        self._oauth.invalidate(failed)
        self._oauth(request)
        return super().send(request, **kwargs)

    def _owns_auth(self, request: requests.PreparedRequest) -> bool:
        return self._oauth is not None and self._oauth.owns_authorization(
            request.headers.get("Authorization")
        )

    def _describe(self, state: RetryCallState) -> tuple[str, int | None]:
        if state.outcome.failed:
            exc = state.outcome.exception()
            inner = _socket_error(exc)
            if inner is not None:
                return f"{type(exc).__name__} ({type(inner).__name__}: {inner.strerror})", None
            detail = re.sub(r"\s+", " ", mask_text(str(exc), self.secret_values()))[:200]
            return f"{type(exc).__name__} ({detail})", None
        response = state.outcome.result()
        return f"HTTP {response.status_code} {response.reason or ''}".strip(), response.status_code

    def _before_sleep(
        self, state: RetryCallState, request: requests.PreparedRequest, route: Route | None
    ) -> None:
        what, _ = self._describe(state)
        if not state.outcome.failed:
            state.outcome.result().close()
        logger.warning(
            "%s/%s: %s %s got %s, retrying in %.1fs (attempt %d)",
            self.source,
            route.resource if route else "?",
            request.method,
            self.mask_url(request.url),
            what,
            state.upcoming_sleep,
            state.attempt_number,
        )

    def _give_up(
        self, state: RetryCallState, request: requests.PreparedRequest, route: Route | None
    ) -> requests.Response:
        what, status = self._describe(state)
        resource = route.resource if route else "?"
        url = self.mask_url(request.url)
        attempts = state.attempt_number
        advice = (
            "raise error_handler.max_retries or check the API status"
            if status is not None
            else "check the network / the API status or raise error_handler.max_retries"
        )
        raise self._failure(
            RequestFailedError,
            f"{self.source}: resource {resource}: {request.method} {url} failed after"
            f" {_plural(attempts, 'attempt')}: {what}; {advice}",
            request,
            route,
            attempts,
            status,
            None if state.outcome.failed else state.outcome.result(),
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

    def _snippet(self, response: requests.Response) -> str:
        """The first bytes of the body, one line, masked (``…`` when cut).

        Masked before it is cut, so a secret straddling the cut cannot leak its prefix.
        """
        text = response.content[: _SNIPPET_BYTES * 32].decode("utf-8", "replace")
        text = re.sub(r"\s+", " ", mask_text(text, self.secret_values())).strip()
        return text[:_SNIPPET_BYTES] + "…" if len(text) > _SNIPPET_BYTES else text

    def _status_error(
        self,
        request: requests.PreparedRequest,
        route: Route | None,
        response: requests.Response,
        state: _SendState,
        policy: RetryPolicy,
    ) -> HttpStatusError:
        resource = route.resource if route else "?"
        url = self.mask_url(request.url)
        status = response.status_code
        if status in (404, 410):
            hint = (
                "if it means 'no data' (e.g. a parent without children), add"
                f" response_actions: [{{status_code: {status}, action: ignore}}] to the resource"
            )
        elif status == 401 and state.refreshed:
            hint = "a freshly fetched access token was rejected too; check the client's access"
        elif status in (401, 403):
            hint = "check the client's credentials, scopes and access to this resource"
        else:
            hint = f"not retried: {status} is not in error_handler.retry_on_status_codes"
        body = self._snippet(response)
        what = f"HTTP {status} {response.reason or ''}".strip() + (f" {body}" if body else "")
        return self._failure(
            HttpStatusError,
            f"{self.source}: resource {resource}: {request.method} {url} failed after"
            f" {_plural(state.attempts, 'attempt')}: {what}; {hint}",
            request,
            route,
            state.attempts,
            status,
            response,
        )

    def _not_json_error(
        self,
        request: requests.PreparedRequest,
        route: Route | None,
        response: requests.Response,
        state: _SendState,
    ) -> NotJsonError:
        resource = route.resource if route else "?"
        url = self.mask_url(request.url)
        status = response.status_code
        content_type = response.headers.get("Content-Type") or "none"
        where = f"{self.source}: resource {resource}: {request.method} {url}"
        if not response.content:
            message = (
                f"{where} answered HTTP {status} with an empty body, not JSON (after"
                f" {_plural(state.attempts, 'attempt')}); if it means 'no data', add"
                f" response_actions: [{{status_code: {status}, action: ignore}}] to the resource"
            )
        else:
            message = (
                f"{where} answered HTTP {status} with Content-Type {content_type!r}, not JSON"
                f" (after {_plural(state.attempts, 'attempt')}); the body starts with"
                f" {self._snippet(response)!r}; the API may be down for maintenance or behind"
                " a proxy or login page"
            )
        return self._failure(
            NotJsonError, message, request, route, state.attempts, status, response
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> RestsyncSession:
        # dlt deep-copies the config (incl. client.session) during validation; share it
        return self

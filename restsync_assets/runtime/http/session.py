"""A ``requests.Session`` with per-resource retry policies, for dlt's ``rest_api_source``.

dlt's ``rest_api`` takes one session per source (``client.session``). Each request names the
resource it belongs to: restsync gives every resource its own auth object
(:class:`ResourceAuth`, wrapping the source's or the endpoint's auth), which dlt applies to
each request of that resource (the first page and every next page, whatever its URL) and
which tags the request with a :class:`ResourceTag` hook. :class:`RestsyncSession` reads that
tag to pick the resource's :class:`Route`: its retry policy, body format and page checks. No
URL is matched against a path: a next-page link to another path (``export-2.jsonl.gz``) keeps
its resource, and resources sharing one path (GraphQL) keep theirs.

The session retries with :func:`restsync_assets.runtime.http.retry.retrying` (statuses of the
policy, connection errors, timeouts, and 2xx pages that are not whole: cut short, without the
``data_selector`` path, short of their ``total``, see :mod:`.pages`; ``Retry-After`` or
backoff, capped). A resource's ``error_handler.response_rules`` judge each answer's content
first (:mod:`.response_rules`: retry, fail in one line, or ignore). It renews restsync's
OAuth2 or session token once on 401 and raises :class:`RequestFailedError` (with secrets
masked) when retries run out (:class:`IncompletePageError` for a page that never came
whole). Non-retryable responses
(404, 400, ...) go to dlt's hooks (``response_actions``, ``raise_for_status``) unchanged; an
HTTP error they raise becomes :class:`HttpStatusError` and a 2xx that is not JSON (an HTML
page, an empty body) :class:`NotJsonError`, both one line naming source, resource, masked
URL, status and attempts (texts in :mod:`restsync_assets.runtime.http.errors`).

With a :class:`~restsync_assets.runtime.http.rate_limit.RateLimiter` (``client.rate_limit``)
every request it sends (each attempt, retries and the resend after a 401 included) first waits
for a slot of the spec's budget and gives it back once answered.

``client.concurrency`` is a hard cap: every request on the wire holds one of its places
(``concurrency: auto``'s gate, whose level never exceeds it, or a semaphore of that many),
whichever thread sends it (dlt's, a read-ahead thread, the pages fetched ahead, the pool of
child jobs, an async job's polls). A place is held only while the request is on the wire
(budget wait included, never a retry's backoff nor the wait for another page or job; a
redirect is followed within it), so no holder ever waits for another thread or for itself:
the cap cannot deadlock. A streamed body (an async job's download) is read after its place
is given back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
from dlt.sources.helpers.rest_client.auth import AuthConfigBase
from requests.adapters import HTTPAdapter
from requests.hooks import default_hooks, dispatch_hook
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies
from tenacity import RetryCallState

from restsync_assets.errors import RestsyncError
from restsync_assets.runtime.ordered_jobs import JobPool

from . import errors
from .concurrency import AdaptiveConcurrency, Answer
from .errors import (
    HttpStatusError,
    IncompletePageError,
    NotJsonError,
    PageProblem,
    RequestFailedError,
    RequestFailure,
    ResponseRuleError,
)
from .masking import mask_text, mask_url
from .page_series import PageSeries, Prefetcher
from .pages import PageCheck, cut_short, describe_body
from .rate_limit import RateLimiter
from .renewable import RenewableAuth
from .response_rules import ResponseRules, matched_rule
from .retry import RETRYABLE_EXCEPTIONS, Clock, RetryPolicy, current_clock, retrying

__all__ = [
    "RequestCounts",
    "ResourceAuth",
    "ResourceTag",
    "RestsyncSession",
    "Route",
    "resource_of",
]

logger = logging.getLogger(__name__)

_Failure = TypeVar("_Failure", bound=RequestFailure)
#: what reading a body that is not in its format raises (gzip: OSError, EOFError)
_UNREADABLE = (ValueError, UnicodeDecodeError, OSError, EOFError)


@dataclass(frozen=True)
class Route:
    """How the session handles one resource's requests."""

    resource: str
    policy: RetryPolicy
    #: reads a successful body (content, URL) into what ``response.json()`` returns, for a
    #: resource whose bodies are not plain JSON (``endpoint.response_format``); None: JSON
    read_body: Callable[[bytes, str], Any] | None = None
    #: the resource's `error_handler.response_rules`, compiled; None: no rules
    rules: ResponseRules | None = None
    #: what makes a 2xx page of the resource not whole (see :mod:`.pages`); None: no check
    check: PageCheck | None = None
    #: how its pages are numbered, when the next page's URL does not depend on the body:
    #: its pages are then fetched ahead, `client.concurrency` at once (see :mod:`.page_series`)
    series: PageSeries | None = None


class RequestCounts:
    """Requests sent and retries per resource during one run (the session counts them, from
    whichever thread sends; a token request counts for no resource)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[str, int] = {}
        self._retries: dict[str, int] = {}
        self._totals: dict[str, tuple[str, int]] = {}

    def add(self, resource: str, attempts: int) -> None:
        """One request of `resource` answered (or given up) after `attempts` sends."""
        with self._lock:
            self._sent[resource] = self._sent.get(resource, 0) + max(attempts, 1)
            self._retries[resource] = self._retries.get(resource, 0) + max(attempts - 1, 0)

    def announce(self, resource: str, unit: str, total: int) -> None:
        """A page of `resource` says there are `total` rows or pages (`unit`) in all."""
        with self._lock:
            self._totals[resource] = (unit, total)

    def total(self, resource: str) -> tuple[str, int] | None:
        """("rows" | "pages", the number) the resource's pages last announced, or None."""
        return self._totals.get(resource)

    def requests(self, resource: str) -> int:
        """HTTP requests sent for `resource`, retries included."""
        return self._sent.get(resource, 0)

    def retries(self, resource: str) -> int:
        """Requests of `resource` sent again after a failed attempt."""
        return self._retries.get(resource, 0)


class ResourceTag:
    """A response hook that does nothing: it names the resource its request belongs to."""

    __slots__ = ("resource",)

    def __init__(self, resource: str) -> None:
        self.resource = resource

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        return None

    def __repr__(self) -> str:
        return f"ResourceTag({self.resource!r})"


def resource_of(request: requests.PreparedRequest) -> str | None:
    """The resource a request was tagged with (:class:`ResourceTag`); None when untagged."""
    for hook in (request.hooks or {}).get("response", ()):
        if isinstance(hook, ResourceTag):
            return hook.resource
    return None


class ResourceAuth(AuthConfigBase):
    """One resource's auth in dlt's ``rest_api``: tags each request with the resource, then
    applies ``auth`` (the source's or the endpoint's own; None: no auth).

    dlt's ``RESTClient`` applies a resource's auth to every request it sends for it, the
    next pages included, on whichever thread runs the resource, so the tag travels with the
    request (``requests`` copies hooks along redirects too).
    """

    def __init__(self, resource: str, auth: Any = None) -> None:
        self.resource = resource
        self.inner = auth
        self.__is_resolved__ = True

    def __call__(self, request: Any) -> Any:
        request.register_hook("response", ResourceTag(self.resource))
        return self.inner(request) if self.inner is not None else request

    def __deepcopy__(self, memo: dict[int, Any]) -> ResourceAuth:
        # dlt deep-copies the config (with each endpoint's auth) to validate it: share it
        return self


def _check_page(
    request: requests.PreparedRequest, route: Route | None, response: requests.Response
) -> None:
    """Raise :class:`PageProblem` (retried) for a 2xx page that is not whole: cut short, or
    failing its resource's :class:`PageCheck`. A page the resource's ``response_actions``
    ignore, and a body that is simply not JSON (an HTML page: reported once the hooks ran),
    pass."""
    if not 200 <= response.status_code < 300 or request.method == "HEAD":
        return
    check = route.check if route else None
    if check is not None and check.ignored(response):
        return
    try:
        body = _parse(response, route)
    except _UNREADABLE as error:
        if cut_short(response.content, error):
            what = f"the body was cut short ({describe_body(response.content)})"
            raise PageProblem(what, response, cut=True) from None
        return
    problem = check.problem(response, body) if check is not None else None
    if problem is not None:
        raise PageProblem(problem, response)


@dataclass
class _SendState:
    attempts: int = 0
    refreshed: bool = False
    #: a page fetched ahead: whether nobody will take it any more (its attempts then stop)
    ended: Callable[[], bool] | None = None


class GuessDropped(RestsyncError, RuntimeError):
    """A page fetched ahead that nobody will take: its next attempt is not sent (never shown:
    the page's scan ended before it)."""

    kind = "api"


def _lease(timeout: Any) -> float:
    """How long a request may take to reach the server: its connect plus read timeout."""
    if isinstance(timeout, (int, float)):
        return 2.0 * timeout
    if isinstance(timeout, tuple):
        return float(sum(t for t in timeout if t is not None))
    return 120.0


def _parse(response: requests.Response, route: Route | None) -> Any:
    """The body in the route's format (JSON unless the route reads it), parsed once and kept
    as ``response.json()``; raises what the reader raises (one of ``_UNREADABLE``)."""
    if "json" in vars(response):
        return response.json()
    if route is None or route.read_body is None:
        try:
            parsed = orjson.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            parsed = json.loads(response.content)  # what orjson refuses: integers > 64 bits
    else:
        parsed = route.read_body(response.content, response.url)
    response.json = lambda **_kwargs: parsed  # type: ignore[method-assign]
    return parsed


def _body(result: tuple[requests.Response, _SendState]) -> Any:
    """The parsed body of a page fetched by the session (None unless a parsed 2xx)."""
    response = result[0]
    if not 200 <= response.status_code < 300 or "json" not in vars(response):
        return None
    try:
        return response.json()
    except _UNREADABLE:
        return None


def _is_parsed(response: requests.Response, route: Route | None) -> bool:
    """True when the body is in the route's format; the parse is kept as ``response.json()``
    (dlt reads it two or three times per page)."""
    try:
        _parse(response, route)
    except _UNREADABLE:
        return False
    return True


class RestsyncSession(requests.Session):
    """Session for one source; use as ``client.session`` in dlt's ``rest_api_source``.

    Args:
        source: source name, used in messages.
        base_url: the source's base URL.
        routes: one :class:`Route` per resource with its own policy.
        default_policy: policy of a request no resource tagged (and of a resource without a
            route).
        auth: restsync's OAuth2 or session auth (a :class:`RenewableAuth`) whose token is
            renewed once when a request it authorized gets a 401. Also pass the same instance
            as ``client.auth``; the session does not apply
            it to requests by itself.
        secrets: returns secret values to mask in messages (``auth.secrets()`` is added).
        clock: sleeps between retries, dates ``Retry-After`` and times answers for
            ``concurrency: auto`` (default: :data:`retry.CLOCK`,
            looked up at each wait so tests can swap it).
        rate_limiter: the spec's shared request budget; each request sent waits for a slot.
        counts: where each request of a resource is counted (:class:`RequestCounts`).
        concurrency: `client.concurrency`: at most this many requests on the wire at once;
            pages of a route with a `series` are fetched up to this many ahead (1: one after
            another).
        adaptive: `client.concurrency: auto`'s gate; every request passes it (it then holds
            the cap), and it sets how many pages are fetched ahead (`concurrency` is then its
            ceiling).
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
        counts: RequestCounts | None = None,
        concurrency: int = 1,
        adaptive: AdaptiveConcurrency | None = None,
    ) -> None:
        super().__init__()
        self.counts = counts if counts is not None else RequestCounts()
        self.source = source
        self.base_url = base_url
        self.default_policy = default_policy
        self.routes = {route.resource: route for route in routes}
        self._oauth = auth
        self._secrets = secrets
        self._clock = clock
        self.rate_limiter = rate_limiter
        self.adaptive = adaptive
        #: the places of `client.concurrency` (with `auto`, its gate holds them instead)
        self._places = threading.Semaphore(max(1, concurrency))
        #: `placed`: this thread's request holds a place (a redirect it follows takes none)
        self._thread = threading.local()
        window = adaptive.window if adaptive is not None else (lambda: concurrency)
        parallel = concurrency > 1 or adaptive is not None
        self.prefetcher = Prefetcher(concurrency, window, _body) if parallel else None
        #: the threads the source's children share (`ordered_jobs`)
        self.jobs = JobPool(concurrency, f"children-{source}") if parallel else None
        adapter = HTTPAdapter(pool_maxsize=max(50, 2 * concurrency))
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        #: the environment's proxies and CA bundle per origin (`merge_environment_settings`)
        self._environment: dict[tuple[str, str, Any], tuple[dict[str, str], str | None]] = {}

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        """requests' own, with the environment (proxies for the URL's scheme and host, the CA
        bundle) read once per origin per session: requests reads `os.environ` again on every
        request (about 0.6 ms, a third of a child call's CPU in benchmark P2), and nothing
        changes the environment during a run."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        found = self._environment.get(key)
        if found is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            found = self._environment[key] = (get_environ_proxies(url, no_proxy), bundle)
        env_proxies, bundle = found
        if proxies is not None:
            for name, value in env_proxies.items():
                proxies.setdefault(name, value)
        if (verify is True or verify is None) and bundle:
            verify = bundle
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }

    # --- routing ------------------------------------------------------------------------

    def route_of(self, request: requests.PreparedRequest) -> Route | None:
        """The route of the resource the request is tagged with (:class:`ResourceAuth`);
        None for an untagged request."""
        resource = resource_of(request)
        if resource is None:
            return None
        return self.routes.get(resource) or Route(resource, self.default_policy)

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
        route = self.route_of(request)
        policy = route.policy if route else self.default_policy
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = policy.timeout
        # hooks (dlt's raise_for_status, response_actions) must see the final response only,
        # not each attempt: a 503 would otherwise raise before it can be retried
        hooks, request.hooks = request.hooks, default_hooks()
        state: _SendState | None = None
        try:
            response, state = self._page(request, route, policy, kwargs)
        finally:
            request.hooks = hooks
            if route is not None and state is not None:  # a failed page raised its own error
                self.counts.add(route.resource, state.attempts)
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
            self._forget(request, route)
            # raised outside the `except`: requests' own error names the unmasked URL, and
            # dlt's trace (trace.pickle) records every `__context__`, even one `from None` hides
            raise failure
        ok = 200 <= response.status_code < 300 and request.method != "HEAD"
        if ok and not _is_parsed(response, route):
            raise self._not_json_error(request, route, response, state)
        return response

    def _page(
        self,
        request: requests.PreparedRequest,
        route: Route | None,
        policy: RetryPolicy,
        kwargs: dict[str, Any],
    ) -> tuple[requests.Response, _SendState]:
        """The answer to `request` (hooks not run yet): fetched ahead when its route's pages
        are numbered (raising the failure of that page, after the pages before it), else
        sent now; then the pages after it are asked for ahead of dlt."""
        series = route.series if route is not None and self.prefetcher is not None else None
        if series is None or kwargs.get("stream"):
            state = _SendState()
            return self._send_with_retries(request, route, policy, kwargs, state), state
        future = self.prefetcher.take(series, request)
        if future is not None:
            try:
                response, state = future.result()
            except BaseException:
                self._forget(request, route)
                raise
        else:
            state = _SendState()
            response = self._send_with_retries(request, route, policy, kwargs, state)

        def fetch(
            guess: requests.PreparedRequest, ended: Callable[[], bool]
        ) -> tuple[requests.Response, _SendState]:
            guess.hooks = default_hooks()
            guessed = _SendState(ended=ended)
            return self._send_with_retries(guess, route, policy, dict(kwargs), guessed), guessed

        self.prefetcher.fetched(series, request, (response, state), fetch)
        return response, state

    def _forget(self, request: requests.PreparedRequest, route: Route | None) -> None:
        """The request's page failed: its scan ends there, so drop the pages guessed after it."""
        if self.prefetcher is not None and route is not None and route.series is not None:
            self.prefetcher.forget(route.series, request)

    def close(self) -> None:
        """Drop the pages fetched ahead that nobody took, then close the connections."""
        if self.prefetcher is not None:
            self.prefetcher.close()
        if self.jobs is not None:
            self.jobs.close()
        super().close()

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
            retry_on=(*RETRYABLE_EXCEPTIONS, PageProblem),
            clock=self._clock,
        )
        return attempts(self._attempt, request, route, kwargs, state)

    def _attempt(
        self,
        request: requests.PreparedRequest,
        route: Route | None,
        kwargs: dict[str, Any],
        state: _SendState,
    ) -> requests.Response:
        if state.ended is not None and state.ended():
            raise GuessDropped(f"{self.source}: a page fetched ahead is no longer wanted")
        state.attempts += 1
        response = self._answer(request, kwargs, state)
        if kwargs.get("stream"):  # a streamed body is its caller's to read (and check)
            return response
        if not self._match_rules(route, response):
            # a response a rule matched is judged by the rule, not as a page
            _check_page(request, route, response)
            self._note_total(route, response)
        return response

    def _match_rules(self, route: Route | None, response: requests.Response) -> bool:
        """Attach the first of the resource's `response_rules` the response matches (read
        by the retry decision and :meth:`_apply_rule`); True when one matched."""
        if route is None or not route.rules:
            return False
        body = lambda: response.json() if _is_parsed(response, route) else None  # noqa: E731
        mask = lambda text: mask_text(text, self.secret_values())  # noqa: E731
        return route.rules.match(response, body, mask) is not None

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

    def _note_total(self, route: Route | None, response: requests.Response) -> None:
        """Count the total a page announces (progress shows the share done)."""
        check = route.check if route else None
        if check is None or check.total is None or not 200 <= response.status_code < 300:
            return
        try:
            announced = check.announced_total(_parse(response, route))
        except _UNREADABLE:
            return
        if announced is not None:
            self.counts.announce(route.resource, *announced)

    def _answer(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any], state: _SendState
    ) -> requests.Response:
        """One answer; a 401 to the OAuth token gets one refresh and resend."""
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
        """One request on the wire, inside a place of `client.concurrency` (with `auto`, of
        its gate); with a rate limit, inside a slot of the budget too."""
        if getattr(self._thread, "placed", False):
            # a redirect: requests' `Session.send` follows it through `self.send`, within the
            # place of the request it answers (waiting for another could wait forever)
            return self._within_budget(request, kwargs, None)
        self._thread.placed = True
        try:
            if self.adaptive is None:
                with self._places:
                    return self._within_budget(request, kwargs, None)
            with self.adaptive.request() as answer:
                return self._within_budget(request, kwargs, answer)
        finally:
            self._thread.placed = False

    def _within_budget(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any], answer: Answer | None
    ) -> requests.Response:
        if self.rate_limiter is None:
            return self._timed(request, kwargs, answer)
        lease = _lease(kwargs.get("timeout"))
        with self.rate_limiter.slot(lease=lease, path=self._endpoint_path(request)) as held:
            if answer is not None:
                answer.waited = held.waited > 0
            response = self._timed(request, kwargs, answer)
            held.answered(response)
            return response

    def _endpoint_path(self, request: requests.PreparedRequest) -> str:
        """The request's URL path as endpoints write it: relative to the base URL's path
        (budgets' `path` patterns match it)."""
        path = urlsplit(request.url or "").path
        base = urlsplit(self.base_url).path.rstrip("/")
        return path[len(base) :] if base and path.startswith(base + "/") else path

    def _timed(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any], answer: Answer | None
    ) -> requests.Response:
        if answer is None:
            return super().send(request, **kwargs)
        clock = current_clock(self._clock)  # the retry clock: tests inject theirs
        started = clock.time()
        response = super().send(request, **kwargs)
        answer.latency, answer.status = clock.time() - started, response.status_code
        return response

    # --- failures -----------------------------------------------------------------------

    def _where(self, request: requests.PreparedRequest, route: Route | None) -> str:
        resource = route.resource if route else "?"
        return f"{self.source}: resource {resource}: {request.method} {self.mask_url(request.url)}"

    def _give_up(
        self, state: RetryCallState, request: requests.PreparedRequest, route: Route | None
    ) -> requests.Response:
        attempts = state.attempt_number
        problem = state.outcome.exception() if state.outcome.failed else None
        if isinstance(problem, PageProblem):
            where = self._where(request, route)
            raise self._failure(
                IncompletePageError,
                errors.page_incomplete(where, attempts, problem, self.secret_values()),
                request,
                route,
                attempts,
                problem.response.status_code,
                problem.response,
            )
        what, status = errors.describe(state, self.secret_values())
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

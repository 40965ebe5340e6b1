"""Deterministic fault injection for the sandbox.

:class:`Sandbox` hands every request to ``sandbox.faults.handle(request, app, serve)`` after
the spec and route were resolved (``request.spec`` / ``request.resource`` are set when they
matched; ``"oauth"`` is the token endpoint). The default :class:`FaultPlan` injects nothing.

A plan is a list of :class:`Fault` rules. Each rule counts the requests it matches (spec,
resource, method, optional predicate) and fires on the ``nth`` of them (an int or a
collection of 1-based ordinals) or on every ``every``-th one, at most ``limit`` times. The
counts only depend on the order of the requests of the matched route, so a run against the
same plan fails the same way every time::

    plan = FaultPlan(
        Fault("rate_limit", "ledger", "resource_name", nth=2, retry_after=7),
        Fault("status", "ledger", "resource_name", nth=(3, 4, 5), status=503),  # a burst
        Fault("token_down", "ledger", "oauth", nth=(1, 2)),
    )
    sandbox.faults = plan            # or Sandbox(faults=plan)

Kinds and their options (``Fault(kind, spec, resource, ..., **options)``):

===================== ====================================================================
kind                  effect
===================== ====================================================================
rate_limit            429; ``retry_after``: seconds (int), ``None`` = no header;
                      ``retry_after_format``: ``"seconds"`` or ``"http-date"``
status                ``status`` (500, 502, 503, 504, 404, 204, ...); optional ``retry_after``
                      and ``body`` (a JSON value or a function of the request)
token_down            the token endpoint answers ``status`` (default 503)
reset                 headers and ``after_bytes`` (default: half) of the body, then a TCP RST
slow                  the answer is sent after ``seconds`` (default 5), or as soon as the
                      ``until`` event (a ``threading.Event``) is set
revoke_token          the spec's access tokens are revoked before their stated expiry, so the
                      request gets 401 ``invalid_token``
rotate_refresh_token  a refresh-token grant answers with a new refresh token; the one used
                      stops working
repeat_cursor         ``paging.next_link`` points at the page just served (a cursor loop);
                      on a GraphQL search page, ``endCursor`` is the cursor the request sent
total, has_more       ``mode``: ``"missing"``, ``"null"``, ``"string"`` (the right value as a
                      string) or ``"garbage"`` (an unparseable string)
html                  status 200 with an HTML maintenance page
error_body            status 200 (or ``status``) with a JSON error body and no records, as
                      many APIs answer during an outage; ``body`` replaces the default
                      ``{"error": {"code": "backend_unavailable", ...}}``
truncated             the answer's body cut short after ``after_bytes`` (default: half),
                      its ``Content-Length`` the cut length: well framed, but not whole
empty_page            the page's records are ``[]``
null_page             the page's records are ``null``
shift_rows            before serving, ``count`` new rows are inserted at the front of the
                      resource's table (``mode="insert"``) or removed from it
                      (``mode="delete"``): rows shift between offset pages
duplicate_pk          the page's first record appears twice (identical)
null_pk               the primary key ``field`` (default ``id``) of record ``index`` is null
type_change           ``field`` of every record of the page is turned into a string
                      (``to="string"``), a number (``to="number"``) or ``to(value)``
new_field             every record of the page gets ``name`` = ``value`` (a constant or a
                      function of the row)
enforce_rate          at most ``requests`` per fixed window of ``per`` seconds (default 1,
                      by the plan's clock) per ``Authorization``; beyond it 429 with
                      ``Retry-After`` (whole seconds to the window's end); ``headers``:
                      ``"x"`` (``X-RateLimit-Remaining``/``-Reset``, seconds), ``"ietf"``
                      (``RateLimit: "default";r=N;t=S`` and ``RateLimit-Policy``) or None.
                      ``fired`` counts the 429s, ``served`` the requests let through
===================== ====================================================================

The request log (:attr:`Sandbox.requests`) names the faults each request got.
:func:`demo_plan` is the mix used by ``restsync demo --faults``.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Collection
from email.utils import formatdate
from typing import Any
from urllib.parse import urlencode

from . import graphql
from .models import IncomingRequest, Response

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan", "demo_plan"]

#: Faults answered instead of the normal response.
_REPLACING = {"rate_limit", "status", "token_down", "html", "error_body"}
#: Faults applied to the state before the request is served.
_BEFORE = {"revoke_token", "rotate_refresh_token", "shift_rows"}
#: Faults applied to the JSON body of a normal 200 answer.
_BODY = {
    "repeat_cursor",
    "total",
    "has_more",
    "empty_page",
    "null_page",
    "duplicate_pk",
    "null_pk",
    "type_change",
    "new_field",
}
#: Faults in the transport.
_TRANSPORT = {"reset", "slow", "truncated"}
#: Faults that decide whether the request is served at all.
_GATES = {"enforce_rate"}
FAULT_KINDS = frozenset(_REPLACING | _BEFORE | _BODY | _TRANSPORT | _GATES)

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Service temporarily unavailable</title></head>"
    b"<body><h1>We'll be back soon</h1><p>Scheduled maintenance in progress.</p></body></html>\n"
)

#: the body of an `error_body` fault: an outage answered with 200 (no records)
ERROR_BODY = {"error": {"code": "backend_unavailable", "message": "the search backend timed out"}}


class Fault:
    """One deterministic fault rule; see the module docstring for kinds and options.

    ``nth``: the 1-based ordinals (among the requests this rule matches) that get the fault;
    ``every``: every ``every``-th matching request (the default when ``nth`` is not given is
    every request); ``limit``: inject at most that many times; ``when``: an extra predicate.
    """

    def __init__(
        self,
        kind: str,
        spec: str | None = None,
        resource: str | None = None,
        *,
        nth: int | Collection[int] | None = None,
        every: int | None = None,
        limit: int | None = None,
        method: str | None = None,
        when: Callable[[IncomingRequest], bool] | None = None,
        **options: Any,
    ) -> None:
        if kind not in FAULT_KINDS:
            known = ", ".join(sorted(FAULT_KINDS))
            raise ValueError(f"unknown fault kind {kind!r}; known: {known}")
        if nth is None and every is None:
            every = 1
        if every is not None and every < 1:
            raise ValueError("every must be >= 1")
        self.kind, self.spec, self.resource = kind, spec, resource
        self.nth = {nth} if isinstance(nth, int) else (set(nth) if nth is not None else None)
        self.every, self.limit, self.method, self.when = every, limit, method, when
        self.options = options
        self.matched = 0
        """Requests this rule matched so far."""
        self.fired = 0
        """Times this fault was injected so far."""
        self.served = 0
        """`enforce_rate`: requests let through."""
        self.windows: dict[str, tuple[int, int]] = {}

    def __repr__(self) -> str:
        where = "/".join(p for p in (self.spec, self.resource) if p) or "*"
        when = f"nth={sorted(self.nth)}" if self.nth else f"every={self.every}"
        return f"Fault({self.kind!r}, {where}, {when}, {self.options})"

    def matches(self, request: IncomingRequest) -> bool:
        if self.spec is not None and request.spec != self.spec:
            return False
        if self.resource is not None and request.resource != self.resource:
            return False
        if self.method is not None and request.method != self.method:
            return False
        return self.when is None or bool(self.when(request))

    def count(self, request: IncomingRequest) -> bool:
        """Count a matching request; True when the fault fires for it."""
        if not self.matches(request):
            return False
        self.matched += 1
        if self.limit is not None and self.fired >= self.limit:
            return False
        hit = (self.nth is not None and self.matched in self.nth) or (
            self.every is not None and self.matched % self.every == 0
        )
        if hit:
            self.fired += 1
        return hit


class FaultPlan:
    """The faults to inject; ``FaultPlan()`` injects none.

    ``clock`` (epoch seconds) dates ``Retry-After`` HTTP dates. Subclasses may still override
    :meth:`intercept` (return a :class:`Response` to answer instead of the sandbox).
    """

    def __init__(self, *faults: Fault, clock: Callable[[], float] = time.time) -> None:
        self.faults: list[Fault] = list(faults)
        self.clock = clock
        self._lock = threading.Lock()

    def add(
        self, kind: str, spec: str | None = None, resource: str | None = None, **kw: Any
    ) -> FaultPlan:
        """Append ``Fault(kind, spec, resource, **kw)``; returns the plan (chainable)."""
        self.faults.append(Fault(kind, spec, resource, **kw))
        return self

    def fired(self, kind: str | None = None) -> int:
        """How many times faults (of ``kind``) were injected so far."""
        return sum(f.fired for f in self.faults if kind is None or f.kind == kind)

    def intercept(self, request: IncomingRequest) -> Response | None:
        """Return an override response for ``request``, or ``None`` to serve it normally."""
        return None

    # ------------------------------------------------------------------ the request path

    def handle(self, request: IncomingRequest, app: Any, serve: Callable[[], Response]) -> Response:
        """Answer ``request``: ``serve()`` is the sandbox's normal answer."""
        override = self.intercept(request)
        if override is not None:
            return override
        with self._lock:
            firing = [f for f in self.faults if f.kind not in _GATES and f.count(request)]
        request.faults.extend(f.kind for f in firing)
        for fault in firing:
            if fault.kind in _BEFORE:
                self._before(fault, request, app)
        gates = [f for f in self.faults if f.kind in _GATES and f.matches(request)]
        limited, rate_headers = self._enforce(gates, request)
        if limited is not None:
            return limited
        replacing = next((f for f in firing if f.kind in _REPLACING), None)
        response = self._replacement(replacing, request) if replacing else serve()
        response.headers = {**response.headers, **rate_headers}
        if response.status == 200 and response.raw is None:
            body_faults = [f for f in firing if f.kind in _BODY]
            if body_faults:
                response.body = copy.deepcopy(response.body)
                for fault in body_faults:
                    self._transform(fault, request, response)
        for fault in firing:
            if fault.kind == "slow":
                response.delay = float(fault.options.get("seconds", 5.0))
                response.hold = fault.options.get("until")
            elif fault.kind == "reset":
                after = fault.options.get("after_bytes")
                response.reset_after = len(response.payload()) // 2 if after is None else after
            elif fault.kind == "truncated":
                payload, after = response.payload(), fault.options.get("after_bytes")
                response.raw = payload[: len(payload) // 2 if after is None else after]
        return response

    def _enforce(
        self, gates: list[Fault], request: IncomingRequest
    ) -> tuple[Response | None, dict[str, str]]:
        """`enforce_rate`: a 429 past the budget, else the headers stating what is left."""
        headers: dict[str, str] = {}
        for fault in gates:
            limit, per = int(fault.options["requests"]), float(fault.options.get("per", 1.0))
            now = self.clock()
            window = int(now // per)
            token = request.headers.get("authorization", "")
            with self._lock:
                seen, used = fault.windows.get(token, (window, 0))
                used = (used if seen == window else 0) + 1
                fault.windows[token] = (window, used)
                if used > limit:
                    fault.fired += 1
                else:
                    fault.served += 1
            reset = (window + 1) * per - now
            headers.update(_rate_headers(fault.options.get("headers"), limit, per, used, reset))
            if used > limit:
                request.faults.append(fault.kind)
                retry = {"Retry-After": str(max(1, math.ceil(reset)))}
                body = {"error": "rate_limited", "error_description": "slow down"}
                return Response(429, body, {**headers, **retry}), headers
        return None, headers

    def _before(self, fault: Fault, request: IncomingRequest, app: Any) -> None:
        if fault.kind == "revoke_token":
            app.tokens.revoke(request.spec)
        elif fault.kind == "rotate_refresh_token":
            request.rotate_refresh_token = True
        elif fault.kind == "shift_rows":
            count = int(fault.options.get("count", 1))
            if fault.options.get("mode", "insert") == "delete":
                app.delete_rows(request.spec, request.resource, 0, count)
            else:
                template = app.rows(request.spec, request.resource)[0]
                start = int(fault.options.get("first_id", 990_000)) + (fault.fired - 1) * count
                rows = [{**template, "id": start + i} for i in range(count)]
                app.insert_rows(request.spec, request.resource, rows, at=0)

    def _replacement(self, fault: Fault, request: IncomingRequest) -> Response:
        opts = fault.options
        if fault.kind == "html":
            return Response(200, None, raw=HTML_PAGE, content_type="text/html; charset=utf-8")
        if fault.kind == "error_body":
            body = opts.get("body", ERROR_BODY)
            body = body(request) if callable(body) else body
            return Response(int(opts.get("status", 200)), body)
        if fault.kind == "rate_limit":
            status, body = 429, {"error": "rate_limited", "error_description": "slow down"}
        elif fault.kind == "token_down":
            status = int(opts.get("status", 503))
            body = {"error": "temporarily_unavailable"}
        else:
            status = int(opts["status"])
            body = {"error": "injected_fault", "error_description": f"HTTP {status}"}
        if status == 404:
            body = {"error": "not_found", "error_description": "no such resource for this parent"}
        if "body" in opts:
            body = opts["body"](request) if callable(opts["body"]) else opts["body"]
        headers = {}
        retry_after = opts.get("retry_after")
        if retry_after is not None:
            if opts.get("retry_after_format", "seconds") == "http-date":
                headers["Retry-After"] = formatdate(self.clock() + float(retry_after), usegmt=True)
            else:
                headers["Retry-After"] = str(retry_after)
        return Response(status, None if status == 204 else body, headers)

    def _transform(self, fault: Fault, request: IncomingRequest, response: Response) -> None:
        body, opts, kind = response.body, fault.options, fault.kind
        if not isinstance(body, dict):
            return
        if kind == "repeat_cursor":
            if graphql.repeat_cursor(body, request):
                return
            if isinstance(body.get("paging"), dict) or opts.get("always"):
                host = request.headers.get("host", "127.0.0.1")
                query = f"?{urlencode(request.query)}" if request.query else ""
                body["paging"] = {"next_link": f"http://{host}{request.path}{query}"}
            return
        if kind in ("total", "has_more"):
            if kind not in body:
                return
            mode = opts.get("mode", "missing")
            if mode == "missing":
                del body[kind]
            elif mode == "null":
                body[kind] = None
            elif mode == "string":
                value = body[kind]
                body[kind] = str(value).lower() if isinstance(value, bool) else str(value)
            else:
                body[kind] = "n/a"
            return
        key = _records_key(body)
        if key is None:
            return
        if kind == "empty_page":
            body[key] = []
            return
        if kind == "null_page":
            body[key] = None
            return
        items = body[key]
        if kind == "duplicate_pk":
            if items:
                items.insert(1, copy.deepcopy(items[0]))
            return
        rows = [_unwrap(item) for item in items]
        if kind == "null_pk":
            index = int(opts.get("index", 0))
            if index < len(rows):
                rows[index][opts.get("field", "id")] = None
        elif kind == "type_change":
            name, to = opts["field"], opts.get("to", "string")
            convert = to if callable(to) else (str if to == "string" else _number)
            for row in rows:
                if name in row and row[name] is not None:
                    row[name] = convert(row[name])
        elif kind == "new_field":
            value = opts.get("value", "new")
            for row in rows:
                row[opts["name"]] = value(row) if callable(value) else value


def _rate_headers(style: str | None, limit: int, per: float, used: int, reset: float) -> dict:
    """The headers of an `enforce_rate` answer in `style` (None: none)."""
    left = max(0, limit - used)
    if style == "x":
        return {"X-RateLimit-Remaining": str(left), "X-RateLimit-Reset": f"{reset:.3f}"}
    if style == "ietf":
        return {
            "RateLimit": f'"default";r={left};t={max(0, math.ceil(reset))}',
            "RateLimit-Policy": f'"default";q={limit};w={max(1, math.ceil(per))}',
        }
    return {}


def _records_key(body: dict) -> str | None:
    """The envelope key holding the page's records (the first list, or a null ``data``)."""
    for key, value in body.items():
        if isinstance(value, list):
            return key
    for key in ("data", "results"):
        if key in body:
            return key
    return None


def _unwrap(item: Any) -> dict:
    """The row of an envelope item (marketing_api wraps each row: ``{"ad": {...}}``)."""
    if isinstance(item, dict) and "sub_request_status" in item:
        for value in item.values():
            if isinstance(value, dict):
                return value
    return item


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return len(str(value))


def demo_plan() -> FaultPlan:
    """A mix of survivable faults for ``restsync demo --faults``: every seed table still loads.

    Only faults the seed specs' ``error_handler`` (or restsync itself) survives: rate limits
    with every ``Retry-After`` form, 5xx bursts shorter than ``max_retries``, a connection
    reset, tokens revoked early, the token endpoint down twice, rotating refresh tokens,
    ``total`` / ``has_more`` in odd shapes, duplicate rows, a field changing type and new
    fields. marketing_api retries only 403 (as its seed says), so it gets a 403 instead of a
    5xx. Waits stay short (``Retry-After`` 0 or 1 where the spec would back off for seconds).
    """
    return FaultPlan(
        # ad_analytics: retries 429/5xx, 3 retries
        Fault("rate_limit", "ad_analytics", "accounts", nth=2, retry_after=0),
        Fault("rate_limit", "ad_analytics", "account_users", nth=1, retry_after=1),
        Fault("status", "ad_analytics", "account_users", nth=3, status=502, retry_after=0),
        Fault("total", "ad_analytics", "ad_campaign_analytics", nth=(1, 2), mode="string"),
        Fault("total", "ad_analytics", "ad_campaign_analytics", nth=3, mode="null"),
        Fault("new_field", "ad_analytics", "accounts", name="tier", value="gold"),
        # marketing_api: refresh token rotating on every use, token revoked mid-run, a reset
        Fault("rotate_refresh_token", "marketing_api", "oauth"),
        Fault("revoke_token", "marketing_api", "adaccounts", nth=4),
        Fault("reset", "marketing_api", "creatives", nth=5),
        Fault("status", "marketing_api", "organizations", nth=2, status=403, retry_after=0),
        Fault("duplicate_pk", "marketing_api", "ads", nth=(2, 3)),
        # native_ads: a 500 burst, a 503 with an HTTP-date Retry-After, a type change
        Fault("status", "native_ads", "campaigns", nth=(1, 2), status=500, retry_after=0),
        Fault(
            "status",
            "native_ads",
            "campaign_items",
            nth=3,
            status=503,
            retry_after=1,
            retry_after_format="http-date",
        ),
        Fault("type_change", "native_ads", "audiences", nth=4, field="size", to="string"),
        # ledger: token endpoint down twice, rotation, a 504 and a 429 without Retry-After
        Fault("token_down", "ledger", "oauth", nth=(1, 2), retry_after=0),
        Fault("rotate_refresh_token", "ledger", "oauth"),
        Fault("status", "ledger", "resource_name", nth=2, status=504, retry_after=0),
        Fault("rate_limit", "ledger", "resource_name", nth=4, retry_after=None),
        # workspace_docs: has_more in odd shapes (ignored by the spec), 503 and 429 with 0
        Fault("has_more", "workspace_docs", "pages", nth=1, mode="null"),
        Fault("has_more", "workspace_docs", "users", nth=1, mode="string"),
        Fault("status", "workspace_docs", "blocks", nth=(2, 3), status=503, retry_after=0),
        Fault("rate_limit", "workspace_docs", "databases", nth=1, retry_after=0),
        Fault("new_field", "workspace_docs", "users", nth=2, name="workspace_role", value="member"),
    )

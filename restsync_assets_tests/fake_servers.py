"""The fake HTTP servers, one of each kind, all on one stdlib handler (`FakeServer`).

- `FakeServer`: a threaded HTTP server on 127.0.0.1 whose `answer(method, target, headers,
  body)` gives each response as `(status, headers, payload)`, or `None` to drop the
  connection. The benchmark's API (`benchmarks/server.py`) is one, with keep-alive.
- `JsonApi`: a JSON API from a route table; every request is recorded, so tests can assert
  on what restsync asked for. Test modules bring their own data and handlers
  (`mock_api.BlogApi` is dlt's blog mock on it).
- `RatedPages`: a `JsonApi` handler serving pages behind fixed-window rate policies, stating
  them in the IETF `RateLimit` / `RateLimit-Policy` fields of the current or an older draft.
- `InFlight`: wraps `JsonApi` handlers to count the requests in flight at once, holding each
  long enough for the requests sent together to overlap.
- `RawApi`: answers with any status, headers and bytes (or drops the connection), for tests
  of the HTTP layer itself (`RawRequest`, `RawReply`, `sequence`, `DROP`).

Standard library only: the benchmarks import it in a process of their own. (The sandbox,
`restsync_assets.sandbox`, is the product's own fake API and keeps its own server.)
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

#: `answer(method, target, headers, body)` -> `(status, headers, payload)`, or None to close
#: the connection without a response. `target` is the request line's path and query.
Answer = Callable[
    [str, str, Mapping[str, str], bytes], "tuple[int, Mapping[str, str], bytes] | None"
]


@contextmanager
def serving(server: HTTPServer) -> Iterator[HTTPServer]:
    """Run a stdlib HTTP server on a daemon thread for the duration of the block."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _Handler(BaseHTTPRequestHandler):
    """Every method of every request to a `FakeServer`, answered by its `answer`."""

    server: FakeServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.server.answer(self.command, self.path, self.headers, body)
        if response is None:
            self.close_connection = True
            return
        status, headers, payload = response
        self.send_response(status)
        if "Content-Type" not in headers:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _KeepAliveHandler(_Handler):
    """HTTP/1.1 (connections kept open) without Nagle's delay: a client's throughput."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True


class FakeServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (`port` 0: a free one) answering through `answer`, one
    thread per connection; JSON unless the headers `answer` gives name another content type.
    `keep_alive`: HTTP/1.1 with keep-alive, as a production API serves (the benchmarks)."""

    daemon_threads = True

    def __init__(self, answer: Answer, port: int = 0, keep_alive: bool = False) -> None:
        super().__init__(("127.0.0.1", port), _KeepAliveHandler if keep_alive else _Handler)
        self.answer = answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


# --------------------------------------------------------------------------- the fake JSON API


@dataclass(frozen=True)
class Request:
    """One request the API received: `params` are the route's `{name}` segments."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    json: Any = None
    params: dict[str, str] = field(default_factory=dict)
    origin: str = ""

    def url(self, **query: Any) -> str:
        """This request's absolute URL with `query` as its query string."""
        return f"{self.origin}{self.path}?{urlencode(query)}"

    def number(self, name: str, default: int) -> int:
        return int(self.query.get(name, default))


@dataclass(frozen=True)
class Reply:
    """An answer other than `200` with a JSON body: a status, headers (204: no body)."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


#: `handler(request)` -> a JSON body, or a `Reply`.
Handler = Callable[[Request], Any]


class JsonApi:
    """A JSON API from a route table: `{"GET /repos/{id}/issues": handler}`.

    `{name}` in a route matches one path segment and reaches the handler as
    `request.params[name]`. `with api:` serves it on a free loopback port (`api.url`), on
    threads (concurrent clients see concurrent answers); an unknown route answers 404.
    """

    def __init__(self, routes: dict[str, Handler]):
        self.routes = [(_route_pattern(route), handler) for route, handler in routes.items()]
        self.calls: list[Request] = []
        self._lock = threading.Lock()
        self._running = ExitStack()
        self.url = ""

    def __enter__(self) -> JsonApi:
        server = self._running.enter_context(serving(FakeServer(self._respond)))
        self.url = server.url
        return self

    def __exit__(self, *exc: object) -> None:
        self._running.close()

    def calls_to(self, pattern: str) -> list[Request]:
        """The calls whose path fully matches the regular expression `pattern`."""
        with self._lock:
            return [c for c in self.calls if re.fullmatch(pattern, c.path)]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        request = Request(
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            json=json.loads(body) if body else None,
            origin=self.url,
        )
        with self._lock:
            self.calls.append(request)
        for pattern, handler in self.routes:
            match = pattern.fullmatch(f"{method} {parts.path}")
            if match:
                reply = handler(replace(request, params=match.groupdict()))
                return reply if isinstance(reply, Reply) else Reply(reply)
        return Reply({"error": f"no route for {method} {parts.path}"}, status=404)

    def _respond(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        reply = self.answer(method, target, headers, body)
        payload = b"" if reply.status == 204 else json.dumps(reply.body).encode()
        return reply.status, reply.headers, payload


def _route_pattern(route: str) -> re.Pattern[str]:
    literals = re.split(r"\{(\w+)\}", route)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(literals)
    )
    return re.compile(pattern)


def page_of(rows: list, query: Mapping[str, str], size: int) -> tuple[list, int, int]:
    """Rows of page `?page=N` (1-based) of `?per_page=` rows (default `size`), the page
    number and the page count."""
    size = int(query.get("per_page", size))
    number = int(query.get("page", 1))
    pages = max(1, -(-len(rows) // size))
    return rows[(number - 1) * size : number * size], number, pages


def page(rows: list[dict], query: Mapping[str, str], size: int) -> dict:
    """`rows` paged by `?page=N` as `{"data": [...], "page": N, "total_pages": K}`."""
    data, number, pages = page_of(rows, query, size)
    return {"data": data, "page": number, "total_pages": pages}


# --------------------------------------------------------------------------- a rate-limited API

#: the header styles `RatedPages` answers in (see its docstring)
RATE_STYLES = ("current", "policy_only", "older", "separate")


class RatedPages:
    """A `JsonApi` handler: `rows` in offset pages (`?offset=&limit=`, with `total`) behind
    fixed-window policies `(name, quota, window seconds)` by `clock` (epoch seconds). A request
    past any policy's quota draws 429 with `Retry-After`; every answer states the policies in
    `style` (draft-ietf-httpapi-ratelimit-headers):

    - `current`: `RateLimit-Policy: "burst";q=5;w=1, ...` and `RateLimit: "burst";r=4;t=1, ...`
    - `policy_only`: `RateLimit-Policy` alone (the client keeps the count itself)
    - `older`: `RateLimit-Policy: 5;w=1` and `RateLimit: limit=5, remaining=4, reset=1` (the
      first policy only, as older drafts)
    - `separate`: `RateLimit-Limit: 5, 5;w=1`, `RateLimit-Remaining`, `RateLimit-Reset` (the
      first policy only)

    `served` counts the pages answered, `rejected` the 429s.
    """

    def __init__(
        self,
        rows: list[dict],
        policies: list[tuple[str, int, float]],
        style: str,
        clock: Callable[[], float],
    ) -> None:
        assert style in RATE_STYLES, style
        self.rows, self.policies, self.style, self.clock = rows, policies, style, clock
        self.served = self.rejected = 0
        self._used: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        now = self.clock()
        windows = [(name, quota, per, int(now // per)) for name, quota, per in self.policies]
        with self._lock:
            used = [self._used.get((name, w), 0) + 1 for name, _q, _p, w in windows]
            over = [i for i, (_n, quota, _p, _w) in enumerate(windows) if used[i] > quota]
            if over:
                self.rejected += 1
                used = [u - 1 for u in used]
            else:
                self.served += 1
                for (name, _q, _p, w), count in zip(windows, used, strict=True):
                    self._used[(name, w)] = count
        counts = [
            (name, quota, per, max(0, quota - u), math.ceil((w + 1) * per - now))
            for (name, quota, per, w), u in zip(windows, used, strict=True)
        ]
        headers = self._headers(counts)
        if over:
            wait = max(counts[i][4] for i in over)
            return Reply({"error": "rate_limited"}, 429, {**headers, "Retry-After": str(wait)})
        offset, limit = request.number("offset", 0), request.number("limit", 10)
        body = {"data": self.rows[offset : offset + limit], "total": len(self.rows)}
        return Reply(body, 200, headers)

    def _headers(self, counts: list[tuple[str, int, float, int, int]]) -> dict[str, str]:
        _name, quota, per, left, reset = counts[0]
        if self.style == "older":
            return {
                "RateLimit-Policy": f"{quota};w={per:g}",
                "RateLimit": f"limit={quota}, remaining={left}, reset={reset}",
            }
        if self.style == "separate":
            return {
                "RateLimit-Limit": f"{quota}, {quota};w={per:g}",
                "RateLimit-Remaining": str(left),
                "RateLimit-Reset": str(reset),
            }
        policy = ", ".join(f'"{n}";q={q};w={p:g}' for n, q, p, _l, _r in counts)
        headers = {"RateLimit-Policy": policy}
        if self.style == "current":
            headers["RateLimit"] = ", ".join(f'"{n}";r={lf};t={r}' for n, _q, _p, lf, r in counts)
        return headers


# --------------------------------------------------------------------------- requests in flight


class InFlight:
    """Wraps `JsonApi` handlers (`InFlight(4, 0.2)(handler)`) to count the requests in flight
    at once: `most` is the highest count seen. Each request is held until more than `above`
    are in flight (then all held ones go on at once) or `hold` seconds passed (a bounded wait
    on a condition, never a sleep), so requests a client sends together overlap on the server
    and a client keeping more than `above` in flight shows it in `most`."""

    def __init__(self, above: int, hold: float) -> None:
        self.above, self.hold = above, hold
        self.now = self.most = 0
        self._cond = threading.Condition()

    def __call__(self, handler: Handler) -> Handler:
        def held(request: Request) -> Any:
            with self._cond:
                self.now += 1
                self.most = max(self.most, self.now)
                self._cond.notify_all()
                self._cond.wait_for(lambda: self.now > self.above, timeout=self.hold)
            try:
                return handler(request)
            finally:
                with self._cond:
                    self.now -= 1

        return held


# --------------------------------------------------------------------------- raw HTTP


@dataclass(frozen=True)
class RawRequest:
    """One request a `RawApi` received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    @property
    def form(self) -> dict[str, str]:
        """The body as a url-encoded form (the last value of each field)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}


@dataclass(frozen=True)
class RawReply:
    """What a `RawApi` answers: `body` bytes are sent as they are, anything else as JSON
    (`Content-Type: application/json` unless `headers` say otherwise)."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


#: An `app`'s answer that closes the connection without a response.
DROP = "drop"
#: `app(request)` -> a `RawReply`, or `DROP`.
App = Callable[[RawRequest], "RawReply | str"]


class RawApi:
    """An HTTP server on 127.0.0.1 whose `app` answers every method with any status, headers
    and body, or drops the connection; `requests` records what it received, in order."""

    def __init__(self, app: App | None = None) -> None:
        self.app: App = app or (lambda request: RawReply())
        self.requests: list[RawRequest] = []
        self.url = ""
        self._lock = threading.Lock()

    @contextmanager
    def running(self) -> Iterator[RawApi]:
        with serving(FakeServer(self._respond)) as server:
            self.url = server.url
            yield self

    def reset(self, app: App | None = None) -> RawApi:
        """Forget the requests and answer with `app` (default: `200 {}`) from now on."""
        with self._lock:
            self.requests.clear()
        self.app = app or (lambda request: RawReply())
        return self

    def calls(self, path: str) -> int:
        """How many requests went to `path`."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def record(self, request: RawRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _respond(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes] | None:
        parts = urlsplit(target)
        request = RawRequest(
            method,
            parts.path,
            {k: v[-1] for k, v in parse_qs(parts.query).items()},
            dict(headers),
            body,
        )
        self.record(request)
        reply = self.app(request)
        if reply == DROP:
            return None
        raw = isinstance(reply.body, bytes)
        return reply.status, reply.headers, reply.body if raw else json.dumps(reply.body).encode()


def sequence(*replies: RawReply | str) -> App:
    """An `app` answering with `replies` in order, then the last one again and again."""
    queue = list(replies)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]

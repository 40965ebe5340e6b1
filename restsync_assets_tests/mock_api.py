"""A small fake JSON API on 127.0.0.1, modelled on dlt's own rest_api test mock.

`MockApi` is generic: a route table of `(method, path regex, handler)`; a handler takes a
`Request` and returns a `Reply` (or a JSON body). `blog_routes` is the blog of dlt's tests
(posts, comments per post, users with nested lists, ...) with every kind of pagination dlt
ships. `BlogApi` serves a `Blog` whose data can `grow()` between runs (new and updated
rows), so incremental loads have something to pick up.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .conftest import serving

# --------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    json: Any
    groups: tuple[str, ...]
    origin: str

    def url(self, **query: Any) -> str:
        """This request's absolute URL with `query` as its query string."""
        return f"{self.origin}{self.path}?{urlencode(query)}"

    def number(self, name: str, default: int) -> int:
        return int(self.query.get(name, default))


@dataclass(frozen=True)
class Reply:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Any]


class MockApi:
    """Serve a route table on a free loopback port; `with MockApi(routes) as api: api.url`."""

    def __init__(self, routes: list[tuple[str, str, Handler]]):
        self.routes = [(m, re.compile(p), h) for m, p, h in routes]
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.url = ""

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        with self._lock:
            self.requests.append((method, target))
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(parts.path)
            if route_method == method and match:
                request = Request(
                    method=method,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query)),
                    headers=headers,
                    json=json.loads(body) if body else None,
                    groups=match.groups(),
                    origin=self.url,
                )
                reply = handler(request)
                return reply if isinstance(reply, Reply) else Reply(reply)
        return Reply({"error": f"no route for {method} {parts.path}"}, status=404)

    @contextmanager
    def running(self) -> Iterator[MockApi]:
        api = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                reply = api.handle(self.command, self.path, self.headers, self.rfile.read(length))
                payload = b"" if reply.status == 204 else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        with serving(server):
            yield self

    def __enter__(self) -> MockApi:
        self._running = self.running()
        return self._running.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._running.__exit__(*exc)


# --------------------------------------------------------------------------- the blog's data

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def stamp(hours: float) -> str:
    """The mock's timestamps: ISO 8601 in UTC, `hours` after 2024-01-01."""
    return (START + timedelta(hours=hours)).strftime(STAMP_FORMAT)


class Blog:
    """The blog's rows, in memory. Every collection is a list of JSON-ready dicts."""

    def __init__(self) -> None:
        self.posts = [self._post(i) for i in range(1, 13)]
        # later posts get older comments: a cursor shared by all posts skips them (dlt #2429)
        self.comments = [
            {
                "id": 100 * p + j,
                "post_id": p,
                "body": f"Comment {j} on {p}",
                "created_at": stamp(24 * (13 - p) + j),
            }
            for p in range(1, 13)
            for j in range(p % 4)
        ]
        self.users = [self._user(i) for i in range(1, 7)]
        self.repos = [
            {"id": i, "org": org, "name": f"{org}-repo-{i}", "stars": i * 7}
            for i, org in enumerate(["acme"] * 4 + ["globex"] * 2, start=1)
        ]
        self.issues = [
            {"id": 10 * r + k, "repo_id": r, "title": f"Issue {k} of repo {r}"}
            for r in range(1, 7)
            for k in range(r % 3)
        ]
        self.events = [self._event(i, hours=i) for i in range(1, 21)]
        self.measurements = [
            {
                "id": i,
                "value": None if i % 17 == 0 else i * 0.25,
                "ok": i % 3 == 0,
                "label": f"m{i}",
                "taken_at": stamp(i / 4),
            }
            for i in range(1, 121)
        ]

    @staticmethod
    def _post(i: int) -> dict[str, Any]:
        return {"id": i, "title": f"Post {i}", "user_id": 1 + i % 6, "created_at": stamp(i)}

    @staticmethod
    def _user(i: int) -> dict[str, Any]:
        return {
            "id": i,
            "name": f"User {i}",
            "profile": {"age": 20 + i, "tags": [f"t{k}" for k in range(i % 3)]},
            "addresses": [{"city": f"City {i}-{k}", "zip": 1000 * i + k} for k in range(i % 3)],
        }

    @staticmethod
    def _event(i: int, hours: float) -> dict[str, Any]:
        return {"id": i, "kind": ["view", "click"][i % 2], "updated_at": stamp(hours)}

    def grow(self) -> None:
        """New posts, comments newer than any before (on old and new posts), new and updated events."""
        self.posts += [self._post(i) for i in range(13, 16)]
        late = 24 * 20
        self.comments += [
            {
                "id": 100 * p + 50,
                "post_id": p,
                "body": f"Late comment on {p}",
                "created_at": stamp(late - p),
            }
            for p in (1, 2, 4, 7, 13)
        ]
        for event in self.events[::5]:
            event.update(kind="edited", updated_at=stamp(40 + event["id"]))
        self.events += [self._event(i, hours=30 + i) for i in range(21, 25)]
        self.events.sort(key=lambda e: e["updated_at"])

    def rows(self, collection: str) -> list[dict[str, Any]]:
        return getattr(self, collection)


# --------------------------------------------------------------------------- the blog's routes


def page_of(request: Request, rows: list, per_page: int = 5) -> tuple[list, int, int]:
    """Rows of page `?page=` (1-based, `?per_page=`), the page number and the page count."""
    size = request.number("per_page", per_page)
    page = request.number("page", 1)
    pages = max(1, -(-len(rows) // size))
    return rows[(page - 1) * size : page * size], page, pages


def numbered(request: Request, rows: list, per_page: int = 5, key: str = "data") -> dict:
    """dlt's mock page: `{data, page, total_pages, next_page}` (next_page an absolute URL)."""
    data, page, pages = page_of(request, rows, per_page)
    following = request.url(**{**request.query, "page": page + 1}) if page < pages else None
    return {key: data, "page": page, "total_pages": pages, "next_page": following}


def window(request: Request, rows: list, field_name: str) -> list:
    """Rows with `since <= row[field] < until` (both query params optional)."""
    since, until = request.query.get("since"), request.query.get("until")
    return [
        r
        for r in rows
        if (since is None or r[field_name] >= since) and (until is None or r[field_name] < until)
    ]


def blog_routes(blog: Blog) -> list[tuple[str, str, Handler]]:
    def post_id(request: Request) -> int:
        return int(request.groups[0])

    def comments_of(pid: Any) -> list:
        return [c for c in blog.comments if c["post_id"] == int(pid)]

    def header_link(request: Request) -> Reply:
        data, page, pages = page_of(request, blog.posts)
        following = request.url(page=page + 1)
        return Reply(data, headers={"Link": f'<{following}>; rel="next"'} if page < pages else {})

    def header_cursor(request: Request) -> Reply:
        data, page, pages = page_of(request, blog.posts, per_page=4)
        return Reply(data, headers={"next_cursor": str(page + 1)} if page < pages else {})

    def offset(request: Request) -> dict:
        start, limit = request.number("offset", 0), request.number("limit", 10)
        return {"items": blog.posts[start : start + limit], "total": len(blog.posts)}

    def cursor(request: Request) -> dict:
        start = int(request.query.get("cursor", "c0")[1:])
        end = start + 4
        following = f"c{end}" if end < len(blog.posts) else None
        return {"results": blog.posts[start:end], "cursors": {"next": following}}

    def auto(request: Request) -> dict:
        page = numbered(request, blog.posts, per_page=4)
        return {"items": page["data"], "links": {"next": {"href": page["next_page"]}}}

    def search(request: Request) -> dict:
        body = request.json or {}
        rows = [p for p in blog.posts if p["id"] >= body.get("filter", {}).get("min_id", 0)]
        size, page = body.get("page_size", 5), body.get("page", 1)
        return {"data": rows[(page - 1) * size : page * size], "total_pages": -(-len(rows) // size)}

    def details_404(request: Request) -> Reply:
        pid = post_id(request)
        if pid % 2 == 0:
            return Reply({"error": f"post {pid} has no details"}, status=404)
        return Reply({"post_id": pid, "details": f"Details of {pid}"})

    def status(request: Request) -> dict:
        pid = post_id(request)
        if pid % 3 == 0:
            return {"error": f"post {pid} is archived"}
        return {"post_id": pid, "status": "live"}

    def repos(request: Request) -> Reply:
        if "org" in request.query:  # a path param must not leak into the query (dlt pops it)
            return Reply({"error": "unexpected query param org"}, status=400)
        rows = [r for r in blog.repos if r["org"] == request.groups[0]]
        if not rows:
            return Reply({"error": "no such org"}, status=404)
        return Reply(numbered(request, rows, per_page=3))

    def wrapped(request: Request) -> dict:
        posts = blog.posts[:6]
        return {
            "payload": {"records": posts},
            "many-results": posts,
            "nested": [{"post": p} for p in posts],
        }

    def reactions(request: Request) -> list:
        return [
            {
                **p,
                "reactions": [
                    {"id": 10 * p["id"] + k, "emoji": ":+1:", "by": list(range(1, k + 2))}
                    for k in range(p["id"] % 3)
                ],
            }
            for p in blog.posts
        ]

    return [
        ("GET", r"/api/posts", lambda r: numbered(r, blog.posts)),
        ("GET", r"/api/posts_header_link", header_link),
        ("GET", r"/api/posts_header_cursor", header_cursor),
        ("GET", r"/api/posts_offset", offset),
        ("GET", r"/api/posts_cursor", cursor),
        ("GET", r"/api/posts_auto", auto),
        ("GET", r"/api/posts_with_reactions", reactions),
        ("POST", r"/api/posts/search", search),
        ("GET", r"/api/posts/(\d+)", lambda r: {"id": post_id(r), "body": f"Body of {post_id(r)}"}),
        (
            "GET",
            r"/api/posts/(\d+)/comments",
            lambda r: numbered(r, window(r, comments_of(post_id(r)), "created_at"), per_page=2),
        ),
        ("GET", r"/api/posts/(\d+)/details_404", details_404),
        ("GET", r"/api/posts/(\d+)/status", status),
        ("GET", r"/api/post_comments", lambda r: {"data": comments_of(r.query["post_id"])}),
        (
            "GET",
            r"/api/post_comments_via_headers",
            lambda r: {"data": comments_of(r.headers["post_id"])},
        ),
        ("POST", r"/api/post_comments", lambda r: {"data": comments_of(r.json["post_id"])}),
        ("GET", r"/api/users", lambda r: {"users": blog.users, "meta": {"count": 6}}),
        ("GET", r"/api/orgs/(\w+)/repos", repos),
        (
            "GET",
            r"/api/orgs/(\w+)/repos/(\d+)/issues",
            lambda r: [i for i in blog.issues if i["repo_id"] == int(r.groups[1])],
        ),
        (
            "GET",
            r"/api/events",
            lambda r: numbered(r, window(r, blog.events, "updated_at"), per_page=6),
        ),
        ("GET", r"/api/measurements", lambda r: blog.measurements),
        ("GET", r"/api/wrapped", wrapped),
    ]


class BlogApi(MockApi):
    """The blog API: `with BlogApi() as api:` serves it; `api.blog` holds its data."""

    def __init__(self, blog: Blog | None = None):
        self.blog = blog or Blog()
        super().__init__(blog_routes(self.blog))

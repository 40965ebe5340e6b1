"""dlt's own rest_api test mock, the blog, on the tests' one fake JSON API (`fake_servers.JsonApi`).

`blog_routes` is the blog of dlt's tests (posts, comments per post, users with nested lists,
...) with every kind of pagination dlt ships. `BlogApi` serves a `Blog` whose data can
`grow()` between runs (new and updated rows), so incremental loads have something to pick up.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from .fake_servers import Handler, JsonApi, Reply, Request, page_of
from .support import STAMP_FORMAT

# --------------------------------------------------------------------------- the blog's data

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


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


def numbered(request: Request, rows: list, per_page: int = 5, key: str = "data") -> dict:
    """dlt's mock page: `{data, page, total_pages, next_page}` (next_page an absolute URL)."""
    data, page, pages = page_of(rows, request.query, per_page)
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


def blog_routes(blog: Blog) -> dict[str, Handler]:
    def post_id(request: Request) -> int:
        return int(request.params["id"])

    def comments_of(pid: Any) -> list:
        return [c for c in blog.comments if c["post_id"] == int(pid)]

    def header_link(request: Request) -> Reply:
        data, page, pages = page_of(blog.posts, request.query, 5)
        following = request.url(page=page + 1)
        return Reply(data, headers={"Link": f'<{following}>; rel="next"'} if page < pages else {})

    def header_cursor(request: Request) -> Reply:
        data, page, pages = page_of(blog.posts, request.query, 4)
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
        rows = [r for r in blog.repos if r["org"] == request.params["org"]]
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

    return {
        "GET /api/posts": lambda r: numbered(r, blog.posts),
        "GET /api/posts_header_link": header_link,
        "GET /api/posts_header_cursor": header_cursor,
        "GET /api/posts_offset": offset,
        "GET /api/posts_cursor": cursor,
        "GET /api/posts_auto": auto,
        "GET /api/posts_with_reactions": reactions,
        "POST /api/posts/search": search,
        "GET /api/posts/{id}": lambda r: {"id": post_id(r), "body": f"Body of {post_id(r)}"},
        "GET /api/posts/{id}/comments": lambda r: numbered(
            r, window(r, comments_of(post_id(r)), "created_at"), per_page=2
        ),
        "GET /api/posts/{id}/details_404": details_404,
        "GET /api/posts/{id}/status": status,
        "GET /api/post_comments": lambda r: {"data": comments_of(r.query["post_id"])},
        "GET /api/post_comments_via_headers": lambda r: {"data": comments_of(r.headers["post_id"])},
        "POST /api/post_comments": lambda r: {"data": comments_of(r.json["post_id"])},
        "GET /api/users": lambda r: {"users": blog.users, "meta": {"count": 6}},
        "GET /api/orgs/{org}/repos": repos,
        "GET /api/orgs/{org}/repos/{repo_id}/issues": lambda r: [
            i for i in blog.issues if i["repo_id"] == int(r.params["repo_id"])
        ],
        "GET /api/events": lambda r: numbered(r, window(r, blog.events, "updated_at"), per_page=6),
        "GET /api/measurements": lambda r: blog.measurements,
        "GET /api/wrapped": wrapped,
    }


class BlogApi(JsonApi):
    """The blog API: `with BlogApi() as api:` serves it; `api.blog` holds its data."""

    def __init__(self, blog: Blog | None = None):
        self.blog = blog or Blog()
        super().__init__(blog_routes(self.blog))

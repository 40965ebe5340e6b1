"""`client.concurrency: N` is a hard cap: at most N requests of one source in flight at once,
whatever sends them (a top-level resource's pages read and fetched ahead, a parent's pages,
its children on the session's pool), and N are reached (the cap does not serialise).

The fake API holds every request until more than N are in flight or `HOLD` seconds passed
(`fake_servers.InFlight`), so requests sent together overlap there. Each run is bounded by
`DEADLINE` on a thread of its own: a cap whose slots the pool's jobs and the parents' pages
waited on in a cycle would fail the test instead of hanging it; so would a redirect (followed
by `requests` through the session's own `send`) waiting for the place its request holds.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from restsync_assets.runtime.http.concurrency import AdaptiveConcurrency
from restsync_assets.runtime.http.retry import RetryPolicy
from restsync_assets.runtime.http.session import RestsyncSession

from .fake_servers import InFlight, JsonApi, RawApi, RawReply, RawRequest
from .support import use_specs, use_warehouse, write_spec

#: how long the fake API holds a request that is not yet one too many (a bound, not a sleep)
HOLD = 0.2
#: a run (or a request) not done by then is stuck (a run takes a few seconds at concurrency 1)
DEADLINE = 60.0

USERS = [{"id": u, "name": f"user {u}"} for u in range(1, 11)]
POSTS = {u["id"]: [{"id": 100 * u["id"] + k, "title": f"post {k}"} for k in (1, 2)] for u in USERS}
ITEMS = [{"id": i, "label": f"item {i}"} for i in range(1, 11)]
PAGE = 2  # users: 5 pages, posts: 10 child calls, items: 5 pages


def offset_pages(rows: list[dict]) -> Any:
    def answer(request: Any) -> Any:
        offset, limit = request.number("offset", 0), request.number("limit", PAGE)
        return {"data": rows[offset : offset + limit], "total": len(rows)}

    return answer


def posts_of(request: Any) -> Any:
    return {"data": POSTS[int(request.params["user"])]}


def spec_at(concurrency: int) -> dict:
    """A paginated parent (users) with a child fetched per parent (posts), and a paginated
    top-level resource without children (items, read ahead on a thread of its own)."""
    offset = {"type": "offset", "limit": PAGE}

    def resource(name: str, path: str, paginator: Any) -> dict:
        endpoint = {"path": path, "data_selector": "data", "paginator": paginator}
        return {"name": name, "primary_key": "id", "endpoint": endpoint}

    return {
        "name": "capped",
        "client": {"base_url": "http://unused", "concurrency": concurrency},
        "resources": [
            resource("users", "/users", offset),
            resource("posts", "/users/{resources.users.id}/posts", "single_page"),
            resource("items", "/items", offset),
        ],
    }


def load_within_deadline(tmp_path: Path, monkeypatch, spec: dict, crowd: InFlight) -> Path:
    """Run the spec's source through restsync's pipeline into DuckDB on a thread of its own;
    fail if it is not done within `DEADLINE` (a deadlock) or raised."""
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.runtime.destination import build_pipeline
    from restsync_assets.runtime.source import build_source, finish
    from restsync_assets.specs import load_specs

    api = JsonApi(
        {
            "GET /users": crowd(offset_pages(USERS)),
            "GET /users/{user}/posts": crowd(posts_of),
            "GET /items": crowd(offset_pages(ITEMS)),
        }
    )
    failures: list[BaseException] = []
    with api:
        specs = write_spec(tmp_path / "specs", spec).parent
        use_specs(monkeypatch, specs, {spec["name"]: api.url})
        db = use_warehouse(monkeypatch, tmp_path / "warehouse.duckdb", tmp_path / "pipelines")
        (loaded,) = load_specs(specs)
        credentials = ApiCredentials(source=loaded.name).resolve()

        def run() -> None:
            try:
                source = build_source(loaded, credentials)
                try:
                    build_pipeline(loaded).run(source)
                finally:
                    finish(source)
            except BaseException as error:  # reported by the test's thread
                failures.append(error)

        thread = threading.Thread(target=run, name="capped-run", daemon=True)
        thread.start()
        thread.join(DEADLINE)
        assert not thread.is_alive(), (
            f"the run at concurrency {spec['client']['concurrency']} did not end within"
            f" {DEADLINE} s (requests in flight: {crowd.now}): a deadlock"
        )
    assert not failures, f"the run failed: {failures[0]!r}"
    return db


def ids(db: Path, table: str) -> Counter:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return Counter(row[0] for row in con.execute(f"select id from capped.{table}").fetchall())


@pytest.mark.parametrize("concurrency", [4, 2, 1])
def test_concurrency_caps_every_request_of_the_source_and_is_reached(
    concurrency, tmp_path, monkeypatch
) -> None:
    """Parent pages, child calls on the pool and a leaf's pages read ahead together never
    have more than `concurrency` requests in flight at once on the server, reach exactly
    that many, end within the deadline (no deadlock at 1 or 2), and load every row once."""
    crowd = InFlight(above=concurrency, hold=HOLD)
    db = load_within_deadline(tmp_path, monkeypatch, spec_at(concurrency), crowd)
    assert crowd.most <= concurrency, (
        f"{crowd.most} requests in flight at once at client.concurrency {concurrency}"
    )
    assert crowd.most == concurrency, (
        f"at most {crowd.most} requests in flight at client.concurrency {concurrency}:"
        " the cap serialised them"
    )
    assert ids(db, "users") == Counter(u["id"] for u in USERS)
    assert ids(db, "posts") == Counter(p["id"] for posts in POSTS.values() for p in posts)
    assert ids(db, "items") == Counter(i["id"] for i in ITEMS)


def redirecting(request: RawRequest) -> RawReply:
    """/old answers 302 to /new, which answers 200."""
    if request.path.endswith("/old"):
        return RawReply(302, b"", {"Location": "/api/new"})
    return RawReply(200, {"ok": True})


@pytest.mark.parametrize("auto", [False, True], ids=["concurrency 1", "auto at level 1"])
def test_a_redirect_is_followed_within_its_request_place(auto: bool) -> None:
    """`requests` follows a redirect through the session's own `send`, inside the place the
    first request holds: at one place (`concurrency: 1`, or `auto` halved to 1) the request
    still ends (302 then 200) within the deadline instead of waiting for its own place."""
    adaptive = AdaptiveConcurrency("acme", ceiling=1, start=1) if auto else None
    api = RawApi(redirecting)
    answers: list[Any] = []
    with api.running():
        session = RestsyncSession(
            "acme", api.url + "/api", [], RetryPolicy(), concurrency=1, adaptive=adaptive
        )
        thread = threading.Thread(
            target=lambda: answers.append(session.get(api.url + "/api/old")), daemon=True
        )
        thread.start()
        thread.join(DEADLINE)
        assert not thread.is_alive(), "a redirect waited for the place its request holds"
    (answer,) = answers
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    assert [r.path for r in api.requests] == ["/api/old", "/api/new"]

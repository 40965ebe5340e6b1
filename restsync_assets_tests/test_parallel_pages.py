"""Parallel pages within one endpoint (`runtime/http/page_series.py`, issue 23 item 1).

Every paginator x incremental on/off x `client.concurrency` 1/8 loads exactly the API's rows
(as a multiset); offset and page-number series are fetched ahead at concurrency 8 (pages dlt
took from the session's prefetch) and never at 1; an error on page k reaches dlt after the
pages before it; a series without a total asks for at most a window of pages past its end.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from restsync_assets.runtime.http import page_series
from restsync_assets.runtime.http.errors import HttpStatusError

from .fake_servers import JsonApi, Reply
from .support import use_specs, write_spec

PAGE = 10
ROWS = [
    {"id": i, "updated": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", "name": f"row {i}"}
    for i in range(1, 96)
]  # 95 rows: nine full pages of 10 and a short one
SINCE = ROWS[40]["updated"]


def _visible(query: dict[str, str]) -> list[dict]:
    since = query.get("since")
    return [r for r in ROWS if since is None or r["updated"] >= since]


def offset_page(total: bool) -> Any:
    def answer(request: Any) -> Any:
        rows = _visible(request.query)
        offset, limit = int(request.query.get("offset", 0)), int(request.query["limit"])
        body = {"data": rows[offset : offset + limit]}
        return {**body, "total": len(rows)} if total else body

    return answer


def number_page(total: bool) -> Any:
    def answer(request: Any) -> Any:
        rows = _visible(request.query)
        number = int(request.query.get("page", 1))
        body = {"data": rows[(number - 1) * PAGE : number * PAGE]}
        return {**body, "total_pages": -(-len(rows) // PAGE)} if total else body

    return answer


def cursor_page(request: Any) -> Any:
    rows = _visible(request.query)
    start = int(request.query.get("cursor", 0))
    following = start + PAGE if start + PAGE < len(rows) else None
    return {"data": rows[start : start + PAGE], "next": following}


def link_page(request: Any) -> Any:
    rows = _visible(request.query)
    start = int(request.query.get("at", 0))
    body = {"data": rows[start : start + PAGE], "next": None}
    if start + PAGE < len(rows):
        since = f"&since={request.query['since']}" if "since" in request.query else ""
        body["next"] = f"{request.url(at=start + PAGE).split('?')[0]}?at={start + PAGE}{since}"
    return body


#: (case, paginator, server, fetched ahead at concurrency 8)
PAGINATORS = [
    ("offset with total", {"type": "offset", "limit": PAGE}, offset_page(True), True),
    (
        "offset without total",
        {"type": "offset", "limit": PAGE, "total_path": None},
        offset_page(False),
        True,
    ),
    (
        "page number with total",
        {"type": "page_number", "base_page": 1, "total_path": "total_pages"},
        number_page(True),
        True,
    ),
    (
        "page number without total",
        {"type": "page_number", "base_page": 1, "total_path": None},
        number_page(False),
        True,
    ),
    (
        "templated cursor",
        {"type": "cursor", "cursor_value": "{{ response.next }}", "cursor_param": "cursor"},
        cursor_page,
        False,
    ),
    ("json link", {"type": "json_link", "next_url_path": "next"}, link_page, False),
]
INCREMENTAL = {"type": "incremental", "cursor_path": "updated", "initial_value": SINCE}


def spec_of(paginator: dict, incremental: bool, concurrency: int) -> dict:
    endpoint: dict[str, Any] = {"path": "/items", "data_selector": "data", "paginator": paginator}
    if incremental:
        endpoint["params"] = {"since": INCREMENTAL}
    return {
        "name": "pages",
        "client": {"base_url": "http://unused", "concurrency": concurrency},
        "resources": [
            {
                "name": "items",
                "primary_key": "id",
                "write_disposition": "append",
                "endpoint": endpoint,
            }
        ],
    }


def hits_counted(monkeypatch) -> list[int]:
    """Counts the pages dlt took from the session's prefetch."""
    hits: list[int] = []
    take = page_series.Prefetcher.take

    def counting(self: Any, series: Any, request: Any) -> Any:
        future = take(self, series, request)
        if future is not None:
            hits.append(1)
        return future

    monkeypatch.setattr(page_series.Prefetcher, "take", counting)
    return hits


def load(tmp_path, monkeypatch, spec: dict, routes: dict) -> tuple[list[dict], JsonApi]:
    """Run the spec's source through restsync's pipeline into DuckDB; the table's rows."""
    import duckdb

    from restsync_assets.resources import ApiCredentials
    from restsync_assets.runtime.destination import build_pipeline
    from restsync_assets.runtime.source import build_source, finish
    from restsync_assets.specs import load_specs

    from .support import use_warehouse

    api = JsonApi(routes)
    with api:
        specs = write_spec(tmp_path / "specs", spec).parent
        use_specs(monkeypatch, specs, {spec["name"]: api.url})
        db = use_warehouse(monkeypatch, tmp_path / "warehouse.duckdb", tmp_path / "pipelines")
        (loaded,) = load_specs(specs)
        credentials = ApiCredentials(source=loaded.name).resolve()
        source = build_source(loaded, credentials)
        build_pipeline(loaded).run(source)
        finish(source)
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute("select id, updated, name from pages.items")
        rows = [dict(zip(("id", "updated", "name"), r, strict=True)) for r in cursor.fetchall()]
    return rows, api


def multiset(rows: list[dict]) -> Counter:
    return Counter((r["id"], str(r["updated"]).replace(" ", "T"), r["name"]) for r in rows)


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
@pytest.mark.parametrize(("case", "paginator", "server", "ahead"), PAGINATORS)
def test_every_paginator_loads_the_same_rows_at_any_concurrency(
    case, paginator, server, ahead, incremental, concurrency, tmp_path, monkeypatch
) -> None:
    """The table holds exactly the API's rows (all, or those from the incremental's start),
    whatever the paginator and concurrency; numbered pages are fetched ahead at 8 only."""
    hits = hits_counted(monkeypatch)
    spec = spec_of(paginator, incremental, concurrency)
    rows, _api = load(tmp_path, monkeypatch, spec, {"GET /items": server})
    truth = [r for r in ROWS if not incremental or r["updated"] >= SINCE]
    got = multiset([{**r, "updated": _iso(r["updated"])} for r in rows])
    assert got == multiset(truth)
    if concurrency == 8 and ahead:
        assert hits, f"{case}: no page was fetched ahead at concurrency 8"
    else:
        assert not hits, f"{case}: pages fetched ahead at concurrency {concurrency}"


def _iso(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(value, "strftime") else str(value)


@pytest.mark.parametrize("total", [True, False], ids=["with total", "without total"])
def test_an_error_on_page_k_reaches_dlt_after_the_pages_before_it(total, tmp_path, monkeypatch):
    """Page 4 (offset 30) answers 404 while pages after it are fetched ahead: dlt's resource
    yields exactly pages 1-3, then the one-line HTTP error of page 4."""
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.runtime.source import build_source, finish
    from restsync_assets.specs import load_specs

    serve = offset_page(total)
    later_asked = threading.Event()  # a page after the failing one was asked for ahead

    def failing(request: Any) -> Any:
        if request.query.get("offset") in ("40", "50"):
            later_asked.set()
        if request.query.get("offset") == "30":
            later_asked.wait(timeout=30)  # bounded: the assertion below says if it never came
            return Reply({"error": "gone"}, status=404)
        return serve(request)

    paginator = {"type": "offset", "limit": PAGE, **({} if total else {"total_path": None})}
    api = JsonApi({"GET /items": failing})
    got: list[int] = []
    with api:
        specs = write_spec(tmp_path / "specs", spec_of(paginator, False, 8)).parent
        use_specs(monkeypatch, specs, {"pages": api.url})
        (loaded,) = load_specs(specs)
        source = build_source(loaded, ApiCredentials(source="pages").resolve())
        with pytest.raises(Exception) as raised:
            for row in source.resources["items"]:
                got.append(row["id"])
        asked = {r.query.get("offset") for r in api.calls_to("/items")}
        finish(source)
    assert got == [r["id"] for r in ROWS[:30]]
    error = raised.value
    while error is not None and not isinstance(error, HttpStatusError):
        error = error.__cause__ or error.__context__
    assert isinstance(error, HttpStatusError) and "404" in str(error)
    assert {"40", "50"} & asked, "pages after the failing one were not fetched ahead"


def test_a_series_without_total_asks_for_at_most_a_window_past_its_end(tmp_path, monkeypatch):
    """Offset pages without a total, concurrency 8: the guesses past the short last page
    are at most 8 requests (the window), and a one-page series asks for exactly one."""
    spec = spec_of({"type": "offset", "limit": PAGE, "total_path": None}, False, 8)
    _rows, api = load(tmp_path, monkeypatch, spec, {"GET /items": offset_page(False)})
    asked = len(api.calls_to("/items"))
    assert 10 <= asked <= 10 + 8, f"{asked} requests for 10 pages"
    spec = spec_of({"type": "offset", "limit": 200, "total_path": None}, False, 8)
    _rows, api = load(tmp_path / "one", monkeypatch, spec, {"GET /items": offset_page(False)})
    assert len(api.calls_to("/items")) == 1

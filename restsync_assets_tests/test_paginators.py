"""Paginators driven through dlt's real ``RESTClient.paginate`` against a local HTTP server."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator

from restsync_assets.runtime.http.errors import PaginationLoopError
from restsync_assets.runtime.http.paginators import (
    IncompleteScanError,
    OffsetPaginatorWithoutTotal,
    TemplatedCursorPaginator,
)
from restsync_assets.specs.templates import TemplateError

from .fake_servers import App, RawApi, RawReply, RawRequest


def paginate(api: RawApi, paginator: Any, path: str = "/items", **kwargs: Any) -> list[Any]:
    """Every record dlt's `RESTClient` pages through with `paginator` (data under `data`)."""
    client = RESTClient(base_url=api.url, session=requests.Session())
    pages = client.paginate(path, paginator=paginator, data_selector="data", **kwargs)
    return [record for page in pages for record in page]


def requested(api: RawApi) -> list[tuple[str, dict[str, str]]]:
    """The path and query of each request, in order."""
    return [(r.path, r.query) for r in api.requests]


NEXT_LINK = "{{ response.get('paging', {}).get('next_link', {}) }}"
NO_NEXT_LINK = "{{ not response.get('paging', {}).get('next_link', {}) }}"


def _pages(api: RawApi, links: dict[str | None, str | None]) -> App:
    """Three pages keyed by the `cursor` query param; `links` maps cursor -> next link."""

    def app(req: RawRequest) -> RawReply:
        cursor = req.query.get("cursor")
        nxt = links.get(cursor)
        paging = {"next_link": nxt.format(url=api.url)} if nxt else {}
        return RawReply(body={"data": [{"id": f"{cursor}"}], "paging": paging})

    return app


# --- TemplatedCursorPaginator -------------------------------------------------------------


def test_cursor_follows_absolute_next_link_and_drops_duplicate_params(api: RawApi) -> None:
    api.app = _pages(
        api, {None: "{url}/items?cursor=2&limit=1", "2": "{url}/items?cursor=3&limit=1"}
    )
    paginator = TemplatedCursorPaginator(NEXT_LINK, NO_NEXT_LINK, resource="items")
    records = paginate(api, paginator, params={"limit": 1, "fields": "id"})
    assert [r["id"] for r in records] == ["None", "2", "3"]
    assert requested(api) == [
        ("/items", {"limit": "1", "fields": "id"}),
        ("/items", {"cursor": "2", "limit": "1", "fields": "id"}),
        ("/items", {"cursor": "3", "limit": "1", "fields": "id"}),
    ]


def test_cursor_stops_on_empty_dict_without_stop_condition(api: RawApi) -> None:
    api.app = _pages(api, {None: "{url}/items?cursor=2"})
    records = paginate(api, TemplatedCursorPaginator(NEXT_LINK, resource="items"))
    assert len(records) == 2


def test_cursor_relative_path_is_resolved_against_request_url(api: RawApi) -> None:
    api.app = _pages(api, {None: "/items?cursor=2", "2": "/items?cursor=3"})
    records = paginate(api, TemplatedCursorPaginator(NEXT_LINK, resource="items"))
    assert len(records) == 3
    assert requested(api)[-1] == ("/items", {"cursor": "3"})


def test_plain_cursor_goes_to_cursor_param(api: RawApi) -> None:
    cursors = {None: "c2", "c2": "c3", "c3": None}

    def app(req: RawRequest) -> RawReply:
        after = req.query.get("after")
        return RawReply(body={"data": [{"id": after}], "meta": {"next_cursor": cursors[after]}})

    api.app = app
    paginator = TemplatedCursorPaginator(
        "{{ response.meta.next_cursor }}", cursor_param="after", resource="items"
    )
    records = paginate(api, paginator, params={"limit": 5})
    assert [r["id"] for r in records] == [None, "c2", "c3"]
    assert requested(api)[1] == ("/items", {"limit": "5", "after": "c2"})


def test_cursor_header_sends_each_token_as_that_request_header(api: RawApi) -> None:
    """With `cursor_header` every cursor after the first page is a request header, never a
    query param; the headers the request had (a page size) are kept on every page."""
    cursors = {None: "c2", "c2": "c3", "c3": None}

    def app(req: RawRequest) -> RawReply:
        token = req.headers.get("X-Page-Token")
        return RawReply(body={"data": [{"id": token}], "next": cursors[token]})

    api.app = app
    paginator = TemplatedCursorPaginator(
        "{{ response.next }}", cursor_header="X-Page-Token", resource="items"
    )
    records = paginate(api, paginator, headers={"X-Page-Size": "1"})
    assert [r["id"] for r in records] == [None, "c2", "c3"]
    assert [r.query for r in api.requests] == [{}, {}, {}]
    assert [r.headers.get("X-Page-Size") for r in api.requests] == ["1", "1", "1"]


def _header_rows(req: RawRequest) -> RawReply:
    """25 rows, 10 a page, from the offset in `X-Offset` or the page (from 1) in `X-Page`;
    neither header: the first page."""
    rows = [{"id": i} for i in range(1, 26)]
    if "X-Page" in req.headers:
        start = (int(req.headers["X-Page"]) - 1) * 10
    else:
        start = int(req.headers.get("X-Offset", 0))
    return RawReply(body={"data": rows[start : start + 10]})


SHORT_PAGE = "{{ (last_page | length) < 10 }}"
#: (case, paginator keywords, the header each request sent (None: not sent))
HEADER_PAGING = [
    (
        "offset from the records counted, first request without it",
        {"cursor_value": "{{ (cursor or 0)|int + last_page|length }}", "cursor_header": "X-Offset"},
        ("X-Offset", [None, "10", "20"]),
    ),
    (
        "offset sent on the first request too (initial_cursor)",
        {
            "cursor_value": "{{ cursor|int + last_page|length }}",
            "cursor_header": "X-Offset",
            "initial_cursor": 0,
        },
        ("X-Offset", ["0", "10", "20"]),
    ),
    (
        "page number from 1, first request without it",
        {"cursor_value": "{{ (cursor or 1)|int + 1 }}", "cursor_header": "X-Page"},
        ("X-Page", [None, "2", "3"]),
    ),
    (
        "page number from 1 on every request",
        {"cursor_value": "{{ cursor|int + 1 }}", "cursor_header": "X-Page", "initial_cursor": "1"},
        ("X-Page", ["1", "2", "3"]),
    ),
]


@pytest.mark.parametrize("case, keywords, sent", HEADER_PAGING, ids=[c[0] for c in HEADER_PAGING])
def test_cursor_template_reads_the_cursor_it_sent(api: RawApi, case, keywords, sent) -> None:
    """`cursor` (the cursor a page was fetched with: None on the first page unless
    `initial_cursor` is set) and `last_page|length` page by an offset or page number in a
    request header; a short page ends the scan, every row read once."""
    api.app = _header_rows
    paginator = TemplatedCursorPaginator(**keywords, stop_condition=SHORT_PAGE, resource="items")
    records = paginate(api, paginator)
    assert [r["id"] for r in records] == list(range(1, 26))
    header, values = sent
    assert [r.headers.get(header) for r in api.requests] == values
    assert [r.query for r in api.requests] == [{}, {}, {}]


def test_initial_cursor_is_sent_again_on_each_paging_sequence(api: RawApi) -> None:
    """A second `paginate` with the same paginator (the next parent's pages) starts from
    `initial_cursor` again, not from where the first one stopped."""
    api.app = _header_rows
    paginator = TemplatedCursorPaginator(
        "{{ cursor|int + 1 }}", SHORT_PAGE, cursor_header="X-Page", initial_cursor=1
    )
    assert len(paginate(api, paginator)) == len(paginate(api, paginator)) == 25
    assert [r.headers.get("X-Page") for r in api.requests] == ["1", "2", "3"] * 2


def test_cursor_from_headers_and_last_page(api: RawApi) -> None:
    def app(req: RawRequest) -> RawReply:
        start = int(req.query.get("after", 0))
        ids = [i for i in range(start + 1, start + 3) if i <= 5]
        return RawReply(
            body={"data": [{"id": i} for i in ids]}, headers={"X-Has-More": "yes" if ids else "no"}
        )

    api.app = app
    paginator = TemplatedCursorPaginator(
        "{{ last_page[-1].id if last_page else None }}",
        stop_condition="{{ headers['x-has-more'] == 'no' }}",
        cursor_param="after",
    )
    assert [r["id"] for r in paginate(api, paginator)] == [1, 2, 3, 4, 5]
    assert len(api.requests) == 4


def test_stop_condition_wins_over_present_cursor(api: RawApi) -> None:
    def app(req: RawRequest) -> RawReply:
        page = int(req.query.get("page_token", 1))
        return RawReply(body={"data": [{"id": page}], "next": str(page + 1), "has_more": page < 3})

    api.app = app
    paginator = TemplatedCursorPaginator(
        "{{ response.next }}",
        stop_condition="{{ not response.has_more }}",
        cursor_param="page_token",
    )
    assert [r["id"] for r in paginate(api, paginator)] == [1, 2, 3]


@pytest.mark.parametrize("empty", [None, "", "None", {}, []])
def test_empty_cursor_values_stop(api: RawApi, empty: Any) -> None:
    api.app = lambda req: RawReply(body={"data": [{"id": 1}], "next": empty})
    paginator = TemplatedCursorPaginator("{{ response.next }}", cursor_param="c")
    assert len(paginate(api, paginator)) == 1


def test_repeated_cursor_raises_loop_error(api: RawApi) -> None:
    api.app = lambda req: RawReply(
        body={
            "data": [{"id": 1}],
            "paging": {"next_link": f"{api.url}/items?cursor=same&token=s3cr3t"},
        }
    )
    paginator = TemplatedCursorPaginator(NEXT_LINK, resource="campaigns")
    with pytest.raises(PaginationLoopError) as info:
        paginate(api, paginator)
    message = str(info.value)
    assert "campaigns" in message and "cursor=same" in message
    assert "s3cr3t" not in message and "\n" not in message
    assert len(api.requests) == 2


def test_loop_state_resets_between_paginations(api: RawApi) -> None:
    api.app = _pages(api, {None: "{url}/items?cursor=2"})
    paginator = TemplatedCursorPaginator(NEXT_LINK, resource="items")
    assert len(paginate(api, paginator)) == 2
    assert len(paginate(api, paginator)) == 2  # same cursors again, new pagination


def test_plain_cursor_without_cursor_param_names_resource(api: RawApi) -> None:
    api.app = lambda req: RawReply(body={"data": [{"id": 1}], "next": "abc"})
    paginator = TemplatedCursorPaginator("{{ response.next }}", resource="ad_accounts")
    with pytest.raises(ValueError, match=r"ad_accounts.*cursor_param"):
        paginate(api, paginator)


def test_cursor_template_error_propagates(api: RawApi) -> None:
    api.app = lambda req: RawReply(body={"data": [{"id": 1}]})
    with pytest.raises(TemplateError, match=r"response\.paging\.next"):
        paginate(api, TemplatedCursorPaginator("{{ response.paging.next }}"))


def test_cursor_paginator_str_and_deepcopy() -> None:
    paginator = TemplatedCursorPaginator(NEXT_LINK, NO_NEXT_LINK, "after", resource="items")
    text = str(paginator)
    assert "items" in text and "next_link" in text and "after" in text
    clone = copy.deepcopy(paginator)  # dlt deep-copies paginators of dependent resources
    assert clone is not paginator and clone.cursor_template is paginator.cursor_template


def test_bad_template_fails_at_construction() -> None:
    with pytest.raises(TemplateError):
        TemplatedCursorPaginator("{{ response.next ")


# --- OffsetPaginatorWithoutTotal ----------------------------------------------------------


def _offset_app(count: int, total: Any = "absent", limit: int = 2) -> App:
    def app(req: RawRequest) -> RawReply:
        offset, size = int(req.query["offset"]), int(req.query.get("limit", limit))
        body: dict[str, Any] = {
            "data": [{"id": i} for i in range(offset, min(count, offset + size))]
        }
        if total != "absent":
            body["total"] = total
        return RawReply(body=body)

    return app


def _offsets(api: RawApi) -> list[int]:
    return [int(r.query["offset"]) for r in api.requests]


def test_offset_uses_total(api: RawApi) -> None:
    api.app = _offset_app(count=4, total=4)
    records = paginate(api, OffsetPaginatorWithoutTotal(limit=2))
    assert [r["id"] for r in records] == [0, 1, 2, 3]
    assert _offsets(api) == [0, 2]  # total reached: no empty trailing request
    assert api.requests[0].query["limit"] == "2"


@pytest.mark.parametrize("total", ["absent", None, "many", [1]])
def test_offset_without_valid_total_stops_on_short_page(api: RawApi, total: Any) -> None:
    api.app = _offset_app(count=5, total=total)
    records = paginate(api, OffsetPaginatorWithoutTotal(limit=2))
    assert [r["id"] for r in records] == [0, 1, 2, 3, 4]
    assert _offsets(api) == [0, 2, 4]


def test_offset_without_total_stops_on_empty_page(api: RawApi) -> None:
    api.app = _offset_app(count=4)
    records = paginate(api, OffsetPaginatorWithoutTotal(limit=2, total_path=None))
    assert len(records) == 4
    assert _offsets(api) == [0, 2, 4]


def test_offset_short_page_that_total_contradicts_is_an_error(api: RawApi) -> None:
    """A short page ends the scan; when `total` says rows are left, the scan is incomplete
    and raises (it used to stop with a warning, the rows after it silently missing)."""
    api.app = _offset_app(count=3, total=100)
    with pytest.raises(IncompleteScanError, match="offset 2 has 1 of the 2 rows its total 100"):
        paginate(api, OffsetPaginatorWithoutTotal(limit=2))
    assert _offsets(api) == [0, 2]


def _filtered_app(total: int, served: dict[int, int]) -> App:
    """Pages of `limit` 2 filtered after paging: the page at offset o holds `served[o]` rows."""

    def app(req: RawRequest) -> RawReply:
        offset = int(req.query["offset"])
        rows = [{"id": offset + i} for i in range(served.get(offset, 0))]
        return RawReply(body={"data": rows, "total": total})

    return app


SCAN_ENDS = [
    # (case, stop_after_empty_page, served rows per offset, offsets requested)
    ("an empty page ends the scan by default", True, {0: 2, 2: 0, 4: 2}, [0, 2]),
    ("false: an empty page does not end it, total does", False, {0: 2, 2: 0, 4: 2}, [0, 2, 4]),
    ("false: a short page does not end it either", False, {0: 1, 2: 2, 4: 2}, [0, 2, 4]),
]


@pytest.mark.parametrize(
    ("case", "stop", "served", "offsets"), SCAN_ENDS, ids=[c[0] for c in SCAN_ENDS]
)
def test_stop_after_empty_page(api: RawApi, case, stop, served, offsets) -> None:
    """`stop_after_empty_page: false` (APIs that filter after paging): only `total` ends the
    scan; by default an empty page ends it (here before `total`: an incomplete scan)."""
    api.app = _filtered_app(6, served)
    paginator = OffsetPaginatorWithoutTotal(limit=2, stop_after_empty_page=stop)
    if stop:
        with pytest.raises(IncompleteScanError):
            paginate(api, paginator)
    else:
        assert len(paginate(api, paginator)) == sum(served.values())
    assert _offsets(api) == offsets


def test_stop_after_empty_page_false_without_total_falls_back_to_the_short_page_rule(
    api: RawApi,
) -> None:
    """With nothing else to end the scan (`has_more` missing from every answer, no total or
    maximum_offset), a short page still ends it rather than paging forever."""
    api.app = _offset_app(count=5)
    paginator = OffsetPaginatorWithoutTotal(
        limit=2, total_path=None, has_more_path="more", stop_after_empty_page=False
    )
    assert len(paginate(api, paginator)) == 5
    assert _offsets(api) == [0, 2, 4]


def test_offset_numeric_string_total_is_used(api: RawApi) -> None:
    api.app = _offset_app(count=10, total="4")
    assert len(paginate(api, OffsetPaginatorWithoutTotal(limit=2))) == 4


def test_offset_custom_params_and_maximum_offset(api: RawApi) -> None:
    def app(req: RawRequest) -> RawReply:
        start = int(req.query["skip"])
        return RawReply(
            body={"data": [{"id": i} for i in range(start, start + int(req.query["top"]))]}
        )

    api.app = app
    paginator = OffsetPaginatorWithoutTotal(
        limit=3, offset_param="skip", limit_param="top", maximum_offset=6
    )
    assert len(paginate(api, paginator)) == 6


def test_offset_has_more_path(api: RawApi) -> None:
    def app(req: RawRequest) -> RawReply:
        start = int(req.query["offset"])
        more = "true" if start < 2 else "false"
        return RawReply(body={"data": [{"id": start}, {"id": start + 1}], "more": more})

    api.app = app
    paginator = OffsetPaginatorWithoutTotal(limit=2, total_path=None, has_more_path="more")
    assert len(paginate(api, paginator)) == 4


def test_dlt_offset_paginator_raises_where_ours_does_not(api: RawApi) -> None:
    api.app = _offset_app(count=5)
    with pytest.raises(ValueError, match="Total"):
        paginate(api, OffsetPaginator(limit=2))


def test_offset_rejects_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        OffsetPaginatorWithoutTotal(limit=0)


@pytest.mark.parametrize("has_more", ["absent", None, "maybe", 3])
def test_offset_unusable_has_more_falls_back_to_the_short_page_rule(
    api: RawApi, has_more: Any, caplog
) -> None:
    def app(req: RawRequest) -> RawReply:
        start = int(req.query["offset"])
        body: dict[str, Any] = {"data": [{"id": i} for i in range(start, min(start + 2, 5))]}
        if has_more != "absent":
            body["more"] = has_more
        return RawReply(body=body)

    api.app = app
    paginator = OffsetPaginatorWithoutTotal(limit=2, total_path=None, has_more_path="more")
    assert [r["id"] for r in paginate(api, paginator)] == [0, 1, 2, 3, 4]
    assert "ignoring it, a short or empty page ends the pagination" in caplog.text


def test_offset_has_more_false_stops_a_full_page(api: RawApi) -> None:
    api.app = lambda req: RawReply(body={"data": [{"id": 1}, {"id": 2}], "more": "false"})
    paginator = OffsetPaginatorWithoutTotal(limit=2, total_path=None, has_more_path="more")
    assert len(paginate(api, paginator)) == 2 and _offsets(api) == [0]


def test_offset_total_changing_while_paging_is_logged(api: RawApi, caplog) -> None:
    def app(req: RawRequest) -> RawReply:
        start = int(req.query["offset"])
        rows = [{"id": i} for i in range(start, min(start + 2, 5))]
        return RawReply(body={"data": rows, "total": 6 if start == 0 else 5})

    api.app = app
    assert len(paginate(api, OffsetPaginatorWithoutTotal(limit=2))) == 5
    assert "total changed from 6 to 5 while paging /items; rows shifted" in caplog.text


def test_offset_identical_pages_raise_instead_of_looping(api: RawApi) -> None:
    api.app = lambda req: RawReply(body={"data": [{"id": 1}, {"id": 2}]})  # ignores offset
    with pytest.raises(PaginationLoopError, match="identical to the previous one"):
        paginate(api, OffsetPaginatorWithoutTotal(limit=2, total_path=None))
    assert _offsets(api) == [0, 2]


def test_stop_after_empty_page_false_needs_something_else_to_end_the_scan(tmp_path, monkeypatch):
    """`stop_after_empty_page: false` without total_path, has_more_path or maximum_offset is
    refused with one line naming file, resource and key (dlt would refuse it at run time)."""
    from .support import refusal

    spec = {
        "name": "shop",
        "client": {"base_url": "https://api.example.com"},
        "resources": [
            {
                "name": "items",
                "endpoint": {
                    "path": "/items",
                    "paginator": {
                        "type": "offset",
                        "limit": 10,
                        "total_path": None,
                        "stop_after_empty_page": False,
                    },
                },
            }
        ],
    }
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, spec) == (
        "shop.yaml: resource 'items': endpoint.paginator.stop_after_empty_page: false leaves"
        " the end of the scan to total_path, has_more_path or maximum_offset, and none is"
        " set: set one (or remove stop_after_empty_page)"
    )


#: (case, the templated cursor paginator's keys, the refusal after `endpoint.paginator.`)
INITIAL_CURSOR_REFUSALS = [
    (
        "no place to send it",
        {"initial_cursor": 0},
        "initial_cursor: the first request sends initial_cursor where every cursor goes: set"
        " cursor_param, cursor_body_path or cursor_header",
    ),
    (
        "a bool",
        {"initial_cursor": True, "cursor_header": "X-Page"},
        "initial_cursor: True is no cursor: write a string or an integer such as 0 or 1",
    ),
    (
        "a blank string",
        {"initial_cursor": " ", "cursor_param": "page"},
        "initial_cursor: ' ' is no cursor: write a string or an integer such as 0 or 1",
    ),
    (
        "a template reading an unknown name",
        {"cursor_value": "{{ cursors|int + 1 }}", "cursor_header": "X-Page"},
        "cursor_value: template reads 'cursors'; allowed: cursor, headers, last_page, links,"
        " response",
    ),
]


@pytest.mark.parametrize(
    "case, keys, refused", INITIAL_CURSOR_REFUSALS, ids=[c[0] for c in INITIAL_CURSOR_REFUSALS]
)
def test_initial_cursor_and_cursor_refusals_are_one_line(
    tmp_path, monkeypatch, case, keys, refused
) -> None:
    """A bad `initial_cursor` (nowhere to send it, not a string or integer) or a template
    reading a name other than `cursor` and the documented ones is one line naming file,
    resource and key."""
    from .support import refusal

    paginator = {"type": "cursor", "cursor_value": "{{ cursor|int + 1 }}", **keys}
    spec = {
        "name": "shop",
        "client": {"base_url": "https://api.example.com"},
        "resources": [{"name": "items", "endpoint": {"path": "/items", "paginator": paginator}}],
    }
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, spec) == f"shop.yaml: resource 'items': endpoint.paginator.{refused}"

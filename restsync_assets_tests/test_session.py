"""Tests for restsync_assets.runtime.http.session (per-resource retries, 401 refresh, masking)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest
import requests
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import SinglePagePaginator
from requests.adapters import BaseAdapter

from restsync_assets.runtime.http import pages, retry
from restsync_assets.runtime.http.errors import (
    HttpStatusError,
    IncompletePageError,
    NotJsonError,
    RequestFailedError,
)
from restsync_assets.runtime.http.masking import mask
from restsync_assets.runtime.http.oauth import OAuth2Auth
from restsync_assets.runtime.http.pages import page_check, required_path
from restsync_assets.runtime.http.paginators import TemplatedCursorPaginator
from restsync_assets.runtime.http.retry import RetryPolicy
from restsync_assets.runtime.http.session import ResourceAuth, ResourceTag, RestsyncSession, Route
from restsync_assets.specs.model.paginators import OffsetPaginatorSpec

from .fake_servers import DROP, App, RawApi, RawReply, RawRequest, sequence
from .support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


POLICY = RetryPolicy(max_retries=3, backoff_factor=1.0, max_retry_delay=30.0)


def make_session(api: RawApi, clock: FakeClock, *routes: Route, **kwargs: Any) -> RestsyncSession:
    kwargs.setdefault("default_policy", POLICY)
    return RestsyncSession("acme", api.url + "/api", list(routes), clock=clock, **kwargs)


def tagged(resource: str) -> dict[str, list]:
    """Request hooks naming `resource`, as `ResourceAuth` tags dlt's requests."""
    return {"response": [ResourceTag(resource)]}


# --- routing ------------------------------------------------------------------------------


def test_the_route_is_the_tagged_resource_whatever_the_url() -> None:
    """The session reads a request's resource from its tag, never from its URL: any path,
    any host; an untagged request has no route, a tag without a route the default policy."""
    policy, other = RetryPolicy(), RetryPolicy(max_retries=9)
    routes = [Route("items", policy), Route("item", other)]
    session = RestsyncSession("acme", "https://h.example.com/api/", routes, policy)

    def route(url: str, resource: str | None) -> Route | None:
        hooks = tagged(resource) if resource else None
        return session.route_of(requests.Request("GET", url, hooks=hooks).prepare())

    assert route("https://h.example.com/api/v1/items/42", "items") is routes[0]
    assert route("https://other.example.com/export-2.jsonl.gz", "item") is routes[1]
    assert route("https://h.example.com/api/v1/items", None) is None
    unknown = route("https://h.example.com/api/v1/items", "gone")
    assert (unknown.resource, unknown.policy) == ("gone", policy)


def test_resource_auth_tags_the_request_and_applies_the_inner_auth() -> None:
    """`ResourceAuth` adds the tag and then the wrapped auth's header; no auth: tag only."""

    def bearer(request):
        request.headers["Authorization"] = "Bearer t"
        return request

    prepared = requests.Request("GET", "https://h.example.com/a").prepare()
    ResourceAuth("items", bearer)(prepared)
    assert prepared.headers["Authorization"] == "Bearer t"
    assert [h.resource for h in prepared.hooks["response"]] == ["items"]
    bare = requests.Request("GET", "https://h.example.com/a").prepare()
    ResourceAuth("items")(bare)
    assert "Authorization" not in bare.headers
    assert copy.deepcopy(ResourceAuth("x")).resource == "x"


# --- retries ------------------------------------------------------------------------------


def test_retries_503_with_exponential_backoff(api: RawApi, clock: FakeClock) -> None:
    api.app = sequence(RawReply(503), RawReply(503), RawReply(200, {"ok": True}))
    response = make_session(api, clock).get(api.url + "/api/items")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert clock.sleeps == [1.0, 2.0]
    assert len(api.requests) == 3


def test_backoff_is_capped(api: RawApi, clock: FakeClock) -> None:
    api.app = sequence(RawReply(500), RawReply(502), RawReply(504), RawReply(200))
    policy = RetryPolicy(max_retries=3, backoff_factor=10.0, max_retry_delay=15.0)
    make_session(api, clock, default_policy=policy).get(api.url + "/api/items")
    assert clock.sleeps == [10.0, 15.0, 15.0]


def test_retries_exhausted_raise_with_masked_url(api: RawApi, clock: FakeClock) -> None:
    api.app = lambda req: RawReply(503)
    session = make_session(
        api,
        clock,
        Route("stats", RetryPolicy(max_retries=2, backoff_factor=0.5)),
        secrets=lambda: ["sekrit-value-1"],
    )
    url = api.url + "/api/v1/stats?api_key=abc123&q=sekrit-value-1&page=2"
    with pytest.raises(RequestFailedError) as info:
        session.get(url, hooks=tagged("stats"))
    error = info.value
    message = str(error)
    assert "\n" not in message
    assert "abc123" not in message and "sekrit-value-1" not in message
    for part in ("acme", "stats", "GET", "api_key=***", "q=***", "page=2", "HTTP 503"):
        assert part in message
    assert "after 3 attempts" in message and "max_retries" in message
    assert (error.attempts, error.status, error.resource) == (3, 503, "stats")
    assert error.__cause__ is None and error.__context__ is None
    assert clock.sleeps == [0.5, 1.0]


def test_per_route_policy_is_used(api: RawApi, clock: FakeClock) -> None:
    api.app = lambda req: RawReply(503) if req.path.endswith("/fragile") else RawReply(429)
    session = make_session(
        api,
        clock,
        Route("fragile", RetryPolicy(max_retries=0)),
        Route("no_429", RetryPolicy(retry_on_status_codes=(503,))),
    )
    with pytest.raises(RequestFailedError, match="after 1 attempt:"):
        session.get(api.url + "/api/fragile", hooks=tagged("fragile"))
    answer = session.get(api.url + "/api/no429", hooks=tagged("no_429"))
    assert answer.status_code == 429  # not retryable there
    assert clock.sleeps == []
    assert len(api.requests) == 2


def _http_date(clock: FakeClock, offset_seconds: float) -> str:
    return formatdate(clock.now + offset_seconds, usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "respect", "expected"),
    [
        ("7", True, 7.0),
        ("120", True, 30.0),  # capped by max_retry_delay
        (None, True, 1.0),  # missing: exponential backoff
        ("0", True, 0.0),  # "retry now" (RFC 9110), unlike dlt which backs off
        ("soon", True, 1.0),  # unparsable
        ("7", False, 1.0),  # not respected
        ("far-future-date", True, 30.0),
        ("past-date", True, 0.0),  # a date already passed: retry now
    ],
)
def test_retry_after(
    api: RawApi, retry_after: str | None, respect: bool, expected: float, clock: FakeClock
) -> None:
    if retry_after == "far-future-date":
        retry_after = _http_date(clock, 3600)
    elif retry_after == "past-date":
        retry_after = _http_date(clock, -3600)
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    api.app = sequence(RawReply(429, headers=headers), RawReply(200))
    policy = RetryPolicy(max_retry_delay=30.0, respect_retry_after=respect)
    make_session(api, clock, default_policy=policy).get(api.url + "/api/x")
    assert clock.sleeps == [expected]


def test_retry_after_http_date_in_near_future(api: RawApi, clock: FakeClock) -> None:
    api.app = sequence(RawReply(503, headers={"Retry-After": _http_date(clock, 20)}), RawReply(200))
    make_session(api, clock).get(api.url + "/api/x")
    assert clock.sleeps == [20.0]


def test_404_is_returned_unchanged(api: RawApi, clock: FakeClock) -> None:
    api.app = lambda req: RawReply(404, {"error": "not found"})
    response = make_session(api, clock).get(api.url + "/api/missing")
    assert response.status_code == 404 and response.json() == {"error": "not found"}
    assert clock.sleeps == [] and len(api.requests) == 1


def test_connection_error_is_retried(api: RawApi, clock: FakeClock) -> None:
    api.app = sequence(DROP, RawReply(200, {"ok": 1}))
    response = make_session(api, clock).get(api.url + "/api/x")
    assert response.json() == {"ok": 1}
    assert clock.sleeps == [1.0] and len(api.requests) == 2


def test_connection_errors_exhausted(api: RawApi, clock: FakeClock) -> None:
    api.app = lambda req: DROP
    session = make_session(api, clock, default_policy=RetryPolicy(max_retries=1))
    with pytest.raises(RequestFailedError, match="after 2 attempts: ConnectionError") as info:
        session.get(api.url + "/api/x?token=tok-123456")
    assert "tok-123456" not in str(info.value)
    assert info.value.status is None


# --- with dlt's RESTClient ------------------------------------------------------------------


def test_dlt_rest_client_retries_before_its_raise_for_status_hook(
    api: RawApi, clock: FakeClock
) -> None:
    api.app = sequence(RawReply(503), RawReply(200, {"data": [{"id": 1}]}))
    client = RESTClient(base_url=api.url + "/api", session=make_session(api, clock))
    pages = list(client.paginate("/items", data_selector="data", paginator=SinglePagePaginator()))
    assert pages == [[{"id": 1}]]
    assert clock.sleeps == [1.0]


def test_dlt_rest_client_still_sees_404(api: RawApi, clock: FakeClock) -> None:
    api.app = lambda req: RawReply(404)
    client = RESTClient(base_url=api.url + "/api", session=make_session(api, clock))
    with pytest.raises(requests.HTTPError, match="404"):
        list(client.paginate("/items", data_selector="data", paginator=SinglePagePaginator()))
    assert len(api.requests) == 1 and clock.sleeps == []


# --- 401 and OAuth2 -----------------------------------------------------------------------


def _oauth_app(valid: Callable[[str], bool]) -> App:
    issued: list[str] = []

    def app(req: RawRequest) -> RawReply:
        if req.path == "/oauth/token":
            issued.append(f"tok-{len(issued) + 1}")
            return RawReply(200, {"access_token": issued[-1], "expires_in": 3600})
        token = req.headers.get("Authorization", "").removeprefix("Bearer ")
        return RawReply(200, {"data": [{"token": token}]}) if valid(token) else RawReply(401)

    return app


def test_401_refreshes_token_once_and_succeeds(api: RawApi, clock: FakeClock) -> None:
    api.app = _oauth_app(lambda token: token == "tok-2")
    auth = OAuth2Auth(api.url + "/oauth/token", "id", "client-secret-1", source="acme")
    session = make_session(api, clock, auth=auth)
    response = session.get(api.url + "/api/items", auth=auth)
    assert response.status_code == 200 and response.json()["data"][0]["token"] == "tok-2"
    assert api.calls("/oauth/token") == 2 and api.calls("/api/items") == 2
    assert clock.sleeps == []


def test_second_401_is_returned_as_is(api: RawApi, clock: FakeClock) -> None:
    api.app = _oauth_app(lambda token: False)
    auth = OAuth2Auth(api.url + "/oauth/token", "id", "client-secret-1")
    response = make_session(api, clock, auth=auth).get(api.url + "/api/items", auth=auth)
    assert response.status_code == 401
    assert api.calls("/oauth/token") == 2 and api.calls("/api/items") == 2


def test_401_for_request_not_authorized_by_oauth_is_not_refreshed(
    api: RawApi, clock: FakeClock
) -> None:
    api.app = _oauth_app(lambda token: False)
    auth = OAuth2Auth(api.url + "/oauth/token", "id", "client-secret-1")
    session = make_session(api, clock, auth=auth)
    response = session.get(api.url + "/api/items", headers={"Authorization": "Bearer other"})
    assert response.status_code == 401
    assert api.calls("/oauth/token") == 0 and api.calls("/api/items") == 1


def test_rest_api_source_end_to_end(api: RawApi, clock: FakeClock) -> None:
    """Session, OAuth2Auth and TemplatedCursorPaginator pass dlt's rest_api validation and run."""
    from dlt.sources.rest_api import rest_api_source

    pages = {None: ("2", 503), "2": (None, 401)}  # first answer per page fails once
    failed: set[Any] = set()

    def app(req: RawRequest) -> RawReply:
        if req.path == "/oauth/token":
            return RawReply(200, {"access_token": f"tok-{api.calls('/oauth/token')}"})
        cursor = req.query.get("after")
        nxt, failure = pages[cursor]
        if cursor not in failed:
            failed.add(cursor)
            return RawReply(failure)
        return RawReply(200, {"data": [{"id": cursor or "1"}], "next": nxt})

    api.app = app
    auth = OAuth2Auth(api.url + "/oauth/token", "id", "client-secret-1", source="acme")
    session = make_session(api, clock, Route("items", POLICY), auth=auth)
    paginator = TemplatedCursorPaginator("{{ response.next }}", cursor_param="after")
    source = rest_api_source(
        {
            "client": {"base_url": api.url + "/api/", "auth": auth, "session": session},
            "resources": [{"name": "items", "endpoint": {"path": "items", "paginator": paginator}}],
        }
    )
    assert [row["id"] for row in source.resources["items"]] == ["1", "2"]
    assert clock.sleeps == [1.0]
    assert api.calls("/oauth/token") == 2


# --- timeouts, exceptions, misc -----------------------------------------------------------


class FakeAdapter(BaseAdapter):
    """Transport double: records kwargs, raises ``errors`` first, then answers 200."""

    def __init__(self, errors: list[Exception] | None = None) -> None:
        super().__init__()
        self.errors = list(errors or [])
        self.sent: list[dict[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(kwargs)
        if self.errors:
            raise self.errors.pop(0)
        response = requests.Response()
        response.status_code, response.url, response.request = 200, request.url, request
        response._content = b"{}"
        return response

    def close(self) -> None:
        pass


def _fake_session(adapter: FakeAdapter, clock: FakeClock, policy: RetryPolicy) -> RestsyncSession:
    session = RestsyncSession("acme", "https://fake.example.com", [], policy, clock=clock)
    session.mount("https://fake.example.com", adapter)
    return session


def test_default_timeout_comes_from_policy() -> None:
    adapter = FakeAdapter()
    session = _fake_session(adapter, FakeClock(), RetryPolicy(timeout=12.5))
    session.get("https://fake.example.com/a")
    session.get("https://fake.example.com/a", timeout=3)
    assert [sent["timeout"] for sent in adapter.sent] == [12.5, 3]


def test_timeouts_are_retried_then_reported(clock: FakeClock) -> None:
    error = requests.ReadTimeout("read timed out for /a?password=hunter22")
    adapter = FakeAdapter([error, error, error])
    session = _fake_session(adapter, clock, RetryPolicy(max_retries=2))
    with pytest.raises(RequestFailedError, match="after 3 attempts: ReadTimeout") as info:
        session.get("https://fake.example.com/a")
    assert "hunter22" not in str(info.value)
    assert clock.sleeps == [1.0, 2.0]


def test_non_retryable_exception_propagates(clock: FakeClock) -> None:
    adapter = FakeAdapter([requests.exceptions.InvalidHeader("bad header")])
    with pytest.raises(requests.exceptions.InvalidHeader):
        _fake_session(adapter, clock, RetryPolicy()).get("https://fake.example.com/a")
    assert clock.sleeps == []


def test_session_is_shared_on_deepcopy_and_does_not_raise_for_status() -> None:
    session = RestsyncSession("s", "https://h.example.com", [], RetryPolicy())
    assert copy.deepcopy(session) is session
    assert not getattr(session, "raise_for_status", False)


def test_mask_helper() -> None:
    assert mask("token abcd1234 and abcd1234", ["abcd1234"]) == "token *** and ***"
    assert mask("a%2Fb%3Dc and a/b=c", ["a/b=c"]) == "*** and ***"
    assert mask("nothing", [None, ""]) == "nothing"


# --- answers that are not what dlt expects --------------------------------------------------


def test_html_with_status_200_fails_with_status_type_and_first_bytes(
    api: RawApi, clock: FakeClock
) -> None:
    page = b"<!DOCTYPE html>\n<html><body>Maintenance until 10:00</body></html>"
    api.app = lambda req: RawReply(200, page, {"Content-Type": "text/html"})
    session = make_session(api, clock, Route("items", POLICY))
    with pytest.raises(NotJsonError) as info:
        session.get(api.url + "/api/items?api_key=k-123456", hooks=tagged("items"))
    assert str(info.value) == (
        f"acme: resource items: GET {api.url}/api/items?api_key=*** answered HTTP 200 with"
        " Content-Type 'text/html', not JSON (after 1 attempt); the body starts with"
        " '<!DOCTYPE html> <html><body>Maintenance until 10:00</body></html>'; the API may be"
        " down for maintenance or behind a proxy or login page"
    )
    assert info.value.status == 200 and info.value.attempts == 1


def test_empty_2xx_fails_unless_response_actions_ignore_it(api: RawApi, clock: FakeClock) -> None:
    api.app = lambda req: RawReply(204, b"")
    client = RESTClient(base_url=api.url + "/api", session=make_session(api, clock))
    with pytest.raises(NotJsonError, match=r"answered HTTP 204 with an empty body, not JSON"):
        list(client.paginate("/items", data_selector="data", paginator=SinglePagePaginator()))
    from dlt.sources.rest_api.config_setup import create_response_hooks

    hooks = create_response_hooks([{"status_code": 204, "action": "ignore"}])
    pages = client.paginate(
        "/items", data_selector="data", paginator=SinglePagePaginator(), hooks=hooks
    )
    assert list(pages) == []


def test_http_error_is_one_line_with_hint_and_still_an_http_error(
    api: RawApi, clock: FakeClock
) -> None:
    api.app = lambda req: RawReply(404, {"error": "not_found"})
    client = RESTClient(
        base_url=api.url + "/api",
        session=make_session(api, clock, Route("kids", POLICY)),
        auth=ResourceAuth("kids"),
    )
    with pytest.raises(HttpStatusError) as info:
        list(client.paginate("/parents/7/kids", paginator=SinglePagePaginator()))
    assert isinstance(info.value, requests.HTTPError)
    assert str(info.value) == (
        f"acme: resource kids: GET {api.url}/api/parents/7/kids failed after 1 attempt:"
        ' HTTP 404 Not Found {"error": "not_found"}; if it means \'no data\' (e.g. a parent'
        " without children), add response_actions: [{status_code: 404, action: ignore}] to"
        " the resource"
    )


def test_socket_errors_are_named_in_the_message(api: RawApi, clock: FakeClock) -> None:
    api.app = lambda req: DROP
    session = make_session(api, clock, default_policy=RetryPolicy(max_retries=0))
    with pytest.raises(RequestFailedError) as info:
        session.get(api.url + "/api/x")
    assert "after 1 attempt: ConnectionError (" in str(info.value)


def test_default_sleep_and_clock_come_from_the_swappable_retry_clock(api, monkeypatch) -> None:
    """Without a clock of its own, a session waits and dates `Retry-After` with `retry.CLOCK`,
    looked up at each wait."""
    fake = FakeClock()
    monkeypatch.setattr(retry, "CLOCK", fake)
    date = formatdate(fake.now + 12, usegmt=True)
    api.app = sequence(RawReply(429, headers={"Retry-After": date}), RawReply(200))
    session = RestsyncSession("acme", api.url, [], RetryPolicy())
    assert session.get(api.url + "/x").status_code == 200
    assert fake.sleeps == [12.0]


# --- pages that are not whole -------------------------------------------------------------

CUT = b'{"data": [{"id": 1}, {"name": "Ev'
WHOLE = {"data": [{"id": 1}]}
ITEMS = Route("items", POLICY, check=page_check("data", None))
NOT_WHOLE = [
    # (case, first answer, route, what the failure line says)
    ("JSON cut short", RawReply(200, CUT), None, "the body was cut short (33 bytes, starting"),
    ("JSON Lines cut short", RawReply(200, b'{"id": 1}\n{"id'), None, "the body was cut short"),
    (
        "an error body with status 200",
        RawReply(200, {"error": {"message": "backend down"}}),
        ITEMS,
        "HTTP 200 OK, but the body has no `data` (the data_selector's path)",
    ),
]


@pytest.mark.parametrize(
    ("case", "reply", "route", "says"), NOT_WHOLE, ids=[c[0] for c in NOT_WHOLE]
)
def test_a_page_not_whole_is_retried_then_fails_naming_resource_and_url(
    api: RawApi, clock: FakeClock, case, reply, route, says
) -> None:
    """Retried like a network error by the resource's policy; when it never comes whole, one
    line naming the resource and URL (today: not retried, 'not JSON' or taken as a page)."""
    routes = [route] if route else [Route("items", POLICY)]
    session = make_session(api, clock, *routes)
    api.app = sequence(reply, RawReply(200, WHOLE))
    assert session.get(api.url + "/api/items", hooks=tagged("items")).json() == WHOLE
    assert clock.sleeps == [1.0]
    api.app = lambda req: reply
    with pytest.raises(IncompletePageError) as info:
        session.get(api.url + "/api/items?page=2", hooks=tagged("items"))
    message = str(info.value)
    assert message.startswith(f"acme: resource items: GET {api.url}/api/items?page=2 failed")
    assert "failed after 4 attempts" in message and says in message and "\n" not in message


def test_an_empty_or_null_page_and_an_ignored_answer_are_whole(api: RawApi, clock) -> None:
    """`data: []` and `data: null` are empty pages; an answer `response_actions` ignore is
    never checked."""
    ignoring = {"status_code": 200, "content": "no results", "action": "ignore"}
    route = Route("items", POLICY, check=page_check("data", None, [ignoring]))
    session = make_session(api, clock, route)
    for body in ({"data": []}, {"data": None}, {"error": "no results"}):
        api.app = lambda req, body=body: RawReply(200, body)
        assert session.get(api.url + "/api/items", hooks=tagged("items")).json() == body
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("selector", "required"),
    [
        ("data", "data"),
        ("$.data", "data"),
        ("data.search.nodes", "data.search.nodes"),
        ("organizations.*.organization", "organizations"),
        ("data[*]", "data"),
        ("$", None),
        ("[*]", None),
        (None, None),
    ],
)
def test_the_path_every_page_must_have(selector, required) -> None:
    assert required_path(selector) == required


#: (offset asked, page body, what the offset check says (None: whole), the announced total)
OFFSET_PAGES = [
    (0, {"data": [{"id": 1}, {"id": 2}], "meta": {"total": 3}}, None, ("rows", 3)),
    (2, {"data": [{"id": 3}], "meta": {"total": 3}}, None, ("rows", 3)),
    (0, {"data": [{"id": 1}], "meta": {"total": 3}}, "has 1 of the 2 rows", ("rows", 3)),
    (0, {"data": [], "meta": {}}, None, None),
    (0, {"error": "down"}, "has no `data`", None),
]


def test_the_page_checks_parse_each_path_once_however_many_pages(monkeypatch) -> None:
    """Every page is checked with the resource's selector and total path: what each check says
    is unchanged, and each distinct path is parsed once, not on every page (jsonpath-ng
    parsing a string costs ~0.45 ms, three times a page: found profiling P1)."""
    from dlt.common import jsonpath

    parsed: list[str] = []
    real = jsonpath.compile_path

    def compile_path(path: Any) -> Any:
        if isinstance(path, str):  # a compiled path is returned as it is
            parsed.append(path)
        return real(path)

    monkeypatch.setattr(jsonpath, "compile_path", compile_path)
    pages._compiled.cache_clear()
    paginator = OffsetPaginatorSpec(type="offset", limit=2, total_path="meta.total")
    check = page_check("data", paginator)
    for _round in range(3):
        for offset, body, says, total in OFFSET_PAGES:
            response = requests.Response()
            response.url = f"http://api/items?offset={offset}&limit=2"
            problem = check.problem(response, body)
            assert (problem is None) if says is None else (says in problem), (body, problem)
            assert check.announced_total(body) == total, body
    assert sorted(parsed) == ["data", "meta.total"], parsed


#: (selector, body): bodies the data_selector check must judge as jsonpath-ng does
SELECTOR_BODIES = [
    (path, body)
    for path in ("data", "data.search.nodes", "data.x", "$.data[*]", "data.*.x", "sp-ace")
    for body in (
        {"data": []},
        {"data": None},
        {"data": {"x": 1}},
        {"x": 1},
        [],
        [{"data": 1}],
        {"data": [{"x": 1}]},
        "text",
        None,
        {"data": {"search": {"nodes": None}}},
        {"data": {"search": []}},
        {"data": [{"search": {"nodes": 1}}]},
        {"sp-ace": 1},
    )
]


@pytest.mark.parametrize(("path", "body"), SELECTOR_BODIES)
def test_the_data_selector_check_finds_a_path_where_jsonpath_does(path, body) -> None:
    """A path of plain keys is looked up key by key (every child request pays this check);
    any other path goes through jsonpath-ng: either way a body has the path exactly when
    jsonpath-ng finds a value there (null and empty values count as there)."""
    from dlt.common import jsonpath

    found = isinstance(body, (dict, list)) and bool(
        jsonpath.find_values(jsonpath.compile_path(path), body)
    )
    problem = pages.missing_selector(path)(body)
    assert (problem is None) == found, (path, body, problem)


ENVIRONMENTS = [
    {},
    {"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "127.0.0.1", "REQUESTS_CA_BUNDLE": "/ca.pem"},
    {"HTTPS_PROXY": "http://proxy:3128", "CURL_CA_BUNDLE": "/curl.pem"},
]
ENV_CALLS = [
    ("http://127.0.0.1:5/a", {}, None, None, None),
    ("http://example.com/b?x=1", {}, None, None, None),
    ("https://example.com/c", None, True, True, None),
    ("https://example.com/d", {"no_proxy": "example.com"}, None, False, None),
]


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=["none", "http_proxy", "https_proxy"])
def test_environment_settings_are_requests_own_read_once_per_origin(env, monkeypatch):
    """The session reads proxies and CA bundles from the environment once per origin, and
    every call still returns what requests' own `merge_environment_settings` returns."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = RestsyncSession(
        source="env", base_url="http://example.com", routes=[], default_policy=RetryPolicy()
    )
    plain = requests.Session()
    for _ in range(2):
        for url, *args in ENV_CALLS:
            ours = session.merge_environment_settings(url, *copy.deepcopy(args))
            assert ours == plain.merge_environment_settings(url, *copy.deepcopy(args)), url
    assert len(session._environment) == 4  # one entry per origin and no_proxy

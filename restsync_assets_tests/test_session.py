"""Tests for restsync_assets.runtime.http.session (per-route retries, 401 refresh, masking)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import SinglePagePaginator
from requests.adapters import BaseAdapter

from restsync_assets.runtime.http.oauth import OAuth2Auth
from restsync_assets.runtime.http.paginators import TemplatedCursorPaginator
from restsync_assets.runtime.http.session import (
    HttpStatusError,
    NotJsonError,
    RequestFailedError,
    RestsyncSession,
    RetryPolicy,
    Route,
    mask,
)

from .conftest import serving


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Resp:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


DROP = "drop"  # close the connection without answering
App = Callable[[Req], "Resp | str"]


class Api:
    """Local HTTP API on 127.0.0.1; ``app`` answers, ``requests`` records."""

    def __init__(self) -> None:
        self.app: App = lambda req: Resp()
        self.requests: list[Req] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                if int(self.headers.get("Content-Length", 0)):
                    self.rfile.read(int(self.headers["Content-Length"]))
                req = Req(
                    self.command,
                    parts.path,
                    {k: v[-1] for k, v in parse_qs(parts.query).items()},
                    dict(self.headers),
                )
                api.requests.append(req)
                resp = api.app(req)
                if resp == DROP:
                    self.close_connection = True
                    return
                raw = isinstance(resp.body, bytes)
                payload = resp.body if raw else json.dumps(resp.body).encode()
                self.send_response(resp.status)
                if "Content-Type" not in resp.headers:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in resp.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def calls(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


@pytest.fixture(scope="module")
def _server() -> Iterator[Api]:
    server = Api()
    with serving(server.server):
        yield server


@pytest.fixture
def api(_server: Api) -> Api:
    _server.app = lambda req: Resp()
    _server.requests.clear()
    return _server


def sequence(*responses: Resp | str) -> App:
    """Answer with ``responses`` in order, repeating the last one."""
    queue = list(responses)
    return lambda req: queue.pop(0) if len(queue) > 1 else queue[0]


class Sleeps(list):
    """Fake sleep recording the delays."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


POLICY = RetryPolicy(max_retries=3, backoff_factor=1.0, max_retry_delay=30.0)


def make_session(api: Api, sleeps: Sleeps, *routes: Route, **kwargs: Any) -> RestsyncSession:
    kwargs.setdefault("default_policy", POLICY)
    return RestsyncSession("acme", api.url + "/api", list(routes), sleep=sleeps, **kwargs)


# --- routing ------------------------------------------------------------------------------


def test_route_for_prefers_most_literal_match_and_respects_trailing_slash() -> None:
    policy = RetryPolicy()
    routes = [
        Route("items", "/v1/items", policy),
        Route("items_slash", "/v1/items/", policy),
        Route("item", "/v1/items/{id}", policy),
        Route("special", "/v1/items/special", policy),
        Route("ad_accounts", "/v1/organizations/{organization_id}/adaccounts", policy),
        Route("comments", "issues/{resources.issues.number}/comments?state=all", policy),
    ]
    session = RestsyncSession("acme", "https://h.example.com/api/", routes, policy)

    def name(url: str) -> str | None:
        route = session.route_for(url)
        return route.resource if route else None

    base = "https://h.example.com/api"
    assert name(f"{base}/v1/items") == "items"
    assert name(f"{base}/v1/items?limit=5") == "items"
    assert name(f"{base}/v1/items/") == "items_slash"
    assert name(f"{base}/v1/items/42") == "item"
    assert name(f"{base}/v1/items/special") == "special"
    assert name(f"{base}/v1/organizations/o-1/adaccounts") == "ad_accounts"
    assert name(f"{base}/issues/7/comments") == "comments"
    assert name(f"{base}/v1/items/42/extra") is None
    assert name(f"{base}/v1/organizations/o-1/adaccounts/") is None
    assert name("https://h.example.com/other/v1/items") is None
    assert session.policy_for("https://h.example.com/other") is policy


def test_route_without_base_path_prefix() -> None:
    policy = RetryPolicy()
    session = RestsyncSession("s", "https://h.example.com", [Route("a", "a/{x}", policy)], policy)
    assert session.route_for("https://h.example.com/a/1").resource == "a"
    assert session.route_for("https://next.example.com/a/1?c=2").resource == "a"


# --- retries ------------------------------------------------------------------------------


def test_retries_503_with_exponential_backoff(api: Api) -> None:
    api.app = sequence(Resp(503), Resp(503), Resp(200, {"ok": True}))
    sleeps = Sleeps()
    response = make_session(api, sleeps).get(api.url + "/api/items")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert sleeps == [1.0, 2.0]
    assert len(api.requests) == 3


def test_backoff_is_capped(api: Api) -> None:
    api.app = sequence(Resp(500), Resp(502), Resp(504), Resp(200))
    sleeps = Sleeps()
    policy = RetryPolicy(max_retries=3, backoff_factor=10.0, max_retry_delay=15.0)
    make_session(api, sleeps, default_policy=policy).get(api.url + "/api/items")
    assert sleeps == [10.0, 15.0, 15.0]


def test_retries_exhausted_raise_with_masked_url(api: Api) -> None:
    api.app = lambda req: Resp(503)
    sleeps = Sleeps()
    session = make_session(
        api,
        sleeps,
        Route("stats", "/v1/stats", RetryPolicy(max_retries=2, backoff_factor=0.5)),
        secrets=lambda: ["sekrit-value-1"],
    )
    url = api.url + "/api/v1/stats?api_key=abc123&q=sekrit-value-1&page=2"
    with pytest.raises(RequestFailedError) as info:
        session.get(url)
    error = info.value
    message = str(error)
    assert "\n" not in message
    assert "abc123" not in message and "sekrit-value-1" not in message
    for part in ("acme", "stats", "GET", "api_key=***", "q=***", "page=2", "HTTP 503"):
        assert part in message
    assert "after 3 attempts" in message and "max_retries" in message
    assert (error.attempts, error.status, error.resource) == (3, 503, "stats")
    assert error.__cause__ is None and error.__context__ is None
    assert sleeps == [0.5, 1.0]


def test_per_route_policy_is_used(api: Api) -> None:
    api.app = lambda req: Resp(503) if req.path.endswith("/fragile") else Resp(429)
    sleeps = Sleeps()
    session = make_session(
        api,
        sleeps,
        Route("fragile", "/fragile", RetryPolicy(max_retries=0)),
        Route("no_429", "/no429", RetryPolicy(retry_on_status_codes=(503,))),
    )
    with pytest.raises(RequestFailedError, match="after 1 attempt:"):
        session.get(api.url + "/api/fragile")
    assert session.get(api.url + "/api/no429").status_code == 429  # not retryable there
    assert sleeps == []
    assert len(api.requests) == 2


def _http_date(offset_seconds: float) -> str:
    return formatdate(time.time() + offset_seconds, usegmt=True)


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
def test_retry_after(api: Api, retry_after: str | None, respect: bool, expected: float) -> None:
    if retry_after == "far-future-date":
        retry_after = _http_date(3600)
    elif retry_after == "past-date":
        retry_after = _http_date(-3600)
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    api.app = sequence(Resp(429, headers=headers), Resp(200))
    sleeps = Sleeps()
    policy = RetryPolicy(max_retry_delay=30.0, respect_retry_after=respect)
    make_session(api, sleeps, default_policy=policy).get(api.url + "/api/x")
    assert sleeps == [expected]


def test_retry_after_http_date_in_near_future(api: Api) -> None:
    api.app = sequence(Resp(503, headers={"Retry-After": _http_date(20)}), Resp(200))
    sleeps = Sleeps()
    make_session(api, sleeps).get(api.url + "/api/x")
    assert len(sleeps) == 1 and 17.0 <= sleeps[0] <= 20.0


def test_404_is_returned_unchanged(api: Api) -> None:
    api.app = lambda req: Resp(404, {"error": "not found"})
    sleeps = Sleeps()
    response = make_session(api, sleeps).get(api.url + "/api/missing")
    assert response.status_code == 404 and response.json() == {"error": "not found"}
    assert sleeps == [] and len(api.requests) == 1


def test_connection_error_is_retried(api: Api) -> None:
    api.app = sequence(DROP, Resp(200, {"ok": 1}))
    sleeps = Sleeps()
    response = make_session(api, sleeps).get(api.url + "/api/x")
    assert response.json() == {"ok": 1}
    assert sleeps == [1.0] and len(api.requests) == 2


def test_connection_errors_exhausted(api: Api) -> None:
    api.app = lambda req: DROP
    sleeps = Sleeps()
    session = make_session(api, sleeps, default_policy=RetryPolicy(max_retries=1))
    with pytest.raises(RequestFailedError, match="after 2 attempts: ConnectionError") as info:
        session.get(api.url + "/api/x?token=tok-123456")
    assert "tok-123456" not in str(info.value)
    assert info.value.status is None


# --- with dlt's RESTClient ------------------------------------------------------------------


def test_dlt_rest_client_retries_before_its_raise_for_status_hook(api: Api) -> None:
    api.app = sequence(Resp(503), Resp(200, {"data": [{"id": 1}]}))
    sleeps = Sleeps()
    client = RESTClient(base_url=api.url + "/api", session=make_session(api, sleeps))
    pages = list(client.paginate("/items", data_selector="data", paginator=SinglePagePaginator()))
    assert pages == [[{"id": 1}]]
    assert sleeps == [1.0]


def test_dlt_rest_client_still_sees_404(api: Api) -> None:
    api.app = lambda req: Resp(404)
    sleeps = Sleeps()
    client = RESTClient(base_url=api.url + "/api", session=make_session(api, sleeps))
    with pytest.raises(requests.HTTPError, match="404"):
        list(client.paginate("/items", data_selector="data", paginator=SinglePagePaginator()))
    assert len(api.requests) == 1 and sleeps == []


# --- 401 and OAuth2 -----------------------------------------------------------------------


def _oauth_app(valid: Callable[[str], bool]) -> App:
    issued: list[str] = []

    def app(req: Req) -> Resp:
        if req.path == "/oauth/token":
            issued.append(f"tok-{len(issued) + 1}")
            return Resp(200, {"access_token": issued[-1], "expires_in": 3600})
        token = req.headers.get("Authorization", "").removeprefix("Bearer ")
        return Resp(200, {"data": [{"token": token}]}) if valid(token) else Resp(401)

    return app


def test_401_refreshes_token_once_and_succeeds(api: Api) -> None:
    api.app = _oauth_app(lambda token: token == "tok-2")
    auth = OAuth2Auth(api.url + "/oauth/token", "id", "client-secret-1", source="acme")
    sleeps = Sleeps()
    session = make_session(api, sleeps, auth=auth)
    response = session.get(api.url + "/api/items", auth=auth)
    assert response.status_code == 200 and response.json()["data"][0]["token"] == "tok-2"
    assert api.calls("/oauth/token") == 2 and api.calls("/api/items") == 2
    assert sleeps == []


def test_second_401_is_returned_as_is(api: Api) -> None:
    api.app = _oauth_app(lambda token: False)
    auth = OAuth2Auth(api.url + "/oauth/token", "id", "client-secret-1")
    response = make_session(api, Sleeps(), auth=auth).get(api.url + "/api/items", auth=auth)
    assert response.status_code == 401
    assert api.calls("/oauth/token") == 2 and api.calls("/api/items") == 2


def test_401_for_request_not_authorized_by_oauth_is_not_refreshed(api: Api) -> None:
    api.app = _oauth_app(lambda token: False)
    auth = OAuth2Auth(api.url + "/oauth/token", "id", "client-secret-1")
    session = make_session(api, Sleeps(), auth=auth)
    response = session.get(api.url + "/api/items", headers={"Authorization": "Bearer other"})
    assert response.status_code == 401
    assert api.calls("/oauth/token") == 0 and api.calls("/api/items") == 1


def test_rest_api_source_end_to_end(api: Api) -> None:
    """Session, OAuth2Auth and TemplatedCursorPaginator pass dlt's rest_api validation and run."""
    from dlt.sources.rest_api import rest_api_source

    pages = {None: ("2", 503), "2": (None, 401)}  # first answer per page fails once
    failed: set[Any] = set()

    def app(req: Req) -> Resp:
        if req.path == "/oauth/token":
            return Resp(200, {"access_token": f"tok-{api.calls('/oauth/token')}"})
        cursor = req.query.get("after")
        nxt, failure = pages[cursor]
        if cursor not in failed:
            failed.add(cursor)
            return Resp(failure)
        return Resp(200, {"data": [{"id": cursor or "1"}], "next": nxt})

    api.app = app
    auth = OAuth2Auth(api.url + "/oauth/token", "id", "client-secret-1", source="acme")
    sleeps = Sleeps()
    session = make_session(api, sleeps, Route("items", "/items", POLICY), auth=auth)
    paginator = TemplatedCursorPaginator("{{ response.next }}", cursor_param="after")
    source = rest_api_source(
        {
            "client": {"base_url": api.url + "/api/", "auth": auth, "session": session},
            "resources": [{"name": "items", "endpoint": {"path": "items", "paginator": paginator}}],
        }
    )
    assert [row["id"] for row in source.resources["items"]] == ["1", "2"]
    assert sleeps == [1.0]
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


def _fake_session(adapter: FakeAdapter, sleeps: Sleeps, policy: RetryPolicy) -> RestsyncSession:
    session = RestsyncSession("acme", "https://fake.example.com", [], policy, sleep=sleeps)
    session.mount("https://fake.example.com", adapter)
    return session


def test_default_timeout_comes_from_policy() -> None:
    adapter = FakeAdapter()
    session = _fake_session(adapter, Sleeps(), RetryPolicy(timeout=12.5))
    session.get("https://fake.example.com/a")
    session.get("https://fake.example.com/a", timeout=3)
    assert [sent["timeout"] for sent in adapter.sent] == [12.5, 3]


def test_timeouts_are_retried_then_reported() -> None:
    error = requests.ReadTimeout("read timed out for /a?password=hunter22")
    adapter = FakeAdapter([error, error, error])
    sleeps = Sleeps()
    session = _fake_session(adapter, sleeps, RetryPolicy(max_retries=2))
    with pytest.raises(RequestFailedError, match="after 3 attempts: ReadTimeout") as info:
        session.get("https://fake.example.com/a")
    assert "hunter22" not in str(info.value)
    assert sleeps == [1.0, 2.0]


def test_non_retryable_exception_propagates() -> None:
    adapter = FakeAdapter([requests.exceptions.InvalidHeader("bad header")])
    sleeps = Sleeps()
    with pytest.raises(requests.exceptions.InvalidHeader):
        _fake_session(adapter, sleeps, RetryPolicy()).get("https://fake.example.com/a")
    assert sleeps == []


def test_session_is_shared_on_deepcopy_and_does_not_raise_for_status() -> None:
    session = RestsyncSession("s", "https://h.example.com", [], RetryPolicy())
    assert copy.deepcopy(session) is session
    assert not getattr(session, "raise_for_status", False)


def test_mask_helper() -> None:
    assert mask("token abcd1234 and abcd1234", ["abcd1234"]) == "token *** and ***"
    assert mask("a%2Fb%3Dc and a/b=c", ["a/b=c"]) == "*** and ***"
    assert mask("nothing", [None, ""]) == "nothing"


# --- answers that are not what dlt expects --------------------------------------------------


def test_html_with_status_200_fails_with_status_type_and_first_bytes(api: Api) -> None:
    page = b"<!DOCTYPE html>\n<html><body>Maintenance until 10:00</body></html>"
    api.app = lambda req: Resp(200, page, {"Content-Type": "text/html"})
    session = make_session(api, Sleeps(), Route("items", "/items", POLICY))
    with pytest.raises(NotJsonError) as info:
        session.get(api.url + "/api/items?api_key=k-123456")
    assert str(info.value) == (
        f"acme: resource items: GET {api.url}/api/items?api_key=*** answered HTTP 200 with"
        " Content-Type 'text/html', not JSON (after 1 attempt); the body starts with"
        " '<!DOCTYPE html> <html><body>Maintenance until 10:00</body></html>'; the API may be"
        " down for maintenance or behind a proxy or login page"
    )
    assert info.value.status == 200 and info.value.attempts == 1


def test_empty_2xx_fails_unless_response_actions_ignore_it(api: Api) -> None:
    api.app = lambda req: Resp(204, b"")
    sleeps = Sleeps()
    client = RESTClient(base_url=api.url + "/api", session=make_session(api, sleeps))
    with pytest.raises(NotJsonError, match=r"answered HTTP 204 with an empty body, not JSON"):
        list(client.paginate("/items", data_selector="data", paginator=SinglePagePaginator()))
    from dlt.sources.rest_api.config_setup import create_response_hooks

    hooks = create_response_hooks([{"status_code": 204, "action": "ignore"}])
    pages = client.paginate(
        "/items", data_selector="data", paginator=SinglePagePaginator(), hooks=hooks
    )
    assert list(pages) == []


def test_http_error_is_one_line_with_hint_and_still_an_http_error(api: Api) -> None:
    api.app = lambda req: Resp(404, {"error": "not_found"})
    client = RESTClient(
        base_url=api.url + "/api",
        session=make_session(api, Sleeps(), Route("kids", "/parents/{id}/kids", POLICY)),
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


def test_socket_errors_are_named_in_the_message(api: Api) -> None:
    api.app = lambda req: DROP
    session = make_session(api, Sleeps(), default_policy=RetryPolicy(max_retries=0))
    with pytest.raises(RequestFailedError) as info:
        session.get(api.url + "/api/x")
    assert "after 1 attempt: ConnectionError (" in str(info.value)


def test_default_sleep_and_clock_come_from_the_swappable_retry_clock(api, monkeypatch) -> None:
    from restsync_assets.runtime.http import retry

    class Fake(retry.Clock):
        def __init__(self) -> None:
            self.sleeps: list[float] = []

        def time(self) -> float:
            return 1_800_000_000.0

        def sleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)

    fake = Fake()
    monkeypatch.setattr(retry, "CLOCK", fake)
    date = formatdate(1_800_000_000.0 + 12, usegmt=True)
    api.app = sequence(Resp(429, headers={"Retry-After": date}), Resp(200))
    session = RestsyncSession("acme", api.url, [], RetryPolicy())
    assert session.get(api.url + "/x").status_code == 200
    assert fake.sleeps == [12.0]

"""Tests for restsync_assets.runtime.http.oauth against a local token endpoint."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests

from restsync_assets.runtime.http.oauth import OAuth2Auth, OAuth2Error
from restsync_assets.runtime.http.retry import RetryPolicy

from .fake_servers import RawApi, RawReply, RawRequest
from .support import FakeClock, free_port

SECRET = "client-secret-XYZ"
REFRESH = "refresh-token-1"
TOKEN_PATH = "/oauth/token"

# reply(form) -> (status, json body)
TokenReply = Callable[[dict[str, str]], tuple[int, Any]]


class TokenServer:
    """A local OAuth token endpoint (a `RawApi`): `reply(form)` answers each posted form."""

    def __init__(self, api: RawApi) -> None:
        self.api = api.reset(self._answer)
        self.reply: TokenReply = self.issue
        self.url = api.url + TOKEN_PATH
        self._lock = threading.Lock()

    @property
    def forms(self) -> list[dict[str, str]]:
        return [r.form for r in self.api.requests]

    def issue(self, form: dict[str, str], **extra: Any) -> tuple[int, Any]:
        return 200, {"access_token": f"access-{len(self.forms)}", "expires_in": 3600, **extra}

    def _answer(self, request: RawRequest) -> RawReply:
        with self._lock:  # one answer at a time: `issue` numbers tokens by the forms received
            status, body = self.reply(request.form)
        return RawReply(status, body)


@pytest.fixture
def tokens(_server: RawApi) -> TokenServer:
    return TokenServer(_server)


def _auth(tokens: TokenServer, **kwargs: Any) -> OAuth2Auth:
    kwargs.setdefault("source", "acme")
    kwargs.setdefault("clock", FakeClock())
    return OAuth2Auth(tokens.url, "client-id", SECRET, **kwargs)


def _bearer(auth: OAuth2Auth) -> str:
    request = requests.Request("GET", "https://api.example.com/x").prepare()
    return auth(request).headers["Authorization"]


def test_client_credentials_grant(tokens: TokenServer) -> None:
    auth = _auth(tokens, scopes=["read", "write"])
    assert auth.grant_type == "client_credentials"
    assert _bearer(auth) == "Bearer access-1"
    assert _bearer(auth) == "Bearer access-1"  # cached
    assert tokens.forms == [
        {
            "grant_type": "client_credentials",
            "client_id": "client-id",
            "client_secret": SECRET,
            "scope": "read write",
        }
    ]


def test_refresh_token_grant(tokens: TokenServer) -> None:
    auth = _auth(tokens, refresh_token=REFRESH)
    assert auth.grant_type == "refresh_token"
    assert _bearer(auth) == "Bearer access-1"
    assert tokens.forms[0]["grant_type"] == "refresh_token"
    assert tokens.forms[0]["refresh_token"] == REFRESH
    assert "scope" not in tokens.forms[0]


def test_token_is_refreshed_by_clock_with_skew(tokens: TokenServer) -> None:
    clock = FakeClock()
    auth = _auth(tokens, clock=clock, expiry_skew_seconds=60)
    assert _bearer(auth) == "Bearer access-1"
    clock.now += 3600 - 61
    assert _bearer(auth) == "Bearer access-1"
    clock.now += 1
    assert _bearer(auth) == "Bearer access-2"
    assert len(tokens.forms) == 2


def test_token_without_expires_in_lives_until_invalidated(tokens: TokenServer) -> None:
    tokens.reply = lambda form: (200, {"access_token": f"t{len(tokens.forms)}"})
    clock = FakeClock()
    auth = _auth(tokens, clock=clock)
    assert _bearer(auth) == "Bearer t1"
    clock.now += 10**9
    assert _bearer(auth) == "Bearer t1"
    auth.invalidate()
    assert _bearer(auth) == "Bearer t2"


def test_invalidate_with_stale_token_keeps_current(tokens: TokenServer) -> None:
    auth = _auth(tokens)
    _bearer(auth)
    auth.invalidate("access-1")
    assert _bearer(auth) == "Bearer access-2"
    auth.invalidate("access-1")  # another thread already refreshed after the same 401
    assert _bearer(auth) == "Bearer access-2"
    assert auth.owns_authorization("Bearer access-1")
    assert not auth.owns_authorization("Bearer someone-else")


def test_refresh_token_rotation_calls_callback(tokens: TokenServer) -> None:
    tokens.reply = lambda form: tokens.issue(form, refresh_token=f"refresh-{len(tokens.forms) + 1}")
    rotated: list[str] = []
    auth = _auth(tokens, refresh_token=REFRESH, on_refresh_token_rotated=rotated.append)
    _bearer(auth)
    auth.invalidate()
    _bearer(auth)
    assert rotated == ["refresh-2", "refresh-3"]
    assert [form["refresh_token"] for form in tokens.forms] == [REFRESH, "refresh-2"]
    assert {REFRESH, "refresh-2", "refresh-3", SECRET, "access-2"} <= set(auth.secrets())


def test_same_refresh_token_is_not_reported_as_rotated(tokens: TokenServer) -> None:
    tokens.reply = lambda form: tokens.issue(form, refresh_token=REFRESH)
    rotated: list[str] = []
    _bearer(_auth(tokens, refresh_token=REFRESH, on_refresh_token_rotated=rotated.append))
    assert rotated == []


def test_failing_rotation_callback_raises_without_secret(tokens: TokenServer) -> None:
    tokens.reply = lambda form: tokens.issue(form, refresh_token="refresh-new-1")

    def store(token: str) -> None:
        raise OSError(f"cannot write {token}")

    auth = _auth(tokens, refresh_token=REFRESH, on_refresh_token_rotated=store)
    with pytest.raises(OAuth2Error) as info:
        _bearer(auth)
    assert "refresh-new-1" not in str(info.value)
    assert "OSError" in str(info.value)


def test_401_from_token_endpoint_is_one_line_without_secret(tokens: TokenServer) -> None:
    tokens.reply = lambda form: (
        401,
        {"error": "invalid_client", "error_description": f"bad secret {form['client_secret']}"},
    )
    auth = _auth(tokens)
    with pytest.raises(OAuth2Error) as info:
        _bearer(auth)
    message = str(info.value)
    assert message.startswith(
        f"acme: token request to {tokens.url} failed: HTTP 401 invalid_client"
    )
    assert "check ACME_CLIENT_ID / ACME_CLIENT_SECRET" in message
    assert SECRET not in message and "\n" not in message


def test_invalid_grant_points_to_refresh_token(tokens: TokenServer) -> None:
    tokens.reply = lambda form: (400, {"error": "invalid_grant"})
    with pytest.raises(OAuth2Error, match=r"HTTP 400 invalid_grant.*MY_API_REFRESH_TOKEN") as info:
        _bearer(_auth(tokens, refresh_token=REFRESH, source="my-api"))
    assert REFRESH not in str(info.value)


def test_response_without_access_token(tokens: TokenServer) -> None:
    tokens.reply = lambda form: (200, {"token_type": "bearer"})
    with pytest.raises(OAuth2Error, match="no access_token"):
        _bearer(_auth(tokens))


def test_connection_error_becomes_oauth2_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/token"  # nothing listens there
    clock = FakeClock()
    with pytest.raises(OAuth2Error, match=r"after 4 attempts: ConnectionError.*reachable") as info:
        _bearer(OAuth2Auth(url, "id", SECRET, source="acme", clock=clock))
    assert url in str(info.value) and SECRET not in str(info.value)
    assert clock.sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    "url", ["http://auth.example.com/token", "ftp://127.0.0.1/token", "http://10.0.0.1/token"]
)
def test_non_https_token_url_is_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        OAuth2Auth(url, "id", SECRET)


@pytest.mark.parametrize(
    "url",
    [
        "https://auth.example.com/token",
        "http://localhost:8080/t",
        "http://127.0.0.2/t",
        "http://[::1]/t",
    ],
)
def test_https_and_loopback_token_urls_are_accepted(url: str) -> None:
    """Client secrets may go to https, or plain http on a loopback host: the auth is built
    for that URL (nothing is requested until a token is needed)."""
    auth = OAuth2Auth(url, "id", SECRET)
    assert (auth.token_url, auth.grant_type) == (url, "client_credentials")


def test_repr_and_str_mask_secrets(tokens: TokenServer) -> None:
    auth = _auth(tokens, refresh_token=REFRESH)
    _bearer(auth)
    for text in (repr(auth), str(auth), f"{auth}"):
        assert SECRET not in text and REFRESH not in text and "access-1" not in text
        assert "client-id" in text


def test_secrets_lists_every_known_secret(tokens: TokenServer) -> None:
    auth = _auth(tokens, refresh_token=REFRESH)
    assert set(auth.secrets()) == {SECRET, REFRESH}
    _bearer(auth)
    assert set(auth.secrets()) == {SECRET, REFRESH, "access-1"}


def test_parallel_callers_share_one_token_request(tokens: TokenServer) -> None:
    auth = _auth(tokens)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(_bearer(auth))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["Bearer access-1"] * 8
    assert len(tokens.forms) == 1


def test_deepcopy_shares_instance_and_identity_equality(tokens: TokenServer) -> None:
    auth = _auth(tokens)
    assert copy.deepcopy(auth) is auth
    assert auth != _auth(tokens)
    assert auth.is_resolved()


def test_passes_dlt_rest_api_validation(tokens: TokenServer) -> None:
    from dlt.sources.rest_api import _validate_config
    from dlt.sources.rest_api.config_setup import create_auth

    auth = _auth(tokens)
    _validate_config(
        {"client": {"base_url": "https://api.example.com", "auth": auth}, "resources": ["x"]}
    )
    assert create_auth(auth) is auth
    assert tokens.forms == []  # nothing fetched at validation time


def test_raise_for_status_session_still_gives_oauth2_error(tokens: TokenServer) -> None:
    from dlt.sources.helpers.requests import Client

    tokens.reply = lambda form: (401, {"error": "invalid_client"})
    session = Client(raise_for_status=True, request_max_attempts=1).session
    with pytest.raises(OAuth2Error, match="HTTP 401 invalid_client"):
        _bearer(_auth(tokens, session=session))


# --- token endpoint down, rotation across runs -------------------------------------------


def test_token_endpoint_down_for_a_few_calls_is_retried(tokens: TokenServer) -> None:
    replies = [(503, {"error": "temporarily_unavailable"}), (502, {}), None]

    def reply(form: dict[str, str]) -> tuple[int, Any]:
        answer = replies.pop(0)
        return answer if answer is not None else tokens.issue(form)

    tokens.reply = reply
    clock = FakeClock()
    auth = _auth(tokens, clock=clock, policy=RetryPolicy(backoff_factor=0.5))
    assert _bearer(auth) == "Bearer access-3"
    assert clock.sleeps == [0.5, 1.0]


def test_token_endpoint_down_too_long_names_status_and_attempts(tokens: TokenServer) -> None:
    tokens.reply = lambda form: (503, {"error": "temporarily_unavailable"})
    clock = FakeClock()
    policy = RetryPolicy(max_retries=2, max_retry_delay=1.5)
    with pytest.raises(OAuth2Error) as info:
        _bearer(_auth(tokens, clock=clock, policy=policy))
    assert str(info.value) == (
        f"acme: token request to {tokens.url} failed after 3 attempts: HTTP 503"
        " temporarily_unavailable (the authorization server failed; retry later)"
    )
    assert clock.sleeps == [1.0, 1.5] and len(tokens.forms) == 3


def test_invalid_client_is_not_retried(tokens: TokenServer) -> None:
    tokens.reply = lambda form: (401, {"error": "invalid_client"})
    clock = FakeClock()
    with pytest.raises(OAuth2Error, match="failed: HTTP 401 invalid_client"):
        _bearer(_auth(tokens, clock=clock))
    assert clock.sleeps == [] and len(tokens.forms) == 1


def test_refresh_token_candidates_are_tried_in_order(tokens: TokenServer) -> None:
    valid = {"stored-but-dead": False, "configured-1": True}
    tokens.reply = lambda form: (
        tokens.issue(form, refresh_token="rotated-2")
        if valid.get(form["refresh_token"])
        else (400, {"error": "invalid_grant"})
    )
    rotated: list[str] = []
    auth = _auth(
        tokens,
        refresh_token="configured-1",
        refresh_token_candidates=lambda: ["stored-but-dead", "configured-1"],
        on_refresh_token_rotated=rotated.append,
    )
    assert _bearer(auth) == "Bearer access-2"
    assert [f["refresh_token"] for f in tokens.forms] == ["stored-but-dead", "configured-1"]
    assert rotated == ["rotated-2"]
    assert {"stored-but-dead", "configured-1", "rotated-2"} <= set(auth.secrets())


def test_last_invalid_grant_is_reported(tokens: TokenServer) -> None:
    tokens.reply = lambda form: (400, {"error": "invalid_grant"})
    auth = _auth(
        tokens, refresh_token="configured-1", refresh_token_candidates=lambda: ["stored-1"]
    )
    with pytest.raises(OAuth2Error, match=r"invalid_grant.*ACME_REFRESH_TOKEN") as info:
        _bearer(auth)
    assert len(tokens.forms) == 2
    assert "stored-1" not in str(info.value) and "configured-1" not in str(info.value)

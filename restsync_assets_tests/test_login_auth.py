"""The token-request options of restsync's `oauth2` and the `session` auth, beyond the
shared auth cases of test_auth.py (truth, wrong and missing secret, secret scan): expiry read
from an absolute time, logging in again on expiry and on a 401, the token as a query param
(masked), and validation. Against the sandbox's `partnerhub` and `kiosk` vendors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from restsync_assets.runtime.http.oauth import TokenClient, TokenRequest
from restsync_assets.runtime.http.session_auth import LoginRequest, SessionLoginAuth
from restsync_assets.sandbox import Fault, FaultPlan, Sandbox

from .support import (
    FakeClock,
    assert_table_is,
    debug_logs,
    edited,
    failure_message,
    materialize_specs,
    refusal,
    secrets_found,
    table_rows,
    write_spec,
)

AUTH_SPECS = Path(__file__).parent / "specs" / "auth"
KIOSK = yaml.safe_load((AUTH_SPECS / "kiosk.yaml").read_text())
PARTNERHUB = yaml.safe_load((AUTH_SPECS / "partnerhub.yaml").read_text())


def test_partnerhub_token_expiry_is_read_from_its_absolute_time():
    """The token request goes out with Basic client auth, the custom grant and body fields;
    the answer's `data.valid_until` ("%Y-%m-%d %H:%M:%S", UTC) is the token's expiry."""
    clock = FakeClock(1_767_225_600.0)  # 2026-01-01T00:00:00Z
    with Sandbox(token_ttl=900, clock=clock) as sandbox:
        creds = sandbox.credentials("partnerhub")
        client = TokenClient(
            sandbox.base_url("partnerhub") + "/oauth/token",
            creds["client_id"],
            creds["client_secret"],
            clock=clock,
            request=TokenRequest(
                grant_type="urn:partnerhub:grant:account",
                client_auth="basic",
                body={"account": "acme", "audience": "reports"},
                access_token_field="data.token",
                expires_at_field="data.valid_until",
                expires_at_format="%Y-%m-%d %H:%M:%S",
            ),
        )
        token = client.fetch()
        assert token.expires_at == 1_767_225_600.0 + 900
        assert token.access_token in sandbox.secrets()


def _kiosk_auth(sandbox: Sandbox, clock: FakeClock, **options) -> SessionLoginAuth:
    creds = sandbox.credentials("kiosk")
    login = LoginRequest(
        url=sandbox.base_url("kiosk") + "/api/login",
        json={"user": creds["username"], "pass": creds["password"]},
    )
    return SessionLoginAuth(login, "session.id", name="X-Session-Id", clock=clock, **options)


def test_a_session_logs_in_again_once_expires_after_has_passed():
    """With `expires_after`, the token is reused until that time has passed, then the next
    request logs in first (the sandbox sees two logins)."""
    clock = FakeClock()
    with Sandbox(clock=clock) as sandbox:
        auth = _kiosk_auth(sandbox, clock, expires_after=600.0)
        first = auth.token()
        clock.now += 599
        assert auth.token() == first
        clock.now += 2
        second = auth.token()
        assert second != first
        logins = [r for r in sandbox.requests if r.resource == "oauth"]
        assert [r.status for r in logins] == [200, 200]


@pytest.fixture
def kiosk(specs_dir, sandbox, monkeypatch):
    """Sets the kiosk vendor's env vars; the test writes its spec."""
    for key, value in sandbox.env(["kiosk"]).items():
        monkeypatch.setenv(key, value)
    return sandbox


def test_a_401_logs_in_again_and_resends_once(kiosk, specs_dir):
    """The session is revoked before the third page: that request gets a 401, restsync logs
    in again and resends it; the table holds every order."""
    write_spec(specs_dir, KIOSK, "kiosk.yaml")
    kiosk.faults = FaultPlan(Fault("revoke_token", "kiosk", "orders", nth=3))
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_table_is(table_rows("kiosk", "orders"), kiosk.rows("kiosk", "orders"))
    seen = [(r.resource, r.status) for r in kiosk.requests]
    assert seen[:5] == [
        ("oauth", 200),
        ("orders", 200),
        ("orders", 200),
        ("orders", 401),
        ("oauth", 200),
    ]
    assert seen.count(("oauth", 200)) == 2


def test_a_session_token_in_the_query_is_masked_everywhere(kiosk, specs_dir, monkeypatch):
    """`location: query` sends the token as `?session=`; every row loads, and neither the
    token nor the password is in the DEBUG logs (which print request URLs), the events or
    the warehouse."""
    spec = edited(KIOSK, client__auth__location="query", client__auth__name="session")
    write_spec(specs_dir, spec, "kiosk.yaml")
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "DEBUG")
    with debug_logs() as logs:
        result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_table_is(table_rows("kiosk", "orders"), kiosk.rows("kiosk", "orders"))
    pages = [r for r in kiosk.requests if r.resource == "orders"]
    assert pages and all("session" in r.query for r in pages)
    texts = {
        "logs": logs.getvalue(),
        "events": "\n".join(repr(e) for e in result.all_events),
        "warehouse": Path(os.environ["RESTSYNC_DUCKDB_PATH"]).read_bytes().decode("latin-1"),
    }
    assert "session=" in texts["logs"]  # the URL was logged, with the token masked
    assert secrets_found(kiosk.secrets(), texts) == []


WHERE = "client.auth"
INVALID = [
    (
        "kiosk",
        {"client__auth__login__json__pass": "hunter2"},
        f"kiosk.yaml: {WHERE}.login.json.pass: secrets never live in YAML: write {{secret:"
        " pass} and set KIOSK_PASS (or sources.kiosk.pass in .dlt/secrets.toml)",
    ),
    (
        "kiosk",
        {"client__auth__login__data": {"user": "x"}},
        f"kiosk.yaml: {WHERE}.login: send the credentials as json or as data (a form), not both",
    ),
    (
        "kiosk",
        {"client__auth__login__url": "http://kiosk.example.com/api/login"},
        f"kiosk.yaml: {WHERE}.login.url: 'http://kiosk.example.com/api/login' must be an https://",
    ),
    (
        "kiosk",
        {"client__auth__location": "cookie"},
        f"kiosk.yaml: {WHERE}.location: Input should be 'header' or 'query'",
    ),
    (
        "kiosk",
        {"client__auth__expires_after": "soon"},
        f"kiosk.yaml: {WHERE}.expires_after: 'soon' is not a duration",
    ),
    (
        "kiosk",
        {"resources__0__endpoint__auth": KIOSK["client"]["auth"]},
        "kiosk.yaml: resource 'orders': endpoint.auth.type: restsync's session token is shared"
        " by every resource of the source: set it on client.auth",
    ),
    (
        "partnerhub",
        {"client__auth__client_auth": "header"},
        f"partnerhub.yaml: {WHERE}.client_auth: Input should be 'body' or 'basic'",
    ),
    (
        "partnerhub",
        {"client__auth__expires_at_format": "unix"},
        f"partnerhub.yaml: {WHERE}.expires_at_format: unknown format 'unix'",
    ),
    (
        "partnerhub",
        {"client__auth__token_request_body__api_key": "k-123"},
        f"partnerhub.yaml: {WHERE}.token_request_body.api_key: secrets never live in YAML",
    ),
]


@pytest.mark.parametrize(("spec", "changes", "expected"), INVALID, ids=[e[2][:70] for e in INVALID])
def test_a_bad_auth_option_is_one_line_naming_file_and_key(
    tmp_path, monkeypatch, spec, changes, expected
):
    """Each misuse of the new auth keys is refused when the spec loads, in one line."""
    monkeypatch.chdir(tmp_path)
    base = KIOSK if spec == "kiosk" else PARTNERHUB
    assert refusal(tmp_path, edited(base, **changes)).startswith(expected)


@pytest.mark.parametrize("name", ["partnerhub", "kiosk"])
def test_the_docs_examples_are_the_specs_the_auth_tests_load(name):
    """The spec reference shows the partnerhub and kiosk specs as test_auth.py loads them."""
    from .support import REPO

    page = (REPO / "docs" / "spec-reference.md").read_text()
    assert (AUTH_SPECS / f"{name}.yaml").read_text() in page

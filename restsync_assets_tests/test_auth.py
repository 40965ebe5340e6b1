"""Every dlt auth type end to end: sandbox vendor -> dlt -> Dagster materialize -> DuckDB.

The specs are `specs/auth/*.yaml` (one per auth type, secrets by their default env var or a
`{secret: <name>}`); the sandbox serves each behind its credential (`sandbox/vendors.py`,
and the `ad_analytics` token endpoint for dlt's `oauth2_client_credentials`). Each case
loads the table and compares it with the sandbox's truth row for row while dlt, urllib3
and requests log at DEBUG, then searches the logs, every Dagster event, every warehouse
table and the pipelines dir for every secret. A wrong secret must fail with one exact
line (the API's 401, the secret masked even where the API echoes it), a missing one with
one line naming the env var and the `.dlt/secrets.toml` key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from restsync_assets.sandbox import Sandbox

from .support import (
    assert_table_is,
    child_script,
    debug_logs,
    failure_message,
    materialize_specs,
    secrets_found,
    table_rows,
    use_specs,
    warehouse_texts,
    write_spec,
)

AUTH_SPECS = Path(__file__).parent / "specs" / "auth"
REJECTED = '{"error": "unauthorized", "error_description": "rejected credential \'***\'"}'
CHECK_CREDENTIALS = "check the client's credentials, scopes and access to this resource"


@dataclass(frozen=True)
class AuthCase:
    """One auth type: its spec, the sandbox API behind it and the secret the case breaks."""

    id: str
    spec: str
    vendor: str
    resource: str
    secret_env: str
    #: the one line when `secret_env` holds a wrong value ({url}: the sandbox's URL)
    wrong: str
    #: the one line when `secret_env` is not set
    missing: str
    edit: Callable[[dict], None] | None = None


def _missing(spec: str, key: str) -> str:
    return (
        f"{spec}: missing {key.replace('_', ' ')}: set the env var {spec.upper()}_{key.upper()}"
        f" (or sources.{spec}.{key} in .dlt/secrets.toml)"
    )


def _rejected(spec: str, resource: str, path: str, query: str = "") -> str:
    return (
        f"{spec}: resource {resource}: GET {{url}}/{spec}{path}?offset=0&limit=20{query}"
        f" failed after 1 attempt: HTTP 401 Unauthorized {REJECTED}; {CHECK_CREDENTIALS}"
    )


def _username_from_env(spec: dict) -> None:
    del spec["client"]["auth"]["username"]


CASES = [
    AuthCase(
        "bearer",
        "helpdesk",
        "helpdesk",
        "tickets",
        "HELPDESK_TOKEN",
        _rejected("helpdesk", "tickets", "/v1/tickets"),
        _missing("helpdesk", "token"),
    ),
    AuthCase(
        "api_key-header",
        "crm",
        "crm",
        "contacts",
        "CRM_API_KEY",
        _rejected("crm", "contacts", "/v1/contacts"),
        _missing("crm", "api_key"),
    ),
    AuthCase(
        "api_key-query",
        "weather",
        "weather",
        "stations",
        "WEATHER_APP_KEY",
        _rejected("weather", "stations", "/v1/stations", "&appid=***"),
        _missing("weather", "app_key"),
    ),
    AuthCase(
        "http_basic",
        "billing",
        "billing",
        "invoices",
        "BILLING_PASSWORD",
        _rejected("billing", "invoices", "/v1/invoices"),
        _missing("billing", "password"),
    ),
    AuthCase(
        "http_basic-username-from-env",
        "billing",
        "billing",
        "invoices",
        "BILLING_USERNAME",
        _rejected("billing", "invoices", "/v1/invoices"),
        _missing("billing", "username"),
        edit=_username_from_env,
    ),
    AuthCase(
        "oauth2_client_credentials",
        "ads_reporting",
        "ad_analytics",
        "accounts",
        "ADS_REPORTING_CLIENT_SECRET",
        "ads_reporting: token request to {url}/ad_analytics/oauth/token failed: HTTP 401"
        " Unauthorized; check ADS_REPORTING_CLIENT_ID and ADS_REPORTING_CLIENT_SECRET",
        _missing("ads_reporting", "client_secret"),
    ),
    AuthCase(
        "oauth2-token-request-options",
        "partnerhub",
        "partnerhub",
        "reports",
        "PARTNERHUB_CLIENT_SECRET",
        "partnerhub: token request to {url}/partnerhub/oauth/token failed: HTTP 401"
        " invalid_client: unknown client or wrong secret (check PARTNERHUB_CLIENT_ID /"
        " PARTNERHUB_CLIENT_SECRET)",
        _missing("partnerhub", "client_secret"),
    ),
    AuthCase(
        "session",
        "kiosk",
        "kiosk",
        "orders",
        "KIOSK_PASSWORD",
        "kiosk: login request to {url}/kiosk/api/login failed: HTTP 401 Unauthorized; check"
        " KIOSK_USERNAME and KIOSK_PASSWORD",
        _missing("kiosk", "password"),
    ),
]


def case_env(sandbox: Sandbox, case: AuthCase) -> dict[str, str]:
    """The env vars that point the case's spec at the sandbox, with the right secrets."""
    if case.vendor != "ad_analytics":
        return sandbox.env([case.vendor])
    creds = sandbox.credentials("ad_analytics")
    prefix = case.spec.upper()
    return {
        f"{prefix}_BASE_URL": sandbox.base_url("ad_analytics"),
        f"{prefix}_TOKEN_URL": sandbox.token_url("ad_analytics"),
        f"{prefix}_CLIENT_ID": creds["client_id"],
        f"{prefix}_CLIENT_SECRET": creds["client_secret"],
    }


@pytest.fixture
def auth_case(request, specs_dir, sandbox, monkeypatch) -> AuthCase:
    """The case's spec alone in a specs folder, its env vars set to the sandbox's values."""
    case: AuthCase = request.param
    spec = yaml.safe_load((AUTH_SPECS / f"{case.spec}.yaml").read_text())
    if case.edit is not None:
        case.edit(spec)
    write_spec(specs_dir, spec, f"{case.spec}.yaml")
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "DEBUG")  # dlt sets its logger's level from it
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")  # no request beyond loopback
    for key, value in case_env(sandbox, case).items():
        monkeypatch.setenv(key, value)
    return case


def _run_texts(result) -> dict[str, str]:
    """Every Dagster event of a run, the warehouse (its tables, state decoded, once loaded;
    the raw file) and the pipelines dir's files."""
    texts = {"events": "\n".join(repr(e) for e in result.all_events)}
    db = Path(os.environ["RESTSYNC_DUCKDB_PATH"])
    if result.success:
        texts["warehouse tables"] = "\n".join(warehouse_texts(db))
    if db.exists():
        texts["warehouse file"] = db.read_bytes().decode("latin-1")
    for path in Path(os.environ["RESTSYNC_PIPELINES_DIR"]).rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("latin-1")
    return texts


@pytest.mark.parametrize("auth_case", CASES, ids=[c.id for c in CASES], indirect=True)
def test_auth_type_loads_the_truth_and_no_secret_reaches_logs_events_or_warehouse(
    auth_case: AuthCase, sandbox: Sandbox, specs_dir
) -> None:
    """The table equals the sandbox's rows, every page was authorized, and no secret is in
    the DEBUG logs, the events, the warehouse or the pipelines dir."""
    with debug_logs() as logs:
        result = materialize_specs(specs_dir)
    assert result.success
    assert_table_is(
        table_rows(auth_case.spec, auth_case.resource),
        sandbox.rows(auth_case.vendor, auth_case.resource),
    )
    served = [r.status for r in sandbox.requests if r.resource == auth_case.resource]
    assert len(served) >= 3 and set(served) == {200}  # every page, each one authorized
    logged = logs.getvalue()
    assert "Making GET request" in logged  # dlt's DEBUG line (URL, params, headers) ran
    secrets = [*sandbox.secrets(), *case_env(sandbox, auth_case).values()]
    secrets = [s for s in secrets if not s.startswith(("http://", "sandbox-ad_analytics-id"))]
    assert secrets_found(secrets, {"logs": logged, **_run_texts(result)}) == []


@pytest.mark.parametrize("auth_case", CASES, ids=[c.id for c in CASES], indirect=True)
def test_wrong_secret_fails_with_the_apis_401_in_one_masked_line(
    auth_case: AuthCase, sandbox: Sandbox, specs_dir, monkeypatch
) -> None:
    """One request, refused and not retried; the API's 401 in the case's exact line with the
    secret masked; nothing loaded; neither secret in the line, logs, events or files."""
    right = os.environ[auth_case.secret_env]
    wrong = f"wrong-{right[::-1]}"
    monkeypatch.setenv(auth_case.secret_env, wrong)
    with debug_logs() as logs:
        result = materialize_specs(specs_dir)
    message = failure_message(result)
    assert message == auth_case.wrong.replace("{url}", sandbox.url)
    assert [r.status for r in sandbox.requests] == [401]  # one request, refused, not retried
    assert table_rows(auth_case.spec, auth_case.resource) is None
    texts = {"message": message, "logs": logs.getvalue(), **_run_texts(result)}
    assert secrets_found([wrong, right], texts) == []


@pytest.mark.parametrize("auth_case", CASES, ids=[c.id for c in CASES], indirect=True)
def test_missing_secret_fails_naming_the_env_var_and_the_secrets_toml_key(
    auth_case: AuthCase, sandbox: Sandbox, specs_dir, monkeypatch
) -> None:
    """The run fails in the case's one line, and nothing was sent to the API."""
    monkeypatch.delenv(auth_case.secret_env)
    result = materialize_specs(specs_dir)
    assert failure_message(result) == auth_case.missing
    assert sandbox.requests == []  # nothing was sent without it


CHILD = child_script(log_level=None)


def test_bearer_token_from_dlt_secrets_toml(tmp_path, sandbox, warehouse, monkeypatch) -> None:
    """`[sources.helpdesk] token = ...` in the project's `.dlt/secrets.toml` instead of the
    env var (the issue: dlt's own resolution failed with ConfigFieldMissingException)."""
    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    token = sandbox.credentials("helpdesk")["token"]
    (project / ".dlt" / "secrets.toml").write_text(f'[sources.helpdesk]\ntoken = "{token}"\n')
    specs = tmp_path / "specs"
    write_spec(specs, (AUTH_SPECS / "helpdesk.yaml").read_text())
    use_specs(monkeypatch, specs, {"helpdesk": sandbox.base_url("helpdesk")})
    monkeypatch.delenv("HELPDESK_TOKEN", raising=False)
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.run(
        [sys.executable, str(script)],
        cwd=project,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "RESULT success" in child.stdout, child.stdout + child.stderr
    assert token not in child.stdout + child.stderr
    assert_table_is(table_rows("helpdesk", "tickets"), sandbox.rows("helpdesk", "tickets"))


@pytest.mark.parametrize(
    ("existing", "expected"),
    [(None, "session=k3y-value"), ("theme=dark", "theme=dark; session=k3y-value")],
)
def test_api_key_in_a_cookie(existing, expected) -> None:
    """dlt declares `location: cookie` but raises NotImplementedError; restsync sends it."""
    from restsync_assets.runtime.factories import build_dlt_auth
    from restsync_assets.specs.model import ApiKeyAuthSpec

    spec = ApiKeyAuthSpec(type="api_key", name="session", location="cookie")
    auth = build_dlt_auth(spec, {"api_key": "k3y-value"}.__getitem__, "shop")
    headers = {"Cookie": existing} if existing else {}
    request = requests.Request("GET", "https://api.example.com/x", headers=headers).prepare()
    assert auth(request).headers["Cookie"] == expected
    assert auth.is_resolved()

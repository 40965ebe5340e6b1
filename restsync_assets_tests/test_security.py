"""Security: no secret anywhere a run leaves traces; https token URLs; sandboxed templates.

The secret scan runs a real subprocess (CHILD) that materializes two specs with every
logger at DEBUG (dlt, dagster, requests, urllib3, restsync) while the sandbox rotates
refresh tokens, revokes an access token mid-run, drops the token endpoint once, answers
503 once and finally fails one spec with an error body that echoes the bearer token. Then
everything the run produced is searched for every secret value the sandbox knows (client
secrets, configured and rotated refresh tokens, every access token it issued): the
process's stdout and stderr, every Dagster event of the run (serialized, metadata
included), every row of every table of the DuckDB file (dlt's `_dlt_*` tables included,
the compressed pipeline state decoded), the raw DuckDB file and every file of the
pipelines dir except the refresh-token store, which must be mode 0600.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from restsync_assets.sandbox import Sandbox
from restsync_assets.sandbox.faults import Fault, FaultPlan

from .sandbox_specs import LEDGER, MARKETING_ORGS, offset, sandbox_spec
from .support import (
    debug_logs,
    edited,
    failure_message,
    materialize_specs,
    secrets_found,
    warehouse_texts,
    write_spec,
)

CHILD = """
import logging
import sys

from dagster import DagsterInstance, materialize
from dagster._serdes import serialize_value

from restsync_assets import settings
from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
for name in ("dlt", "dagster", "requests", "urllib3", "restsync_assets"):
    logging.getLogger(name).setLevel(logging.DEBUG)

defs = build_definitions(load_specs(settings.specs_dir()))
instance = DagsterInstance.ephemeral()
result = materialize(
    list(defs.assets),
    resources=defs.resources,
    instance=instance,
    raise_on_error=False,
    run_config={"loggers": {"console": {"config": {"log_level": "DEBUG"}}}},
)
with open(sys.argv[1], "w") as out:
    for entry in instance.all_logs(result.run_id):
        out.write(serialize_value(entry) + "\\n")
    out.write(serialize_value(instance.get_run_by_id(result.run_id)) + "\\n")
print("RESULT", "success" if result.success else "failure", flush=True)
"""


def _echo_bearer(request) -> dict:
    """An error body that repeats the caller's credentials, as careless APIs do."""
    return {"error": "bad_request", "you_sent": request.headers.get("authorization", "")}


def test_no_secret_in_output_events_warehouse_or_state(
    tmp_path, specs_dir, sandbox_env: Sandbox, commands, monkeypatch
) -> None:
    """A run at DEBUG through token rotation, a revoked token, a token endpoint outage, a 503
    and an error body echoing the bearer token leaves no secret in its output, its Dagster
    events, the warehouse (state decoded) or any file; the token store is 0600."""
    write_spec(specs_dir, sandbox_spec("ledger", [LEDGER]))
    write_spec(specs_dir, sandbox_spec("marketing_api", [MARKETING_ORGS], {"max_retries": 1}))
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "DEBUG")  # dlt's own logger
    sandbox_env.faults = FaultPlan(
        Fault("rotate_refresh_token", None, "oauth"),
        Fault("token_down", "ledger", "oauth", nth=1, retry_after=0),
        Fault("revoke_token", "ledger", "resource_name", nth=3),
        Fault("status", "ledger", "resource_name", nth=5, status=503, retry_after=0),
        Fault("status", "marketing_api", "organizations", nth=2, status=400, body=_echo_bearer),
    )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    events = tmp_path / "events.jsonl"
    child = commands([sys.executable, script, events])
    assert child.finish() == 0
    output = child.text
    assert "RESULT failure" in output  # marketing_api failed, ledger loaded
    assert "Bearer ***" in output  # the echoed token was there, and masked

    secrets = sandbox_env.secrets()
    issued_access = [s for s in secrets if not s.startswith("sandbox-")]
    assert len(issued_access) >= 3  # ledger twice (401 refresh), marketing_api
    assert sum("-refresh-" in s for s in secrets) >= 5  # 2 configured, 3+ rotated

    assert "DEBUG" in output and "urllib3" in output  # the loggers really were at DEBUG
    assert events.stat().st_size > 10_000

    db = Path(os.environ["RESTSYNC_DUCKDB_PATH"])
    texts = {
        "stdout/stderr": output,
        "dagster events": events.read_text(),
        "warehouse tables": "\n".join(warehouse_texts(db)),
    }
    for path in [*db.parent.rglob("*"), *Path(os.environ["RESTSYNC_PIPELINES_DIR"]).rglob("*")]:
        if not path.is_file():
            continue
        if path.name.endswith(".refresh_token"):  # the store: the one place a token may be
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert json.loads(path.read_text())["refresh_token"] in secrets
            continue
        texts[str(path)] = path.read_bytes().decode("latin-1")
    assert secrets_found(secrets, texts) == []


def test_plain_http_token_url_is_refused(specs_dir, sandbox_env, monkeypatch) -> None:
    """A plain-http token URL fails the run in one line before any token request is sent."""
    write_spec(specs_dir, sandbox_spec("ledger", [LEDGER]))
    monkeypatch.setenv("LEDGER_TOKEN_URL", "http://auth.example.com/oauth2/token")
    result = materialize_specs(specs_dir)
    assert failure_message(result) == (
        "ledger: OAuth2 token_url 'http://auth.example.com/oauth2/token' must be an https://"
        " URL (plain http is only allowed for loopback hosts such as 127.0.0.1 or localhost),"
        " because client secrets and tokens are sent to it"
    )
    assert not [r for r in sandbox_env.requests if r.resource == "oauth"]


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "SecurityError: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "{{ now_utc.__globals__.os.system('touch CANARY') }}",
            "SecurityError: access to attribute '__globals__' of 'function' object is unsafe.",
        ),
        (
            "{{ response['paging'].__class__ }}",
            "SecurityError: access to attribute '__class__' of 'dict' object is unsafe.",
        ),
        (
            "{{ response.update({'paging': 1}) }}",
            "SecurityError: access to attribute 'update' of 'dict' object is unsafe.",
        ),
        (
            "{% include 'CANARY' %}{{ 1 }}",
            "TypeError: no loader for this environment specified",
        ),
    ],
    ids=["mro", "globals", "response-class", "mutate", "include-file"],
)
def test_hostile_cursor_template_fails_the_run_without_escaping(
    template, reason, tmp_path, specs_dir, sandbox_env, monkeypatch
) -> None:
    """A cursor template reaching for Python internals, files or mutation fails the run in
    one line naming the template, and touches no file."""
    canary = tmp_path / "CANARY"
    canary.write_text("secret file contents")
    monkeypatch.chdir(tmp_path)
    resource = edited(MARKETING_ORGS, endpoint__paginator__cursor_value=template)
    write_spec(specs_dir, sandbox_spec("marketing_api", [resource]))
    result = materialize_specs(specs_dir)
    assert failure_message(result) == (
        f"marketing_api: template {template!r}: evaluation failed: {reason}"
    )
    assert canary.read_text() == "secret file contents"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("CANARY")) == ["CANARY"]


# --- the refresh-token store -----------------------------------------------------------------


def test_token_store_prefers_a_rotation_of_the_configured_token(tmp_path) -> None:
    from restsync_assets.runtime.token_store import RefreshTokenStore

    store = RefreshTokenStore("ledger", "configured-1", tmp_path)
    assert store.load() is None and store.candidates() == ["configured-1"]
    store.save("rotated-2")
    store.save("rotated-3")
    assert store.path == tmp_path / "ledger.refresh_token"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    # no temp files; the lease's lock file beside the token (its lock, not its content)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ledger.refresh_token",
        "ledger.refresh_token.lock",
    ]
    assert (tmp_path / "ledger.refresh_token.lock").read_bytes() == b""
    assert store.load() == "rotated-3"
    assert store.candidates() == ["rotated-3", "configured-1"]
    assert "configured-1" not in store.path.read_text()
    # the operator configured a new token: it is newer than anything stored
    reauthorized = RefreshTokenStore("ledger", "configured-9", tmp_path)
    assert reauthorized.load() is None and reauthorized.candidates() == ["configured-9"]


def test_unreadable_token_store_is_ignored(tmp_path) -> None:
    from restsync_assets.runtime.token_store import RefreshTokenStore

    store = RefreshTokenStore("ledger", "configured-1", tmp_path)
    store.path.write_text("{not json")
    assert store.candidates() == ["configured-1"]


def test_failure_messages_mask_every_registered_token() -> None:
    from restsync_assets.runtime.failures import explain
    from restsync_assets.runtime.http.masking import register_secret

    register_secret("access-token-abcdef123456")
    error = RuntimeError("GET https://x.example.com/a?token=1 with access-token-abcdef123456")
    assert explain(error, "acme") == (
        "acme: RuntimeError: GET https://x.example.com/a?token=*** with ***"
    )


def test_secret_params_and_headers_stay_out_of_logs_errors_events_and_warehouse(
    specs_dir, sandbox_env: Sandbox, monkeypatch
) -> None:
    """A `{secret: ...}` query param and header: missing, the run names its env var; set, it
    reaches the API and stays out of DEBUG logs, the error line, events and the warehouse."""
    secret = "spec-marked-secret-0123456789"
    users = offset("/v1/users", "users", 100)
    users["endpoint"]["params"] = {"api_key": {"secret": "api_key"}}
    users["endpoint"]["headers"] = {"X-Api-Key": {"secret": "api_key"}}
    write_spec(specs_dir, sandbox_spec("workspace_docs", [users], {"max_retries": 1}))

    monkeypatch.delenv("WORKSPACE_DOCS_API_KEY", raising=False)
    missing = materialize_specs(specs_dir)
    assert failure_message(missing) == (
        "workspace_docs: missing api key: set the env var WORKSPACE_DOCS_API_KEY "
        "(or sources.workspace_docs.api_key in .dlt/secrets.toml)"
    )

    monkeypatch.setenv("WORKSPACE_DOCS_API_KEY", secret)
    with debug_logs(("dlt", "urllib3.connectionpool")) as captured:
        loaded = materialize_specs(specs_dir)
        sandbox_env.faults = FaultPlan(
            Fault("status", "workspace_docs", "users", status=503, retry_after=0)
        )
        failed = materialize_specs(specs_dir)
    assert loaded.success and not failed.success
    sent = [r for r in sandbox_env.requests if r.resource == "users" and r.status == 200]
    assert sent and all(r.query.get("api_key") == secret for r in sent)  # it reached the API
    message = failure_message(failed)
    assert "api_key=***" in message
    logs = captured.getvalue()
    assert "Making GET request" in logs and "api_key=***" in logs  # DEBUG really ran, masked
    events = "\n".join(repr(e) for r in (loaded, failed) for e in r.all_events)
    warehouse = "\n".join(warehouse_texts(Path(os.environ["RESTSYNC_DUCKDB_PATH"])))
    for where, text in {
        "logs": logs,
        "error": message,
        "events": events,
        "warehouse": warehouse,
    }.items():
        assert secret not in text, where

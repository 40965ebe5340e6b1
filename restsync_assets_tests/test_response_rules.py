"""`error_handler.response_rules`: a response whose JSON says it failed (the `chat` vendor's
`{"ok": false}` with HTTP 200, a GraphQL `errors` array) is retried, failed with the API's
message, or ignored, as the rule says; end to end against the sandbox, with validation and
the secret masking of the API's message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from restsync_assets.sandbox import Fault, FaultPlan

from .support import (
    REPO,
    assert_table_is,
    edited,
    failure_message,
    materialize_specs,
    refusal,
    table_rows,
    write_spec,
)

SPEC_FILE = Path(__file__).parent / "specs" / "vocab" / "chat_rules.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
GRAPHQL_FILE = Path(__file__).parent / "specs" / "graphql" / "codehost.yaml"
RULES = "client__error_handler__response_rules"


def _failed(error: str) -> dict:
    return {"status": 200, "body": {"ok": False, "error": error}}


@pytest.fixture
def chat(specs_dir, sandbox, monkeypatch, retry_clock):
    """The chat_rules spec alone in the specs folder, pointed at the sandbox."""
    write_spec(specs_dir, SPEC_FILE.read_text(), "chat.yaml")
    for key, value in sandbox.env(["chat"]).items():
        monkeypatch.setenv(key, value)
    return sandbox


def _served(sandbox, resource: str = "messages") -> list:
    return [r for r in sandbox.requests if r.resource == resource]


def test_a_retry_rule_asks_again_and_loads_every_row(chat, specs_dir, retry_clock):
    """Page 2 answers `{"ok": false, "error": "ratelimited"}` twice with HTTP 200: the
    `retry` rule asks again with error_handler's backoff (1 s, 2 s), and the table holds every
    message once."""
    chat.faults = FaultPlan(
        Fault("status", "chat", "messages", nth=(2, 3), **_failed("ratelimited"))
    )
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_table_is(table_rows("chat", "messages"), chat.rows("chat", "messages"))
    offsets = [r.query.get("offset") for r in _served(chat)]
    assert offsets == [None, "10", "10", "10", "20", "30", "40"]
    assert retry_clock.sleeps == [1.0, 2.0]


def test_a_retry_rule_that_never_clears_fails_naming_the_rule(chat, specs_dir):
    """When retries run out, the run fails in one line naming the resource, the rule and the
    API's message; nothing is loaded."""
    chat.faults = FaultPlan(Fault("status", "chat", "messages", **_failed("ratelimited")))
    result = materialize_specs(specs_dir)
    assert not result.success
    message = failure_message(result)
    assert re.search(
        r"chat: resource messages: GET \S+ failed after 4 attempts: HTTP 200 OK matching"
        r" error_handler.response_rules\[0\] \(action retry\)",
        message,
    ), message
    assert table_rows("chat", "messages") is None


def test_a_fail_rule_fails_the_run_with_the_apis_message(chat, specs_dir):
    """A bad param gets `{"ok": false, "error": "invalid_ts_oldest"}` with HTTP 200: without
    a rule that would load nothing and succeed; the `fail` rule fails the run at once (one
    attempt) with the API's own error, and writes no table."""
    spec = edited(SPEC, resources__0__endpoint__params__oldest="yesterday")
    write_spec(specs_dir, spec, "chat.yaml")
    result = materialize_specs(specs_dir)
    assert not result.success
    message = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:8000", failure_message(result))
    page = (REPO / "docs" / "spec-reference.md").read_text()
    assert f"```text\n{message}\n```" in page  # the docs show this very line
    assert len(_served(chat)) == 1
    assert table_rows("chat", "messages") is None


def test_an_ignore_rule_ends_the_paging_with_the_rows_before_it(chat, specs_dir):
    """Page 3 answers `channel_archived`: the `ignore` rule ends the request sequence with no
    records from it; the run succeeds with the first two pages' 20 messages."""
    chat.faults = FaultPlan(
        Fault("status", "chat", "messages", nth=3, **_failed("channel_archived"))
    )
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_table_is(table_rows("chat", "messages"), chat.rows("chat", "messages")[:20])
    assert len(_served(chat)) == 3


def test_the_apis_message_is_masked(chat, specs_dir):
    """An API that echoes the credential in its error: the failure shows `***`, never the
    token."""
    token = chat.credentials("chat")["token"]
    body = lambda request: {"ok": False, "error": f"bad auth {request.headers['authorization']}"}  # noqa: E731
    chat.faults = FaultPlan(Fault("status", "chat", "messages", status=200, body=body))
    result = materialize_specs(specs_dir)
    message = failure_message(result)
    assert "bad auth Bearer ***" in message
    assert token not in message


def test_a_graphql_errors_array_fails_with_its_first_message(specs_dir, sandbox, monkeypatch):
    """A GraphQL API answers HTTP 200 with `errors` and no data: a rule on `errors` fails the
    run with `errors[0].message` instead of a confusing selector error."""
    spec = yaml.safe_load(GRAPHQL_FILE.read_text())
    spec["resources"][0]["error_handler"] = {
        "response_rules": [
            {"path": "errors", "action": "fail", "message_path": "errors[0].message"}
        ]
    }
    write_spec(specs_dir, spec, "codehost.yaml")
    for key, value in sandbox.env(["codehost"]).items():
        monkeypatch.setenv(key, value)
    errors = {"data": None, "errors": [{"message": "API rate limit exceeded for installation"}]}
    sandbox.faults = FaultPlan(
        Fault("status", "codehost", "repositories", nth=2, status=200, body=errors)
    )
    result = materialize_specs(specs_dir)
    assert not result.success
    assert re.search(
        r"matching error_handler.response_rules\[0\] \(action fail\): API rate limit exceeded"
        r" for installation;",
        failure_message(result),
    )


WHERE = "chat.yaml: client.error_handler.response_rules.0"
INVALID = [
    (
        [{"path": "ok", "when": "{{ 1 }}", "action": "fail"}],
        f"{WHERE}: give exactly one condition: path (JSONPath) or when (a template)",
    ),
    (
        [{"action": "fail"}],
        f"{WHERE}: give exactly one condition: path (JSONPath) or when (a template)",
    ),
    (
        [{"path": "ok", "action": "explode"}],
        f"{WHERE}.action: Input should be 'retry', 'fail' or 'ignore'",
    ),
    (
        [{"path": "ok[", "action": "fail"}],
        f"{WHERE}.path: 'ok[' is not valid JSONPath",
    ),
    (
        [{"when": "{{ record.ok }}", "action": "fail"}],
        f"{WHERE}.when: template reads 'record'; allowed: headers, response",
    ),
    (
        [{"when": "failed: {{ response.ok }}", "action": "fail"}],
        f"{WHERE}.when: must be a single {{{{ expression }}}}",
    ),
    (
        [{"when": "{{ response.ok }}", "equals": False, "action": "fail"}],
        f"{WHERE}: equals compares the value at path: give a path",
    ),
    (
        [{"path": "ok", "action": "fail", "status_codes": [99]}],
        f"{WHERE}.status_codes: [99] are not HTTP",
    ),
    ([{"path": "ok", "action": "fail", "on": 1}], f"{WHERE}.on: unknown key"),
]


@pytest.mark.parametrize(
    ("rules", "expected"), INVALID, ids=[e[len(WHERE) :][:50] for _, e in INVALID]
)
def test_a_bad_rule_is_one_line_naming_file_and_key(tmp_path, monkeypatch, rules, expected):
    """Each misuse of a rule is refused when the spec loads, in one line."""
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, edited(SPEC, **{RULES: rules})).startswith(expected)


def test_the_docs_example_is_the_spec_the_end_to_end_tests_load():
    """The spec reference's `response_rules` example is this module's spec."""
    page = (REPO / "docs" / "spec-reference.md").read_text()
    section = page.split("### Rules on response content: `response_rules`", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    assert yaml.safe_load(block) == SPEC

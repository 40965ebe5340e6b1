"""Request-time values: `{type: now|today, offset, format}` in params and as an incremental's
`initial_value`, and `incremental.param_format` (how start/end values are sent): resolution,
validation, and two incremental runs against the sandbox's `chat` vendor (ISO cursor, epoch
params) with an injected clock."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from restsync_assets.runtime import request_values
from restsync_assets.runtime.request_values import param_converter, resolve

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

SPEC_FILE = Path(__file__).parent / "specs" / "vocab" / "chat_since.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
NOW = datetime(2026, 1, 6, 13, 45, 10, tzinfo=timezone.utc)
DAY = 86400

RESOLVED = [
    ({"type": "now"}, "2026-01-06T13:45:10Z"),
    ({"type": "now", "offset": "-1d"}, "2026-01-05T13:45:10Z"),
    ({"type": "now", "offset": "-PT1H", "format": "epoch"}, int(NOW.timestamp()) - 3600),
    ({"type": "now", "offset": "90s", "format": "epoch_ms"}, (int(NOW.timestamp()) + 90) * 1000),
    ({"type": "today"}, "2026-01-06"),
    ({"type": "today", "offset": "-7d"}, "2025-12-30"),
    ({"type": "today", "format": "iso"}, "2026-01-06T00:00:00Z"),
    ({"type": "today", "offset": "P1D", "format": "%d.%m.%Y %H:%M"}, "07.01.2026 00:00"),
]


@pytest.mark.parametrize(("value", "expected"), RESOLVED, ids=[str(v) for v, _ in RESOLVED])
def test_a_relative_time_resolves_from_the_runs_start(value, expected):
    """`now` is the run's start, `today` its UTC midnight; offset added, format applied
    (numbers for epoch formats)."""
    assert resolve(value, NOW) == expected


@pytest.mark.parametrize(
    ("fmt", "cursor", "sent"),
    [
        ("epoch", "2026-01-05T06:30:00Z", "1767594600"),
        ("epoch_ms", "2026-01-05T06:30:00Z", "1767594600000"),
        ("date", "2026-01-05T06:30:00+00:00", "2026-01-05"),
        ("%Y%m%d", 1767594600, "20260105"),
        ("iso", 1767594600, "2026-01-05T06:30:00Z"),
        ("epoch", None, None),
    ],
)
def test_param_format_writes_the_cursor_as_the_api_wants(fmt, cursor, sent):
    """dlt's `convert` hook restsync builds from `param_format`: any cursor value in, the
    API's format out; no end value stays none."""
    assert param_converter(fmt)(cursor) == sent


WHERE = "chat.yaml: resource 'messages': endpoint"
INVALID = [
    (
        {"resources__0__endpoint__params__latest": {"type": "now", "offset": "soon"}},
        f"{WHERE}.params.latest.offset: 'soon' is not a duration such as 90s, 30m,"
        " 6h, 2d, 1w, -7d or P1D, PT6H (years and months have no fixed length)",
    ),
    (
        {"resources__0__endpoint__params__latest": {"type": "now", "format": "unix"}},
        f"{WHERE}.params.latest.format: unknown format 'unix'; one of iso, epoch,"
        " epoch_ms, date or a strftime string such as %Y-%m-%d",
    ),
    (
        {"resources__0__endpoint__params__latest": {"type": "now", "ofset": "1d"}},
        f"{WHERE}.params.latest.ofset: unknown key",
    ),
    (
        {"resources__0__endpoint__incremental__initial_value": {"type": "today", "offset": 3}},
        f"{WHERE}.incremental.initial_value.offset: '3' is not a duration such as"
        " 90s, 30m, 6h, 2d, 1w, -7d or P1D, PT6H (years and months have no fixed length)",
    ),
    (
        {"resources__0__endpoint__incremental__param_format": "seconds"},
        f"{WHERE}.incremental.param_format: unknown format 'seconds'; one of iso, epoch,"
        " epoch_ms, date or a strftime string such as %Y-%m-%d",
    ),
    (
        {"resources__0__endpoint__incremental__param_format": 10},
        f"{WHERE}.incremental.param_format: must be one of iso, epoch, epoch_ms, date or a"
        " strftime string such as %Y-%m-%d",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), INVALID, ids=[e[-40:] for _, e in INVALID])
def test_a_bad_request_value_is_one_line_naming_file_resource_and_key(
    tmp_path, monkeypatch, changes, expected
):
    """Each misuse is refused when the spec loads, in one line with the allowed values."""
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, edited(SPEC, **changes)) == expected


def test_a_relative_initial_value_on_a_child_is_refused(tmp_path, monkeypatch):
    """A child's cursors are per parent; a relative initial value there is one line."""
    monkeypatch.chdir(tmp_path)
    child = {
        "name": "replies",
        "endpoint": {
            "path": "/v1/messages/{resources.messages.id}/replies",
            "incremental": {
                "cursor_path": "ts",
                "start_param": "oldest",
                "initial_value": {"type": "now", "offset": "-1d"},
            },
        },
    }
    spec = {**SPEC, "resources": [*SPEC["resources"], child]}
    assert refusal(tmp_path, spec) == (
        "chat.yaml: resource 'replies': endpoint.incremental.initial_value: a relative time is"
        " not supported on a child resource (its cursors are kept per parent); write a literal"
        " value"
    )


@pytest.fixture
def chat(specs_dir, sandbox, monkeypatch):
    """The chat_since spec alone in the specs folder, pointed at the sandbox."""
    write_spec(specs_dir, SPEC_FILE.read_text(), "chat.yaml")
    for key, value in sandbox.env(["chat"]).items():
        monkeypatch.setenv(key, value)
    return sandbox


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_two_runs_ask_in_epoch_from_the_iso_cursor_and_load_the_sandbox_rows(
    chat, specs_dir, monkeypatch
):
    """Run 1 (clock 2026-01-06T00:00Z) asks `oldest` = 3 days before, `latest` = 1 day
    before, both epoch seconds, and loads exactly the messages between; run 2 (clock two
    days later) asks from the newest loaded `sent_at` (an ISO cursor, sent as epoch) up to
    its own `latest`. The table equals the sandbox's messages of [Jan 3, Jan 7) each time."""
    start = datetime(2026, 1, 6, tzinfo=timezone.utc)
    run1 = int(start.timestamp())
    rows = chat.rows("chat", "messages")

    def truth(oldest: int, latest: int) -> list[dict]:
        return [{**r, "sent_at": _iso(r["ts"])} for r in rows if oldest <= r["ts"] < latest]

    monkeypatch.setattr(request_values, "CLOCK", lambda: start)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    first = truth(run1 - 3 * DAY, run1 - DAY)
    assert len(first) == 10
    assert_table_is(table_rows("chat", "messages"), first)
    asked = [r.query for r in chat.requests if r.resource == "messages"]
    assert {(q["oldest"], q["latest"]) for q in asked} == {(str(run1 - 3 * DAY), str(run1 - DAY))}

    newest = max(r["ts"] for r in first)
    later = datetime.fromtimestamp(run1 + 2 * DAY, timezone.utc)
    monkeypatch.setattr(request_values, "CLOCK", lambda: later)
    seen = len(chat.requests)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    asked = [r.query for r in chat.requests[seen:] if r.resource == "messages"]
    assert {(q["oldest"], q["latest"]) for q in asked} == {(str(newest), str(run1 + DAY))}
    assert_table_is(table_rows("chat", "messages"), truth(run1 - 3 * DAY, run1 + DAY))


def test_the_docs_example_is_the_spec_the_end_to_end_test_loads():
    """The spec reference's request-time values example is this module's spec."""
    page = (REPO / "docs" / "spec-reference.md").read_text()
    section = page.split("### Request-time values", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    assert yaml.safe_load(block) == SPEC

"""Template functions (`now_utc`, `format_datetime`, `duration`, `regex_search`, ...) and the
parsed `Link` header (`links`) in restsync's Jinja sandbox: each function's answer, their
validation, and a spec using them end to end against the sandbox's `chat` vendor."""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml

from restsync_assets.runtime.http.paginators import TemplatedCursorPaginator
from restsync_assets.specs.templates import TemplateError, compile_template

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

SPEC_FILE = Path(__file__).parent / "specs" / "vocab" / "chat.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
JAN5 = datetime(2026, 1, 5, 6, 30, tzinfo=timezone.utc)
JAN5_EPOCH = 1767594600

CASES = [
    ("{{ format_datetime(at, '%Y-%m-%d %H:%M') }}", "2026-01-05 06:30"),
    ("{{ format_datetime(at) }}", "2026-01-05T06:30:00Z"),
    ("{{ format_datetime(at, 'epoch') }}", str(JAN5_EPOCH)),
    ("{{ format_datetime(at, '%s') }}", str(JAN5_EPOCH)),
    ("{{ format_datetime(at, 'epoch_ms') }}", str(JAN5_EPOCH * 1000)),
    ("{{ format_datetime(at, '%ms') }}", str(JAN5_EPOCH * 1000)),
    ("{{ format_datetime(at, 'date') }}", "2026-01-05"),
    ("{{ format_datetime('2026-01-05T08:30:00+02:00') }}", "2026-01-05T06:30:00Z"),
    ("{{ format_datetime(1767594600, 'date') }}", "2026-01-05"),
    ("{{ format_datetime('05/01/2026', 'date', '%d/%m/%Y') }}", "2026-01-05"),
    ("{{ str_to_datetime('2026-01-05T06:30:00Z') == at }}", True),
    ("{{ str_to_datetime('2026-01-05 06:30') == at }}", True),  # no zone: UTC
    ("{{ str_to_datetime('2026-01-05').day }}", 5),
    ("{{ timestamp(at) }}", JAN5_EPOCH),
    ("{{ timestamp('2026-01-05T06:30:00Z') }}", JAN5_EPOCH),
    ("{{ timestamp('1767594600') }}", JAN5_EPOCH),
    ("{{ timestamp(at + duration('P1D')) - timestamp(at) }}", 86400),
    ("{{ timestamp(at + duration('PT1H30M')) - timestamp(at) }}", 5400),
    ("{{ timestamp(at + duration('-2d')) - timestamp(at) }}", -172800),
    ("{{ timestamp(at + duration('1w')) - timestamp(at) }}", 604800),
    ("{{ max(3, 9, 4) }}", 9),
    ("{{ min([3, 9, 4]) }}", 3),
    ("{{ max(at, str_to_datetime('2026-02-01')) == str_to_datetime('2026-02-01') }}", True),
    ("{{ regex_search('ticket ORD-4012 open', 'ORD-([0-9]+)') }}", "4012"),
    ("{{ regex_search('ticket ORD-4012 open', 'ORD-[0-9]+') }}", "ORD-4012"),
    ("{{ regex_search('nothing here', 'ORD-([0-9]+)') }}", None),
    ("{{ 'a b' | regex_search('b') }}", "b"),
    ("{{ base64encode('user:pass') }}", base64.b64encode(b"user:pass").decode()),
    ("{{ 'user:pass' | base64encode }}", base64.b64encode(b"user:pass").decode()),
    ("{{ base64decode('dXNlcjpwYXNz') }}", "user:pass"),
    ("{{ links.next.url }}", "https://api.example.com/p2"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_function_answers_as_documented(text, expected):
    """Every template function of the spec reference, on fixed inputs (no clock)."""
    links = {"next": {"url": "https://api.example.com/p2", "rel": "next"}}
    value = compile_template(text).evaluate(at=JAN5, links=links)
    assert value == expected
    assert type(value) is type(expected)


def test_the_clock_functions_read_utc_now():
    """`now_utc`, `today_utc` and `day_delta` read the UTC clock (bounded by two readings)."""
    before = datetime.now(timezone.utc)
    now = compile_template("{{ now_utc() }}").evaluate()
    after = datetime.now(timezone.utc)
    assert before <= now <= after and now.tzinfo is not None
    assert compile_template("{{ today_utc() }}").evaluate() in {before.date(), after.date()}
    assert isinstance(compile_template("{{ today_utc() }}").evaluate(), date)
    week_ago = compile_template("{{ day_delta(-7, '%Y-%m-%d') }}").evaluate()
    assert week_ago in {(d - timedelta(days=7)).strftime("%Y-%m-%d") for d in (before, after)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ duration('P1M') }}", "'P1M' is not a duration"),
        ("{{ duration('soon') }}", "'soon' is not a duration"),
        ("{{ str_to_datetime('tomorrow') }}", "'tomorrow' is not an ISO 8601 date"),
        ("{{ timestamp('x') }}", "'x' is not an ISO 8601 date"),
    ],
)
def test_a_bad_argument_fails_in_one_line(text, message):
    """A function refusing its argument is a TemplateError of one line naming the value."""
    with pytest.raises(TemplateError) as raised:
        compile_template(text).evaluate()
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_paginator_follows_the_link_header():
    """`links` is the response's `Link` header parsed: its `next` URL is followed, and a
    response without one ends the paging."""
    paginator = TemplatedCursorPaginator(
        cursor_value="{{ links.next.url if 'next' in links else '' }}", resource="messages"
    )
    response = requests.Response()
    response._content = b"{}"
    response.headers["Link"] = '<https://api.example.com/m?offset=10>; rel="next"'
    paginator.update_state(response, [])
    assert paginator.has_next_page
    request = requests.Request("GET", "https://api.example.com/m?offset=0")
    paginator.update_request(request)
    assert request.url == "https://api.example.com/m?offset=10"
    last = requests.Response()
    last._content = b"{}"
    paginator.update_state(last, [])
    assert not paginator.has_next_page


WHERE = "chat.yaml: resource 'messages': endpoint.paginator.cursor_value"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "{{ link.next.url }}",
            f"{WHERE}: template reads 'link'; allowed: cursor, headers, last_page, links, response",
        ),
        (
            "{{ record.next }}",
            f"{WHERE}: template reads 'record'; allowed: cursor, headers, last_page, links, response",
        ),
    ],
)
def test_a_paginator_template_reading_an_unknown_name_is_refused(
    tmp_path, monkeypatch, value, expected
):
    """A paginator template may read only `response`, `headers`, `last_page` and `links`
    (and call the functions): anything else is one line naming file, resource and key."""
    monkeypatch.chdir(tmp_path)
    spec = edited(SPEC, resources__0__endpoint__paginator__cursor_value=value)
    assert refusal(tmp_path, spec) == expected


@pytest.fixture
def chat(specs_dir, sandbox, monkeypatch):
    """The chat spec alone in the specs folder, pointed at the sandbox."""
    write_spec(specs_dir, SPEC_FILE.read_text(), "chat.yaml")
    for key, value in sandbox.env(["chat"]).items():
        monkeypatch.setenv(key, value)
    return sandbox


def test_link_paging_and_template_fields_load_equal_to_the_sandbox(chat, specs_dir):
    """The chat vendor's 43 messages are paged by the `Link` header (10 a page: 5 requests)
    and each row gets the fields the template functions compute, checked against values
    computed here from the sandbox's rows with Python's own datetime, re and base64."""
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    truth = []
    for row in chat.rows("chat", "messages"):
        moment = datetime.fromtimestamp(row["ts"], timezone.utc)
        truth.append(
            {
                **row,
                "sent_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "sent_day": moment.strftime("%Y-%m-%d"),
                "ticket": row["text"].split("ORD-")[1].split()[0],
                "user_b64": base64.b64encode(row["user"].encode()).decode(),
                "next_hour": row["ts"] + 3600,
            }
        )
    assert len(truth) == 43
    assert_table_is(table_rows("chat", "messages"), truth)
    served = [r for r in chat.requests if r.resource == "messages"]
    assert [r.status for r in served] == [200] * 5
    assert [r.query.get("offset") for r in served] == [None, "10", "20", "30", "40"]


def test_the_docs_example_is_the_spec_the_end_to_end_test_loads():
    """The spec reference's `## Template functions` example is this module's spec."""
    page = (REPO / "docs" / "spec-reference.md").read_text()
    section = page.split("## Template functions", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    assert yaml.safe_load(block) == SPEC

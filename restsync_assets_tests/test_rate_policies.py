"""`from_headers: ietf` (issue 23 item 3): the IETF `RateLimit` / `RateLimit-Policy` fields of
draft-ietf-httpapi-ratelimit-headers (current draft and older forms) read into policies and
counts matched by name; a policy (quota per window) is a budget of its own, so requests wait
instead of drawing 429s even when the API states no count. Against `fake_servers.RatedPages`
under one injected clock, and two processes sharing the budget (file or Redis) for real.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter

import pytest

from restsync_assets.runtime.http.rate_fields import Left, Policy, Stated, read_stated
from restsync_assets.runtime.http.rate_headers import answered, take
from restsync_assets.specs.model import HeaderBudgetSpec

from .fake_servers import JsonApi, RatedPages
from .support import HEADER_SENDER, NOW, use_specs, write_spec

IETF = HeaderBudgetSpec(ietf=True)
ROWS = [{"id": i, "name": f"row {i}"} for i in range(1, 151)]  # 30 pages of 5
PAGE = 5

# ------------------------------------------------------------------------------ reading

#: (case, headers, what they state)
READS = [
    (
        "current draft, one policy",
        {"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": '"default";r=50;t=30'},
        Stated((Policy("default", 100, 60.0),), (Left("default", 50, 30.0),)),
    ),
    (
        "current draft, counts matched by name, not by position",
        {
            "RateLimit-Policy": '"day";q=1000;w=86400, "burst";q=5;w=1',
            "RateLimit": '"burst";r=2;t=1, "day";r=900;t=4000',
        },
        Stated(
            (Policy("day", 1000, 86400.0), Policy("burst", 5, 1.0)),
            (Left("burst", 2, 1.0), Left("day", 900, 4000.0)),
        ),
    ),
    (
        "current draft, policy alone",
        {"RateLimit-Policy": '"default";q=10;w=1;pk=:cHJvamVjdDEyMw==:'},
        Stated((Policy("default", 10, 1.0),), ()),
    ),
    (
        "a policy of bytes is left out",
        {"RateLimit-Policy": '"bytes";q=65535;qu="content-bytes";w=10, "n";q=3;w=1'},
        Stated((Policy("n", 3, 1.0),), ()),
    ),
    (
        "older policy with the dictionary count",
        {"RateLimit-Policy": "10;w=1, 100;w=60", "RateLimit": "limit=100, remaining=40, reset=9"},
        Stated(
            (Policy("10;w=1", 10, 1.0, named=False), Policy("100;w=60", 100, 60.0, named=False)),
            (Left("100;w=60", 40, 9.0),),
        ),
    ),
    (
        "older separate fields, policies in RateLimit-Limit",
        {"RateLimit-Limit": "5, 5;w=1", "RateLimit-Remaining": "3", "RateLimit-Reset": "1"},
        Stated((Policy("5;w=1", 5, 1.0, named=False),), (Left("5;w=1", 3, 1.0),)),
    ),
    (
        "older separate fields without a policy",
        {"RateLimit-Remaining": "9", "RateLimit-Reset": "4"},
        Stated((), (Left("", 9, 4.0),)),
    ),
    ("garbage", {"RateLimit": '"default";r=lots', "RateLimit-Policy": '"x";q=;w=1'}, None),
    ("nothing", {}, None),
]


@pytest.mark.parametrize(("case", "headers", "stated"), READS)
def test_what_the_ietf_fields_state(case, headers, stated) -> None:
    """Policies (quota per window) and counts (left, seconds to reset) per field form."""
    assert read_stated(IETF, headers, NOW) == stated


def test_named_headers_state_one_count() -> None:
    """`from_headers: {remaining, reset, reset_is: epoch}` states one unnamed count."""
    spec = HeaderBudgetSpec(remaining="X-Left", reset="X-Reset", reset_is="epoch")
    stated = read_stated(spec, {"X-Left": "4", "X-Reset": str(NOW + 30)}, NOW)
    assert stated == Stated((), (Left("", 4, 30.0),))


# ------------------------------------------------------------------------------ the state

#: (case, headers of the first answer, requests that then go at once, the next one's wait)
STATE = [
    ("the policy alone is a budget", {"RateLimit-Policy": '"p";q=3;w=2'}, 2, 2.0),
    (
        "the stricter of two policies binds",
        {"RateLimit-Policy": '"wide";q=100;w=60, "narrow";q=2;w=1'},
        1,
        1.0,
    ),
    (
        "a count is matched to its policy by name",
        {"RateLimit-Policy": '"a";q=100;w=60, "b";q=100;w=60', "RateLimit": '"b";r=0;t=7'},
        0,
        7.0,
    ),
    (
        "an older count without reset holds for its policy's window",
        {"RateLimit-Policy": "50;w=20", "RateLimit-Remaining": "1"},
        1,
        20.0,
    ),
]


@pytest.mark.parametrize(("case", "headers", "go", "wait"), STATE)
def test_the_budget_follows_policies_and_counts(case, headers, go, wait) -> None:
    """After one answer (its request counts for the policies it states), `go` more requests
    take budget at once and the next waits `wait` seconds."""
    state: dict = {}
    assert take(state, "first", NOW, 30) == 0.0
    answered(state, "first", read_stated(IETF, headers, NOW), NOW)
    assert [take(state, f"t{i}", NOW, 30) for i in range(go)] == [0.0] * go
    assert take(state, "next", NOW, 30) == pytest.approx(wait)


def test_an_answer_listing_other_policies_replaces_the_known_ones() -> None:
    """The API changed its policy (2 a second, then 100 a minute): the old one no longer
    holds requests back; an answer stating no policy keeps the known ones."""
    state: dict = {}
    take(state, "a", NOW, 30)
    answered(state, "a", read_stated(IETF, {"RateLimit-Policy": '"old";q=2;w=1'}, NOW), NOW)
    answered(state, "x", read_stated(IETF, {"RateLimit-Remaining": "9"}, NOW), NOW)
    assert set(state["policies"]) == {"old"}
    answered(state, "y", read_stated(IETF, {"RateLimit-Policy": '"new";q=100;w=60'}, NOW), NOW)
    assert set(state["policies"]) == {"new"}
    assert [take(state, f"t{i}", NOW, 30) for i in range(5)] == [0.0] * 5


# ------------------------------------------------------------------------------ a fake API


def spec_of(limit: object) -> dict:
    return {
        "name": "rated",
        "client": {"base_url": "http://unused", "concurrency": 4, "rate_limit": limit},
        "resources": [
            {
                "name": "items",
                "primary_key": "id",
                "endpoint": {
                    "path": "/items",
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": PAGE},
                },
            }
        ],
    }


def extract(tmp_path, monkeypatch, api: JsonApi, spec: dict) -> list[int]:
    """The ids restsync's source yields for `spec` against `api`."""
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.runtime.source import build_source
    from restsync_assets.specs import load_spec_file

    use_specs(monkeypatch, tmp_path / "specs", {spec["name"]: api.url})
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.delenv("RESTSYNC_RATE_LIMIT_URL", raising=False)
    loaded = load_spec_file(write_spec(tmp_path / "specs", spec))
    source = build_source(loaded, ApiCredentials(source=spec["name"]).resolve())
    return [row["id"] for row in source.resources["items"]]


BURST = [("burst", 5, 1.0), ("hour", 1000, 3600.0)]
#: (case, client.rate_limit, the API's policies (first binds), header style)
FOLLOWING = [
    ("current draft", {"from_headers": "ietf"}, BURST, "current"),
    ("current draft, the binding policy second", {"from_headers": "ietf"}, BURST[::-1], "current"),
    ("policy field alone", {"from_headers": "ietf"}, BURST, "policy_only"),
    ("older policy and count", {"from_headers": "ietf"}, BURST, "older"),
    ("older separate fields", {"from_headers": "ietf"}, BURST, "separate"),
    (
        "the policy corrects a declared budget",
        {"requests": 50, "per": "second", "from_headers": "ietf"},
        BURST,
        "policy_only",
    ),
]


@pytest.mark.parametrize(("case", "limit", "policies", "style"), FOLLOWING)
def test_requests_follow_the_apis_policies_without_429s(
    case, limit, policies, style, retry_clock, tmp_path, monkeypatch
) -> None:
    """The API allows 5 requests per second (and 1,000 an hour) and answers 429 beyond; at
    concurrency 4 every row arrives exactly once, the API answered no 429 and served each of
    the 30 pages once, and the 30 requests took at least the 5 more windows the budget
    allows (by the clock the API and restsync share)."""
    rated = RatedPages(ROWS, policies, style, retry_clock)
    with JsonApi({"GET /items": rated}) as api:
        ids = extract(tmp_path, monkeypatch, api, spec_of(limit))
    assert Counter(ids) == Counter(r["id"] for r in ROWS)
    assert rated.rejected == 0, f"{rated.rejected} requests drew a 429"
    assert rated.served == len(ROWS) // PAGE
    assert retry_clock.now - NOW >= 5.0, retry_clock.sleeps


def test_without_from_headers_the_api_answers_429(retry_clock, tmp_path, monkeypatch) -> None:
    """The same run without `from_headers` draws 429s (retried, so the rows still arrive):
    the fake API enforces what its fields state."""
    rated = RatedPages(ROWS, BURST, "policy_only", retry_clock)
    with JsonApi({"GET /items": rated}) as api:
        ids = extract(tmp_path, monkeypatch, api, spec_of(None))
    assert sorted(ids) == [r["id"] for r in ROWS]
    assert rated.rejected > 0


# ------------------------------------------------------------------------------ two processes


@pytest.fixture(params=["file", "redis"])
def shared_store(request, tmp_path) -> tuple[str, str]:
    """Where two processes share the header state: (file path or Redis URL, Redis key)."""
    if request.param == "file":
        return str(tmp_path / "rated.rate_headers.json"), ""
    budgets = request.getfixturevalue("redis_budgets")
    return budgets.url, f"restsync:rate_limit:{budgets.prefix}_two:headers"


def test_two_processes_sharing_the_budget_draw_no_429s(shared_store, commands, tmp_path):
    """Two processes each send 8 requests at once through header budgets sharing one state
    (file or Redis), against an API allowing 4 requests per second by the real clock and
    stating it in the current draft's fields: all 16 are answered 200, none 429."""
    store, key = shared_store
    rated = RatedPages(ROWS, [("burst", 4, 1.0)], "current", time.time)
    gates = [tmp_path / f"go-{n}" for n in range(2)]
    for gate in gates:
        os.mkfifo(gate)
    with JsonApi({"GET /items": rated}) as api:
        senders = [
            commands([sys.executable, "-c", HEADER_SENDER, f"{api.url}/items", 8, store, gate, key])
            for gate in gates
        ]
        assert all(s.wait_for_line("ready") for s in senders), [s.text for s in senders]
        for gate in gates:  # opening blocks until that sender reads; closing releases it
            with open(gate, "w"):
                pass
        assert [s.finish() for s in senders] == [0, 0], [s.text for s in senders]
    statuses = [json.loads(s.text.strip().splitlines()[-1]) for s in senders]
    assert statuses == [[200] * 8, [200] * 8]
    assert (rated.served, rated.rejected) == (16, 0)

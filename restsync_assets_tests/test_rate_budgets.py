"""Budgets that follow the API (issue 23 item 3): `client.rate_limit` as a list of budgets with
path patterns, and `from_headers` (named headers or IETF `RateLimit`; the IETF policies in
`test_rate_policies.py`) correcting a shared
state (file or Redis); requests wait for budget instead of drawing 429s. Against the sandbox's
`enforce_rate` fault (N requests per second, 429 + Retry-After beyond, with the headers) under
one injected clock shared by the sandbox and restsync."""

from __future__ import annotations

from collections import Counter

import pytest

from restsync_assets.runtime.http import rate_headers
from restsync_assets.runtime.http.rate_fields import Left, Stated
from restsync_assets.runtime.http.rate_headers import (
    FileState,
    HeaderBudget,
    RedisState,
    answered,
    read_stated,
    take,
)
from restsync_assets.sandbox.faults import Fault, FaultPlan
from restsync_assets.sandbox.vendors import credentials_for
from restsync_assets.specs import load_spec_file
from restsync_assets.specs.model import HeaderBudgetSpec, RateLimitSpec

from .support import NOW, FakeClock, helpdesk_spec, refusal, write_spec

X_HEADERS = {"remaining": "X-RateLimit-Remaining", "reset": "X-RateLimit-Reset"}


def spec_with(limit: object, concurrency: int = 4, name: str = "desk") -> dict:
    """A spec over the sandbox's bearer vendor `helpdesk` (47 tickets, offset pages of 3:
    16 requests)."""
    return helpdesk_spec(concurrency, limit, page=3, name=name)


# ------------------------------------------------------------------------------ validation

#: (case, client.rate_limit, budgets, header budget)
VALID = [
    (
        "one budget with a path",
        {"requests": 5, "per": "second", "path": "/v1/search*"},
        (RateLimitSpec(requests=5, per="second", path="/v1/search*"),),
        None,
    ),
    (
        "a list",
        [{"requests": 5, "per": "second", "path": "/v1/search*"}, {"requests": 900, "per": "hour"}],
        (
            RateLimitSpec(requests=5, per="second", path="/v1/search*"),
            RateLimitSpec(requests=900, per="hour"),
        ),
        None,
    ),
    ("headers alone", {"from_headers": X_HEADERS}, (), HeaderBudgetSpec(**X_HEADERS)),
    ("ietf", {"from_headers": "ietf"}, (), HeaderBudgetSpec(ietf=True)),
    (
        "a budget and headers",
        {"requests": 40, "per": "second", "from_headers": {**X_HEADERS, "reset_is": "epoch"}},
        (RateLimitSpec(requests=40, per="second"),),
        HeaderBudgetSpec(**X_HEADERS, reset_is="epoch"),
    ),
]

#: (case, client.rate_limit, the one line after the file name)
INVALID = [
    ("empty list", [], "client.rate_limit: must name at least one budget"),
    (
        "path not a path",
        {"requests": 5, "per": "second", "path": "search"},
        "client.rate_limit.path: must be a URL path pattern starting with / (`*` matches any"
        " text), got 'search'",
    ),
    (
        "second budget without period",
        [{"requests": 5, "per": "second"}, {"requests": 5}],
        "client.rate_limit[1].per: is required; the period of the budget; allowed: hour,"
        " minute, second",
    ),
    (
        "headers missing reset",
        {"from_headers": {"remaining": "X-Left"}},
        "client.rate_limit.from_headers.reset: must name the API's response header, or write"
        " from_headers: ietf",
    ),
    (
        "unknown reset kind",
        {"from_headers": {**X_HEADERS, "reset_is": "minutes"}},
        "client.rate_limit.from_headers.reset_is: unknown kind 'minutes'; allowed: epoch, seconds",
    ),
    (
        "two header budgets",
        [{"from_headers": "ietf"}, {"from_headers": X_HEADERS}],
        "client.rate_limit: name from_headers in one budget only",
    ),
]


@pytest.mark.parametrize(("case", "value", "budgets", "headers"), VALID)
def test_valid_budgets_load_into_the_model(case, value, budgets, headers, tmp_path) -> None:
    """Each written form becomes the declared budgets and the header budget."""
    spec = load_spec_file(write_spec(tmp_path, spec_with(value)))
    assert spec.rate_limits == budgets
    assert spec.rate_limit == (budgets[0] if budgets else None)
    assert spec.rate_limit_headers == headers


@pytest.mark.parametrize(("case", "value", "line"), INVALID)
def test_invalid_budgets_are_one_line_naming_the_key(case, value, line, tmp_path) -> None:
    """A wrong budget is refused in one line naming the spec file, the key and what is allowed."""
    message = refusal(tmp_path, spec_with(value))
    assert message.endswith(line), message
    assert "\n" not in message


# ------------------------------------------------------------------------------ bookkeeping

#: (case, header budget, response headers, what they state at NOW)
READS = [
    ("seconds", HeaderBudgetSpec(**X_HEADERS), {**_h, "X-RateLimit-Reset": "0.25"}, (7, NOW + 0.25))
    for _h in [{"X-RateLimit-Remaining": "7"}]
] + [
    (
        "epoch",
        HeaderBudgetSpec(**X_HEADERS, reset_is="epoch"),
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(NOW + 30)},
        (0, NOW + 30),
    ),
    ("ietf field", HeaderBudgetSpec(ietf=True), {"RateLimit": '"default";r=12;t=2'}, (12, NOW + 2)),
    (
        "ietf older field",
        HeaderBudgetSpec(ietf=True),
        {"RateLimit": "limit=40, remaining=3, reset=1"},
        (3, NOW + 1),
    ),
    (
        "ietf separate fields",
        HeaderBudgetSpec(ietf=True),
        {"RateLimit-Remaining": "9", "RateLimit-Reset": "4"},
        (9, NOW + 4),
    ),
    ("absent", HeaderBudgetSpec(**X_HEADERS), {}, None),
    ("garbage", HeaderBudgetSpec(**X_HEADERS), {"X-RateLimit-Remaining": "lots"}, None),
]


@pytest.mark.parametrize(("case", "spec", "headers", "stated"), READS)
def test_the_budget_an_answer_states(case, spec, headers, stated) -> None:
    """Remaining and reset time as each header style states them (one count each)."""
    read = read_stated(spec, headers, NOW)
    counts = [(c.remaining, NOW + c.reset) for c in read.left] if read else None
    assert counts == (None if stated is None else [stated])


def said(remaining: int, reset: float) -> Stated:
    """An answer stating `remaining` requests left until `reset` seconds from its arrival."""
    return Stated(left=(Left("", remaining, reset),))


def test_requests_wait_for_the_reset_once_what_is_left_is_in_flight() -> None:
    """Before any answer requests go; once an answer says 2 are left, two go (in flight) and a
    third waits until the reset; a newer window's answer starts afresh; an older window's
    answer arriving late never raises the count."""
    state: dict = {}
    assert take(state, "a", NOW, 10) == 0.0
    answered(state, "a", said(2, 0.5), NOW)
    assert [take(state, t, NOW, 10) for t in ("b", "c")] == [0.0, 0.0]
    assert take(state, "d", NOW, 10) == pytest.approx(0.5)
    answered(state, "b", said(1, 0.5), NOW)
    answered(state, "c", said(5, 0.5), NOW)  # the same window, out of order: the lowest counts
    assert state["left"][""]["remaining"] == 1
    assert take(state, "d", NOW + 0.1, 10) == 0.0
    assert take(state, "e", NOW + 0.1, 10) > 0
    assert take(state, "e", NOW + 0.5, 10) == 0.0  # the reset passed: unknown again, it goes
    answered(state, "e", said(39, 1.0), NOW + 0.5)
    assert state == {
        "flight": {"d": NOW + 10.1},
        "left": {"": {"remaining": 39, "reset_at": NOW + 1.5}},
        "policies": {},
    }


@pytest.fixture(params=["file", "redis"])
def shared_pair(request, tmp_path):
    """Two handles on one shared header state, as two processes would hold them."""
    if request.param == "file":
        return FileState(tmp_path / "h.json"), FileState(tmp_path / "h.json")
    budgets = request.getfixturevalue("redis_budgets")
    key = f"restsync:rate_limit:{budgets.prefix}:headers"
    return RedisState(budgets.url, key), RedisState(budgets.url, key)


def test_one_senders_answer_makes_another_wait(shared_pair) -> None:
    """An answer one sender reads (0 left, reset in 2 s) makes a sender of another handle on
    the same file or Redis key wait 2 s (by an injected clock) before it sends."""
    first, second = shared_pair
    clock = FakeClock()
    spec = HeaderBudgetSpec(**X_HEADERS)
    one, other = HeaderBudget(first, spec, "s", clock), HeaderBudget(second, spec, "s", clock)

    class Answer:
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2"}

    with one.slot(lease=5) as held:
        held.answered(Answer())
    with other.slot(lease=5) as held:
        pass
    assert held.waited == pytest.approx(2.0)
    assert clock.sleeps == [2.0]


# ------------------------------------------------------------------------------ the sandbox


def extract(tmp_path, monkeypatch, sandbox, spec: dict) -> list[int]:
    """The ids restsync's source yields for `spec` against the sandbox."""
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.runtime.source import build_source

    name = spec["name"]
    monkeypatch.setenv(f"{name.upper()}_BASE_URL", sandbox.base_url("helpdesk"))
    monkeypatch.setenv(f"{name.upper()}_TOKEN", credentials_for("helpdesk")["token"])
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.delenv("RESTSYNC_RATE_LIMIT_URL", raising=False)
    loaded = load_spec_file(write_spec(tmp_path / "specs", spec))
    source = build_source(loaded, ApiCredentials(source=name).resolve(loaded.secret_keys))
    return [row["id"] for row in source.resources["tickets"]]


#: (case, client.rate_limit, header style of the sandbox, budget files written)
FOLLOWING = [
    ("declared budget", {"requests": 5, "per": "second"}, None, ["desk.rate_limit.json"]),
    (
        "a list, one budget for the path",
        [{"requests": 5, "per": "second", "path": "/v1/tick*"}, {"requests": 1000, "per": "hour"}],
        None,
        ["desk.1.rate_limit.json", "desk.rate_limit.json"],
    ),
    ("named headers", {"from_headers": X_HEADERS}, "x", ["desk.rate_headers.json"]),
    ("ietf headers", {"from_headers": "ietf"}, "ietf", ["desk.rate_headers.json"]),
]


@pytest.mark.parametrize(("case", "limit", "style", "files"), FOLLOWING)
def test_requests_wait_for_budget_instead_of_drawing_429s(
    case, limit, style, files, sandbox, retry_clock, tmp_path, monkeypatch
) -> None:
    """The sandbox allows 5 requests per second and answers 429 beyond; at concurrency 4
    every ticket arrives exactly once, the sandbox answered no 429, the requests waited
    (by the shared clock) and the budgets' shared state is where the spec says."""
    enforce = Fault("enforce_rate", "helpdesk", "tickets", requests=5, headers=style)
    sandbox.faults = FaultPlan(enforce, clock=retry_clock)
    ids = extract(tmp_path, monkeypatch, sandbox, spec_with(limit))
    assert Counter(ids) == Counter(r["id"] for r in sandbox.rows("helpdesk", "tickets"))
    assert enforce.fired == 0, f"{enforce.fired} requests drew a 429"
    assert 16 <= enforce.served <= 16 + 4  # no total: at most the window past the last page
    assert sum(retry_clock.sleeps) >= 2.0, retry_clock.sleeps
    assert sorted(p.name for p in (tmp_path / "pipelines").iterdir()) == files


@pytest.mark.parametrize(
    ("case", "limit"),
    [
        ("no budget", None),
        ("a budget for other paths", {"requests": 5, "per": "second", "path": "/v1/other*"}),
    ],
)
def test_without_a_budget_for_the_path_the_sandbox_answers_429(
    case, limit, sandbox, retry_clock, tmp_path, monkeypatch
) -> None:
    """The same run with no budget counting /v1/tickets draws 429s (retried after Retry-After,
    so the rows still arrive): the fault enforces, and a path pattern limits its budget."""
    enforce = Fault("enforce_rate", "helpdesk", "tickets", requests=5, headers=None)
    sandbox.faults = FaultPlan(enforce, clock=retry_clock)
    ids = extract(tmp_path, monkeypatch, sandbox, spec_with(limit))
    assert sorted(ids) == sorted(r["id"] for r in sandbox.rows("helpdesk", "tickets"))
    assert enforce.fired > 0


def test_header_budget_uses_the_spec_redis_key(tmp_path, monkeypatch, redis_budgets) -> None:
    """With `RESTSYNC_RATE_LIMIT_URL` the header state lives in Redis under the spec's key
    prefix (shared across machines), not in a file."""
    monkeypatch.setenv("RESTSYNC_RATE_LIMIT_URL", redis_budgets.url)
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "p"))
    budget = rate_headers.header_budget(f"{redis_budgets.prefix}_s", HeaderBudgetSpec(ietf=True))
    assert isinstance(budget.shared, RedisState)
    assert budget.shared.key == f"restsync:rate_limit:{redis_budgets.prefix}_s:headers"

"""`client.rate_limit`: validation, the shared budget (file and Redis) under an injected clock,
three real processes sharing one budget, and a Dagster run under a rate limit."""

from __future__ import annotations

import logging
import sys
import threading

import pytest
import yaml

from restsync_assets.runtime.http import rate_limit
from restsync_assets.runtime.http.rate_limit import FileBudget, RateLimiter, RateLimitError
from restsync_assets.runtime.http.retry import RetryPolicy
from restsync_assets.runtime.http.session import RestsyncSession
from restsync_assets.sandbox.faults import Fault, FaultPlan
from restsync_assets.sandbox.vendors import credentials_for
from restsync_assets.specs import load_spec_file
from restsync_assets.specs.model import RateLimitSpec

from .fake_servers import RawReply, RawRequest, sequence
from .support import (
    BIN,
    NOW,
    FakeClock,
    assert_table_equals_truth,
    copy_seed_specs,
    edited,
    failure_message,
    helpdesk_spec,
    materialize_specs,
    refusal,
    write_spec,
)

SPEC = {
    "name": "shop",
    "client": {
        "base_url": "https://api.example.com",
        "auth": {"type": "bearer"},
        "rate_limit": {"requests": 10, "per": "second"},
    },
    "resources": [{"name": "orders", "endpoint": {"path": "/v1/orders"}}],
}


def most_in_a_window(times: list[float], window: float) -> int:
    """The most of `times` that any window `[t, t + window)` holds."""
    times, most, first = sorted(times), 0, 0
    for last, time in enumerate(times):
        while times[first] <= time - window:
            first += 1
        most = max(most, last - first + 1)
    return most


# ------------------------------------------------------------------------------ validation

#: (case, client.rate_limit, the model it becomes)
VALID = [
    ("per second", {"requests": 10, "per": "second"}, RateLimitSpec(requests=10, per="second")),
    ("per minute", {"requests": 1, "per": "minute"}, RateLimitSpec(requests=1, per="minute")),
    ("per hour", {"requests": 5000, "per": "hour"}, RateLimitSpec(requests=5000, per="hour")),
    ("absent", None, None),
]
PERIODS = "allowed: hour, minute, second"
#: (case, client.rate_limit, the one line after the file name)
INVALID = [
    ("not a mapping", 10, "client.rate_limit: must be a mapping"),
    (
        "zero requests",
        {"requests": 0, "per": "second"},
        "client.rate_limit.requests: must be a positive whole number of requests, got 0",
    ),
    (
        "negative requests",
        {"requests": -3, "per": "second"},
        "client.rate_limit.requests: must be a positive whole number of requests, got -3",
    ),
    (
        "fractional requests",
        {"requests": 2.5, "per": "second"},
        "client.rate_limit.requests: must be a positive whole number of requests, got 2.5",
    ),
    (
        "text requests",
        {"requests": "10", "per": "second"},
        "client.rate_limit.requests: must be a positive whole number of requests, got '10'",
    ),
    (
        "boolean requests",
        {"requests": True, "per": "second"},
        "client.rate_limit.requests: must be a positive whole number of requests, got True",
    ),
    (
        "unknown period",
        {"requests": 10, "per": "day"},
        f"client.rate_limit.per: unknown period 'day'; {PERIODS}",
    ),
    (
        "plural period",
        {"requests": 10, "per": "seconds"},
        f"client.rate_limit.per: unknown period 'seconds'; {PERIODS}",
    ),
    (
        "missing period",
        {"requests": 10},
        f"client.rate_limit.per: is required; the period of the budget; {PERIODS}",
    ),
    (
        "missing requests",
        {"per": "minute"},
        "client.rate_limit.requests: is required; must be a positive whole number of requests",
    ),
    (
        "other key",
        {"requests": 10, "per": "second", "burst": 20},
        "client.rate_limit.burst: unknown key; allowed: from_headers, path, per, requests",
    ),
]


@pytest.mark.parametrize(("case", "value", "model"), VALID, ids=[c[0] for c in VALID])
def test_valid_rate_limits_load_into_the_model(tmp_path, case, value, model):
    spec = edited(SPEC, client__rate_limit=value)
    if value is None:
        del spec["client"]["rate_limit"]
    assert load_spec_file(write_spec(tmp_path, spec)).rate_limit == model


@pytest.mark.parametrize(("case", "value", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_rate_limit_is_one_line_naming_file_and_key(tmp_path, case, value, expected):
    spec = edited(SPEC, client__rate_limit=value)
    assert refusal(tmp_path, spec) == f"{tmp_path / (spec['name'] + '.yaml')}: {expected}"


def test_dlt_never_sees_the_key_and_the_session_holds_the_limiter(tmp_path, monkeypatch):
    from dlt.sources.rest_api import rest_api_source

    from restsync_assets.resources import Credentials
    from restsync_assets.runtime.source import source_config

    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.delenv("RESTSYNC_RATE_LIMIT_URL", raising=False)
    spec = load_spec_file(write_spec(tmp_path, SPEC))
    credentials = Credentials("shop", None, None, None, None, None, {"token": "t0ken-value"})
    config = source_config(spec, credentials)
    assert "rate_limit" not in config["client"]
    limiter = config["client"]["session"].rate_limiter
    assert isinstance(limiter.budget, FileBudget)
    assert limiter.budget.path == tmp_path / "pipelines" / "shop.rate_limit.json"
    assert set(rest_api_source(config, name="shop").resources) == {"orders"}


# ------------------------------------------------------------------------------ the budget


@pytest.fixture(params=["file", "redis"])
def make_budget(request, tmp_path):
    """`make_budget(limit)`: a budget of the backend, dated by the limiter's clock; every
    budget made in one test is the same budget (one file, or one spec's Redis keys)."""
    if request.param == "file":
        return lambda limit: FileBudget(tmp_path / "spec.rate_limit.json", limit)
    from restsync_assets.runtime.http.rate_limit_redis import RedisBudget

    redis = request.getfixturevalue("redis_budgets")
    name = f"{redis.prefix}_{request.node.name}"
    return lambda limit: RedisBudget(redis.url, name, limit, server_time=False)


def test_requests_beyond_the_budget_wait_for_the_oldest_slot(make_budget):
    """3 per second, answered at once: three go, the fourth waits a second, and so on."""
    limit = RateLimitSpec(requests=3, per="second")
    clock = FakeClock()
    limiter = RateLimiter(make_budget(limit), limit, "shop", clock)
    granted = []
    for _ in range(7):
        with limiter.slot(lease=60):
            granted.append(clock.time() - NOW)
    assert granted == [0, 0, 0, 1, 1, 1, 2]
    assert clock.sleeps == [1.0, 1.0]


#: (case, limit, steps): each step is (seconds after NOW, "take" | "give", ticket, expected
#: wait for "take": 0.0 = granted)
TIMELINES = [
    (
        "a slot counts while in flight and one window after its answer",
        RateLimitSpec(requests=2, per="second"),
        [
            (0.0, "take", "a", 0.0),
            (0.0, "take", "b", 0.0),
            (5.0, "take", "c", 1.0),  # both still in flight: nothing frees before 6.0
            (5.0, "give", "a", None),
            (5.5, "take", "c", 0.5),
            (6.0, "take", "c", 0.0),
        ],
    ),
    (
        "a slot never given back frees one window after its lease",
        RateLimitSpec(requests=1, per="second"),
        [
            (0.0, "take", "a", 0.0),  # every take has a lease of 10 s
            (10.5, "take", "b", 0.5),
            (11.0, "take", "b", 0.0),
        ],
    ),
    (
        "a wait shorter than the store's precision (a microsecond) is still a wait",
        RateLimitSpec(requests=1, per="second"),
        [
            (0.0, "take", "a", 0.0),
            (0.0, "give", "a", None),
            (1.0 - 5e-7, "take", "b", rate_limit.MIN_WAIT),  # frees in 5e-7 s: not yet granted
            (1.0, "take", "b", 0.0),
        ],
    ),
    (
        "a minute's budget",
        RateLimitSpec(requests=2, per="minute"),
        [
            (0.0, "take", "a", 0.0),
            (0.0, "give", "a", None),
            (20.0, "take", "b", 0.0),
            (20.0, "give", "b", None),
            (30.0, "take", "c", 30.0),
            (60.0, "take", "c", 0.0),
        ],
    ),
]


@pytest.mark.parametrize(("case", "limit", "steps"), TIMELINES, ids=[c[0] for c in TIMELINES])
def test_budget_timelines(make_budget, case, limit, steps):
    budget = make_budget(limit)
    for at, action, ticket, expected in steps:
        if action == "give":
            budget.give_back(ticket, NOW + at)
            continue
        assert budget.take(ticket, NOW + at, 10.0) == pytest.approx(expected, abs=1e-5), (at,)


def test_threads_share_one_budget(make_budget):
    """8 threads of one process, 6 requests each, 5 per second: no window of the shared
    clock holds more than 5 requests, counted at sending or at answering."""
    limit = RateLimitSpec(requests=5, per="second")
    clock = FakeClock()
    limiter = RateLimiter(make_budget(limit), limit, "shop", clock)
    sent, answered, lock = [], [], threading.Lock()

    def worker() -> None:
        for _ in range(6):
            with limiter.slot(lease=60):
                with lock:
                    sent.append(clock.time())
                clock.sleep(0.01)  # the request takes 10 ms
                with lock:
                    answered.append(clock.time())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(sent) == len(answered) == 48
    assert most_in_a_window(sent, 1.0) <= 5
    assert most_in_a_window(answered, 1.0) <= 5
    assert max(sent) - min(sent) >= 48 / 5 - 1  # they did wait for each other


def test_two_limiters_over_one_budget_are_two_processes(make_budget):
    """Two limiters (as two processes would make them) share the spec's budget."""
    limit = RateLimitSpec(requests=2, per="second")
    clock = FakeClock()
    first = RateLimiter(make_budget(limit), limit, "shop", clock)
    second = RateLimiter(make_budget(limit), limit, "shop", clock)
    granted = []
    for limiter in (first, second, first, second):
        with limiter.slot(lease=60):
            granted.append(clock.time() - NOW)
    assert granted == [0, 0, 1, 1]


#: (case, what the budget file holds, whether it is started afresh with a warning); the file
#: holds one request answered at NOW when readable
LEFTOVERS = [
    ("not json", "{not json", True),
    ("not a budget", "[1, 2]", True),
    ("answered is not a list", '{"sent": {}, "answered": {}}', True),
    ("a rewrite cut short by a kill", f'{{"sent": {{}}, "answered": [{NOW}]}}{NOW}]}}', False),
]


@pytest.mark.parametrize(("case", "text", "afresh"), LEFTOVERS, ids=[c[0] for c in LEFTOVERS])
def test_what_a_budget_file_may_hold(tmp_path, caplog, case, text, afresh):
    path = tmp_path / "shop.rate_limit.json"
    path.write_text(text)
    budget = FileBudget(path, RateLimitSpec(requests=1, per="second"))
    with caplog.at_level(logging.WARNING, logger=rate_limit.__name__):
        wait = budget.take("a", NOW, 10.0)
    assert ("unreadable" in caplog.text) is afresh
    assert wait == (0.0 if afresh else pytest.approx(1.0))


def test_a_clock_set_back_counts_later_slots_as_now():
    state = {"sent": {}, "answered": [NOW + 100]}
    limit = RateLimitSpec(requests=1, per="second")
    assert rate_limit.take(state, "b", NOW, 10.0, limit) == pytest.approx(1.0)


def test_every_attempt_and_retry_takes_a_slot(api, tmp_path):
    """A 503 and its retry are two requests of the budget: one per minute means the retry
    waits its backoff (1 s) and then for the budget (59 s more)."""
    limit = RateLimitSpec(requests=1, per="minute")
    clock = FakeClock()
    limiter = RateLimiter(FileBudget(tmp_path / "b.json", limit), limit, "shop", clock)
    session = RestsyncSession("shop", api.url, [], RetryPolicy(), clock=clock, rate_limiter=limiter)
    api.reset(sequence(RawReply(503), RawReply(200, {"ok": True})))
    assert session.get(f"{api.url}/v1/orders").json() == {"ok": True}
    assert api.calls("/v1/orders") == 2
    assert clock.sleeps == [1.0, 59.0]


def test_the_resend_after_a_401_takes_a_slot_and_token_requests_take_none(api, tmp_path):
    """1 per minute: the resend with a fresh token waits a minute; the two token requests
    (to the token service, on the auth's own session) wait for nothing."""
    from restsync_assets.runtime.http.oauth import OAuth2Auth

    issued = []

    def app(request: RawRequest) -> RawReply:
        if request.path == "/oauth/token":
            issued.append(f"tok-{len(issued) + 1}")
            return RawReply(200, {"access_token": issued[-1], "expires_in": 3600})
        good = request.headers.get("Authorization") == "Bearer tok-2"
        return RawReply(200, {"ok": True}) if good else RawReply(401)

    limit = RateLimitSpec(requests=1, per="minute")
    clock = FakeClock()
    limiter = RateLimiter(FileBudget(tmp_path / "b.json", limit), limit, "shop", clock)
    auth = OAuth2Auth(api.url + "/oauth/token", "id", "client-secret-1", source="shop")
    session = RestsyncSession(
        "shop", api.url, [], RetryPolicy(), auth=auth, clock=clock, rate_limiter=limiter
    )
    api.reset(app)
    assert session.get(f"{api.url}/v1/orders", auth=auth).json() == {"ok": True}
    assert api.calls("/v1/orders") == 2 and api.calls("/oauth/token") == 2
    assert clock.sleeps == [60.0]


# ------------------------------------------------------------------------------ the backend


def test_redis_keys_expire_once_nothing_in_them_counts(redis_budgets):
    """`sent` lives a lease plus a window (plus a second), `answered` a window (plus one)."""
    import redis

    from restsync_assets.runtime.http.rate_limit_redis import RedisBudget

    limit = RateLimitSpec(requests=5, per="minute")
    budget = RedisBudget(redis_budgets.url, f"{redis_budgets.prefix}_ttl", limit)
    assert budget.take("a", NOW, 10.0) == 0.0
    assert budget.take("b", NOW, 10.0) == 0.0
    budget.give_back("a", NOW)
    client = redis.Redis.from_url(redis_budgets.url)
    sent, answered = (client.pttl(key) for key in budget.keys)
    assert 60_000 < sent <= 71_000
    assert 50_000 < answered <= 61_000


def test_without_a_url_the_budget_is_a_file_under_the_pipelines_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "p"))
    monkeypatch.delenv("RESTSYNC_RATE_LIMIT_URL", raising=False)
    spec = load_spec_file(write_spec(tmp_path, SPEC))
    assert rate_limit.limiter_for(spec).budget.path == tmp_path / "p" / "shop.rate_limit.json"
    without = load_spec_file(write_spec(tmp_path, edited(SPEC, client__rate_limit=None)))
    assert rate_limit.limiter_for(without) is None


def test_a_redis_url_without_the_redis_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTSYNC_RATE_LIMIT_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` fails
    spec = load_spec_file(write_spec(tmp_path, SPEC))
    with pytest.raises(RateLimitError) as error:
        rate_limit.limiter_for(spec)
    assert str(error.value) == (
        'RESTSYNC_RATE_LIMIT_URL is set but the redis package is missing: pip install "restsync[redis]"'
    )


def test_an_unreachable_redis_fails_in_one_line_with_its_password_masked(tmp_path, monkeypatch):
    from restsync_assets.runtime.failures import explain

    password = "hunter2-redis-password"
    monkeypatch.setenv("RESTSYNC_RATE_LIMIT_URL", f"redis://:{password}@127.0.0.1:9/0")
    spec = load_spec_file(write_spec(tmp_path, SPEC))
    limiter = rate_limit.limiter_for(spec)
    with pytest.raises(RateLimitError) as error, limiter.slot(lease=1):
        pass
    line = explain(error.value, "shop")
    assert line.startswith("shop: rate limit store redis://:***@127.0.0.1:9/0: ConnectionError")
    assert password not in line
    assert "\n" not in line


# ------------------------------------------------------------------------------ real processes


#: each process pages with its own page size, so the sandbox's log tells them apart
PAGE_SIZES = (3, 4, 5)
BUDGET = {"requests": 5, "per": "second"}


def _three_previews(tmp_path, sandbox, commands, monkeypatch, name: str) -> dict[str, list]:
    """`restsync preview` of one spec in three processes at once (one specs folder each, one
    pipelines folder); the arrival times of each process's requests, by page size."""
    upper = name.upper()
    monkeypatch.setenv(f"{upper}_BASE_URL", sandbox.base_url("helpdesk"))
    monkeypatch.setenv(f"{upper}_TOKEN", credentials_for("helpdesk")["token"])
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    sandbox.faults = FaultPlan(_start_gate())
    started = []
    for size in PAGE_SIZES:
        folder = tmp_path / f"specs_{size}"
        write_spec(folder, helpdesk_spec(limit=BUDGET, page=size, name=name))
        argv = ["env", f"RESTSYNC_SPECS_DIR={folder}", BIN / "restsync", "preview", name]
        started.append(commands([*argv, "tickets", "--limit", "100", "--pages", "100"]))
    for command in started:
        assert command.finish() == 0, command.text
        assert "tickets: 47 records read" in command.text, command.text
    assert sandbox.faults.fired("slow") == len(PAGE_SIZES), "the start gate saw each process once"
    arrivals = {str(size): [] for size in PAGE_SIZES}
    for record in sandbox.requests:
        if record.path.endswith("/v1/tickets"):
            arrivals[record.query["limit"]].append(record.at)
    return arrivals


def _start_gate() -> Fault:
    """Each process's first tickets request is held until all three processes have sent
    one (at most 60 s), so they send at the same time whatever their start-up times."""
    gate, seen, lock = threading.Event(), set(), threading.Lock()

    def first_of_its_process(request) -> bool:
        if not request.path.endswith("/v1/tickets"):
            return False
        with lock:
            first = request.query.get("limit") not in seen
            seen.add(request.query.get("limit"))
            if len(seen) == len(PAGE_SIZES):
                gate.set()
        return first

    return Fault("slow", when=first_of_its_process, seconds=60, until=gate)


def _assert_one_budget(arrivals: dict[str, list]) -> None:
    times = [t for each in arrivals.values() for t in each]
    assert {k: len(v) for k, v in arrivals.items()} == {"3": 16, "4": 12, "5": 10}
    assert max(min(v) for v in arrivals.values()) < min(max(v) for v in arrivals.values()), (
        "the three processes did not send at the same time"
    )
    assert most_in_a_window(times, 1.0) == BUDGET["requests"], sorted(times)


def test_three_processes_share_one_file_budget(tmp_path, sandbox, commands, monkeypatch):
    """Three `restsync preview` processes of one spec at once: no one-second window of the
    sandbox's arrival times holds more than the spec's 5 requests (and one holds 5)."""
    monkeypatch.delenv("RESTSYNC_RATE_LIMIT_URL", raising=False)
    arrivals = _three_previews(tmp_path, sandbox, commands, monkeypatch, "rl_file")
    _assert_one_budget(arrivals)
    assert (tmp_path / "pipelines" / "rl_file.rate_limit.json").exists()


def test_three_processes_share_one_redis_budget(
    tmp_path, sandbox, commands, monkeypatch, redis_budgets
):
    """The same three processes with `RESTSYNC_RATE_LIMIT_URL`: the budget is in Redis (no
    budget file is written), and it holds as well."""
    monkeypatch.setenv("RESTSYNC_RATE_LIMIT_URL", redis_budgets.url)
    name = f"{redis_budgets.prefix}_three"
    arrivals = _three_previews(tmp_path, sandbox, commands, monkeypatch, name)
    _assert_one_budget(arrivals)
    assert not list((tmp_path / "pipelines").glob("*.rate_limit.json"))


# ------------------------------------------------------------------------------ through Dagster


def test_a_rate_limited_concurrent_run_loads_every_row(specs_dir, sandbox_env, monkeypatch):
    """native_ads (grandchildren) with `concurrency: 4` and 20 requests per second, through
    Dagster into DuckDB: every table equals the sandbox row for row, no one-second window of
    API requests holds more than 20, and only API requests (not token requests) took slots."""
    monkeypatch.delenv("RESTSYNC_RATE_LIMIT_URL", raising=False)
    limit = {"requests": 20, "per": "second"}

    def edit(raw: dict) -> None:
        raw["client"].update(concurrency=4, rate_limit=limit)

    copy_seed_specs(specs_dir, ["native_ads"], edit)
    given_back = []
    original = FileBudget.give_back

    def counting(self, ticket: str, now: float) -> None:
        given_back.append(ticket)
        original(self, ticket, now)

    monkeypatch.setattr(FileBudget, "give_back", counting)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    spec = yaml.safe_load((specs_dir / "native_ads.yaml").read_text())
    for resource in spec["resources"]:
        assert_table_equals_truth(sandbox_env, "native_ads", resource["name"])
    api = [r for r in sandbox_env.requests if r.spec == "native_ads" and r.resource != "oauth"]
    assert len(given_back) == len(api)
    assert most_in_a_window([r.at for r in api], 1.0) <= limit["requests"]

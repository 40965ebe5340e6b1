"""`client.concurrency: auto` (issue 23 item 2): the gate grows the requests in flight while
answers are quick and the budget has room, halves them on a 429 or rising latency, and the run
states the level it settled on. Behaviour, never timings: answers are fed by hand, or come
from the sandbox under an injected clock."""

from __future__ import annotations

from collections import Counter

import pytest

from restsync_assets.runtime.http.concurrency import AdaptiveConcurrency, Answer
from restsync_assets.sandbox.faults import Fault, FaultPlan
from restsync_assets.sandbox.vendors import credentials_for
from restsync_assets.specs import load_spec_file

from .support import helpdesk_spec, refusal, write_spec

QUICK, SLOW = Answer(0.05, 200), Answer(0.5, 200)
THROTTLED, WAITED = Answer(0.05, 429), Answer(0.05, 200, waited=True)
IDLE = Answer(0.05, 200, busy=False)

#: (case, answers in order, the levels the gate went through)
RUNS = [
    ("quick answers grow it by one per round", [QUICK] * 9, [2, 3, 4, 5]),
    ("a 429 halves it", [QUICK] * 9 + [THROTTLED], [2, 3, 4, 5, 2]),
    (
        "one halving per round: the answers already in flight",
        [QUICK] * 9 + [THROTTLED] * 2,
        [2, 3, 4, 5, 2],
    ),
    ("a 429 a round later halves it again", [QUICK] * 9 + [THROTTLED] * 4, [2, 3, 4, 5, 2, 1]),
    ("rising latency halves it", [QUICK] * 9 + [SLOW] * 5, [2, 3, 4, 5, 2]),
    ("waiting for rate budget never grows it", [WAITED] * 20, [2]),
    ("a level not in use never grows", [IDLE] * 20, [2]),
    ("it grows again after a halving", [QUICK] * 9 + [THROTTLED] + [QUICK] * 2, [2, 3, 4, 5, 2, 3]),
]


@pytest.mark.parametrize(("case", "answers", "levels"), RUNS)
def test_the_level_rises_and_falls_with_the_answers(case, answers, levels) -> None:
    """AIMD over the answers: +1 after a round of quick, busy, unthrottled answers; halved
    on a 429 or a round of slow answers, at most once per round."""
    gate = AdaptiveConcurrency("s", ceiling=32)
    for answer in answers:
        gate.observe(answer)
    assert gate.levels == levels


def test_the_ceiling_bounds_it() -> None:
    """It never grows past its ceiling (`AUTO_CONCURRENCY`, dlt's workers)."""
    gate = AdaptiveConcurrency("s", ceiling=3)
    for _ in range(50):
        gate.observe(QUICK)
    assert gate.levels == [2, 3]
    assert "settled at 3 requests in flight (highest 3, 1 changes, 0 answered 429)" in (
        gate.summary()
    )


def spec_with(concurrency: object) -> dict:
    """The helpdesk spec, one ticket a page, at `concurrency`."""
    return helpdesk_spec(concurrency, page=1)


def test_auto_is_a_valid_concurrency_and_other_words_are_refused(tmp_path) -> None:
    """`auto` loads (its ceiling as `concurrency`); any other word is one line naming both."""
    spec = load_spec_file(write_spec(tmp_path, spec_with("auto")))
    assert (spec.concurrency_auto, spec.concurrency) == (True, 32)
    message = refusal(tmp_path / "bad", spec_with("fast"))
    assert message.endswith(
        "client.concurrency: must be a whole number of parallel requests from 1 to 64 or auto,"
        " got 'fast'"
    ), message


def test_against_a_rate_enforcing_api_levels_rise_then_fall_on_429(
    sandbox, retry_clock, tmp_path, monkeypatch
) -> None:
    """47 one-ticket pages at `concurrency: auto` against a sandbox allowing 12 requests per
    second (by the injected clock): the level rises above its start, falls after the 429s,
    every ticket arrives once, and `finish` gives the run log's line with the level."""
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.runtime.source import build_source, finish

    enforce = Fault("enforce_rate", "helpdesk", "tickets", requests=12)
    sandbox.faults = FaultPlan(enforce, clock=retry_clock)
    monkeypatch.setenv("DESK_BASE_URL", sandbox.base_url("helpdesk"))
    monkeypatch.setenv("DESK_TOKEN", credentials_for("helpdesk")["token"])
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    loaded = load_spec_file(write_spec(tmp_path / "specs", spec_with("auto")))
    source = build_source(loaded, ApiCredentials(source="desk").resolve(loaded.secret_keys))
    ids = [row["id"] for row in source.resources["tickets"]]
    assert Counter(ids) == Counter(r["id"] for r in sandbox.rows("helpdesk", "tickets"))
    gate = source.restsync_session.adaptive
    assert enforce.fired > 0 and gate.throttled > 0
    peak = gate.levels.index(gate.highest)
    assert gate.highest > gate.levels[0], gate.levels
    assert min(gate.levels[peak:]) < gate.highest, gate.levels
    line = finish(source)
    assert line.startswith(f"desk: client.concurrency auto settled at {gate.level} requests")

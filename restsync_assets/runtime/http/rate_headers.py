"""`client.rate_limit.from_headers`: the budget the API's own answers state, shared live.

Each answer's headers (named in the spec, or the IETF `RateLimit` / `RateLimit-Policy` fields,
read by `rate_fields`) correct one shared state:

- per count the API states (one for named headers, one per policy for IETF `RateLimit`):
  requests left until when. A request takes one of them before it is sent (the requests in
  flight count as taken); when none is left it waits until the reset. Before the first
  answer, and after a reset, nothing is known and requests go (the API's next answer tells);
- per policy of `RateLimit-Policy` (`q` requests per `w` seconds): a budget like a declared
  one (`rate_budget`: a request counts from its sending until one window after its answer),
  so the policy holds even between the API's counts and for answers without `RateLimit`.
  It holds beside a declared budget too: the stricter one sets the pace. An answer listing
  policies replaces the known ones (the API may change them).

Requests therefore wait for budget instead of drawing 429s. The state is shared like the
declared budgets: a JSON file under an `flock` beside them, or Redis
(`RESTSYNC_RATE_LIMIT_URL`, an optimistic `WATCH` transaction), so every thread, process and
machine sending with the spec reads the same counts.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from restsync_assets.specs.model import HeaderBudgetSpec

from .rate_budget import LEASE_MARGIN, MIN_WAIT, Held, RateLimitError
from .rate_fields import Stated, read_stated
from .retry import Clock, current_clock

__all__ = ["FileState", "HeaderBudget", "answered", "read_stated", "take"]

logger = logging.getLogger(__name__)

#: `{"flight": {ticket: lease end}, "left": {name: {"remaining", "reset_at"}},
#: "policies": {name: {"quota", "window", "sent": {ticket: lease end}, "answered": [time]}}}`
State = dict[str, Any]
#: a reset read later than the one known by more than this starts a new window (seconds)
NEW_WINDOW = 0.05


class SharedState(Protocol):
    def update(self, change: Callable[[State], Any]) -> Any:
        """Apply `change` to the state atomically across sharers; its result."""


def take(state: State, ticket: str, now: float, lease: float) -> float:
    """A request may go (0.0, counted in flight and by every policy) or must wait that many
    seconds (the longest wait any count or policy asks)."""
    flight = {t: end for t, end in state.get("flight", {}).items() if end > now}
    state["flight"] = flight
    waits = []
    left = state.setdefault("left", {})
    for name, known in list(left.items()):
        if now >= known["reset_at"]:
            del left[name]
        elif known["remaining"] - len(flight) <= 0:
            waits.append(known["reset_at"] - now)
    policies = state.setdefault("policies", {})
    waits += [w for w in (_policy_wait(p, now) for p in policies.values()) if w > 0]
    if waits:
        return max(*waits, MIN_WAIT)
    flight[ticket] = now + lease
    for policy in policies.values():
        policy["sent"][ticket] = now + lease
    return 0.0


def _policy_wait(policy: dict[str, Any], now: float) -> float:
    """0.0 when fewer than the policy's quota count (see `rate_budget.take`), else the wait."""
    cutoff = now - policy["window"]
    policy["sent"] = {t: end for t, end in policy["sent"].items() if end > cutoff}
    policy["answered"] = [end for end in policy["answered"] if end > cutoff]
    ends = [min(end, now) for end in (*policy["sent"].values(), *policy["answered"])]
    if len(ends) < policy["quota"]:
        return 0.0
    return max(min(ends) + policy["window"] - now, MIN_WAIT)


def answered(state: State, ticket: str, stated: Stated | None, now: float) -> None:
    """`ticket`'s answer arrived at `now`; `stated` is what its headers stated."""
    state.setdefault("flight", {}).pop(ticket, None)
    policies = state.setdefault("policies", {})
    if stated and stated.policies:  # an answer lists every policy: the others are gone
        named = {policy.name for policy in stated.policies}
        for gone in set(policies) - named:
            del policies[gone]
    for policy in stated.policies if stated else ():
        known = policies.setdefault(policy.name, {"sent": {}, "answered": []})
        known["quota"], known["window"] = policy.quota, policy.window
    for policy in policies.values():  # every answered request counts for every policy
        policy["sent"].pop(ticket, None)
        policy["answered"].append(now)
    left = state.setdefault("left", {})
    for count in stated.left if stated else ():
        reset = count.reset
        if reset is None and count.name in policies:  # no reset stated: at most a window
            reset = policies[count.name]["window"]
        if reset is None:
            continue
        known, reset_at = left.get(count.name), now + reset
        if known is None or reset_at > known["reset_at"] + NEW_WINDOW:
            left[count.name] = {"remaining": count.remaining, "reset_at": reset_at}
        else:  # the same window: answers arrive out of order, the lowest count is the latest
            known["remaining"] = min(known["remaining"], count.remaining)


class FileState:
    """The state in a JSON file, changed under an exclusive `flock`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def update(self, change: Callable[[State], Any]) -> Any:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 1 << 20, 0).decode(errors="replace").strip()
            try:
                state, _end = json.JSONDecoder().raw_decode(raw) if raw else ({}, 0)
            except ValueError:
                state = {}
            result = change(state if isinstance(state, dict) else {})
            data = json.dumps(state).encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            return result
        finally:
            os.close(fd)


class RedisState:
    """The state as one JSON value in Redis, changed in a `WATCH` transaction."""

    def __init__(self, url: str, key: str) -> None:
        try:
            import redis
        except ImportError:
            from .rate_limit_redis import INSTALL

            raise RateLimitError(INSTALL) from None
        self.client = redis.Redis.from_url(url)
        self.key = key

    def update(self, change: Callable[[State], Any]) -> Any:
        out: list[Any] = []

        def apply(pipe: Any) -> None:
            raw = pipe.get(self.key)
            state = json.loads(raw) if raw else {}
            out[:] = [change(state)]
            pipe.multi()
            pipe.set(self.key, json.dumps(state), ex=3600)

        self.client.transaction(apply, self.key)
        return out[0]


class HeaderBudget:
    """Requests wait for what the API's headers say is left (see the module docstring)."""

    def __init__(
        self, shared: SharedState, spec: HeaderBudgetSpec, label: str, clock: Clock | None = None
    ):
        self.shared = shared
        self.spec = spec
        self.label = label
        self._clock = clock

    @contextmanager
    def slot(self, lease: float, path: str = "") -> Iterator[Held]:
        """Hold one of the requests the API said are left while the block sends one."""
        held = Held()
        ticket = uuid.uuid4().hex
        clock = current_clock(self._clock)
        while (
            wait := self.shared.update(
                lambda s: take(s, ticket, clock.time(), lease + LEASE_MARGIN)
            )
        ) > 0:
            held.waited += wait
            clock.sleep(wait)
        told: list[Any] = []
        held.answers.append(told.append)
        try:
            yield held
        finally:
            response = told[0] if told else None
            now = current_clock(self._clock).time()
            stated = read_stated(self.spec, response.headers, now) if response is not None else None
            self.shared.update(lambda s: answered(s, ticket, stated, now))


def header_budget(
    spec_name: str, spec: HeaderBudgetSpec, clock: Clock | None = None
) -> HeaderBudget:
    """The header budget of a spec: Redis when `RESTSYNC_RATE_LIMIT_URL` is set, else a file
    beside the declared budgets."""
    from restsync_assets import settings

    url = settings.rate_limit_url()
    if url:
        from .rate_limit_redis import KEY_PREFIX

        shared: SharedState = RedisState(url, f"{KEY_PREFIX}{spec_name}:headers")
    else:
        shared = FileState(settings.pipelines_dir() / f"{spec_name}.rate_headers.json")
    return HeaderBudget(shared, spec, spec_name, clock)

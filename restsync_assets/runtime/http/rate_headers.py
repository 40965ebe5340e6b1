"""`client.rate_limit.from_headers`: the budget the API's own answers state, shared live.

Each answer's remaining/reset headers (named in the spec, or the IETF `RateLimit` field:
`"default";r=12;t=1` or `limit=40, remaining=12, reset=1`, and `RateLimit-Remaining` /
`RateLimit-Reset`) correct one shared state: requests left until when. A request takes one of
them before it is sent (the requests in flight count as taken); when none is left it waits
until the reset, so requests wait for budget instead of drawing 429s. Before the first answer,
and after a reset, nothing is known and requests go (the API's next answer tells).

The state is shared like the declared budgets: a JSON file under an `flock` beside them, or
Redis (`RESTSYNC_RATE_LIMIT_URL`, an optimistic `WATCH` transaction), so every thread, process
and machine sending with the spec reads the same count.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from restsync_assets.specs.model import HeaderBudgetSpec

from .rate_limit import LEASE_MARGIN, MIN_WAIT, Held, RateLimitError
from .retry import Clock, current_clock

__all__ = ["FileState", "HeaderBudget", "answered", "read_budget", "take"]

logger = logging.getLogger(__name__)

State = dict[str, Any]
#: a reset read later than the one known by more than this starts a new window (seconds)
NEW_WINDOW = 0.05


class SharedState(Protocol):
    def update(self, change: Callable[[State], Any]) -> Any:
        """Apply `change` to the state atomically across sharers; its result."""


def take(state: State, ticket: str, now: float, lease: float) -> float:
    """A request may go (0.0, counted in flight) or must wait that many seconds."""
    flight = {t: end for t, end in state.get("flight", {}).items() if end > now}
    state["flight"] = flight
    reset_at, remaining = state.get("reset_at"), state.get("remaining")
    if reset_at is not None and now >= reset_at:
        state["reset_at"] = state["remaining"] = reset_at = remaining = None
    if remaining is not None and remaining - len(flight) <= 0:
        return max(reset_at - now, MIN_WAIT)
    flight[ticket] = now + lease
    return 0.0


def answered(state: State, ticket: str, budget: tuple[int, float] | None) -> None:
    """`ticket`'s answer arrived; `budget` (remaining, reset time) is what it stated."""
    state.setdefault("flight", {}).pop(ticket, None)
    if budget is None:
        return
    remaining, reset_at = budget
    known = state.get("reset_at")
    if known is None or reset_at > known + NEW_WINDOW:
        state["remaining"], state["reset_at"] = remaining, reset_at
    else:  # the same window: answers arrive out of order, the lowest count is the latest
        state["remaining"] = min(state.get("remaining", remaining), remaining)


_IETF_NAMES = {"r": "remaining", "remaining": "remaining", "t": "reset", "reset": "reset"}
_IETF_ITEM = re.compile(r"(?:^|[;,\s])(r|t|remaining|reset)\s*=\s*([0-9.]+)")


def read_budget(spec: HeaderBudgetSpec, headers: Any, now: float) -> tuple[int, float] | None:
    """(remaining, reset time) an answer's headers state; None when they state none."""
    if spec.ietf:
        remaining, reset = _ietf(headers)
        reset_is = "seconds"
    else:
        remaining, reset = headers.get(spec.remaining), headers.get(spec.reset)
        reset_is = spec.reset_is
    try:
        left, at = int(float(remaining)), float(reset)
    except (TypeError, ValueError):
        return None
    return left, (at if reset_is == "epoch" else now + at)


def _ietf(headers: Any) -> tuple[Any, Any]:
    field = headers.get("RateLimit")
    if field:
        found = {_IETF_NAMES[k]: v for k, v in _IETF_ITEM.findall(field)}
        return found.get("remaining"), found.get("reset")
    return headers.get("RateLimit-Remaining"), headers.get("RateLimit-Reset")


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
            budget = read_budget(self.spec, response.headers, now) if response is not None else None
            self.shared.update(lambda s: answered(s, ticket, budget))


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

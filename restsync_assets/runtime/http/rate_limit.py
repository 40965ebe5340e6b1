"""`client.rate_limit`: one request budget per spec, shared by threads, runs and machines.

A request takes a slot of the budget before it is sent and gives it back when its answer has
arrived; the slot then counts for one more window. A request therefore occupies the budget
from the moment it is sent until one window after its answer: wherever in between the API
sees it arrive, no window of the API's clock ever holds more than `requests` arrivals, however
the network or the scheduler delays a request (a request taken at T may arrive at T+delta).
When the budget is spent, :meth:`RateLimiter.slot` waits until the oldest slot frees (never
fails); a 429 is still retried with backoff by the session.

The budget lives in a backend every sender shares; both backends keep the rules of
`rate_budget` (and neither imports the other):

- :class:`FileBudget` (default): a small JSON file per spec under the pipelines folder
  (`<pipelines>/<spec>.rate_limit.json`, beside the load locks of `runtime.locks`), read and
  written under an exclusive `fcntl` lock on it: every thread and every process of the
  machine that uses that pipelines folder shares it.
- `RedisBudget` (`rate_limit_redis`, with `RESTSYNC_RATE_LIMIT_URL=redis://...`): the same
  bookkeeping in one atomic Lua script, shared across machines.

A slot that is never given back (a killed process) counts as answered at its lease's end (the
request's timeout), so it blocks nobody for longer than lease + window. OAuth token requests
do not take slots: they go to the token service, not the API, on a session of their own.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restsync_assets.specs.model import RateLimitSpec, SourceSpec

from .rate_budget import MIN_WAIT, Budget, RateLimitError, State, fresh_state, give_back, take
from .retry import Clock, current_clock

__all__ = [
    "MIN_WAIT",
    "Budget",
    "FileBudget",
    "RateBudgets",
    "RateLimitError",
    "RateLimiter",
    "budget_file",
    "give_back",
    "limiter_for",
    "take",
]

logger = logging.getLogger(__name__)

#: Added to a request's timeout for its lease: a slot never given back frees after that.
LEASE_MARGIN = 5.0


# ---------------------------------------------------------------- the file backend


def budget_file(spec: SourceSpec) -> Path:
    """`<pipelines dir>/<spec>.rate_limit.json`, next to the load locks."""
    from restsync_assets import settings

    return settings.pipelines_dir() / f"{spec.name}.rate_limit.json"


class FileBudget:
    """A budget in a JSON file, read and rewritten in place under an exclusive `flock` on it.

    The new state is written over the old one from the start and the file then cut to its
    length (no temporary file, no rename: a few hundredths of a millisecond instead of
    milliseconds on ext4); the reader parses the first JSON value, so text left behind by a
    process killed between the two steps is ignored.
    """

    def __init__(self, path: Path, limit: RateLimitSpec) -> None:
        self.path = Path(path)
        self.limit = limit
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def take(self, ticket: str, now: float, lease: float) -> float:
        with self._state() as state:
            return take(state, ticket, now, lease, self.limit)

    def give_back(self, ticket: str, now: float) -> None:
        with self._state() as state:
            give_back(state, ticket, now)

    @contextmanager
    def _state(self) -> Iterator[State]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self._read(fd)
            yield state
            data = json.dumps(state).encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)  # releases the lock

    def _read(self, fd: int) -> State:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        text = b"".join(chunks).decode(errors="replace").strip()
        if not text:
            return fresh_state()
        try:
            state, _end = json.JSONDecoder().raw_decode(text)
        except ValueError as error:
            return self._afresh(error)
        shaped = isinstance(state, dict) and isinstance(state.get("sent"), dict)
        if not shaped or not isinstance(state.get("answered"), list):
            return self._afresh("not a rate budget")
        return state

    def _afresh(self, reason: object) -> State:
        logger.warning("rate budget %s unreadable (%s); starting it afresh", self.path, reason)
        return fresh_state()


# ---------------------------------------------------------------- the limiter


@dataclass
class Held:
    """A request's place in its budgets: the seconds it waited for them; `answered` tells
    the budgets that read the API's headers what the answer said."""

    waited: float = 0.0
    answers: list[Callable[[Any], None]] = field(default_factory=list)

    def answered(self, response: Any) -> None:
        for tell in self.answers:
            tell(response)


class RateLimiter:
    """Sends wait for a slot of `budget`; `clock` sleeps and dates (default `retry.CLOCK`,
    looked up at each use, so tests swap it and never really sleep)."""

    def __init__(
        self, budget: Budget, limit: RateLimitSpec, label: str, clock: Clock | None = None
    ):
        self.budget = budget
        self.limit = limit
        self.label = label
        self._clock = clock
        self._told = threading.Event()
        self._path = re.compile(fnmatch.translate(limit.path)) if limit.path else None

    def applies_to(self, path: str) -> bool:
        """Whether the budget counts a request to `path` (every path without a pattern)."""
        return self._path is None or bool(self._path.match(path))

    @contextmanager
    def slot(self, lease: float, path: str = "") -> Iterator[Held]:
        """Hold a slot while the block sends one request (waiting for one first if needed);
        `lease`: how long an unanswered slot may count as in flight; `path`: the request's
        (a budget for other paths lets it through)."""
        held = Held()
        if not self.applies_to(path):
            yield held
            return
        ticket = uuid.uuid4().hex
        clock = current_clock(self._clock)
        while (wait := self.budget.take(ticket, clock.time(), lease + LEASE_MARGIN)) > 0:
            self._tell(wait)
            held.waited += wait
            clock.sleep(wait)
        try:
            yield held
        finally:
            self.budget.give_back(ticket, current_clock(self._clock).time())

    def _tell(self, wait: float) -> None:
        if not self._told.is_set():
            self._told.set()
            logger.info(
                "%s: rate limit of %d requests per %s reached; requests wait for budget"
                " (first wait %.2fs)",
                self.label,
                self.limit.requests,
                self.limit.per,
                wait,
            )


class RateBudgets:
    """Several budgets: a request takes a slot of each that counts its path, in order."""

    def __init__(self, limiters: list[Any]) -> None:
        self.limiters = limiters

    @contextmanager
    def slot(self, lease: float, path: str = "") -> Iterator[Held]:
        held = Held()
        with ExitStack() as stack:
            for limiter in self.limiters:
                inner = stack.enter_context(limiter.slot(lease=lease, path=path))
                held.waited += inner.waited
                held.answers.extend(inner.answers)
            yield held


def limiter_for(spec: SourceSpec, clock: Clock | None = None) -> Any:
    """The limiter of `spec`'s `client.rate_limit` (None without one): one budget's
    :class:`RateLimiter`, or :class:`RateBudgets` of several and of `from_headers`. Redis when
    `RESTSYNC_RATE_LIMIT_URL` is set (read now, at run time), else a budget file each."""
    declared = spec.rate_limits or ((spec.rate_limit,) if spec.rate_limit else ())
    limiters: list[Any] = [_declared(spec, limit, i, clock) for i, limit in enumerate(declared)]
    if spec.rate_limit_headers is not None:
        from .rate_headers import header_budget

        limiters.append(header_budget(spec.name, spec.rate_limit_headers, clock))
    if not limiters:
        return None
    return limiters[0] if len(limiters) == 1 else RateBudgets(limiters)


def _declared(
    spec: SourceSpec, limit: RateLimitSpec, index: int, clock: Clock | None
) -> RateLimiter:
    """The limiter of the `index`-th declared budget (the first keeps the unsuffixed name)."""
    from restsync_assets import settings

    name = spec.name if index == 0 else f"{spec.name}.{index}"
    url = settings.rate_limit_url()
    if url:
        from .rate_limit_redis import RedisBudget

        budget: Budget = RedisBudget(url, name, limit)
    else:
        budget = FileBudget(settings.pipelines_dir() / f"{name}.rate_limit.json", limit)
    return RateLimiter(budget, limit, spec.name, clock)

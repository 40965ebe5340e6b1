"""`client.concurrency: auto`: how many requests a spec keeps in flight, found as it runs.

:class:`AdaptiveConcurrency` is a gate every request of the session passes (AIMD, as TCP finds
a link's capacity):

- it starts at `START` requests in flight;
- after `level` answers in a row that were quick (latency under `LATENCY_RISE` x the lowest
  seen, plus `LATENCY_SLACK`) and did not wait for rate budget, and while the requests in
  flight use the level, it lets one more request in (additive increase), up to `ceiling`;
- a 429, or `level` slow answers, halve it (multiplicative decrease), at most once per round
  of `level` answers (the answers already in flight belong to the old level);
- every change is logged, and :meth:`summary` (logged at the end of the run) states the level
  it settled on, the highest it reached and the 429s it saw.

A request waiting for rate budget is not a reason to grow: the budget, not latency, is then
the limit, and more requests in flight would only wait longer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["AUTO_CEILING", "AdaptiveConcurrency", "Answer"]

logger = logging.getLogger(__name__)

#: requests in flight at the start
START = 2
#: the most requests in flight `auto` ever allows (dlt's extract workers are sized to it)
AUTO_CEILING = 32
#: an answer is slow when its latency exceeds this many times the lowest seen...
LATENCY_RISE = 2.0
#: ...plus this many seconds (loopback jitter is not congestion)
LATENCY_SLACK = 0.05


@dataclass
class Answer:
    """What one request found: its latency (seconds on the wire), its status (None: no
    answer) and whether it first waited for rate budget."""

    latency: float = 0.0
    status: int | None = None
    waited: bool = False
    #: the request was sent with every place of the level taken (the level was in use)
    busy: bool = True


class AdaptiveConcurrency:
    """The gate of `client.concurrency: auto` (see the module docstring)."""

    def __init__(self, label: str, ceiling: int = AUTO_CEILING, start: int = START) -> None:
        self.label = label
        self.ceiling = max(1, ceiling)
        self.level = min(start, self.ceiling)
        self.highest = self.level
        self.in_flight = 0
        self.throttled = 0
        self.levels: list[int] = [self.level]
        self._fastest: float | None = None
        self._quick = 0
        self._slow = 0
        self._since_cut = 1 << 30  # answers since the last decrease
        self._cond = threading.Condition()

    def window(self) -> int:
        """How many pages one series fetches ahead: twice the level, so pages fetched but
        not yet taken by dlt leave the level's places to requests (the gate still holds
        the requests in flight to the level)."""
        return 2 * self.level

    @contextmanager
    def request(self) -> Iterator[Answer]:
        """Hold a place among the requests in flight (waiting for one first); the caller fills
        in the yielded :class:`Answer`, which adjusts the level when the block ends."""
        with self._cond:
            while self.in_flight >= self.level:
                self._cond.wait()
            self.in_flight += 1
            answer = Answer(busy=self.in_flight >= self.level)
        try:
            yield answer
        finally:
            with self._cond:
                self.in_flight -= 1
                self.observe(answer)
                self._cond.notify_all()

    def observe(self, answer: Answer) -> None:
        """Adjust the level to one answer (called with the lock held, or from tests)."""
        self._since_cut += 1
        if answer.status == 429:
            self.throttled += 1
            self._decrease("the API answered 429")
            return
        if answer.status is None:
            return
        if self._fastest is None or answer.latency < self._fastest:
            self._fastest = answer.latency
        if answer.latency > LATENCY_RISE * self._fastest + LATENCY_SLACK:
            self._quick = 0
            self._slow += 1
            if self._slow >= self.level:
                self._decrease(f"latency rose to {answer.latency:.3f}s")
            return
        self._slow = 0
        if answer.waited or not answer.busy:
            self._quick = 0
            return
        self._quick += 1
        if self._quick >= self.level and self.level < self.ceiling:
            self._set(self.level + 1, "answers quick, budget left")

    def _decrease(self, reason: str) -> None:
        if self._since_cut <= self.level:
            return  # one decrease per round: these answers were sent at the old level
        self._since_cut = 0
        self._set(max(1, self.level // 2), reason)

    def _set(self, level: int, reason: str) -> None:
        self._quick = self._slow = 0
        if level == self.level:
            return
        logger.info(
            "%s: concurrency auto: %d -> %d requests in flight (%s)",
            self.label,
            self.level,
            level,
            reason,
        )
        self.level = level
        self.highest = max(self.highest, level)
        self.levels.append(level)

    def summary(self) -> str:
        """One line: the level it settled on, the highest reached, the 429s seen."""
        return (
            f"{self.label}: client.concurrency auto settled at {self.level} requests in flight"
            f" (highest {self.highest}, {len(self.levels) - 1} changes, {self.throttled}"
            " answered 429)"
        )

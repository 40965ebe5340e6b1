"""A spec's rate budget as data: the bookkeeping every backend shares.

`take` and `give_back` work on a plain `State` (the file backend, `rate_limit.FileBudget`,
keeps it as JSON); the Redis backend (`rate_limit_redis.RedisBudget`) runs the same rules in
Lua. Both backends import this module and neither imports the other; `rate_limit.limiter_for`
picks one.
"""

from __future__ import annotations

from typing import Any, Protocol

from restsync_assets.errors import RestsyncError
from restsync_assets.specs.model import RateLimitSpec

__all__ = ["MIN_WAIT", "Budget", "RateLimitError", "State", "fresh_state", "give_back", "take"]

#: The shortest wait between two looks at a spent budget (seconds).
MIN_WAIT = 0.001


class RateLimitError(RestsyncError, RuntimeError):
    """The shared budget cannot be used (its store is unreachable, a package is missing)."""

    kind = "config"


class Budget(Protocol):
    """Where a spec's slots are kept; every method is atomic across its sharers."""

    def take(self, ticket: str, now: float, lease: float) -> float:
        """Take a slot for `ticket` (0.0), or the seconds until one may free."""

    def give_back(self, ticket: str, now: float) -> None:
        """`ticket`'s request was answered at `now`: its slot counts one more window."""


# ---------------------------------------------------------------- the bookkeeping, as data

#: `{"sent": {ticket: lease end}, "answered": [answer time, ...]}`
State = dict[str, Any]


def fresh_state() -> State:
    return {"sent": {}, "answered": []}


def take(state: State, ticket: str, now: float, lease: float, limit: RateLimitSpec) -> float:
    """Give `ticket` a slot when fewer than `limit.requests` count (0.0), else the wait.

    A slot counts while it is in flight (until its lease ends) and for one window after its
    answer; a time in the future (a clock set back) counts as now.
    """
    cutoff = now - limit.window
    state["sent"] = {t: end for t, end in state["sent"].items() if end > cutoff}
    state["answered"] = [end for end in state["answered"] if end > cutoff]
    ends = [min(end, now) for end in (*state["sent"].values(), *state["answered"])]
    if len(ends) < limit.requests:
        state["sent"][ticket] = now + lease
        return 0.0
    return max(min(ends) + limit.window - now, MIN_WAIT)


def give_back(state: State, ticket: str, now: float) -> None:
    """`ticket` was answered at `now`."""
    state["sent"].pop(ticket, None)
    state["answered"].append(now)

"""Retry timing shared by the API session and the token requests: backoff, Retry-After, clock.

Every wait restsync makes between two attempts is ``min(delay, max_retry_delay)`` where
``delay`` is the server's ``Retry-After`` when it sent a usable one (seconds, including 0, or
an HTTP date; a date in the past means 0) and ``backoff_factor * 2 ** (attempt - 1)``
otherwise.

:data:`CLOCK` is the time source and sleeper used when a session or an auth object is not
given its own; tests replace it (``monkeypatch.setattr(retry, "CLOCK", FakeClock())``) to run
retries without waiting.
"""

from __future__ import annotations

import re
import time
from datetime import timezone
from email.utils import parsedate_to_datetime

__all__ = ["CLOCK", "Clock", "backoff_delay", "clock", "retry_after_seconds", "retry_delay"]

_SECONDS = re.compile(r"^\s*(\d+)\s*$")


class Clock:
    """Wall clock: ``time()`` in epoch seconds and ``sleep(seconds)``."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


CLOCK: Clock = Clock()


def clock() -> Clock:
    """The current process-wide clock (looked up at call time, so tests can swap it)."""
    return CLOCK


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header; None when absent or unusable."""
    if value is None or not value.strip():
        return None
    match = _SECONDS.match(value)
    if match:
        return float(match.group(1))
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, moment.timestamp() - now)


def backoff_delay(attempt: int, backoff_factor: float, max_retry_delay: float) -> float:
    """Exponential backoff after failed attempt number ``attempt`` (1-based), capped."""
    return min(backoff_factor * 2 ** (attempt - 1), max_retry_delay)


def retry_delay(
    attempt: int,
    backoff_factor: float,
    max_retry_delay: float,
    retry_after: str | None = None,
    now: float | None = None,
) -> float:
    """The wait before the next attempt: ``Retry-After`` when usable, else backoff; capped."""
    seconds = retry_after_seconds(retry_after, CLOCK.time() if now is None else now)
    if seconds is not None:
        return min(seconds, max_retry_delay)
    return backoff_delay(attempt, backoff_factor, max_retry_delay)

"""Retries of every request restsync sends, API pages and token requests alike.

:class:`RetryPolicy` is a spec's ``error_handler`` (the same fields, one definition:
``specs.model.ErrorHandler``) as the HTTP layer uses it; :func:`retrying` is the one tenacity
retry built from it. An attempt is retried on the policy's statuses, connection errors
(resets included) and timeouts; the wait before the next one is ``min(delay,
max_retry_delay)`` where ``delay`` is the server's ``Retry-After`` when it sent a usable one
(seconds, including 0, or an HTTP date; a date in the past means 0) and ``backoff_factor *
2 ** (attempt - 1)`` otherwise.

:data:`CLOCK` is the time source and sleeper used when a session or an auth object is not
given its own; tests replace it (``monkeypatch.setattr(retry, "CLOCK", FakeClock())``) to run
retries without waiting.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.exceptions import ChunkedEncodingError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_any,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
)

from restsync_assets.specs.model import ErrorHandler

from . import errors
from .response_rules import matched_rule

__all__ = [
    "CLOCK",
    "RETRYABLE_EXCEPTIONS",
    "Clock",
    "RetryPolicy",
    "backoff_delay",
    "current_clock",
    "retry_after_seconds",
    "retrying",
]

logger = logging.getLogger(__name__)

#: Exceptions worth another attempt: the connection failed, was reset or timed out.
RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    ChunkedEncodingError,
)
_SECONDS = re.compile(r"^\s*(\d+)\s*$")


class Clock:
    """Wall clock: ``time()`` in epoch seconds and ``sleep(seconds)``."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


CLOCK: Clock = Clock()


def current_clock(given: Clock | None = None) -> Clock:
    """``given``, else the process-wide clock (looked up at call time, so tests can swap it)."""
    return given if given is not None else CLOCK


class RetryPolicy(ErrorHandler):
    """A spec's ``error_handler`` as the HTTP layer applies it to one resource (or the source).

    ``timeout`` is per request (used when the caller gives none); ``max_retries`` counts the
    retries after the first attempt. A response matching one of its ``response_rules`` with
    action ``retry`` is retried like a retryable status.
    """

    respect_retry_after: bool = True

    @classmethod
    def from_handler(cls, handler: ErrorHandler, **changes: Any) -> RetryPolicy:
        """The policy of a spec's ``error_handler`` (``changes`` replace some of its fields)."""
        fields = handler.model_dump(exclude={"response_rules"})
        return cls(**{**fields, "response_rules": handler.response_rules, **changes})

    def delay(
        self, attempt: int, retry_after: str | None = None, now: float | None = None
    ) -> float:
        """The wait after failed attempt number ``attempt`` (1-based), given the answer's
        ``Retry-After`` header (when respected)."""
        seconds = None
        if self.respect_retry_after:
            seconds = retry_after_seconds(retry_after, CLOCK.time() if now is None else now)
        if seconds is not None:
            return min(seconds, self.max_retry_delay)
        return backoff_delay(attempt, self.backoff_factor, self.max_retry_delay)


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


def _rule_retries(response: requests.Response) -> bool:
    """Whether the response matched a `response_rules` entry whose action is `retry`."""
    matched = matched_rule(response)
    return matched is not None and matched.action == "retry"


def retrying(
    policy: RetryPolicy,
    *,
    label: Callable[[], str],
    on_give_up: Callable[[RetryCallState], Any],
    secrets: Callable[[], list[str]] = list,
    retry_on: tuple[type[BaseException], ...] = RETRYABLE_EXCEPTIONS,
    clock: Clock | None = None,
) -> Retrying:
    """A tenacity ``Retrying`` calling a function that sends one request and returns the
    response, with ``policy``'s attempts, statuses and waits.

    Before each wait, the retried response is closed and a warning ``<label> got <what>,
    retrying in <s>s (attempt <n>)`` logged (masked with ``secrets()`` and every registered
    secret). When attempts run out, ``on_give_up(state)`` decides: it returns the final
    answer or raises. ``retry_on``: the exceptions retried (all others propagate at once).
    """
    codes = frozenset(policy.retry_on_status_codes)

    def wait(state: RetryCallState) -> float:
        failed = state.outcome.failed
        retry_after = None if failed else state.outcome.result().headers.get("Retry-After")
        return policy.delay(state.attempt_number, retry_after, now=current_clock(clock).time())

    def before_sleep(state: RetryCallState) -> None:
        what, _ = errors.describe(state, secrets())
        if not state.outcome.failed:
            state.outcome.result().close()
        logger.warning(
            "%s got %s, retrying in %.1fs (attempt %d)",
            label(),
            what,
            state.upcoming_sleep,
            state.attempt_number,
        )

    return Retrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=wait,
        retry=retry_any(
            retry_if_exception_type(retry_on),
            retry_if_result(
                lambda response: response.status_code in codes or _rule_retries(response)
            ),
        ),
        sleep=lambda seconds: current_clock(clock).sleep(seconds),
        before_sleep=before_sleep,
        retry_error_callback=on_give_up,
    )

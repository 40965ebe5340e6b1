"""`client.rate_limit` into a `RateLimitSpec`: one line naming the key and its allowed values."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, allowed, mapping
from restsync_assets.specs.model import PERIODS, RATE_LIMIT_KEYS, RateLimitSpec

KEY = "client.rate_limit"


def validate_rate_limit(value: Any) -> RateLimitSpec | None:
    """`{requests: <positive whole number>, per: second | minute | hour}`, or None when absent."""
    if value is None:
        return None
    given = mapping(value, KEY, required=True)
    unknown = sorted(set(given) - set(RATE_LIMIT_KEYS), key=str)
    if unknown:
        raise Invalid(f"unknown key; {allowed(RATE_LIMIT_KEYS)}", key=f"{KEY}.{unknown[0]}")
    for key in RATE_LIMIT_KEYS:
        if key not in given:
            raise Invalid(f"is required; {_rule(key)}", key=f"{KEY}.{key}")
    requests, per = given["requests"], given["per"]
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise Invalid(f"{_rule('requests')}, got {requests!r}", key=f"{KEY}.requests")
    if per not in PERIODS:
        raise Invalid(f"unknown period {per!r}; {allowed(PERIODS)}", key=f"{KEY}.per")
    return RateLimitSpec(requests=requests, per=per)


def _rule(key: str) -> str:
    if key == "requests":
        return "must be a positive whole number of requests"
    return f"the period of the budget; {allowed(PERIODS)}"

"""`client.rate_limit` into budgets: one line naming the key and its allowed values.

A mapping is one budget (`{requests: 10, per: second}`, optionally `path: /search/*`); a list
holds several, each counting the requests whose path it matches (every request without a
`path`). `from_headers:` (in a budget, or alone) names the API's remaining/reset headers, or
`ietf` for the `RateLimit` / `RateLimit-Policy` fields: the shared budget follows them.
"""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, allowed, mapping
from restsync_assets.specs.model import (
    HEADER_BUDGET_KEYS,
    PERIODS,
    RATE_LIMIT_KEYS,
    RESET_KINDS,
    HeaderBudgetSpec,
    RateLimitSpec,
)

KEY = "client.rate_limit"
#: keys of one budget as written
BUDGET_KEYS = (*RATE_LIMIT_KEYS, "from_headers")
Budgets = tuple[tuple[RateLimitSpec, ...], HeaderBudgetSpec | None]


def validate_rate_limit(value: Any) -> RateLimitSpec | None:
    """The first budget of `client.rate_limit` (None when absent); see `validate_budgets`."""
    budgets, _headers = validate_budgets(value)
    return budgets[0] if budgets else None


def validate_budgets(value: Any) -> Budgets:
    """Every declared budget and the header budget of `client.rate_limit`."""
    if value is None:
        return (), None
    if isinstance(value, list):
        if not value:
            raise Invalid("must name at least one budget", key=KEY)
        read = [_budget(item, f"{KEY}[{i}]") for i, item in enumerate(value)]
    else:
        read = [_budget(value, KEY)]
    headers = [h for _b, h in read if h is not None]
    if len(headers) > 1:
        raise Invalid("name from_headers in one budget only", key=KEY)
    return tuple(b for b, _h in read if b is not None), (headers[0] if headers else None)


def _budget(value: Any, key: str) -> tuple[RateLimitSpec | None, HeaderBudgetSpec | None]:
    given = mapping(value, key, required=True)
    unknown = sorted(set(given) - set(BUDGET_KEYS), key=str)
    if unknown:
        raise Invalid(f"unknown key; {allowed(BUDGET_KEYS)}", key=f"{key}.{unknown[0]}")
    headers = (
        _headers(given["from_headers"], f"{key}.from_headers") if "from_headers" in given else None
    )
    if headers is not None and "requests" not in given and "per" not in given:
        return None, headers
    for name in ("requests", "per"):
        if name not in given:
            raise Invalid(f"is required; {_rule(name)}", key=f"{key}.{name}")
    requests, per, path = given["requests"], given["per"], given.get("path")
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise Invalid(f"{_rule('requests')}, got {requests!r}", key=f"{key}.requests")
    if per not in PERIODS:
        raise Invalid(f"unknown period {per!r}; {allowed(PERIODS)}", key=f"{key}.per")
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        raise Invalid(f"{_rule('path')}, got {path!r}", key=f"{key}.path")
    return RateLimitSpec(requests=requests, per=per, path=path), headers


def _headers(value: Any, key: str) -> HeaderBudgetSpec:
    if value == "ietf":
        return HeaderBudgetSpec(ietf=True)
    given = mapping(value, key, required=True)
    unknown = sorted(set(given) - set(HEADER_BUDGET_KEYS) - {"ietf"}, key=str)
    if unknown:
        raise Invalid(f"unknown key; {allowed(HEADER_BUDGET_KEYS)}", key=f"{key}.{unknown[0]}")
    for name in ("remaining", "reset"):
        if not isinstance(given.get(name), str) or not given[name]:
            raise Invalid(
                "must name the API's response header, or write from_headers: ietf",
                key=f"{key}.{name}",
            )
    reset_is = given.get("reset_is", "seconds")
    if reset_is not in RESET_KINDS:
        raise Invalid(f"unknown kind {reset_is!r}; {allowed(RESET_KINDS)}", key=f"{key}.reset_is")
    return HeaderBudgetSpec(remaining=given["remaining"], reset=given["reset"], reset_is=reset_is)


def _rule(key: str) -> str:
    if key == "requests":
        return "must be a positive whole number of requests"
    if key == "path":
        return "must be a URL path pattern starting with / (`*` matches any text)"
    return f"the period of the budget; {allowed(PERIODS)}"

"""What an answer's rate-limit headers state: the API's policies and what is left of each.

IETF fields (draft-ietf-httpapi-ratelimit-headers), current draft:
`RateLimit-Policy: "burst";q=100;w=60, "daily";q=1000;w=86400` (each named policy's quota `q`
per window of `w` seconds) and `RateLimit: "burst";r=50;t=30` (what is left, `r`, of the named
policy, and the seconds `t` until its window resets). Older drafts, read as well:
`RateLimit-Policy: 100;w=60` (an unnamed quota), `RateLimit: limit=100, remaining=50, reset=30`,
and the separate `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` fields
(`RateLimit-Limit: 100, 100;w=60` lists unnamed policies after the current limit).

A count is matched to its policy by name. An unnamed count (older drafts) belongs to the
unnamed policy whose quota is its limit, else to the first unnamed one; an unnamed policy is
named by its quota and window (`100;w=60`). Policies of other units than requests
(`qu="content-bytes"`, `"concurrent-requests"`) and policies without a window are left out:
restsync counts requests per window.

Named headers (`from_headers: {remaining: X-RateLimit-Remaining, reset: ...}`) state one
unnamed count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from restsync_assets.specs.model import HeaderBudgetSpec

__all__ = ["Left", "Policy", "Stated", "read_stated"]


@dataclass(frozen=True)
class Policy:
    """At most `quota` requests per `window` seconds (a `RateLimit-Policy` item)."""

    name: str
    quota: int
    window: float
    #: False for an older draft's unnamed quota (named `<quota>;w=<window>` here)
    named: bool = True


@dataclass(frozen=True)
class Left:
    """`remaining` requests of policy `name` until `reset` seconds from now (None: unstated)."""

    name: str
    remaining: int
    reset: float | None


@dataclass(frozen=True)
class Stated:
    """What one answer stated: the policies and what is left of each."""

    policies: tuple[Policy, ...] = ()
    left: tuple[Left, ...] = ()


def read_stated(spec: HeaderBudgetSpec, headers: Any, now: float) -> Stated | None:
    """What an answer's headers state under `spec`; None when they state nothing usable."""
    if not spec.ietf:
        remaining, reset = _number(headers.get(spec.remaining)), _number(headers.get(spec.reset))
        if remaining is None or reset is None:
            return None
        seconds = reset - now if spec.reset_is == "epoch" else reset
        return Stated(left=(Left("", int(remaining), seconds),))
    policies, limit = _policies(headers)
    left = _matched(_left(headers), policies, limit)
    return Stated(policies, left) if policies or left else None


# ------------------------------------------------------------------------------ IETF fields


def _policies(headers: Any) -> tuple[tuple[Policy, ...], int | None]:
    """The policies of `RateLimit-Policy` and `RateLimit-Limit`; the older current limit (the
    first bare number of `RateLimit-Limit`), if any."""
    found: list[Policy] = []
    limit = None
    for field in ("RateLimit-Policy", "RateLimit-Limit"):
        for item, quoted, params in _members(headers.get(field) or ""):
            if item is None or params.get("qu", "requests") != "requests":
                continue
            quota = _number(params.get("q")) if quoted else _number(item)
            window = _number(params.get("w"))
            if field == "RateLimit-Limit" and window is None and limit is None and quota:
                limit = int(quota)
            if quota is None or not window or window <= 0:
                continue
            name = item if quoted else f"{int(quota)};w={window:g}"
            found.append(Policy(name, int(quota), window, named=quoted))
    return tuple(found), limit


def _left(headers: Any) -> list[tuple[str | None, int, float | None, int | None]]:
    """(name or None, remaining, reset seconds, limit) of each count the answer states."""
    field = headers.get("RateLimit")
    if not field:
        single = {
            "remaining": headers.get("RateLimit-Remaining"),
            "reset": headers.get("RateLimit-Reset"),
        }
        return _counts([(None, False, single)])
    unnamed: dict[str, str] = {}
    members: list[tuple[str | None, bool, dict[str, str]]] = []
    for item, quoted, params in _members(field):
        if item is None:  # older dictionary form: `limit=40, remaining=12, reset=1`
            unnamed.update(params)
        else:
            members.append((item if quoted else None, quoted, params))
    if unnamed:
        members.append((None, False, unnamed))
    return _counts(members)


_ALIASES = {"r": "remaining", "t": "reset", "remaining": "remaining", "reset": "reset"}


def _counts(members: list[tuple[str | None, bool, dict[str, str]]]) -> list[Any]:
    counts = []
    for name, _quoted, params in members:
        named = {_ALIASES.get(k, k): v for k, v in params.items()}
        remaining = _number(named.get("remaining"))
        if remaining is None:
            continue
        limit = _number(named.get("limit"))
        reset = _number(named.get("reset"))
        counts.append((name, int(remaining), reset, int(limit) if limit else None))
    return counts


def _matched(counts: list[Any], policies: tuple[Policy, ...], limit: int | None) -> tuple:
    """Each count under its policy's name (see the module docstring for unnamed counts)."""
    unnamed = [p for p in policies if not p.named]
    left = []
    for name, remaining, reset, own_limit in counts:
        if name is None:
            quota = own_limit or limit
            same = [p for p in unnamed if p.quota == quota]
            name = (same or unnamed or [Policy("", 0, 0)])[0].name
        left.append(Left(name, remaining, reset))
    return tuple(left)


# ------------------------------------------------------------------------------ syntax


def _members(field: str) -> list[tuple[str | None, bool, dict[str, str]]]:
    """A structured-field list read leniently: each member as (item, quoted, parameters); a
    dictionary member `key=value` as (None, False, {key: value})."""
    members = []
    for member in _split(field, ","):
        item, *params = _split(member, ";")
        values = dict(_pair(p) for p in params)
        if "=" in item and not item.startswith('"'):
            key, value = _pair(item)
            members.append((None, False, {key: value, **values}))
        else:
            members.append((_unquote(item), item.startswith('"'), values))
    return members


def _split(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside double quotes, each part stripped, empty ones
    left out."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if quoted:
            quoted = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            quoted = True
        elif char == separator:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _pair(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.strip().lower(), _unquote(value.strip())


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None

"""How restsync words a message: one line, cut short, counted, and the error it is about.

Shared by definition time (specs, checks) and run time (HTTP errors, failure messages);
imports nothing from restsync, so either half can use it.
"""

from __future__ import annotations

import re

#: How long a detail quoted in a message (a template, a server's answer) may be.
DETAIL_LIMIT = 200


def short(text: str, limit: int = DETAIL_LIMIT) -> str:
    """`text` cut to `limit` characters, ending in `…` when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: object, limit: int = DETAIL_LIMIT) -> str:
    """`text` with every run of whitespace (newlines included) as one space, cut short."""
    return short(re.sub(r"\s+", " ", str(text)).strip(), limit)


def plural(count: int, word: str) -> str:
    """`1 attempt`, `3 attempts`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def causes(error: BaseException) -> list[BaseException]:
    """`error` and what it wraps, deepest last: dlt's `.exception` (dlt wraps errors several
    times), else `__cause__`, else `__context__`."""
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = getattr(current, "exception", None) or current.__cause__ or current.__context__
        if current is not None and not isinstance(current, BaseException):
            break
    return chain

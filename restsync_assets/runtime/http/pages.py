"""Is a 2xx page whole? The checks the session runs on every page before dlt sees it.

A scan that stopped early must never pass as complete: its rows would be taken for all of
them (`deletes: soft` marks the rest deleted, an incremental cursor moves past the pages not
read). So a successful answer is refused, and retried like a failed request, when:

* its body was cut short (a JSON document or JSON Lines line that ends open, a gzip file that
  ends early): :func:`cut_short`;
* it lacks the resource's `data_selector` path (`{"error": {...}}` where `{"data": [...]}`
  was expected) as opposed to an empty or null list there: :func:`missing_selector`;
* with restsync's offset paginator, it ends the scan (a short page) although its `total`
  says rows follow: :func:`offset_total_problem`.

Each check returns one line saying what is wrong (None: the page is whole).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from dlt.common import jsonpath

from restsync_assets.text import short

__all__ = [
    "OffsetTotal",
    "PageCheck",
    "cut_short",
    "describe_body",
    "ends_open",
    "ignored_by",
    "missing_selector",
    "offset_total_problem",
    "page_check",
    "records",
    "required_path",
]

#: a selector segment from which on a match may legitimately be empty (a wildcard, a filter)
_OPEN_SEGMENT = re.compile(r"[*\[?]")


@lru_cache(maxsize=1024)
def _compiled(path: str) -> Any:
    """`path` parsed once: jsonpath-ng builds a parser for every string it is given (~1 ms,
    three times per page when the checks below passed strings to `find_values`)."""
    return jsonpath.compile_path(path)


def _find(path: Any, body: Any) -> list[Any]:
    """`jsonpath.find_values` with a string `path` parsed once per distinct path."""
    return jsonpath.find_values(_compiled(path) if isinstance(path, str) else path, body)


def required_path(selector: str | None) -> str | None:
    """The part of `selector` every page must have: its leading plain keys (`organizations`
    of `organizations.*.organization`, `data.search.nodes` whole); None when none (`$`)."""
    if not selector:
        return None
    text = selector.strip()
    text = text[1:] if text.startswith("$") else text
    text = text.lstrip(".")
    cut = _OPEN_SEGMENT.search(text)
    prefix = (text[: cut.start()] if cut else text).rstrip(".")
    return prefix or None


#: a path of plain keys (`data`, `data.search.nodes`): checked by dict lookups
_PLAIN_KEYS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def missing_selector(path: str) -> Callable[[Any], str | None]:
    """A check that the parsed body has `path` (a null or empty value there is fine). A path
    of plain keys is looked up key by key, as jsonpath finds it (a key inside a dict at each
    step), about 100 times faster than jsonpath-ng (a cost paid on every child request)."""
    compiled = _compiled(path)
    keys = path.split(".") if _PLAIN_KEYS.fullmatch(path) else None

    def has_path(body: Any) -> bool:
        if keys is None:
            return isinstance(body, (dict, list)) and bool(jsonpath.find_values(compiled, body))
        for key in keys:
            if not isinstance(body, dict) or key not in body:
                return False
            body = body[key]
        return True

    def check(body: Any) -> str | None:
        if has_path(body):
            return None
        return (
            f"the body has no `{path}` (the data_selector's path), so the page's rows are missing"
        )

    return check


def records(body: Any, selector: str | None) -> list[Any] | None:
    """The page's records as dlt's `RESTClient.extract_response` selects them."""
    if selector is None:
        return body if isinstance(body, list) else None
    found: Any = _find(selector, body)
    found = found[0] if isinstance(found, list) and len(found) == 1 else found
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class OffsetTotal:
    """What restsync's offset paginator reads to end a scan (its model's fields)."""

    limit: int
    offset: int
    offset_param: str
    limit_param: str
    total_path: str

    def problem(self, response: requests.Response, body: Any, selector: str | None) -> str | None:
        """A short page (it ends the scan) with fewer rows than `total` says are left."""
        found = _find(self.total_path, body) if isinstance(body, dict) else []
        total = _int(found[0]) if found else None
        rows = records(body, selector)
        if total is None or rows is None:
            return None
        query = dict(parse_qsl(urlsplit(response.url or "").query, keep_blank_values=True))
        offset = _int(query.get(self.offset_param)) or self.offset
        limit = _int(query.get(self.limit_param)) or self.limit
        return offset_total_problem(offset, limit, len(rows), total)


def offset_total_problem(offset: int, limit: int, count: int, total: int) -> str | None:
    """One line when a page of `count` rows at `offset` ends the scan (it is short) although
    `total` says more rows are left; None otherwise."""
    expected = min(limit, total - offset)
    if count >= limit or count >= expected:
        return None
    return (
        f"the page at offset {offset} has {count} of the {expected} rows its total {total}"
        " promises, which would end the scan early (if the API caps the page size, lower"
        " `limit`)"
    )


def ignored_by(actions: Iterable[Any] | None) -> Callable[[requests.Response], bool]:
    """Whether the resource's `response_actions` ignore a response (dlt's rule: status code
    and/or a substring of the body): such an answer means 'no data', never a broken page."""
    ignoring = [a for a in actions or () if isinstance(a, Mapping) and a.get("action") == "ignore"]

    def ignored(response: requests.Response) -> bool:
        for action in ignoring:
            status, content = action.get("status_code"), action.get("content")
            if status is None and content is None:
                continue
            if status is not None and response.status_code != status:
                continue
            if content is not None and content not in response.text:
                continue
            return True
        return False

    return ignored


@dataclass(frozen=True)
class PageCheck:
    """One resource's checks of a parsed 2xx body (see the module docstring)."""

    selector: str | None = None
    required: Callable[[Any], str | None] | None = None
    offset_total: OffsetTotal | None = None
    ignored: Callable[[requests.Response], bool] = lambda _response: False
    #: where the body says how much there is (progress: the share done): ("rows" | "pages", path)
    total: tuple[str, str] | None = None

    def announced_total(self, body: Any) -> tuple[str, int] | None:
        """("rows" | "pages", the number) the body announces; None when it names none."""
        if self.total is None or not isinstance(body, dict):
            return None
        unit, path = self.total
        found = _find(path, body)
        number = _int(found[0]) if found else None
        return None if number is None else (unit, number)

    def problem(self, response: requests.Response, body: Any) -> str | None:
        """What makes the page not whole, in one line; None when it is."""
        if self.required is not None:
            missing = self.required(body)
            if missing is not None:
                return missing
        if self.offset_total is not None:
            return self.offset_total.problem(response, body, self.selector)
        return None


def page_check(
    selector: str | None,
    paginator: Any,
    response_actions: Iterable[Any] | None = None,
) -> PageCheck:
    """The checks of a resource with this data selector, paginator model and actions."""
    from restsync_assets.specs.model import OffsetPaginatorSpec

    required = required_path(selector)
    offset_total = None
    if (
        isinstance(paginator, OffsetPaginatorSpec)
        and paginator.total_path
        and paginator.stop_after_empty_page
    ):
        offset_total = OffsetTotal(
            paginator.limit,
            paginator.offset,
            paginator.offset_param,
            paginator.limit_param,
            paginator.total_path,
        )
    return PageCheck(
        selector=selector,
        required=missing_selector(required) if required else None,
        offset_total=offset_total,
        ignored=ignored_by(response_actions),
        total=announced_by(paginator),
    )


def announced_by(paginator: Any) -> tuple[str, str] | None:
    """Where a page says how much there is: an offset paginator's `total_path` (rows), a
    `page_number` paginator's `total_path` (pages); None for the others."""
    from restsync_assets.specs.model import OffsetPaginatorSpec

    if isinstance(paginator, OffsetPaginatorSpec):
        return ("rows", paginator.total_path) if paginator.total_path else None
    config = getattr(paginator, "config", None)
    if isinstance(config, dict) and config.get("type") == "page_number":
        path = config.get("total_path", "total")
        return ("pages", path) if isinstance(path, str) and path else None
    return None


# --------------------------------------------------------------------------- cut short


def cut_short(content: bytes, error: BaseException) -> bool:
    """Whether a body that failed to parse (`error`) was cut short rather than not JSON: a
    gzip file that ends early, or JSON (or JSON Lines) that ends inside a string, object or
    array. An HTML page or plain text is not cut short."""
    if isinstance(error, EOFError):
        return True
    return ends_open(content)


def ends_open(content: bytes) -> bool:
    """True when `content` starts like JSON and ends inside a string, object or array."""
    text = content.strip()
    if not text or text[:1] not in (b"{", b"["):
        return False
    depth, in_string, escaped = 0, False, False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
        elif byte in (0x7D, 0x5D):  # } ]
            depth -= 1
    return in_string or depth > 0


def describe_body(content: bytes) -> str:
    """How much of a body arrived and how it starts, for messages."""
    start = content[:60].decode("utf-8", "replace")
    return f"{len(content)} bytes, starting {short(start, 60)!r}"

"""Paginators that extend dlt's ``rest_client`` paginators.

* :class:`TemplatedCursorPaginator`: the next cursor (a URL or a plain token) and an optional stop
  condition are Jinja templates evaluated against each response.
* :class:`OffsetPaginatorWithoutTotal`: dlt's ``OffsetPaginator`` that tolerates a missing or
  invalid ``total`` and stops on a short or empty page (unless ``stop_after_empty_page`` is
  false), never before ``total``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from dlt.common import jsonpath
from dlt.common.utils import str2bool
from dlt.sources.helpers.rest_client.paginators import BasePaginator, OffsetPaginator
from requests import Request, Response

from restsync_assets.errors import RestsyncError
from restsync_assets.specs.templates import CompiledTemplate, compile_template
from restsync_assets.text import short

from .errors import PaginationLoopError
from .masking import mask_url
from .pages import offset_total_problem

__all__ = ["IncompleteScanError", "OffsetPaginatorWithoutTotal", "TemplatedCursorPaginator"]

logger = logging.getLogger(__name__)

_EMPTY_STRINGS = {"", "none", "null"}
_FALSE_STRINGS = {"", "false", "0", "no", "off", "none", "null"}


class IncompleteScanError(RestsyncError, RuntimeError):
    """Offset pages ended (a short page) with fewer rows than the API's ``total`` says."""

    kind = "api"


def _response_json(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_empty_cursor(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in _EMPTY_STRINGS
    if isinstance(value, (dict, list, tuple, set)):
        return not value
    return False


def _is_true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_STRINGS
    return bool(value)


def _is_absolute_url(value: str) -> bool:
    return urlsplit(value).scheme in ("http", "https")


def _copy(record: Any) -> Any:
    return dict(record) if isinstance(record, dict) else record


class TemplatedCursorPaginator(BasePaginator):
    """Follows a cursor computed by a Jinja template from each response.

    Template variables: ``response`` (the parsed JSON body), ``headers`` (response headers,
    case-insensitive), ``last_page`` (the list of records selected from this page) and
    ``links`` (the ``Link`` header parsed by requests: ``{rel: {"url": ..., "rel": ...}}``)
    and ``cursor`` (the cursor that fetched this page, as a string: ``None`` on the first
    page unless ``initial_cursor`` is set). ``cursor`` and ``last_page|length`` page by an
    offset or a page number the API reads from a header: ``cursor_value: "{{ (cursor or
    0)|int + last_page|length }}"`` with ``cursor_header: X-Offset``.

    The cursor value may be an absolute ``http(s)`` URL (followed as is), a path starting with
    ``/`` (resolved against the current request URL) or a plain token sent as the query
    parameter ``cursor_param``. With ``cursor_body_path`` (a dotted path such as
    ``variables.after``) every cursor is written into the JSON request body instead, as dlt's
    ``JSONResponseCursorPaginator`` does: GraphQL's ``pageInfo { endCursor hasNextPage }``.
    With ``cursor_header`` every cursor is sent as that request header (a token API whose
    next page is asked for with, say, ``X-Page-Token``). ``initial_cursor`` is sent on the
    first request too (Airbyte's ``inject_on_first_request``); without it the first request
    carries no cursor.
    Pagination stops when ``stop_condition`` is truthy or the cursor is empty (``None``,
    ``""``, ``"None"``, ``{}``). A cursor repeating one already seen raises
    :class:`PaginationLoopError`.

    Example::

        TemplatedCursorPaginator(
            cursor_value="{{ response.get('paging', {}).get('next_link', {}) }}",
            stop_condition="{{ not response.get('paging', {}).get('next_link', {}) }}",
        )
    """

    def __init__(
        self,
        cursor_value: str | CompiledTemplate,
        stop_condition: str | CompiledTemplate | None = None,
        cursor_param: str | None = None,
        resource: str = "?",
        cursor_body_path: str | None = None,
        cursor_header: str | None = None,
        initial_cursor: str | int | None = None,
    ) -> None:
        super().__init__()
        if sum(bool(t) for t in (cursor_param, cursor_body_path, cursor_header)) > 1:
            raise ValueError(
                f"resource {resource}: use one of cursor_param, cursor_body_path, cursor_header"
            )
        self.cursor_body_path = cursor_body_path
        self.cursor_header = cursor_header
        self.cursor_template = compile_template(cursor_value)
        self.stop_template = compile_template(stop_condition) if stop_condition else None
        self.cursor_param = cursor_param
        self.resource = resource
        self.initial_cursor = None if initial_cursor is None else str(initial_cursor)
        self._next_cursor: str | None = None
        self._seen: set[str] = set()

    def init_request(self, request: Request) -> None:
        self._has_next_page = True
        self._next_cursor = None
        self._seen = set()
        if self.initial_cursor is not None:
            self._set_next(self.initial_cursor)
            self.update_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        context = {
            "cursor": self._next_cursor,
            "response": _response_json(response),
            "headers": response.headers,
            "last_page": data if data is not None else [],
            "links": response.links,
        }
        if self.stop_template is not None and _is_true(self.stop_template.evaluate(**context)):
            self._set_next(None)
            return
        value = self.cursor_template.evaluate(**context)
        self._set_next(None if _is_empty_cursor(value) else self._cursor_to_str(value))

    def _cursor_to_str(self, value: Any) -> str:
        if isinstance(value, (dict, list, tuple, set)):
            raise ValueError(
                f"resource {self.resource}: cursor_value {self.cursor_template.source!r}"
                f" returned a {type(value).__name__}; it must return a string, a number or"
                " an empty value"
            )
        return value.strip() if isinstance(value, str) else str(value)

    def _set_next(self, cursor: str | None) -> None:
        if cursor is not None:
            if cursor in self._seen:
                raise PaginationLoopError(
                    f"resource {self.resource}: pagination loop, the API returned the cursor"
                    f" {short(mask_url(cursor))!r} again; check cursor_value /"
                    " stop_condition of the paginator"
                )
            self._seen.add(cursor)
        self._next_cursor = cursor
        self._has_next_page = cursor is not None

    def update_request(self, request: Request) -> None:
        cursor = self._next_cursor
        if cursor is None:
            return
        if self.cursor_body_path:
            request.json = with_value_at(request.json, self.cursor_body_path, cursor)
            return
        if self.cursor_header:
            request.headers = {**(request.headers or {}), self.cursor_header: cursor}
            return
        if _is_absolute_url(cursor) or cursor.startswith("/"):
            self._follow_url(request, urljoin(request.url, cursor))
            return
        if not self.cursor_param:
            raise ValueError(
                f"resource {self.resource}: cursor value is neither a URL nor a path, so"
                " the paginator needs `cursor_param` (the query parameter that carries it)"
            )
        if request.params is None:
            request.params = {}
        request.params[self.cursor_param] = cursor

    @staticmethod
    def _follow_url(request: Request, url: str) -> None:
        """Go to ``url``; drop request params that its query string already carries."""
        in_url = {name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
        request.url = url
        if request.params:
            request.params = {k: v for k, v in request.params.items() if k not in in_url}

    def __str__(self) -> str:
        return (
            f"{type(self).__name__}(resource={self.resource!r},"
            f" cursor_value={self.cursor_template.source!r},"
            f" stop_condition={self.stop_template.source if self.stop_template else None!r},"
            f" cursor_param={self.cursor_param!r},"
            f" cursor_body_path={self.cursor_body_path!r},"
            f" cursor_header={self.cursor_header!r},"
            f" initial_cursor={self.initial_cursor!r})"
        )


def with_value_at(body: Any, path: str, value: Any) -> dict:
    """A copy of the JSON body `body` with `value` at the dotted `path` (`variables.after`).

    The mappings along the path are copied, never changed in place: the body a request
    starts from is the endpoint's `json`, shared by every paging sequence (each parent's).
    """
    copied = dict(body) if isinstance(body, dict) else {}
    node = copied
    *parents, last = path.split(".")
    for part in parents:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[last] = value
    return copied


class OffsetPaginatorWithoutTotal(OffsetPaginator):
    """dlt's ``OffsetPaginator`` that does not require a ``total`` in the response.

    Uses the integer at ``total_path`` when the response has one (a numeric string counts).
    When it is missing, null or not an integer, pagination continues until a short page
    (fewer than ``limit`` records) or an empty (or ``null``) page. A short page that ``total``
    contradicts (rows are left) raises :class:`IncompleteScanError`: the scan never passes
    as complete (restsync's session retries such a page first, see ``pages``). ``has_more``
    (at ``has_more_path``) stops pagination when it is ``false`` (or ``"false"``); a missing,
    null or unparseable ``has_more`` is ignored with a warning and the short-page rule decides.

    ``stop_after_empty_page=False`` is for APIs that filter after paging (a short or empty
    page while rows follow): then only ``total``, ``has_more`` or ``maximum_offset`` end the
    scan, and a page with none of them usable falls back to the short-page rule.

    Offset pages are no snapshot: when ``total`` changes between pages, rows have shifted
    and some may have been seen twice or skipped; that is logged as a warning. A page
    identical to the previous one (an API ignoring ``offset``) raises
    :class:`PaginationLoopError` instead of looping forever.
    """

    def __init__(
        self,
        limit: int,
        offset: int = 0,
        offset_param: str = "offset",
        limit_param: str = "limit",
        total_path: jsonpath.TJsonPath | None = "total",
        maximum_offset: int | None = None,
        has_more_path: jsonpath.TJsonPath | None = None,
        stop_after_empty_page: bool = True,
    ) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        super().__init__(
            limit=limit,
            offset=offset,
            offset_param=offset_param,
            limit_param=limit_param,
            total_path=total_path,
            maximum_offset=maximum_offset,
            stop_after_empty_page=stop_after_empty_page,
            has_more_path=has_more_path,
        )
        self._totals: set[int] = set()
        self._previous_page: str | None = None

    def init_request(self, request: Request) -> None:
        self._totals = set()
        self._previous_page = None
        super().init_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        count = len(data) if data else 0
        total = self._read_total(response)
        self._check_shift(response, total)
        self._check_repeat(response, data)
        if self.stop_after_empty_page and count < self.limit:
            self._end_on_short_page(response, count, total)
            return
        self.current_value += self.value_step
        has_more = self._read_has_more(response) if self.has_more_path is not None else None
        if total is not None and self.current_value >= total + self.base_index:
            self._has_next_page = False
        if self.maximum_value is not None and self.current_value >= self.maximum_value:
            self._has_next_page = False
        if has_more is False:
            self._has_next_page = False
        unbounded = total is None and has_more is None and self.maximum_value is None
        if unbounded and count < self.limit:  # nothing else can end the scan: short-page rule
            self._has_next_page = False

    def _end_on_short_page(self, response: Response, count: int, total: int | None) -> None:
        """A short page ends the scan, unless ``total`` says rows are left."""
        offset = self.current_value - self.base_index
        problem = None if total is None else offset_total_problem(offset, self.limit, count, total)
        if problem is not None:
            raise IncompleteScanError(
                f"offset pagination of {short(mask_url(response.url or ''))}: {problem}"
            )
        self._has_next_page = False

    def _check_shift(self, response: Response, total: int | None) -> None:
        if total is None:
            return
        if self._totals and total not in self._totals:
            logger.warning(
                "%s: total changed from %s to %d while paging %s; rows shifted between"
                " offset pages, so this run may see some rows twice (merged by primary key)"
                " or miss some (picked up by the next run)",
                type(self).__name__,
                "/".join(str(t) for t in sorted(self._totals)),
                total,
                short(mask_url(urlsplit(response.url or "").path)),
            )
        self._totals.add(total)

    def _check_repeat(self, response: Response, data: list[Any] | None) -> None:
        if not data or len(data) < self.limit:
            self._previous_page = None
            return
        # the page's size and first and last records (copied: later steps may add fields):
        # pages of distinct rows never repeat them, an API that ignores the offset always does
        page = (len(data), _copy(data[0]), _copy(data[-1]))
        if page == self._previous_page:
            raise PaginationLoopError(
                f"offset pagination of {short(mask_url(response.url or ''))}: the page at"
                f" offset {self.current_value} is identical to the previous one; the API"
                f" seems to ignore `{self.param_name}`; check offset_param / limit_param"
            )
        self._previous_page = page

    def _read_total(self, response: Response) -> int | None:
        """The integer total, or None when missing, null or not an integer."""
        if not self.total_path:
            return None
        values = jsonpath.find_values(self.total_path, _response_json(response))
        total = values[0] if values else None
        if total is None or isinstance(total, bool):
            return None
        try:
            return int(total)
        except (TypeError, ValueError):
            return None

    def _read_has_more(self, response: Response) -> bool | None:
        """``has_more`` as a bool (bool-like strings too); None when missing or unusable."""
        body = _response_json(response)
        values = jsonpath.find_values(self.has_more_path, body)
        has_more = values[0] if values else None
        if isinstance(has_more, str):
            try:
                return str2bool(has_more)
            except ValueError:
                pass
        elif isinstance(has_more, bool):
            return has_more
        logger.warning(
            "%s: `%s` is %s in the response of %s; ignoring it, a short or empty page ends"
            " the pagination",
            type(self).__name__,
            self.has_more_path,
            "missing" if not values else f"not a boolean ({short(repr(has_more), 40)})",
            short(mask_url(urlsplit(response.url or "").path)),
        )
        return None

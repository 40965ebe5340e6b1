"""Parallel pages within one endpoint: the session fetches the pages dlt will ask for next.

dlt's paginate loop asks for one page at a time: request, parse, `paginator.update_state`,
`update_request`, next request. Where the next page's URL does not depend on the previous body
(an offset or page-number paginator with its number in the query string) the session can send
those requests before dlt asks, on a pool of `client.concurrency` threads, and answer dlt's own
request with the response already fetched. dlt, its paginator, data selector, incremental and
hooks see every page in order, exactly as sequentially: a page is only ever substituted for an
identical request (same method, path, query, body), so a paginator that goes elsewhere (a
`total` that changed, `has_more: false`) simply gets a fresh request and the guesses are
dropped. An error on page k (after retries) is raised when dlt asks for page k, after the
pages before it.

How far ahead:

- with a `total` (rows for offsets, pages for page numbers) or a maximum: up to the window
  (`client.concurrency`) pages ahead, never past the last page;
- without one: after each full page, the window doubles from one page up to its size (a
  one-page child costs nothing extra), and no page is asked for beyond the first short or
  empty page fetched.

:class:`PageSeries` describes one resource's page numbering; :class:`Prefetcher` holds the
pages in flight, keyed by request without its page number (each parent's children, each
incremental range, are series of their own).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from dlt.common import jsonpath

__all__ = ["PageSeries", "Prefetcher", "series_of"]

logger = logging.getLogger(__name__)

#: series kept at once per worker: one a generator abandoned (dlt stopped early) is dropped
#: once this many newer ones exist
SERIES_PER_WORKER = 4

Key = tuple[str, str, tuple[tuple[str, str], ...], bytes]


@dataclass(frozen=True)
class PageSeries:
    """How a resource numbers its pages in the query string.

    `param` carries the number: an offset (`step` = the page's `limit`) or a page number
    (`step` 1). Values from `base + total` (`total` read at `total_path`: rows for offsets,
    pages for page numbers) or from `maximum` on are never asked for. `page_size`: rows of a
    full page (an offset's `limit`; None: the first page's row count)."""

    param: str
    step: int
    base: int = 0
    total_path: Any = None
    maximum: int | None = None
    page_size: int | None = None
    data_selector: Any = None

    def position(self, request: requests.PreparedRequest) -> tuple[Key, int] | None:
        """The series a request belongs to and its page value; None when it carries no
        integer `param` (or a body that is not bytes or text)."""
        parts = urlsplit(request.url or "")
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        values = [v for k, v in pairs if k == self.param]
        if len(values) != 1:
            return None
        try:
            value = int(values[0])
        except ValueError:
            return None
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):
            return None
        rest = tuple(sorted((k, v) for k, v in pairs if k != self.param))
        return (
            str(request.method),
            f"{parts.scheme}://{parts.netloc}{parts.path}",
            rest,
            body,
        ), value

    def url_at(self, url: str, value: int) -> str:
        """`url` with its page value set to `value` (the other parameters as they were)."""
        parts = urlsplit(url)
        pairs = [
            (k, str(value) if k == self.param else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit(parts._replace(query=urlencode(pairs)))

    def end(self, body: Any) -> int | None:
        """The first value past the last page, from the body's total and the maximum."""
        ends = [] if self.maximum is None else [self.maximum]
        if self.total_path is not None and isinstance(body, (dict, list)):
            found = jsonpath.find_values(self.total_path, body)
            total = found[0] if found else None
            if not isinstance(total, bool):
                with contextlib.suppress(TypeError, ValueError):
                    ends.append(int(total) + self.base)  # type: ignore[arg-type]
        return min(ends) if ends else None

    def rows(self, body: Any) -> int | None:
        """Records on the page (as dlt's data selector finds them); None when unknown."""
        if self.data_selector is None:
            return len(body) if isinstance(body, list) else None
        found = jsonpath.find_values(self.data_selector, body)
        if len(found) == 1 and isinstance(found[0], list):
            return len(found[0])
        if not found or found == [None]:
            return 0
        return len(found)


@dataclass
class _Series:
    """The pages of one series fetched or in flight, by page value."""

    pages: dict[int, Future] = field(default_factory=dict)
    end: int | None = None  #: no page from here on
    ramp: int = 1  #: pages ahead while no total bounds the series
    bounded: bool = False  #: `end` comes from a total or maximum
    page_size: int | None = None
    ended: bool = False  #: dropped: its guesses still in flight stop at their next attempt

    def unwanted(self, value: int) -> bool:
        """Whether nobody will take the page at `value` (dropped, or past the end)."""
        return self.ended or (self.end is not None and value >= self.end)

    def drop_from(self, value: int) -> None:
        for at in [v for v in self.pages if v >= value]:
            self.pages.pop(at).cancel()


#: sends a guessed request; the second argument says whether its series was dropped since
Fetch = Callable[[requests.PreparedRequest, Callable[[], bool]], Any]
Body = Callable[[Any], Any]


class Prefetcher:
    """Pages of paginated series fetched ahead of dlt, `window` at a time per series, on a pool
    of `workers` threads shared by the session.

    `fetched`'s `fetch(request)` sends one guessed request (retries, rate budget and page checks
    included) and returns what `take` hands back; `body(result)` is the parsed body of a
    fetched page (None when it has none)."""

    def __init__(self, workers: int, window: Callable[[], int], body: Body):
        self.window = window
        self._body = body
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._series: OrderedDict[Key, _Series] = OrderedDict()
        self._lock = threading.RLock()  # a done callback may run in the thread holding it
        self.hits = 0

    def take(self, series: PageSeries, request: requests.PreparedRequest) -> Future | None:
        """The page fetched (or in flight) for `request`; None when it was not guessed."""
        position = series.position(request)
        if position is None:
            return None
        key, value = position
        with self._lock:
            state = self._series.get(key)
            future = state.pages.pop(value, None) if state is not None else None
            if future is not None:
                self.hits += 1
            return future

    def forget(self, series: PageSeries, request: requests.PreparedRequest) -> None:
        """The series of `request` ends (its page failed): drop the pages guessed after it."""
        position = series.position(request)
        if position is None:
            return
        with self._lock:
            state = self._series.pop(position[0], None)
        if state is not None:
            state.ended = True
            state.drop_from(-(1 << 62))

    def fetched(
        self, series: PageSeries, request: requests.PreparedRequest, result: Any, fetch: Fetch
    ) -> None:
        """dlt got the page of `request` (`result` from `fetch`): ask for the pages after it."""
        position = series.position(request)
        if position is None:
            return
        key, value = position
        body = self._body(result)
        with self._lock:
            state = self._series.get(key)
            if state is None:
                state = self._series[key] = _Series()
                self._forget_old()
            self._learn(series, state, value, body)
            if state.end is not None and value + series.step >= state.end:
                self._series.pop(key, None)  # the last page: the series is done
                state.ended = True
                state.drop_from(value + series.step)
                return
            self._ask_ahead(series, request, state, value, fetch)

    def _learn(self, series: PageSeries, state: _Series, value: int, body: Any) -> None:
        if body is None:
            state.end, state.bounded = value + series.step, True  # a failed page: stop here
            return
        end = series.end(body)
        if end is not None:
            state.end, state.bounded = end, True
            return
        rows = series.rows(body)
        size = series.page_size or state.page_size or rows
        state.page_size = size
        if rows is None or not size or rows < size:
            state.end = value + series.step  # short or empty (or unknown): no guessing
        else:
            state.ramp = min(state.ramp * 2, max(1, self.window()))

    def _ask_ahead(
        self,
        series: PageSeries,
        request: requests.PreparedRequest,
        state: _Series,
        value: int,
        fetch: Fetch,
    ) -> None:
        ahead = max(1, self.window()) if state.bounded else state.ramp
        for n in range(1, ahead + 1):
            at = value + n * series.step
            if state.end is not None and at >= state.end:
                break
            if at in state.pages:
                continue
            guess = request.copy()
            guess.prepare_url(series.url_at(request.url or "", at), None)
            state.pages[at] = self._submit(series, state, at, guess, fetch)

    def _submit(
        self,
        series: PageSeries,
        state: _Series,
        at: int,
        guess: requests.PreparedRequest,
        fetch: Fetch,
    ) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="restsync-pages")
        future = self._pool.submit(fetch, guess, lambda: state.unwanted(at))
        if not state.bounded:
            future.add_done_callback(lambda done: self._stop_after(series, state, at, done))
        return future

    def _stop_after(self, series: PageSeries, state: _Series, at: int, done: Future) -> None:
        """A guessed page came back short, empty or failed: guess nothing after it."""
        if done.cancelled():
            return
        body = None if done.exception() is not None else self._body(done.result())
        rows = series.rows(body) if body is not None else None
        size = series.page_size or state.page_size
        if body is None or rows is None or not size or rows < size:
            with self._lock:
                if state.end is None or at + series.step < state.end:
                    state.end = at + series.step
                    state.drop_from(state.end)

    def _forget_old(self) -> None:
        while len(self._series) > SERIES_PER_WORKER * max(1, self._workers):
            _key, old = self._series.popitem(last=False)
            old.ended = True
            old.drop_from(-(1 << 62))

    def close(self) -> None:
        """Drop every page not taken and stop the pool (no wait for requests in flight)."""
        with self._lock:
            for state in self._series.values():
                state.ended = True
                state.drop_from(-(1 << 62))
            self._series.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def series_of(paginator: Any, data_selector: Any) -> PageSeries | None:
    """The page series of a paginator model (restsync's `offset` without body paths, dlt's
    `page_number` with a `page_param`); None for any other paginator (cursors, links, ...)."""
    from restsync_assets.specs.model import DltPaginatorSpec, OffsetPaginatorSpec
    from restsync_assets.specs.selectors import compile_jsonpath

    selector = compile_jsonpath(data_selector) if isinstance(data_selector, str) else data_selector
    if isinstance(paginator, OffsetPaginatorSpec):
        return PageSeries(
            param=paginator.offset_param,
            step=paginator.limit,
            total_path=_path(paginator.total_path),
            maximum=paginator.maximum_offset,
            page_size=paginator.limit,
            data_selector=selector,
        )
    if isinstance(paginator, DltPaginatorSpec) and isinstance(paginator.config, dict):
        config = paginator.config
        if config.get("type") != "page_number" or config.get("page_body_path"):
            return None
        return PageSeries(
            param=str(config.get("page_param") or "page"),
            step=1,
            base=int(config.get("base_page", 0) or 0),
            total_path=_path(config.get("total_path", "total")),
            maximum=config.get("maximum_page"),
            data_selector=selector,
        )
    return None


def _path(path: Any) -> Any:
    return jsonpath.compile_path(path) if isinstance(path, str) and path else None

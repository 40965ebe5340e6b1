"""Read-ahead: a top-level resource fetches its next page while dlt handles the current one.

dlt pulls a resource's pages one at a time: request, parse, data selector, then the page goes
through incremental filtering, `ArrowPages` and the parquet writer before the next request
is even sent. `with_read_ahead` runs the resource's own generator (dlt's paginate loop: the
requests, retries, paginator and its loop detection) on a thread of its own, `depth` pages
ahead of dlt, through a bounded queue:

- pages reach dlt in the order the generator yields them (one producer, one FIFO queue);
- when dlt falls behind, the pages already waiting are joined into one list (up to
  `BATCH_ROWS` rows) and handed over as one item: dlt then pays its fixed cost per item once
  per batch (measured at 1M records in pages of 1,000: 1,000 items -> about 135, extract
  6.0 -> 4.3 s). Every step after the generator (transforms, incremental, quarantine,
  `ArrowPages`, children) takes a list of rows of any length;
- an error of the generator (a failed request, a paginator that loops) is raised in dlt's
  thread, where the page it would have been is expected, after the pages before it;
- when dlt stops early (an error downstream, `end_value` reached, the run cancelled) the
  thread stops at its next page and the generator is closed in that thread;
- the thread is named `dlt-pool-<consumer thread id>-...`, so dlt's config container gives it
  the consumer's contexts (pipeline, resource state), as it does for its own worker pools.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

#: pages fetched ahead of dlt per resource: one hides a request behind the work on the page
#: before it; more let dlt take several pages as one item when it falls behind (see BATCH_ROWS)
DEPTH = 8
#: at most this many rows of pages already fetched are handed to dlt as one item: dlt's fixed
#: cost per item (schema computation and validation, about 2 ms per Arrow table) is then paid
#: once per batch instead of once per page
BATCH_ROWS = 10_000
#: how often a producer blocked on a full queue looks whether the consumer went away
POLL_SECONDS = 0.05

_ITEM, _DONE, _ERROR = "item", "done", "error"


def read_ahead(
    items: Iterator[Any], name: str, depth: int = DEPTH, batch_rows: int = BATCH_ROWS
) -> Iterator[Any]:
    """`items`, produced on a thread of their own up to `depth` items ahead of the caller."""
    pending: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                pending.put(entry, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((_ITEM, item)):
                    return
            put((_DONE, None))
        except BaseException as error:  # handed to the consumer, raised there
            put((_ERROR, error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(
        target=produce,
        name=f"dlt-pool-{threading.get_ident()}-read-ahead-{name}",
        daemon=True,
    )
    thread.start()
    held: tuple[str, Any] | None = None
    try:
        while True:
            kind, value = held or pending.get()
            held = None
            if kind == _DONE:
                return
            if kind == _ERROR:
                raise value
            if isinstance(value, list):
                value, held = join_waiting(value, pending, batch_rows)
            yield value
    finally:
        stop.set()
        _drain(pending)
        thread.join(timeout=POLL_SECONDS * 4)  # mid-request it ends at its next page


def join_waiting(
    page: list, pending: queue.Queue, batch_rows: int
) -> tuple[list, tuple[str, Any] | None]:
    """`page` joined with the pages already waiting behind it, up to `batch_rows` rows, and the
    entry that stopped the joining (the end, an error, an item that is not a page) if taken."""
    if len(page) >= batch_rows or pending.empty():
        return page, None
    joined = list(page)
    while len(joined) < batch_rows:
        try:
            entry = pending.get_nowait()
        except queue.Empty:
            break
        kind, value = entry
        if kind != _ITEM or not isinstance(value, list):
            return joined, entry
        joined.extend(value)
    return joined, None


def _drain(pending: queue.Queue) -> None:
    try:
        while True:
            pending.get_nowait()
    except queue.Empty:
        pass


def with_read_ahead(gen: Any, name: str, depth: int = DEPTH, join: bool = True) -> Any:
    """A dlt resource's head step (`resource._pipe.gen`: a generator function, or a generator)
    made to read ahead, as dlt's own `parallelized` wraps it. `join=False`: every page reaches
    dlt as it came (a child batching its parents' keys batches within a page)."""
    batch_rows = BATCH_ROWS if join else 0
    if callable(gen):
        original: Callable[..., Iterator[Any]] = gen

        @wraps(original)
        def reading_ahead(*args: Any, **kwargs: Any) -> Iterator[Any]:
            yield from read_ahead(iter(original(*args, **kwargs)), name, depth, batch_rows)

        return reading_ahead
    return read_ahead(iter(gen), name, depth, batch_rows)

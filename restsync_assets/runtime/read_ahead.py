"""Read-ahead: a top-level resource fetches its next page while dlt handles the current one.

dlt pulls a resource's pages one at a time: request, parse, data selector, then the page goes
through incremental filtering, `ArrowPages` and the parquet writer before the next request
is even sent. `with_read_ahead` runs the resource's own generator (dlt's paginate loop: the
requests, retries, paginator and its loop detection) on a thread of its own, `depth` pages
ahead of dlt, through a bounded queue:

- pages reach dlt in the order the generator yields them (one producer, one FIFO queue);
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

#: pages fetched ahead of dlt per resource (one is enough to hide a request behind the work on
#: the page before it; more would only hold more pages in memory)
DEPTH = 1
#: how often a producer blocked on a full queue looks whether the consumer went away
POLL_SECONDS = 0.05

_ITEM, _DONE, _ERROR = "item", "done", "error"


def read_ahead(items: Iterator[Any], name: str, depth: int = DEPTH) -> Iterator[Any]:
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
    try:
        while True:
            kind, value = pending.get()
            if kind == _ITEM:
                yield value
            elif kind == _DONE:
                return
            else:
                raise value
    finally:
        stop.set()
        _drain(pending)
        thread.join(timeout=POLL_SECONDS * 4)  # mid-request it ends at its next page


def _drain(pending: queue.Queue) -> None:
    try:
        while True:
            pending.get_nowait()
    except queue.Empty:
        pass


def with_read_ahead(gen: Any, name: str, depth: int = DEPTH) -> Any:
    """A dlt resource's head step (`resource._pipe.gen`: a generator function, or a generator)
    made to read ahead, as dlt's own `parallelized` wraps it."""
    if callable(gen):
        original: Callable[..., Iterator[Any]] = gen

        @wraps(original)
        def reading_ahead(*args: Any, **kwargs: Any) -> Iterator[Any]:
            yield from read_ahead(iter(original(*args, **kwargs)), name, depth)

        return reading_ahead
    return read_ahead(iter(gen), name, depth)

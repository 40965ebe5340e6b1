"""Read-ahead (`runtime/read_ahead.py`): pages come in order, errors arrive where they happened,
and a consumer that stops early stops the producer and closes its generator."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from restsync_assets.runtime.read_ahead import DEPTH, join_waiting, read_ahead, with_read_ahead


class Boom(RuntimeError):
    pass


def pages(count: int, fail_at: int | None = None, seen: dict | None = None):
    """`count` pages 0..count-1 (raising `Boom` instead of page `fail_at`); `seen` records how
    many were produced, the producing thread's name, and whether the generator was closed."""
    seen = seen if seen is not None else {}
    seen.update(produced=0, closed=False, thread=None)
    try:
        for number in range(count):
            seen["thread"] = threading.current_thread().name
            if number == fail_at:
                raise Boom(f"page {number} failed")
            seen["produced"] += 1
            yield number
    finally:
        seen["closed"] = True


def _wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        threading.Event().wait(0.01)
    return condition()


CASES = [  # (pages, failing page, pages the consumer sees before the error)
    (0, None, []),
    (1, None, [0]),
    (50, None, list(range(50))),
    (10, 0, []),
    (10, 3, [0, 1, 2]),
]


@pytest.mark.parametrize(("count", "fail_at", "expected"), CASES)
def test_pages_arrive_in_order_and_errors_after_the_pages_before_them(
    count, fail_at, expected
) -> None:
    seen: dict = {}
    got = []
    items = read_ahead(pages(count, fail_at, seen), "items")
    if fail_at is None:
        got = list(items)
    else:
        with pytest.raises(Boom, match=f"page {fail_at} failed"):
            for item in items:
                got.append(item)
    assert got == expected
    assert _wait_until(lambda: seen["closed"]), "the producer's generator was not closed"


def test_a_consumer_that_stops_early_stops_the_producer_and_closes_its_generator() -> None:
    seen: dict = {}
    items = read_ahead(pages(1000, seen=seen), "items")
    assert [next(items), next(items)] == [0, 1]
    items.close()
    assert _wait_until(lambda: seen["closed"]), "the producer kept its generator open"
    # two taken, at most DEPTH queued and one more waiting to be queued
    assert seen["produced"] <= 2 + DEPTH + 1


def test_the_producer_thread_shares_the_consumers_dlt_context() -> None:
    """dlt's config container maps threads named `dlt-pool-<id>-...` to thread `<id>`."""
    seen: dict = {}
    assert list(read_ahead(pages(2, seen=seen), "items")) == [0, 1]
    assert seen["thread"].startswith(f"dlt-pool-{threading.get_ident()}-")


def test_a_generator_function_is_wrapped_with_its_arguments() -> None:
    seen: dict = {}
    wrapped = with_read_ahead(pages, "items")
    assert list(wrapped(3, seen=seen)) == [0, 1, 2]
    assert seen["thread"] != threading.current_thread().name


JOINS = [  # (first page, entries already waiting, batch rows, joined item, entry held back)
    ([1, 2], [[3], [4, 5]], 100, [1, 2, 3, 4, 5], None),
    ([1, 2], [[3], [4, 5]], 3, [1, 2, 3], None),
    ([1, 2, 3, 4], [[5]], 3, [1, 2, 3, 4], None),
    ([1], [{"not": "a page"}, [2]], 100, [1], ("item", {"not": "a page"})),
    ([], [[1], []], 100, [1], None),
    ([1], [], 100, [1], None),
]


@pytest.mark.parametrize(("first", "waiting", "batch_rows", "joined", "held"), JOINS)
def test_pages_already_waiting_are_joined_into_one_item(
    first, waiting, batch_rows, joined, held
) -> None:
    """Pages queued behind the one dlt takes are joined to it, in order, up to `batch_rows`
    rows; an entry that is not a page (or the end, or an error) is held back for its turn."""
    pending: queue.Queue = queue.Queue()
    for item in waiting:
        pending.put(("item", item))
    assert join_waiting(first, pending, batch_rows) == (joined, held)


def test_an_error_behind_waiting_pages_comes_after_them() -> None:
    pending: queue.Queue = queue.Queue()
    error = Boom("page 2 failed")
    for entry in (("item", [1]), ("error", error)):
        pending.put(entry)
    assert join_waiting([0], pending, 100) == ([0, 1], ("error", error))

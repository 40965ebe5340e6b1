"""Read-ahead (`runtime/read_ahead.py`): pages come in order, errors arrive where they happened,
and a consumer that stops early stops the producer and closes its generator."""

from __future__ import annotations

import queue
import threading
import time

import duckdb
import pytest

from restsync_assets.runtime.read_ahead import DEPTH, join_waiting, read_ahead, with_read_ahead

from .fake_servers import JsonApi, page
from .support import materialize_specs, use_specs, use_warehouse, write_spec


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


def test_a_parent_whose_child_batches_its_keys_hands_its_pages_over_one_by_one() -> None:
    """With joining off (`batch_rows=0`, the parent of a `batch_size` child: a batch never
    spans two parent pages) a page is handed over alone, however many wait behind it."""
    pending: queue.Queue = queue.Queue()
    for waiting in ([3, 4], [5]):
        pending.put(("item", waiting))
    assert join_waiting([1, 2], pending, 0) == ([1, 2], None)
    assert pending.qsize() == 2, "the waiting pages stay for the next items"
    pages = [[1, 2], [3, 4], [5]]
    assert list(read_ahead(iter(pages), "parents", depth=3, batch_rows=0)) == pages


def test_an_error_behind_waiting_pages_comes_after_them() -> None:
    pending: queue.Queue = queue.Queue()
    error = Boom("page 2 failed")
    for entry in (("item", [1]), ("error", error)):
        pending.put(entry)
    assert join_waiting([0], pending, 100) == ([0, 1], ("error", error))


EVENTS = [
    {"id": i, "updated": f"2026-01-01T{(2000 - i) // 60:02d}:{(2000 - i) % 60:02d}:00Z"}
    for i in range(1, 2001)
]  # newest first, 20 pages of 100


def test_a_resource_dlt_may_stop_early_reads_one_page_ahead(tmp_path, monkeypatch) -> None:
    """An incremental with `row_order: desc` ends the scan at the first row older than its
    start: dlt stops after page 2 of 20, and the read-ahead asks for at most 2 pages more
    (one queued, one waiting to be), not `DEPTH` more; the table holds exactly the newer rows."""
    start = EVENTS[149]["updated"]
    incremental = {"cursor_path": "updated", "initial_value": start, "row_order": "desc"}
    paginator = {"type": "page_number", "page_param": "page", "total_path": "total_pages"}
    endpoint = {"path": "/events", "data_selector": "data", "incremental": incremental}
    resource = {"name": "events", "primary_key": "id", "write_disposition": "merge"}
    spec = {
        "name": "feed",
        "client": {"base_url": "http://unused"},
        "resources": [
            {**resource, "endpoint": {**endpoint, "paginator": {**paginator, "base_page": 1}}}
        ],
    }
    import restsync_assets.runtime.source as source

    depths = []

    def spy(gen, name, depth, join=True):
        depths.append(depth)
        return with_read_ahead(gen, name, depth, join)

    monkeypatch.setattr(source, "with_read_ahead", spy)
    api = JsonApi({"GET /events": lambda request: page(EVENTS, request.query, 100)})
    with api:
        specs = write_spec(tmp_path / "specs", spec).parent
        use_specs(monkeypatch, specs, {"feed": api.url})
        db = use_warehouse(monkeypatch, tmp_path / "warehouse.duckdb")
        assert materialize_specs(specs).success
        requests = len(api.calls_to("/events"))
    with duckdb.connect(str(db), read_only=True) as con:
        ids = {row[0] for row in con.execute("select id from feed.events").fetchall()}
    assert ids == set(range(1, 151))
    assert depths == [1]
    assert requests <= 4, f"{requests} pages requested for a scan dlt ended at page 2"

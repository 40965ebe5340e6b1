"""Child jobs run on a pool of their own, their rows handed over in job order, joined.

dlt's `parallelized` child makes one job per parent row and hands each job's rows to dlt as
one item: dlt then pays its fixed cost per item (schema computation, writer, ~0.5-2 ms under
the GIL) once per child call, on the thread that also hands out the next jobs (P2 in
`benchmarks/FINDINGS.md`). :func:`in_order` instead runs a parent page's child jobs on a pool
of `client.concurrency` threads of the child's own and yields their rows as read-ahead does
pages (`read_ahead`):

- rows reach dlt in parent order: job k's rows after those of jobs 0..k-1 (a parent's rows in
  the order of its pages);
- the jobs already done behind the next one are joined with it, up to `BATCH_ROWS` rows, so
  dlt's fixed cost is paid per batch when it falls behind;
- at most `AHEAD` x the concurrency jobs are submitted beyond the one dlt waits for (rows
  fetched ahead stay bounded);
- job k's error is raised where its rows would have been, after the rows of the jobs before
  it; the jobs not started yet are cancelled, and so are they when dlt stops early;
- every request still passes the session: its retries, rate budgets and `concurrency: auto`'s
  gate (which holds the requests in flight to its level; the pool is sized to its ceiling);
- the threads are named `dlt-pool-<consumer thread id>-...` (dlt's config container then
  gives them the consumer's contexts, as for its own pools) and each job runs in a copy of the
  consumer's `contextvars`, as dlt's own pool does.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from restsync_assets.runtime.read_ahead import BATCH_ROWS

__all__ = ["AHEAD", "Job", "in_order"]

#: jobs submitted ahead of the one dlt waits for, per thread of the pool
AHEAD = 2

Job = Callable[[], list[Any]]


def in_order(
    jobs: Iterable[Job], concurrency: int, name: str, batch_rows: int = BATCH_ROWS
) -> Iterator[list[Any]]:
    """The rows of `jobs` (each returns one parent's rows), run `concurrency` at once, as
    lists in job order (see the module docstring)."""
    queued = iter(jobs)
    pool = ThreadPoolExecutor(
        max_workers=max(1, concurrency),
        thread_name_prefix=f"dlt-pool-{threading.get_ident()}-children-{name}",
    )
    running: deque[Future[list[Any]]] = deque()

    def top_up() -> None:
        while len(running) <= AHEAD * concurrency:
            job = next(queued, None)
            if job is None:
                return
            running.append(pool.submit(contextvars.copy_context().run, job))

    try:
        top_up()
        while running:
            joined = list(running.popleft().result() or ())
            while running and len(joined) < batch_rows and _succeeded(running[0]):
                joined.extend(running.popleft().result() or ())
            top_up()
            if joined:
                yield joined
    finally:
        for future in running:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def _succeeded(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None

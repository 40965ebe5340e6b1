"""Child jobs run on a pool of their own, their rows handed over in job order, joined.

dlt's `parallelized` child makes one job per parent row and hands each job's rows to dlt as
one item: dlt then pays its fixed cost per item (schema computation, writer, ~0.5-2 ms under
the GIL) once per child call, on the thread that also hands out the next jobs (P2 in
`benchmarks/FINDINGS.md`). :func:`in_order` instead runs a parent page's child jobs on a pool
of `client.concurrency` threads (:class:`JobPool`, one per session, shared by the source's
children) and yields their rows as read-ahead does pages (`read_ahead`):

- rows reach dlt in parent order: job k's rows after those of jobs 0..k-1 (a parent's rows in
  the order of its pages);
- the jobs already done behind the next one are joined with it, up to `BATCH_ROWS` rows, so
  dlt's fixed cost is paid per batch when it falls behind;
- at most `AHEAD` x the concurrency jobs are submitted beyond the one dlt waits for (rows
  fetched ahead stay bounded);
- job k's error is raised where its rows would have been, after the rows of the jobs before
  it; the jobs not started yet are cancelled, and so are they when dlt stops early;
- every request still passes the session: its retries, rate budgets and the cap of
  `client.concurrency` on the source's requests in flight, shared with its pages
  (`concurrency: auto`'s gate holds them to its level; the pool is sized to its ceiling);
- at most `client.concurrency` child jobs of the source run at once, whatever the number of
  parent pages or children waiting;
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

__all__ = ["AHEAD", "Job", "JobPool", "in_order", "ordered_rows", "pool_of"]

#: jobs submitted ahead of the one dlt waits for, per thread of the pool
AHEAD = 2

Job = Callable[[], list[Any]]


class JobPool:
    """The `client.concurrency` threads a source's children share (one per session, so all
    its children together keep at most that many jobs running); started at the first job, by
    the thread that submits it (dlt's extract thread: its id names the threads)."""

    def __init__(self, workers: int, name: str) -> None:
        self.workers = max(1, workers)
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, job: Job) -> Future[list[Any]]:
        """`job` queued on the pool, run in a copy of the caller's `contextvars`."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.workers,
                    thread_name_prefix=f"dlt-pool-{threading.get_ident()}-{self.name}",
                )
            return self._pool.submit(contextvars.copy_context().run, job)

    def close(self) -> None:
        """Cancel the jobs not started; the running ones end on their own (no wait)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def pool_of(client: Any, workers: int, name: str) -> tuple[JobPool, bool]:
    """The session's `JobPool` of dlt's `client` (a `RESTClient`), or a pool of `workers`
    threads of the caller's own (to close when done: the second value)."""
    shared = getattr(getattr(client, "session", None), "jobs", None)
    if isinstance(shared, JobPool):
        return shared, False
    return JobPool(workers, name), True


def in_order(
    jobs: Iterable[Job], pool: JobPool, batch_rows: int = BATCH_ROWS
) -> Iterator[list[Any]]:
    """The rows of `jobs` (each returns one parent's rows) run on `pool`, as lists in job
    order (see the module docstring)."""
    queued = iter(jobs)
    running: deque[Future[list[Any]]] = deque()

    def top_up() -> None:
        while len(running) <= AHEAD * pool.workers:
            job = next(queued, None)
            if job is None:
                return
            running.append(pool.submit(job))

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


def ordered_rows(jobs: Iterable[Job], client: Any, workers: int, name: str) -> Iterator[list[Any]]:
    """:func:`in_order` on the session's pool of dlt's `client` (or one of `workers` threads
    of its own, closed at the end)."""
    pool, own = pool_of(client, workers, name)
    try:
        yield from in_order(jobs, pool)
    finally:
        if own:
            pool.close()


def _succeeded(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None

"""Progress of a load: in the run's log (dlt's `LogCollector`), and for an in-process observer.

A run always logs dlt's counters to the Dagster run log every few seconds. A process that
materializes in-process (`restsync run`) can also watch the load live: it installs a
`ProgressObserver` with `observing(...)` around `materialize`, and each load of that process
(same thread or context) reports the rows extracted so far (with the requests sent), a wait
for another run's lock, and each asset it materialized. Without an observer nothing but the
log happens. `LockWaits` times the waits for the load's locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from dlt.common.runtime.collector import LogCollector

from restsync_assets.specs.model import SourceSpec


class ProgressObserver(Protocol):
    def extracted(
        self, spec: str, resource: str, rows: int, requests: int = 0, share: float | None = None
    ) -> None:
        """`rows` of `resource` extracted so far in the current load, in `requests` requests;
        `share`: the part done (0..1) where the pages announce a total, else None."""

    def waiting(self, spec: str, message: str) -> None:
        """The load waits for another run's lock (`message` says which)."""

    def materialized(self, spec: str, resource: str, metadata: Mapping[str, Any]) -> None:
        """`resource` was materialized; `metadata` holds its `dagster/row_count`."""


_OBSERVER: ContextVar[ProgressObserver | None] = ContextVar("restsync_progress", default=None)


@contextmanager
def observing(observer: ProgressObserver) -> Iterator[None]:
    """Report the loads run inside this block (in this thread or context) to `observer`."""
    token = _OBSERVER.set(observer)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


class RunCollector(LogCollector):
    """dlt's `LogCollector`, which also runs the checks given to `guard` when dlt's load step
    starts (`"load"`: before any table is touched), after each load job completed
    (`"commit"`: before the package's `_dlt_loads` row makes the load complete) and when the
    load step ended well (`"loaded"`: after that row was committed). A check raises to stop
    the load there (at `"loaded"`: to fail the run, the load stays committed)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(dump_system_stats=False, **kwargs)
        self.checks: list[Callable[[str], None]] = []

    def guard(self, check: Callable[[str], None]) -> None:
        """Run `check(stage)` before the load, before its commit and after it (see the class)."""
        self.checks.append(check)

    def _start(self, step: str) -> None:
        super()._start(step)
        if step.startswith("Load"):
            self._check("load")

    def update(self, name: str, inc: int = 1, *args: Any, **kwargs: Any) -> None:
        super().update(name, inc, *args, **kwargs)
        if name == "Jobs" and inc > 0 and kwargs.get("label") is None:
            self._check("commit")

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        loading = str(getattr(self, "step", "")).startswith("Load")
        super().__exit__(exc_type, exc_val, exc_tb)
        if loading and exc_type is None:
            self._check("loaded")

    def _check(self, stage: str) -> None:
        for check in self.checks:
            check(stage)


def run_collector(
    spec: SourceSpec, logger: Any, log_period: float, counts: Any = None
) -> RunCollector:
    """dlt's collector for a load of `spec`: logs to the run log, and tells the observer (with
    the requests `counts` holds, a `RequestCounts`)."""
    observer = _OBSERVER.get()
    if observer is None:
        return RunCollector(log_period=log_period, logger=logger)
    return _ObservedCollector(spec.name, observer, counts, log_period=log_period, logger=logger)


class LockWaits:
    """The seconds a load waited for its locks: `waiting` is the locks' `on_wait` (it logs the
    message and tells the observer), `acquired` is called once each lock is held."""

    def __init__(
        self,
        spec: SourceSpec,
        log: Callable[[str], None],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.spec = spec.name
        self.log = log
        self.clock = clock
        self.seconds = 0.0
        self._since: float | None = None

    def waiting(self, message: str) -> None:
        self._since = self.clock()
        self.log(message)
        observer = _OBSERVER.get()
        if observer is not None:
            observer.waiting(self.spec, message)

    def acquired(self) -> None:
        if self._since is not None:
            self.seconds += self.clock() - self._since
            self._since = None


def notify_materialized(spec: SourceSpec, resource: str | None, metadata: Mapping) -> None:
    observer = _OBSERVER.get()
    if observer is not None and resource is not None:
        observer.materialized(spec.name, resource, metadata)


class _ObservedCollector(RunCollector):
    def __init__(self, spec: str, observer: ProgressObserver, counts: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.observer = observer
        self.counts = counts

    def update(self, name: str, inc: int = 1, *args: Any, **kwargs: Any) -> None:
        super().update(name, inc, *args, **kwargs)
        step = getattr(self, "step", "") or ""
        if step.startswith("Extract") and not name.startswith(("Resources", "_dlt")):
            requests = self.counts.requests(name) if self.counts is not None else 0
            share = _share(self.counts, name, self.counters[name], requests)
            self.observer.extracted(self.spec, name, self.counters[name], requests, share)


def _share(counts: Any, resource: str, rows: int, requests: int) -> float | None:
    """The part of `resource` done: rows (or pages) so far of the total its pages announce."""
    total = counts.total(resource) if counts is not None else None
    if total is None or total[1] <= 0:
        return None
    unit, number = total
    return min(1.0, (rows if unit == "rows" else requests) / number)

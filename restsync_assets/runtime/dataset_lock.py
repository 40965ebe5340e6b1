"""A lock where runs on different machines meet: a PostgreSQL advisory lock per dataset.

The `fcntl` locks of `restsync_assets.runtime.locks` only see one machine. Two runs of one spec on two
machines (Celery workers, Kubernetes pods, two `dagster-daemon`s) meet in the warehouse, so a
load into PostgreSQL also holds `pg_advisory_lock(<hash of the dataset name>)` on a connection
of its own, from restoring dlt's state to committing the load. The server drops the lock when
that connection ends, so a killed run never leaves it behind.

That connection is idle while the run extracts, and PostgreSQL (`idle_session_timeout`), a
pooler or a firewall may close it: the lock would be gone without a word, and a run on another
machine could load the same rows. So a thread keeps it busy (`SELECT 1` every
`KEEPALIVE_SECONDS`), and the run verifies in `pg_locks` that it still holds the lock before
dlt loads and before the load commits (`HeldLock.verify`, run by the load's collector): a run
that lost it stops there with one line (`LockLost`). Once more after the commit: a lock lost
between the last check and dlt's `INSERT` into `_dlt_loads` fails the run with one line (the
load stays committed; docs/resilience.md says why it is not undone). A failed unlock after
the load is only a warning: the server drops the lock with its connection.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dlt.pipeline.pipeline import Pipeline

from restsync_assets.errors import RestsyncError

#: dlt destination types whose server takes advisory locks.
LOCKING_DESTINATIONS = ("dlt.destinations.postgres",)


def supports_dataset_lock(pipeline: Pipeline) -> bool:
    return pipeline.destination.destination_type in LOCKING_DESTINATIONS


def lock_key(dataset: str) -> int:
    """The advisory lock id of `dataset`: the first 8 bytes of its SHA-256, as a signed bigint."""
    digest = hashlib.sha256(f"restsync:{dataset}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


#: How often the lock's connection says `SELECT 1` while the run extracts, so that PostgreSQL's
#: `idle_session_timeout`, a pooler or a firewall never sees it idle for longer.
KEEPALIVE_SECONDS = 10.0


class LockLost(RestsyncError):
    """The run no longer holds its dataset's lock: it stops before loading or committing."""

    kind = "warehouse"


class HeldLock:
    """The advisory lock of one dataset, held on its own connection, kept alive by a thread
    (`KEEPALIVE_SECONDS`) and verified (`verify`) in `pg_locks` before the load and its commit."""

    def __init__(self, client: Any, key: int, dataset: str, destination: str) -> None:
        self.client, self.key, self.dataset, self.destination = client, key, dataset, destination
        self.lost: str | None = None  # why the connection failed, once it did
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep_alive, name=f"restsync-lock-{dataset}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _keep_alive(self) -> None:
        while not self._stop.wait(KEEPALIVE_SECONDS):
            if not self._query("SELECT 1"):
                return

    def _query(self, sql: str, *args: object) -> list | None:
        """Rows of `sql` on the lock's connection; None (and `lost` says why) if it failed."""
        with self._mutex:
            if self.lost is not None:
                return None
            try:
                return self.client.execute_sql(sql, *args) or []
            except Exception as error:  # the connection is gone, and the lock with it
                self.lost = _first_line(error) or type(error).__name__
                return None

    def verify(self, stage: str = "load") -> None:
        """Raise `LockLost` unless this connection still holds the lock in `pg_locks`. At
        `stage` `"loaded"` (after dlt committed the load's `_dlt_loads` row) a pass proves the
        lock was held through the commit: a session lock is only lost with its connection."""
        high, low = (self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF
        rows = self._query(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND classid::bigint = %s AND objid::bigint = %s"
            " AND objsubid = 1",
            high,
            low,
        )
        if rows is not None and rows and rows[0][0]:
            return
        why = self.lost or "no longer in pg_locks"
        where = f"lost the lock on dataset {self.dataset} in {self.destination} ({why})"
        if stage == "loaded":
            raise LockLost(
                f"{where} while the load committed: it is committed, but another run may have"
                " loaded the same rows meanwhile; run `restsync check`, and reload with"
                " --full-refresh if an append table holds rows twice"
            )
        done = (
            "nothing was loaded"
            if stage == "load"
            else "the load was not committed (the next run removes what it wrote)"
        )
        raise LockLost(f"{where}: {done}; run again")

    def release(self, on_warning: Callable[[str], None]) -> None:
        """Stop the keepalive and unlock; a failure only warns (the server drops the lock with
        the connection, and a committed load stays committed)."""
        self._stop.set()
        self._thread.join()
        if self._query("SELECT pg_advisory_unlock(%s)", self.key) is None:
            on_warning(
                f"could not release the lock on dataset {self.dataset} in {self.destination}"
                f" ({self.lost}); PostgreSQL released it when the connection closed"
            )


class NoLock:
    """The lock of a destination without advisory locks: nothing to verify."""

    def verify(self, stage: str = "load") -> None:
        return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else ""


@contextmanager
def dataset_lock(
    pipeline: Pipeline,
    on_wait: Callable[[str], None] = lambda _msg: None,
    on_warning: Callable[[str], None] = lambda _msg: None,
) -> Iterator[HeldLock]:
    """Hold the advisory lock of `pipeline`'s dataset in its destination for the block.

    `on_wait` is called once when another session holds it; then this one waits its turn.
    The lock's connection is kept alive while the block runs; `HeldLock.verify` says whether
    it still holds the lock; a failed unlock calls `on_warning` instead of raising.
    """
    key = lock_key(pipeline.dataset_name)
    with pipeline.sql_client() as client:
        if not _scalar(client, "SELECT pg_try_advisory_lock(%s)", key):
            on_wait(
                f"waiting for another restsync run to release the lock on dataset "
                f"'{pipeline.dataset_name}' in {pipeline.destination.destination_name}"
            )
            _scalar(client, "SELECT pg_advisory_lock(%s)", key)
        held = HeldLock(client, key, pipeline.dataset_name, pipeline.destination.destination_name)
        held.start()
        try:
            yield held
        finally:
            held.release(on_warning)


def _scalar(client, sql: str, *args: object) -> object:
    rows = client.execute_sql(sql, *args)
    return rows[0][0] if rows else None


@contextmanager
def load_turn(
    pipeline: Pipeline,
    on_wait: Callable[[str], None],
    on_warning: Callable[[str], None] = lambda _msg: None,
) -> Iterator[HeldLock | NoLock]:
    """A load's turn at its dataset: with a destination that takes advisory locks, hold the
    dataset's lock and start from the destination's state, not this machine's.

    Another machine may have loaded since this one last did, so the local working state
    (cursor, schemas, unfinished packages) may be older than the destination's: it is dropped,
    and dlt restores the state of the last completed load before it extracts. Other
    destinations keep dlt's local state (one machine per spec). Yields the lock, to verify
    before loading and committing.
    """
    if not supports_dataset_lock(pipeline):
        yield NoLock()
        return
    with dataset_lock(pipeline, on_wait, on_warning) as held:
        pipeline.drop()
        pipeline.activate()
        yield held

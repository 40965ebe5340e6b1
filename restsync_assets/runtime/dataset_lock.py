"""A lock where runs on different machines meet: a PostgreSQL advisory lock per dataset.

The `fcntl` locks of `restsync_assets.runtime.locks` only see one machine. Two runs of one spec on two
machines (Celery workers, Kubernetes pods, two `dagster-daemon`s) meet in the warehouse, so a
load into PostgreSQL also holds `pg_advisory_lock(<hash of the dataset name>)` on a connection
of its own, from restoring dlt's state to committing the load. The server drops the lock when
that connection ends, so a killed run never leaves it behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dlt.pipeline.pipeline import Pipeline

#: dlt destination types whose server takes advisory locks.
LOCKING_DESTINATIONS = ("dlt.destinations.postgres",)


def supports_dataset_lock(pipeline: Pipeline) -> bool:
    return pipeline.destination.destination_type in LOCKING_DESTINATIONS


def lock_key(dataset: str) -> int:
    """The advisory lock id of `dataset`: the first 8 bytes of its SHA-256, as a signed bigint."""
    digest = hashlib.sha256(f"restsync:{dataset}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def dataset_lock(
    pipeline: Pipeline, on_wait: Callable[[str], None] = lambda _msg: None
) -> Iterator[None]:
    """Hold the advisory lock of `pipeline`'s dataset in its destination for the block.

    `on_wait` is called once when another session holds it; then this one waits its turn.
    """
    key = lock_key(pipeline.dataset_name)
    with pipeline.sql_client() as client:
        if not _scalar(client, "SELECT pg_try_advisory_lock(%s)", key):
            on_wait(
                f"waiting for another restsync run to release the lock on dataset "
                f"'{pipeline.dataset_name}' in {pipeline.destination.destination_name}"
            )
            _scalar(client, "SELECT pg_advisory_lock(%s)", key)
        try:
            yield
        finally:
            _scalar(client, "SELECT pg_advisory_unlock(%s)", key)


def _scalar(client, sql: str, *args: object) -> object:
    rows = client.execute_sql(sql, *args)
    return rows[0][0] if rows else None


@contextmanager
def load_turn(pipeline: Pipeline, on_wait: Callable[[str], None]) -> Iterator[None]:
    """A load's turn at its dataset: with a destination that takes advisory locks, hold the
    dataset's lock and start from the destination's state, not this machine's.

    Another machine may have loaded since this one last did, so the local working state
    (cursor, schemas, unfinished packages) may be older than the destination's: it is dropped,
    and dlt restores the state of the last completed load before it extracts. Other
    destinations keep dlt's local state (one machine per spec).
    """
    if not supports_dataset_lock(pipeline):
        yield
        return
    with dataset_lock(pipeline, on_wait):
        pipeline.drop()
        pipeline.activate()
        yield

"""Cross-process locks so two runs never write the same DuckDB file or dlt state at once.

DuckDB allows one writer process per file, and no reader while another process writes; dlt's
pipeline working folder is not safe to share. Every restsync load holds an exclusive `fcntl`
lock on `<warehouse>.lock` (or on the pipeline folder for other destinations) for its whole
dlt run, and every reader of the DuckDB file (the asset checks) holds the same lock while its
connection is open; a second run waits, logging that it does, instead of failing with
"Could not set lock on file" or corrupting state.
The OS drops the lock when a process dies, even on `kill -9`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from restsync_assets import settings
from restsync_assets.specs.model import SourceSpec


def lock_path(spec: SourceSpec) -> Path:
    """One lock per DuckDB file (one writer at a time), else one per spec's dlt pipeline."""
    if settings.destination_name() == "duckdb":
        return duckdb_lock_path(settings.duckdb_path())
    from restsync_assets.runtime.destination import pipeline_name

    return settings.pipelines_dir() / f"{pipeline_name(spec)}.lock"


def duckdb_lock_path(db: Path) -> Path:
    """The lock every reader and writer of the DuckDB file `db` holds: `<db>.lock`."""
    return db.with_name(db.name + ".lock")


@contextmanager
def exclusive(path: Path, on_wait: Callable[[str], None] = lambda _msg: None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed); call `on_wait` if it is busy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait(f"waiting for another restsync run to release {path}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

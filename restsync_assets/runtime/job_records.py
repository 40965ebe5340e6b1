"""Where an async job's id is kept from the moment it is created until its rows are loaded.

A run killed while a job runs (polling, downloading, normalizing, loading) must find the
job again instead of creating a second one. dlt's state only commits with a load, so the id
goes first into a record, durable as soon as the API answers the create request (it survives
kill -9): `JobRecords` is what every store of records offers. This module's store is a small
file per job under the pipelines folder (`FileJobRecords`, written atomically: `os.replace`
after `fsync`), for a warehouse only one machine loads into (DuckDB); on PostgreSQL, where
runs on several machines meet, the records are a table in the spec's dataset
(`job_records_table`), and `job_record_stores` picks the store.

Once every row of the job has been extracted, the resource's dlt state marks the job done
(`mark_done`); that state commits in the same load as the rows (dlt writes it into the load
package, and reads back only the state of completed loads). A record whose job the state of
the last completed load marks done is therefore cleared already, logically, by the commit of
its data: the store deletes it (`settled`, `sweep`) when it meets it, right after a load
(`job_record_stores.clear_loaded`) or at the start of a later run. A run on PostgreSQL starts
from the warehouse's state, so a package dropped before it loaded leaves the job unmarked and
its record in place: the job is polled (and downloaded) again, never created again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: folder of the records (and the downloads' temporary files) under the pipelines folder
FOLDER = "restsync_async_jobs"
#: the key of the resource state holding `{job key: job id}` of jobs whose rows were extracted
STATE_KEY = "async_jobs_done"


def job_key(resource: str, scope: dict[str, Any]) -> str:
    """A short stable key of one job: the resource and its window, parent or cursor start."""
    text = json.dumps({"resource": resource, **scope}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def mark_done(state: MutableMapping[str, Any], key: str, job_id: str) -> None:
    """Note in the resource's dlt state that job `key`'s rows were all extracted."""
    state.setdefault(STATE_KEY, {})[key] = job_id


def loaded_jobs(state: Mapping[str, Any]) -> dict[str, str]:
    """`{job key: job id}` of the jobs a resource state marks done (a copy: a run takes it
    before it marks any job of its own, whose rows are not loaded yet)."""
    return dict(state.get(STATE_KEY) or {})


class JobRecords:
    """The job records of one resource of one spec: `read`, `write`, `clear`, `keys` are the
    store's; `settled` and `sweep` clear the records whose rows were loaded."""

    @property
    def where(self) -> str:
        """Where the records are, for log lines."""
        raise NotImplementedError

    def read(self, key: str) -> dict[str, Any] | None:
        """The record of job `key` (`job_id`, `scope`, `created_at`), or None."""
        raise NotImplementedError

    def write(self, key: str, job_id: str, scope: dict[str, Any], created_at: float) -> None:
        """Record job `key` durably (it survives kill -9 right after)."""
        raise NotImplementedError

    def clear(self, key: str) -> None:
        raise NotImplementedError

    def keys(self) -> Iterable[str]:
        """The keys of every record of the resource."""
        raise NotImplementedError

    def settled(self, key: str, loaded: Mapping[str, str]) -> dict[str, Any] | None:
        """The record of a job still to finish: None when there is none, or when `loaded`
        (`loaded_jobs` of the last completed load) holds its job (the record is then cleared)."""
        record = self.read(key)
        if record is None:
            return None
        if loaded.get(key) == record["job_id"]:
            self.clear(key)
            return None
        return record

    def sweep(self, loaded: Mapping[str, str]) -> None:
        """Clear every record whose job `loaded` holds (a finished window's record is cleared
        by the next run of the resource, whatever its window)."""
        for key in [k for k in self.keys() if k in loaded]:
            self.settled(key, loaded)


@dataclass(frozen=True)
class FileJobRecords(JobRecords):
    """The job records of one resource of one spec, in `root/<source>/<resource>/`."""

    root: Path
    source: str
    resource: str

    @property
    def folder(self) -> Path:
        return self.root / self.source / self.resource

    @property
    def where(self) -> str:
        return str(self.folder)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def read(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text())
        except FileNotFoundError:
            return None
        except ValueError:  # not written by `write` (which is atomic): treat as missing
            return None

    def write(self, key: str, job_id: str, scope: dict[str, Any], created_at: float) -> None:
        """Record job `key` atomically and durably (it survives kill -9 right after)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self._path(key)
        temporary = final.with_suffix(f".{os.getpid()}.tmp")
        body = json.dumps({"job_id": job_id, "scope": scope, "created_at": created_at}, default=str)
        with open(temporary, "w") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def clear(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        return [p.stem for p in self.folder.glob("*.json")] if self.folder.is_dir() else []

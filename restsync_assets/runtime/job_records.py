"""Where an async job's id is kept from the moment it is created until its rows are loaded.

A run killed while a job runs (polling, downloading, normalizing, loading) must find the
job again instead of creating a second one. dlt's state only commits with a load, so the id
goes first into a small file under the pipelines folder, written atomically (`os.replace`
after `fsync`) as soon as the API answers the create request: it survives kill -9.

Once every row of the job has been extracted, the resource's dlt state marks the job done
(`mark_done`); that state commits in the same load as the rows (dlt writes it into the load
package). A later run that finds a file whose job its state marks done knows the rows were
loaded and clears the file (`settled`): the record ends with the commit of its data. A run on
PostgreSQL starts from the warehouse's state, so a package dropped before it loaded leaves
the job unmarked and its file in place: the job is polled (and downloaded) again, never
created again.

The files are per machine: runs of one spec on several machines each keep their own.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import MutableMapping
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


@dataclass(frozen=True)
class JobRecords:
    """The job records of one resource of one spec, in `root/<source>/<resource>/`."""

    root: Path
    source: str
    resource: str

    @property
    def folder(self) -> Path:
        return self.root / self.source / self.resource

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def read(self, key: str) -> dict[str, Any] | None:
        """The record of job `key` (`job_id`, `scope`, `created_at`), or None."""
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

    def settled(self, key: str, state: MutableMapping[str, Any]) -> dict[str, Any] | None:
        """The record of a job still to finish: None when there is none, or when the resource
        state says its rows were loaded (the file is then cleared)."""
        record = self.read(key)
        if record is None:
            return None
        if state.get(STATE_KEY, {}).get(key) == record["job_id"]:
            self.clear(key)
            return None
        return record

    def sweep(self, state: MutableMapping[str, Any]) -> None:
        """Clear every record whose job the resource state marks loaded (a finished window's
        record is cleared by the next run of the resource, whatever its window)."""
        done = state.get(STATE_KEY, {})
        for path in self.folder.glob("*.json") if self.folder.is_dir() else ():
            if path.stem in done:
                self.settled(path.stem, state)


def mark_done(state: MutableMapping[str, Any], key: str, job_id: str) -> None:
    """Note in the resource's dlt state that job `key`'s rows were all extracted."""
    state.setdefault(STATE_KEY, {})[key] = job_id

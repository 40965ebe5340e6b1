"""Async job records in the warehouse: the table `_restsync_async_jobs` of the spec's dataset.

On PostgreSQL, runs of one spec may start on several machines (multiprocess, Celery,
Kubernetes), each with a pipelines folder of its own, so a record kept in a file would be
seen by one machine only: a run killed on machine A, then a run on machine B, would create
the job a second time. So there the records are rows of one small table in the dataset the
spec loads into, which every machine reads:

    resource, job_key (primary key), job_id, scope (the window, parent or cursor start, JSON),
    created_at

A record is written in its own committed transaction as soon as the API answers the create
request, before the job is polled. Jobs run while the run holds the dataset's advisory lock
(`dataset_lock.load_turn`, from restoring dlt's state to committing the load), so no two runs
read and write one job's record at once. Clearing follows `job_records.JobRecords`: the
dlt state the load commits with the rows marks the job done, and the row is deleted after.

Each call opens a connection of its own through the spec's dlt pipeline (dlt's credentials,
the pipeline's dataset); the dataset (a schema) and the table are created by the first write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from restsync_assets.runtime.job_records import JobRecords

if TYPE_CHECKING:
    from dlt.pipeline.pipeline import Pipeline

#: the table of the records in the spec's dataset
TABLE = "_restsync_async_jobs"

_CREATE = """CREATE TABLE IF NOT EXISTS {table} (
    resource text NOT NULL,
    job_key text NOT NULL,
    job_id text NOT NULL,
    scope jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (resource, job_key)
)"""


class TableJobRecords(JobRecords):
    """The job records of one resource, as rows of `TABLE` in `pipeline`'s dataset."""

    def __init__(self, pipeline: Pipeline, resource: str) -> None:
        self.pipeline = pipeline
        self.resource = resource

    @property
    def where(self) -> str:
        return f"{self.pipeline.dataset_name}.{TABLE}"

    @contextmanager
    def _sql(self, create: bool = False) -> Iterator[Any]:
        """A sql client of the dataset, or None when the table does not exist (and `create`
        is false)."""
        with self.pipeline.sql_client() as sql:
            if create:
                if not sql.has_dataset():
                    sql.create_dataset()
                sql.execute_sql(_CREATE.format(table=sql.make_qualified_table_name(TABLE)))
            elif not _exists(sql):
                yield None
                return
            yield sql

    def read(self, key: str) -> dict[str, Any] | None:
        with self._sql() as sql:
            if sql is None:
                return None
            rows = sql.execute_sql(
                f"SELECT job_id, scope::text, extract(epoch from created_at)"
                f" FROM {sql.make_qualified_table_name(TABLE)}"
                " WHERE resource = %s AND job_key = %s",
                self.resource,
                key,
            )
        if not rows:
            return None
        job_id, scope, created_at = rows[0]
        return {"job_id": job_id, "scope": json.loads(scope), "created_at": float(created_at)}

    def write(self, key: str, job_id: str, scope: dict[str, Any], created_at: float) -> None:
        """Insert (or replace) the record of job `key`, committed when this returns."""
        with self._sql(create=True) as sql:
            sql.execute_sql(
                f"INSERT INTO {sql.make_qualified_table_name(TABLE)}"
                " (resource, job_key, job_id, scope, created_at)"
                " VALUES (%s, %s, %s, %s::jsonb, to_timestamp(%s))"
                " ON CONFLICT (resource, job_key) DO UPDATE SET job_id = EXCLUDED.job_id,"
                " scope = EXCLUDED.scope, created_at = EXCLUDED.created_at",
                self.resource,
                key,
                job_id,
                json.dumps(scope, default=str),
                created_at,
            )

    def clear(self, key: str) -> None:
        with self._sql() as sql:
            if sql is not None:
                sql.execute_sql(
                    f"DELETE FROM {sql.make_qualified_table_name(TABLE)}"
                    " WHERE resource = %s AND job_key = %s",
                    self.resource,
                    key,
                )

    def keys(self) -> list[str]:
        with self._sql() as sql:
            if sql is None:
                return []
            rows = sql.execute_sql(
                f"SELECT job_key FROM {sql.make_qualified_table_name(TABLE)} WHERE resource = %s",
                self.resource,
            )
        return [row[0] for row in rows or []]


def _exists(sql: Any) -> bool:
    """Whether `TABLE` exists in the client's dataset."""
    rows = sql.execute_sql(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s"
        " AND table_name = %s",
        sql.dataset_name,
        TABLE,
    )
    return bool(rows and rows[0][0])

"""Which store keeps a spec's async job records, and clearing the records of loaded jobs.

Where runs of one spec may start on several machines and meet in the warehouse (PostgreSQL:
the destinations whose datasets `dataset_lock` locks), the records are a table of the spec's
dataset (`job_records_table`), read by a run on any machine. Elsewhere (DuckDB: one machine
loads into its file) they are files under the pipelines folder (`job_records`).

`clear_loaded` runs right after a load committed (`runtime.load`), still under the dataset's
lock: it deletes the records of the jobs the load's dlt state marks done, so no record of a
loaded job outlives its run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restsync_assets import settings
from restsync_assets.runtime.dataset_lock import supports_dataset_lock
from restsync_assets.runtime.job_records import FOLDER, FileJobRecords, JobRecords, loaded_jobs
from restsync_assets.runtime.job_records_table import TableJobRecords

if TYPE_CHECKING:
    from dlt.pipeline.pipeline import Pipeline

    from restsync_assets.specs.model import SourceSpec


def job_records(pipeline: Pipeline | None, source: str, resource: str) -> JobRecords:
    """The records of `resource` of spec `source` loaded by `pipeline` (files without one)."""
    if pipeline is not None and supports_dataset_lock(pipeline):
        return TableJobRecords(pipeline, resource)
    return FileJobRecords(settings.pipelines_dir() / FOLDER, source, resource)


def running_pipeline() -> Pipeline | None:
    """The dlt pipeline running the current extract (None outside of one)."""
    from dlt.common.configuration.container import Container
    from dlt.common.pipeline import PipelineContext

    context = Container()[PipelineContext]
    return context.pipeline() if context.is_active() else None  # type: ignore[return-value]


def clear_loaded(spec: SourceSpec, pipeline: Pipeline) -> None:
    """Delete the records of `spec`'s async jobs whose rows the last load committed."""
    names = {r.name for r in spec.resources if r.async_job is not None}
    if not names:
        return
    for source_state in (pipeline.state.get("sources") or {}).values():
        resources: dict[str, Any] = source_state.get("resources") or {}
        for name in names & set(resources):
            loaded = loaded_jobs(resources[name])
            if loaded:
                job_records(pipeline, spec.name, name).sweep(loaded)

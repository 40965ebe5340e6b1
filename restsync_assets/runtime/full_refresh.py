"""A full refresh: the selected resources' tables and state dropped, then loaded again.

Launched by the run tag `restsync/full_refresh: "true"` (`restsync run --full-refresh` sets
it; in the Dagster UI: Materialize -> "Add tags"). Inside the load's turn at the dataset (its
locks held, unfinished earlier loads settled), dlt's own drop command (`pipeline_drop`, what
`dlt pipeline <name> drop <resource>` runs) drops, for exactly the selected resources:

- their tables with every table below them: nested tables (`<table>__<field>`) and the
  quarantine's `<table>__rejected` (dlt files them all under the resource that wrote them);
- their dlt resource state: dlt's incremental cursor, restsync's per-parent cursors
  (`child_cursors`), the marks of loaded async jobs. Soft-delete marks live in the table
  itself. The record of an async job still running is kept (`job_record_stores`): the
  refresh resumes that job rather than creating a second one at the API.

It commits this as a load of its own (schema and state in the destination), and the run then
loads from `initial_value`. dlt's `pipeline.run(refresh="drop_resources")` is not used: it
drops every resource the source *extracts*, so a child selected alone would drop the parent
it reads to drive it (`DltResourceDict.extracted`). A parent selected without its children
keeps the children's tables and cursors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The run tag that makes a run a full refresh (value "true").
FULL_REFRESH_TAG = "restsync/full_refresh"


def requested(tags: Mapping[str, str]) -> bool:
    """Whether a run with `tags` is a full refresh (`restsync/full_refresh: "true"`)."""
    return str(tags.get(FULL_REFRESH_TAG, "")).strip().lower() in ("true", "1", "yes")


def drop_resources(pipeline: Any, resources: Sequence[str]) -> list[str]:
    """Drop `resources`' tables (nested and `__rejected` ones too) and their dlt resource state
    in the destination, as one committed load; the tables dropped (none on a first load)."""
    from dlt.pipeline.helpers import pipeline_drop

    if pipeline.has_pending_data:  # dagster-dlt drops them before its run as well
        pipeline.drop_pending_packages()
    pipeline.sync_destination()  # the destination's schema and state, not this machine's
    if not pipeline.default_schema_name or not resources:
        return []  # never loaded: nothing to drop
    drop = pipeline_drop(pipeline, resources=[str(name) for name in resources])
    if drop.is_empty:
        return []
    drop()
    return list(drop.info["tables"])

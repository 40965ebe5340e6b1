"""P3 baseline helper: plain dagster-dlt `@dlt_assets` over an already built dlt source.

No `from __future__ import annotations` here: Dagster reads the resource parameter's type
annotation at decoration time and cannot resolve string annotations of a local function.
"""

from typing import Any

import dlt
from dagster import AssetExecutionContext, AssetsDefinition
from dagster_dlt import DagsterDltResource, dlt_assets


def dlt_assets_for(source: Any, name: str, pipelines_dir: str) -> AssetsDefinition:
    """`@dlt_assets` of `source` with its own pipeline, the way dagster-dlt documents it."""
    pipeline = dlt.pipeline(
        pipeline_name=f"eager_{name}",
        destination="duckdb",
        dataset_name=name,
        pipelines_dir=pipelines_dir,
    )

    @dlt_assets(dlt_source=source, dlt_pipeline=pipeline, name=f"{name}_load", group_name=name)
    def _assets(context: AssetExecutionContext, dlt: DagsterDltResource):
        yield from dlt.run(context=context)

    return _assets

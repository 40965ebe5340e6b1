"""SourceSpec -> Dagster assets through dagster-dlt.

One multi-asset per spec (one per partitioning when some resources are partitioned), one
asset per resource (key `[spec, resource]`, group = spec name, kinds `dlt` + destination). Asset specs come straight from the spec model, so loading
definitions builds no dlt source and touches no network; the dlt source is built per run.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    AutomationCondition,
    FreshnessPolicy,
    multi_asset,
)
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from restsync_assets import settings
from restsync_assets.keys import asset_key
from restsync_assets.metadata import definition_metadata
from restsync_assets.partitions import backfill_policy, partitions_definition
from restsync_assets.resources import DLT_RESOURCE_KEY, credentials_key
from restsync_assets.specs.model import AutomationSpec, PartitionsSpec, ResourceSpec, SourceSpec

#: Tag naming the spec: on each load step, and on the runs of a spec's schedules (the run
#: queue's limit per spec, `deploy/dagster.yaml`).
SPEC_TAG = "restsync/spec"


class RestsyncTranslator(DagsterDltTranslator):
    """Maps each dlt resource of a spec to its asset; a child depends on its parent asset.

    dagster-dlt's default points every resource at an external `<source>_<resource>` key;
    restsync instead wires child resources (dlt transformers) to their parent's asset.
    """

    def __init__(self, spec: SourceSpec):
        self.spec = spec

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        return self.spec_for(self.spec.resource(data.resource.name))

    def spec_for(self, resource: ResourceSpec) -> AssetSpec:
        spec = self.spec
        deps = [asset_key(spec, resource.parent)] if resource.parent else []
        metadata: dict[str, Any] = {
            **definition_metadata(spec, resource),
            "restsync/path": resource.endpoint["path"],
        }
        if resource.primary_key_columns:
            metadata["restsync/primary_key"] = ", ".join(resource.primary_key_columns)
        if resource.parent:
            metadata["restsync/parent"] = resource.parent
        if resource.max_lag_seconds:
            metadata["restsync/max_lag_seconds"] = resource.max_lag_seconds
        if resource.rejected_table:  # not an asset of its own: the asset's quarantine
            metadata["restsync/rejected_table"] = resource.rejected_table
        return AssetSpec(
            key=asset_key(spec, resource),
            deps=deps,
            group_name=spec.name,
            kinds={"dlt", settings.destination_name()},
            description=_description(spec, resource),
            metadata=metadata,
            freshness_policy=_freshness_policy(resource),
            automation_condition=automation_condition(resource.automation),
            owners=list(resource.owners),
            tags=resource.tags,
        )


def build_spec_assets(spec: SourceSpec) -> list[AssetsDefinition]:
    """One multi-asset per partitioning of `spec` (usually one): loads any subset of its assets."""
    translator = RestsyncTranslator(spec)
    return [
        _build_group_assets(spec, translator, partitions, resources, index)
        for index, (partitions, resources) in enumerate(spec.load_groups())
    ]


def _build_group_assets(
    spec: SourceSpec,
    translator: RestsyncTranslator,
    partitions: PartitionsSpec | None,
    resources: tuple[ResourceSpec, ...],
    index: int,
) -> AssetsDefinition:
    creds_key = credentials_key(spec.name)
    names = [r.name for r in resources]
    suffix = "" if partitions is None else f"_{partitions.type}"
    if partitions is not None and [p.type for p, _ in spec.load_groups()[:index] if p].count(
        partitions.type
    ):
        suffix += f"_{index}"

    @multi_asset(
        name=f"{spec.name}{suffix}_load",
        specs=[translator.spec_for(r) for r in resources],
        can_subset=True,
        required_resource_keys={DLT_RESOURCE_KEY, creds_key},
        partitions_def=partitions_definition(partitions) if partitions else None,
        backfill_policy=backfill_policy(partitions) if partitions else None,
        pool="restsync_warehouse",
        op_tags={SPEC_TAG: spec.name},
    )
    def _load(context: AssetExecutionContext) -> Iterator[Any]:
        from restsync_assets.runtime.load import load

        yield from load(context, spec, translator, getattr(context.resources, creds_key), names)

    return _load


def _freshness_policy(resource: ResourceSpec) -> FreshnessPolicy | None:
    if not resource.max_lag_seconds:
        return None
    warn = resource.warn_lag_seconds
    return FreshnessPolicy.time_window(
        fail_window=timedelta(seconds=resource.max_lag_seconds),
        warn_window=timedelta(seconds=warn) if warn and warn < resource.max_lag_seconds else None,
    )


def automation_condition(automation: AutomationSpec | None) -> AutomationCondition | None:
    """`automation_condition:` of a resource as Dagster's declarative automation."""
    if automation is None:
        return None
    if automation.kind == "eager":
        return AutomationCondition.eager()
    if automation.kind == "on_missing":
        return AutomationCondition.on_missing()
    return AutomationCondition.on_cron(automation.cron)


def _description(spec: SourceSpec, resource: ResourceSpec) -> str:
    lines = [
        f"`{resource.endpoint.get('method', 'GET')} {resource.endpoint['path']}` from {spec.path.name}"
    ]
    if resource.parent:
        lines.append(f"One request per `{resource.parent}` row.")
    return "\n\n".join(lines)

"""SourceSpec -> Dagster assets through dagster-dlt.

One multi-asset per spec (one per partitioning when some resources are partitioned), one
asset per resource (key `[spec, resource]`, group = spec name, kinds `dlt` + destination). Asset specs come straight from the spec model, so loading
definitions builds no dlt source and touches no network; the dlt source is built per run.
"""

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    AutomationCondition,
    Failure,
    FreshnessPolicy,
    MetadataValue,
    multi_asset,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from restsync_assets import settings
from restsync_assets.catalog import definition_metadata, with_table_metadata
from restsync_assets.dataset_lock import load_turn
from restsync_assets.http.masking import install_log_masking, register_secret
from restsync_assets.locks import duckdb_lock_path, exclusive
from restsync_assets.partitions import backfill_policy, partitions_definition, run_window
from restsync_assets.progress import run_collector
from restsync_assets.specs.model import AutomationSpec, PartitionsSpec, ResourceSpec, SourceSpec

DLT_RESOURCE_KEY = "dlt"
#: Tag naming the spec: on each load step, and on the runs of a spec's schedules (the run
#: queue's limit per spec, `deploy/dagster.yaml`).
SPEC_TAG = "restsync/spec"
#: How often a long load logs its progress (items extracted, rows normalized) to the run log.
PROGRESS_SECONDS = 10.0


def credentials_key(spec: SourceSpec) -> str:
    """Resource key of a spec's `ApiCredentials`."""
    return f"{spec.name}_credentials"


def asset_key(spec: SourceSpec, resource: ResourceSpec | str) -> AssetKey:
    """`[<spec>, <resource>]`, or the key a `dg` component's translation gave the resource."""
    name = resource if isinstance(resource, str) else resource.name
    return AssetKey(list(spec.asset_keys.get(name, (spec.name, name))))


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
    creds_key = credentials_key(spec)
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
        yield from run_spec(context, spec, translator, getattr(context.resources, creds_key), names)

    return _load


def run_spec(
    context: AssetExecutionContext,
    spec: SourceSpec,
    translator: RestsyncTranslator,
    credentials_resource: Any,
    resources: list[str],
) -> Iterator[Any]:
    """Build a fresh dlt source and pipeline, load the selected assets, fail with one clear line."""
    from restsync_assets.sources import build_pipeline, build_source
    from restsync_assets.warehouse import loader_file_format

    dlt_resource: DagsterDltResource = getattr(context.resources, DLT_RESOURCE_KEY)
    credentials = None
    try:
        credentials = credentials_resource.resolve(spec.secret_keys)
        register_secret(*credentials.secrets())  # every mask (errors, logs) now hides them
        install_log_masking()
        window = run_window(context)
        source = build_source(spec, credentials, resources=resources, window=window)
        selected = sorted(k.path[-1] for k in context.selected_asset_keys)
        where = (
            f" for [{window.start:%Y-%m-%d %H:%M}, {window.end:%Y-%m-%d %H:%M})" if window else ""
        )
        # the lock covers creating the pipeline too: dlt's working folder is not safe to share
        with exclusive(_lock_path(spec), on_wait=context.log.info), ExitStack() as turn:
            progress = run_collector(spec, context.log, PROGRESS_SECONDS)
            pipeline = build_pipeline(spec, progress=progress)
            context.log.info(
                f"{spec.name}: loading {', '.join(selected)}{where} into "
                f"{pipeline.destination.destination_name}:{spec.name}"
            )
            turn.enter_context(load_turn(pipeline, on_wait=context.log.info))  # other machines
            events = dlt_resource.run(
                context=context,
                dlt_source=source,
                dlt_pipeline=pipeline,
                dagster_dlt_translator=translator,
                loader_file_format=loader_file_format(pipeline.destination),
            )
            yield from with_table_metadata(context, spec, pipeline, events)
    except Failure:
        raise
    except Exception as error:  # turn deep library tracebacks into one actionable line
        from restsync_assets.failures import explain

        secrets = credentials.secrets() if credentials else []
        message = explain(error, spec.name, secrets)
        raise Failure(
            description=message, metadata={"error": MetadataValue.text(message)}
        ) from None


def _lock_path(spec: SourceSpec) -> Path:
    """One lock per DuckDB file (one writer at a time), else one per spec's dlt pipeline."""
    if settings.destination_name() == "duckdb":
        return duckdb_lock_path(settings.duckdb_path())
    from restsync_assets.sources import pipeline_name

    return settings.pipelines_dir() / f"{pipeline_name(spec)}.lock"


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

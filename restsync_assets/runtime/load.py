"""The run-time entry: one materialization of a spec's selected assets.

credentials -> dlt source -> dlt pipeline (under the warehouse lock, and on PostgreSQL the
dataset's advisory lock, verified before the load and its commit) -> the rows of unfinished
earlier loads removed (`exactly_once`) -> dagster-dlt run -> rows a complete scan missed marked
(`deletes: soft`) -> materializations (with the catalog's table metadata); any failure becomes
one actionable line. Called by the asset body
(`restsync_assets.assets`); nothing here runs when definitions load.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from dagster import AssetExecutionContext, Failure, MetadataValue
from dagster_dlt import DagsterDltResource, DagsterDltTranslator

from restsync_assets import settings
from restsync_assets.keys import resource_name
from restsync_assets.resources import DLT_RESOURCE_KEY
from restsync_assets.runtime.catalog import with_table_metadata
from restsync_assets.runtime.dataset_lock import load_turn
from restsync_assets.runtime.destination import (
    build_pipeline,
    loader_file_format,
    may_load_again_uncapped,
)
from restsync_assets.runtime.exactly_once import remove_unfinished_loads
from restsync_assets.runtime.failures import explain
from restsync_assets.runtime.http.masking import install_log_masking, register_secret
from restsync_assets.runtime.locks import exclusive, lock_path
from restsync_assets.runtime.progress import run_collector
from restsync_assets.runtime.soft_deletes import with_soft_deletes
from restsync_assets.runtime.source import build_source
from restsync_assets.runtime.window import run_window
from restsync_assets.specs.model import SourceSpec

#: How often a long load logs its progress (items extracted, rows normalized) to the run log.
PROGRESS_SECONDS = 10.0


def load(
    context: AssetExecutionContext,
    spec: SourceSpec,
    translator: DagsterDltTranslator,
    credentials_resource: Any,
    resources: list[str],
) -> Iterator[Any]:
    """Build a fresh dlt source and pipeline, load the selected assets, fail with one clear line."""
    dlt_resource: DagsterDltResource = getattr(context.resources, DLT_RESOURCE_KEY)
    credentials = None
    try:
        credentials = credentials_resource.resolve(spec.secret_keys)
        register_secret(*credentials.secrets())  # every mask (errors, logs) now hides them
        install_log_masking()
        window = run_window(context)
        chosen = [r for r in resources if r in _selected(spec, context)]
        source = build_source(spec, credentials, resources, window, chosen)
        selected = sorted(_selected(spec, context))
        where = (
            f" for [{window.start:%Y-%m-%d %H:%M}, {window.end:%Y-%m-%d %H:%M})" if window else ""
        )
        # the lock covers creating the pipeline too: dlt's working folder is not safe to share
        with exclusive(lock_path(spec), on_wait=context.log.info), ExitStack() as turn:
            progress = run_collector(spec, context.log, PROGRESS_SECONDS)
            pipeline = build_pipeline(spec, progress=progress)
            context.log.info(
                f"{spec.name}: loading {', '.join(selected)}{where} into "
                f"{pipeline.destination.destination_name}:{spec.name}"
            )
            lock = turn.enter_context(
                load_turn(pipeline, on_wait=context.log.info, on_warning=context.log.warning)
            )
            progress.guard(lock.verify)  # a lost PostgreSQL lock stops the run before it loads
            _settle_unfinished_loads(context, spec, pipeline)
            yielded = False
            try:
                for event in _materializations(
                    context, spec, dlt_resource, source, pipeline, translator
                ):
                    yielded = True
                    yield event
            except Exception as error:
                if yielded or not may_load_again_uncapped(error, pipeline):
                    raise
                # nothing yielded; what the failed package committed is removed first, and
                # dagster-dlt drops the package before it runs again
                context.log.warning(
                    f"{spec.name}: DuckDB ran out of memory under restsync's default load cap"
                    f" ({settings.default_duckdb_memory_limit()}): loading again without it"
                    " (RESTSYNC_DUCKDB_MEMORY_LIMIT sets a cap of your own)"
                )
                source = build_source(spec, credentials, resources, window, chosen)
                pipeline = build_pipeline(spec, progress=progress, memory_cap=False)
                _settle_unfinished_loads(context, spec, pipeline)
                yield from _materializations(
                    context, spec, dlt_resource, source, pipeline, translator
                )
    except Failure:
        raise
    except Exception as error:  # turn deep library tracebacks into one actionable line
        secrets = credentials.secrets() if credentials else []
        message = explain(error, spec.name, secrets)
        raise Failure(
            description=message, metadata={"error": MetadataValue.text(message)}
        ) from None


def _selected(spec: SourceSpec, context: AssetExecutionContext) -> set[str]:
    """The resources of `spec` whose assets this run materializes."""
    names = (resource_name(spec, key) for key in context.selected_asset_keys)
    return {name for name in names if name is not None}


def _settle_unfinished_loads(
    context: AssetExecutionContext, spec: SourceSpec, pipeline: Any
) -> None:
    """Remove what an earlier, unfinished load committed (`exactly_once`), saying so."""
    deleted = remove_unfinished_loads(pipeline)
    if deleted:
        tables = ", ".join(f"{name} ({count})" for name, count in deleted.items())
        context.log.warning(
            f"{spec.name}: removed the rows an unfinished earlier load left in {tables};"
            " this run loads them again"
        )


def _materializations(
    context: AssetExecutionContext,
    spec: SourceSpec,
    dlt_resource: DagsterDltResource,
    source: Any,
    pipeline: Any,
    translator: DagsterDltTranslator,
) -> Iterator[Any]:
    """dagster-dlt's run of `source` through `pipeline`, then soft deletes and table metadata."""
    events = dlt_resource.run(
        context=context,
        dlt_source=source,
        dlt_pipeline=pipeline,
        dagster_dlt_translator=translator,
        loader_file_format=loader_file_format(pipeline.destination),
    )
    events = with_soft_deletes(context, spec, pipeline, events)  # `deletes: soft`
    yield from with_table_metadata(context, spec, pipeline, events)

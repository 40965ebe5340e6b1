"""The run-time entry: one materialization of a spec's selected assets.

credentials -> dlt source -> dlt pipeline (under the warehouse lock, and on PostgreSQL the
dataset's advisory lock, verified before the load and its commit) -> the rows of unfinished
earlier loads removed (`exactly_once`) -> the windows of stepped resources but their last, each a
load of its own (`step_windows`) -> dagster-dlt run -> rows a complete scan missed marked
(`deletes: soft`) -> materializations (with the catalog's table metadata and the run's own
figures: `restsync/requests`, `restsync/retries`, `restsync/lock_wait_s`) -> the records of the
async jobs the load committed cleared (`job_record_stores`); any failure becomes one
actionable line. A run tagged `restsync/full_refresh: "true"` first drops the selected
resources' tables and state (`full_refresh`). Called by the asset body
(`restsync_assets.assets`); nothing here runs when definitions load.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue
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
from restsync_assets.runtime.full_refresh import drop_resources
from restsync_assets.runtime.full_refresh import requested as full_refresh_requested
from restsync_assets.runtime.http.masking import install_log_masking, mask_text, register_secret
from restsync_assets.runtime.http.session import RequestCounts
from restsync_assets.runtime.job_record_stores import clear_loaded
from restsync_assets.runtime.locks import exclusive, lock_path
from restsync_assets.runtime.progress import LockWaits, run_collector
from restsync_assets.runtime.request_values import run_time
from restsync_assets.runtime.soft_deletes import with_soft_deletes
from restsync_assets.runtime.source import build_source, finish
from restsync_assets.runtime.step_windows import StepRun, StepWindow
from restsync_assets.runtime.window import run_window
from restsync_assets.specs.model import SourceSpec

#: How often a long load logs its progress (items extracted, rows normalized) to the run log.
PROGRESS_SECONDS = 10.0
#: Materialization metadata: HTTP requests sent for the resource in this run (retries included)
REQUESTS = "restsync/requests"
#: Materialization metadata: the resource's requests sent again after a failed attempt
RETRIES = "restsync/retries"
#: Materialization metadata: seconds the run waited for other runs' locks on the warehouse
LOCK_WAIT_S = "restsync/lock_wait_s"
#: Materialization metadata of a stepped resource: the windows this run loaded
WINDOWS = "restsync/windows"
#: dagster-dlt's materialization metadata: rows normalized (of all windows, when stepped)
ROWS_LOADED = "rows_loaded"


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
    source = None
    try:
        credentials = credentials_resource.resolve(spec.secret_keys)
        register_secret(*credentials.secrets())  # every mask (errors, logs) now hides them
        install_log_masking()
        window = run_window(context)
        chosen = [r for r in resources if r in _selected(spec, context)]
        counts = RequestCounts()
        now = run_time()
        steps = StepRun(spec, chosen, now)

        def build(
            names: list[str] = resources, windows: dict[str, StepWindow | None] | None = None
        ) -> Any:
            return build_source(spec, credentials, names, window, chosen, counts, windows, now)

        source = build()
        selected = sorted(_selected(spec, context))
        where = (
            f" for [{window.start:%Y-%m-%d %H:%M}, {window.end:%Y-%m-%d %H:%M})" if window else ""
        )
        waits = LockWaits(spec, context.log.info)
        # the lock covers creating the pipeline too: dlt's working folder is not safe to share
        with exclusive(lock_path(spec), on_wait=waits.waiting), ExitStack() as turn:
            waits.acquired()
            progress = run_collector(spec, context.log, PROGRESS_SECONDS, counts)
            pipeline = build_pipeline(spec, progress=progress)
            context.log.info(
                f"{spec.name}: loading {', '.join(selected)}{where} into "
                f"{pipeline.destination.destination_name}:{spec.name}"
            )
            lock = turn.enter_context(
                load_turn(pipeline, on_wait=waits.waiting, on_warning=context.log.warning)
            )
            waits.acquired()
            progress.guard(lock.verify)  # a lost PostgreSQL lock stops the run before it loads
            _settle_unfinished_loads(context, spec, pipeline)
            if full_refresh_requested(context.run.tags):
                _full_refresh(context, spec, pipeline, selected)
            figures = RunFigures(counts, waits, steps)
            if steps:
                finish(source)  # built before the windows were known
                source = None
                _load_windows(context, spec, pipeline, steps, build)
                source = build(windows=steps.last())
            yielded = False
            try:
                for event in _materializations(
                    context, spec, dlt_resource, source, pipeline, translator, figures
                ):
                    yielded = True
                    yield event
                _tell_finished(context, source)
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
                source = build(windows=steps.last() if steps else None)
                pipeline = build_pipeline(spec, progress=progress, memory_cap=False)
                _settle_unfinished_loads(context, spec, pipeline)
                yield from _materializations(
                    context, spec, dlt_resource, source, pipeline, translator, figures
                )
                _tell_finished(context, source)
    except Failure:
        raise
    except Exception as error:  # turn deep library tracebacks into one actionable line
        if source is not None:
            finish(source)  # no page fetched ahead keeps being asked for
        secrets = credentials.secrets() if credentials else []
        message = explain(error, spec.name, secrets)
        raise Failure(
            description=message, metadata={"error": MetadataValue.text(message)}
        ) from None


def _tell_finished(context: AssetExecutionContext, source: Any) -> None:
    """Close the run's session; with `client.concurrency: auto`, log the level it found."""
    note = finish(source)
    if note:
        context.log.info(note)


def _selected(spec: SourceSpec, context: AssetExecutionContext) -> set[str]:
    """The resources of `spec` whose assets this run materializes."""
    names = (resource_name(spec, key) for key in context.selected_asset_keys)
    return {name for name in names if name is not None}


def _load_windows(
    context: AssetExecutionContext,
    spec: SourceSpec,
    pipeline: Any,
    steps: StepRun,
    build: Any,
) -> None:
    """Plan the stepped resources' windows from the state of the last completed load, then
    load each window but the last as a dlt load of its own, committed before the next."""
    if pipeline.config.restore_from_destination:
        pipeline.drop()  # as dagster-dlt does: the state is the destination's
        pipeline.activate()
    pipeline.sync_destination()
    steps.plan(pipeline.state)
    for resource in steps.resources:
        context.log.info(steps.describe(resource.name))
    for name, step_window in steps.early():
        source = build([name], {name: step_window})
        try:
            info = pipeline.run(source, loader_file_format=loader_file_format(pipeline.destination))
            info.raise_on_failed_jobs()
        except Exception:
            context.log.warning(
                f"{spec.name}: {name}: window {step_window.label} failed; the windows before it"
                " are committed and the next run asks from this one"
            )
            raise
        finally:
            finish(source)
        rows = _rows_normalized(pipeline, source, name)
        steps.loaded(name, rows)
        context.log.info(
            f"{spec.name}: {name}: window {step_window.label} loaded and committed ({rows} rows)"
        )


def _rows_normalized(pipeline: Any, source: Any, name: str) -> int:
    """Rows of resource `name`'s table in `pipeline`'s last normalize."""
    table = pipeline.default_schema.naming.normalize_table_identifier(
        str(source.resources[name].table_name)
    )
    return int(pipeline.last_trace.last_normalize_info.row_counts.get(table, 0))


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


def _full_refresh(
    context: AssetExecutionContext, spec: SourceSpec, pipeline: Any, selected: list[str]
) -> None:
    """Drop the selected resources' tables and state (`full_refresh`), saying which."""
    context.log.info(
        f"{spec.name}: full refresh of {', '.join(selected)}: dropping their tables and state"
    )
    dropped = drop_resources(pipeline, selected)
    tables = ", ".join(dropped) if dropped else "none (nothing loaded yet)"
    context.log.info(f"{spec.name}: dropped tables {tables}; loading again from initial_value")


class RunFigures:
    """What a load did besides its rows: requests and retries per resource, lock waits."""

    def __init__(self, counts: RequestCounts, waits: LockWaits, steps: StepRun):
        self.counts = counts
        self.waits = waits
        self.steps = steps

    def metadata(self, resource: str, loaded: Any = None) -> dict[str, Any]:
        """The figures of `resource`; a stepped one's `rows_loaded` counts every window
        (`loaded`: dagster-dlt's, of the last one) and `restsync/windows` says how many."""
        figures = {
            REQUESTS: MetadataValue.int(self.counts.requests(resource)),
            RETRIES: MetadataValue.int(self.counts.retries(resource)),
            LOCK_WAIT_S: MetadataValue.float(self.waits.seconds),
        }
        last = int(getattr(loaded, "value", loaded) or 0)
        stepped = self.steps.figures(resource, last)
        if stepped is not None:
            figures[ROWS_LOADED] = MetadataValue.int(stepped["rows_loaded"])
            figures[WINDOWS] = MetadataValue.int(stepped["windows"])
        return figures

    def added(self, spec: SourceSpec, events: Iterator[Any]) -> Iterator[Any]:
        """`events`, each materialization with its resource's figures."""
        for event in events:
            name = (
                resource_name(spec, event.asset_key)
                if isinstance(event, MaterializeResult)
                else None
            )
            if name is not None:
                event = MaterializeResult(
                    asset_key=event.asset_key,
                    metadata={
                        **(event.metadata or {}),
                        **self.metadata(str(name), (event.metadata or {}).get(ROWS_LOADED)),
                    },
                    check_results=event.check_results,
                    data_version=event.data_version,
                    tags=event.tags,
                )
            yield event


def _materializations(
    context: AssetExecutionContext,
    spec: SourceSpec,
    dlt_resource: DagsterDltResource,
    source: Any,
    pipeline: Any,
    translator: DagsterDltTranslator,
    figures: RunFigures,
) -> Iterator[Any]:
    """dagster-dlt's run of `source` through `pipeline`, then soft deletes, the run's figures
    and table metadata."""
    events = dlt_resource.run(
        context=context,
        dlt_source=source,
        dlt_pipeline=pipeline,
        dagster_dlt_translator=translator,
        loader_file_format=loader_file_format(pipeline.destination),
    )
    events = with_soft_deletes(context, spec, pipeline, events)  # `deletes: soft`
    events = figures.added(spec, events)
    yield from with_table_metadata(context, spec, pipeline, events)
    _clear_job_records(context, spec, pipeline)


def _clear_job_records(context: AssetExecutionContext, spec: SourceSpec, pipeline: Any) -> None:
    """Delete the records of the async jobs this load committed; a failure only warns (the
    load is committed, and the next run deletes them before it starts a job)."""
    try:
        clear_loaded(spec, pipeline)
    except Exception as error:
        text = str(error).strip()
        first = mask_text(text.splitlines()[0]) if text else type(error).__name__
        context.log.warning(
            f"{spec.name}: could not delete the records of the async jobs just loaded"
            f" ({first}); the next run deletes them"
        )

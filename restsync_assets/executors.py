"""The executor of restsync's runs: in-process, multiprocess or Celery, chosen per run.

One Dagster executor whose run config picks one of Dagster's own executors:

    execution:
      config:
        in_process: {}          # steps one after another in the run's process
        multiprocess: {}        # Dagster's multiprocess executor (max_concurrent, retries, ...)
                                # from restsync's forkserver unless start_method is given
        celery: {broker: ...}   # dagster-celery's executor (`.[deploy]`, server destinations)

The default follows the destination: DuckDB takes one writer at a time, so its runs stay
in process; a server destination (PostgreSQL...) defaults to multiprocess, so steps of
different specs load in parallel processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from dagster import (
    ExecutorDefinition,
    Field,
    InitExecutorContext,
    Selector,
    executor,
    in_process_executor,
    multiple_process_executor_requirements,
    multiprocess_executor,
)

IN_PROCESS = "in_process"
MULTIPROCESS = "multiprocess"
CELERY = "celery"


def executor_modes(destination: str) -> dict[str, ExecutorDefinition]:
    """Dagster's executors a run can pick, by run-config key. `celery` needs dagster-celery and
    a server destination (workers on other machines cannot share a DuckDB file; not importing
    Celery keeps the embedded default's start-up as it was)."""
    modes = {IN_PROCESS: in_process_executor, MULTIPROCESS: multiprocess_executor}
    if destination == "duckdb":
        return modes
    try:
        from dagster_celery import celery_executor
    except ImportError:
        return modes
    modes[CELERY] = celery_executor
    return modes


#: What a multiprocess step needs imported, imported once by the forkserver instead of by every
#: step (module names, not imports here: multiprocessing skips one that is not installed):
#: - Dagster's CLI: multiprocessing re-runs the parent's main script in every child, and a
#:   run's process is the `dagster` command (`dagster api execute_run`, `dagster asset
#:   materialize`); preloading `__main__` instead does not reach the children on Python 3.11;
#: - restsync's run-time modules, dlt's REST source and dagster-dlt;
#: - what opening the run's Dagster instance imports in the step (SQLAlchemy, alembic, the
#:   storages of a default instance, universal_pathlib);
#: - dlt's PostgreSQL destination with its drivers (the `postgres` extra) and pyarrow.parquet.
#: No side effects (no connection, no thread): the job's own module (which loads the specs) is
#: still imported by each step.
FORKSERVER_PRELOAD = [
    "dagster._cli",
    "restsync_assets.assets",
    "restsync_assets.checks",
    "restsync_assets.runtime.load",
    "restsync_assets.runtime.checks",
    "sqlalchemy",
    "alembic",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "upath",
    "dlt.destinations.impl.postgres.postgres",
    "psycopg2",
    "adbc_driver_postgresql.dbapi",
    "pyarrow.parquet",
]


def default_config(destination: str) -> dict[str, dict]:
    """`in_process` for DuckDB (one writer per file), `multiprocess` for server destinations.

    Multiprocess steps start from a forkserver that has restsync and dlt imported already,
    not from a fresh interpreter each.
    """
    if destination == "duckdb":
        return {IN_PROCESS: {}}
    return {MULTIPROCESS: {"start_method": FORKSERVER}}


#: restsync's start method for multiprocess steps: a forkserver with `FORKSERVER_PRELOAD`
FORKSERVER = {"forkserver": {"preload_modules": FORKSERVER_PRELOAD}}


def completed(mode: str, config: Mapping[str, object]) -> dict[str, object]:
    """`config` of `mode` as run: a multiprocess config that names no `start_method`
    (`{multiprocess: {max_concurrent: 5}}`) keeps restsync's forkserver instead of Dagster's
    `spawn`, which would import everything again in every step."""
    if mode == MULTIPROCESS and "start_method" not in config:
        return {**config, "start_method": FORKSERVER}
    return dict(config)


@cache
def restsync_executor(destination: str) -> ExecutorDefinition:
    """The executor of every restsync job, defaulting to `default_config(destination)`; one
    object per destination, so several `dg` components' definitions merge (Dagster accepts
    one executor per code location)."""
    modes = executor_modes(destination)

    def requirements(config: Mapping[str, object]):
        mode = next(iter(config), IN_PROCESS)
        return [] if mode == IN_PROCESS else multiple_process_executor_requirements()

    @executor(
        name="restsync_executor",
        config_schema=Field(
            Selector({mode: base.config_schema.as_field() for mode, base in modes.items()}),
            default_value=default_config(destination),
            description=f"One of {', '.join(modes)}: Dagster's executor of that name.",
        ),
        requirements=requirements,
    )
    def _restsync_executor(init_context: InitExecutorContext):
        ((mode, config),) = init_context.executor_config.items()
        base = modes[mode]
        return base.executor_creation_fn(
            InitExecutorContext(
                job=init_context.job,
                executor_def=base,
                executor_config=completed(mode, config),
                instance=init_context.instance,
            )
        )

    return _restsync_executor

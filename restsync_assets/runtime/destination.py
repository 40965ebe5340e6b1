"""Where a spec's loads go: the dlt destination, its load file format, and the dlt pipeline.

Loads and readers (`warehouse.reading`) get their destination from `destination()` and their
pipeline from `build_pipeline`, so both see the same warehouse and dataset (= spec name).

dlt settings restsync chooses per pipeline (extract workers for `client.concurrency`, dlt's
`_dlt_load_id`/`_dlt_id` on Arrow pages) are handed to dlt by a config provider that answers
only `<pipeline name>.*` keys (`PIPELINE_SETTINGS`, registered through
`dlt.config.register_provider`), never through `os.environ`: dagster-dlt calls
`pipeline.run`, which takes no extract or normalize settings, so dlt reads them from its
config. dlt looks pipeline-scoped keys up first in every provider, so these beat a global
`[extract] workers` and yield to a user's own `<pipeline name>.extract.workers`.

dlt settings restsync chooses for every run wherever it starts (a `dg` project, an installed
package, another working folder: no `.dlt/` of restsync's there) come from a second provider
(`RESTSYNC_DEFAULTS`, registered with the first): `runtime.dlthub_telemetry = false`, so dlt's
anonymous usage reports are off. Providers registered later are asked last, so an explicit
setting in a `.dlt/config.toml` or `RUNTIME__DLTHUB_TELEMETRY` still wins.
"""

from __future__ import annotations

import copy
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from dlt.common.configuration.providers import DictionaryProvider

from restsync_assets import settings

if TYPE_CHECKING:
    from dlt.common.destination import Destination
    from dlt.pipeline.pipeline import Pipeline

    from restsync_assets.specs.model import SourceSpec


def destination(
    *, read_only: bool = False, unique_indexes: bool = True, memory_cap: bool = True
) -> Destination:
    """The dlt destination of the configured warehouse (`RESTSYNC_DESTINATION`).

    DuckDB (the default) is the file `settings.duckdb_path()`; any other destination is dlt's,
    configured the dlt way (`DESTINATION__<NAME>__CREDENTIALS` or `.dlt/secrets.toml`).
    `unique_indexes=False` tells PostgreSQL not to build UNIQUE indexes for dlt's `unique`
    hints (`build_pipeline` passes it when no column of the spec asks to be unique);
    `memory_cap=False` leaves DuckDB's buffer pool uncapped (`settings.duckdb_config`).
    Its capabilities are worked out once (`CapabilitiesOnce`).
    """
    factory = _factory(read_only, unique_indexes, memory_cap)
    factory.capabilities = CapabilitiesOnce(factory.capabilities)  # type: ignore[method-assign]
    return factory


def _factory(read_only: bool, unique_indexes: bool, memory_cap: bool) -> Destination:
    import dlt
    from dlt.common.configuration import known_sections, resolve_configuration
    from dlt.common.destination import Destination
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    name = settings.destination_name()
    if name == "postgres" and not unique_indexes:
        return Destination.from_reference(name, create_indexes=False)
    if name != "duckdb":
        return Destination.from_reference(name)
    path = settings.duckdb_path()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    credentials = DuckDbCredentials(str(path), read_only=read_only)
    credentials.global_config = settings.duckdb_config(capped=memory_cap)
    # resolved once here, so the ~30 resolutions of the destination's configuration dlt makes
    # per run take it as it is instead of looking up every credentials field again
    credentials = resolve_configuration(
        credentials, sections=(known_sections.DESTINATION, "duckdb")
    )
    return dlt.destinations.duckdb(credentials=credentials)


class CapabilitiesOnce:
    """A destination's `capabilities()`, worked out once per naming convention.

    dlt asks a destination for its capabilities some 30 times a run (pipeline activation,
    each step, each client), and each time without a config it resolves the destination's
    whole configuration again from every config provider: a third of a warm PostgreSQL load's
    Python time, and most of a fan-out run's fixed cost (P2, P7 profiles). The configuration
    does not change within a run (the destination is built per run), so the answer is kept
    and a copy handed out, as dlt hands out a new object each call. A call with a config is
    dlt's own, every time.
    """

    def __init__(self, compute: Any):
        self._compute = compute
        self._known: dict[Any, Any] = {}

    def __call__(self, config: Any = None, naming: Any = None) -> Any:
        if config is not None:
            return self._compute(config, naming)
        key = naming and (type(naming), naming.is_case_sensitive, naming.max_length)
        if key not in self._known:
            self._known[key] = self._compute(None, naming)
        return copy.copy(self._known[key])


def loader_file_format(target: Destination) -> str:
    """Parquet wherever dlt loads it into the destination as it is (DuckDB, filesystem,
    PostgreSQL with an ADBC driver), else the destination's preferred format (PostgreSQL:
    `insert_values`).

    Decided from dlt's capabilities and its file format selector, so dlt never falls back,
    table by table and with a warning each, from a format it cannot load. Not csv for
    PostgreSQL: dlt's csv writer counts cells as rows (dlt-hub/dlt#4461), so `rows_loaded`
    would be several times the rows loaded.
    """
    caps = target.capabilities()
    preferred = caps.preferred_loader_file_format
    supported = list(caps.supported_loader_file_formats)
    if caps.loader_file_format_selector is not None:
        preferred, supported = caps.loader_file_format_selector(
            preferred, supported, table_schema={}
        )
    return "parquet" if "parquet" in supported else preferred


def takes_parquet() -> bool:
    """Whether loads hand the configured destination parquet (then Arrow pages pay off; into
    any other format dlt would convert each Arrow page back, warning per table)."""
    if settings.destination_name() == "duckdb":
        return _duckdb_takes_parquet()
    return loader_file_format(destination(read_only=True)) == "parquet"


@cache
def _duckdb_takes_parquet() -> bool:
    """DuckDB's file formats depend on neither its file nor its settings, so they are asked
    once per process: building a destination to ask cost ~10 ms of every run's start (P2)."""
    return loader_file_format(destination(read_only=True)) == "parquet"


def declares_unique(spec: SourceSpec) -> bool:
    """Whether a resource of `spec` hints a column `unique` (dlt's `columns` hint)."""
    return any(
        isinstance(column, dict) and column.get("unique")
        for resource in spec.resources
        for column in (resource.hints.get("columns") or {}).values()
    )


def merges(spec: SourceSpec) -> bool:
    """Whether a resource of `spec` loads with dlt's `merge` write disposition."""
    return any(resource.merge_strategy for resource in spec.resources)


def pipeline_name(spec: SourceSpec) -> str:
    return f"restsync_{spec.name}"


def pipeline_settings(spec: SourceSpec) -> dict[str, Any]:
    """The dlt config restsync sets for `spec`'s pipeline, by dlt section."""
    # Arrow pages get dlt's `_dlt_load_id`/`_dlt_id` columns like rows do: `ArrowPages` adds
    # `_dlt_id` itself, so dlt's normalizer imports the parquet file instead of rewriting it
    config: dict[str, Any] = {
        "normalize": {"parquet_normalizer": {"add_dlt_load_id": True, "add_dlt_id": False}}
    }
    if spec.concurrency > 1:  # dlt then fetches each parent's children on a worker thread
        config["extract"] = {
            "workers": spec.concurrency,
            "max_parallel_items": max(20, spec.concurrency),
        }
    return config


class PipelineSettings(DictionaryProvider):
    """dlt config of restsync's pipelines, `{<pipeline name>: {<section>: {<key>: value}}}`.

    dlt looks a pipeline's keys up under its name first, in every provider, so these apply
    to that pipeline only (no global key is ever answered).
    """

    NAME = "restsync pipeline settings"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def set_pipeline(self, name: str, config: dict[str, Any]) -> None:
        """Replace what `name` is configured with (a copy: nothing else writes the doc)."""
        with self._lock:
            self._config_doc = {**self._config_doc, name: config}

    def register(self) -> None:
        """Add this provider to dlt's providers, unless there (again after a dlt reload)."""
        import dlt
        from dlt.common.configuration.container import Container
        from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

        with self._lock:
            if self.name not in Container()[PluggableRunContext].providers:
                dlt.config.register_provider(self)


PIPELINE_SETTINGS = PipelineSettings()


class RestsyncDefaults(DictionaryProvider):
    """Global dlt config restsync sets for every run: `DEFAULTS` (`runtime.dlthub_telemetry`
    false). Asked after dlt's own providers (env, `.dlt/` toml files)."""

    NAME = "restsync defaults"
    DEFAULTS: dict[str, Any] = {"runtime": {"dlthub_telemetry": False}}

    def __init__(self) -> None:
        super().__init__()
        self._config_doc = {k: dict(v) for k, v in self.DEFAULTS.items()}
        self._lock = threading.Lock()

    def register(self) -> None:
        """Add this provider to dlt's (unless there); when dlt started its telemetry before
        (its runtime starts with its run context, before restsync could register), restart
        dlt's runtime so it resolves `dlthub_telemetry` again, now false."""
        import dlt
        from dlt.common.configuration.container import Container
        from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
        from dlt.common.runtime.telemetry import stop_telemetry

        with self._lock:
            run_context = Container()[PluggableRunContext]
            if self.name in run_context.providers:
                return
            dlt.config.register_provider(self)
            if run_context.context.runtime_config.dlthub_telemetry:
                stop_telemetry()
                run_context.initialize_runtime()


RESTSYNC_DEFAULTS = RestsyncDefaults()


def build_pipeline(
    spec: SourceSpec, progress: Any = None, target: Any = None, memory_cap: bool = True
) -> Pipeline:
    """A dlt pipeline loading `spec` into its dataset (= spec name) of the configured destination.

    `progress` is a dlt collector (restsync passes a `LogCollector` writing to the run's log);
    `target` defaults to `destination()` (readers pass a read-only one); `memory_cap=False`
    loads into DuckDB without restsync's default buffer cap (see `may_load_again_uncapped`).
    The pipeline's dlt settings (`pipeline_settings`) take effect with it.

    On PostgreSQL, dlt's only UNIQUE index is the one its `unique` hint on `_dlt_id` asks for
    unless the spec hints a column `unique`: a random row id, unique by construction, whose
    index more than doubled the load time (issue 13). A column hint `unique: false` on
    `_dlt_id` would not do: dlt's parquet normalizer sets it back on every Arrow page. So the
    pipeline loads without UNIQUE indexes (`create_indexes: false`), and only when no column
    of the spec asks for one; primary keys and merges do not use them.
    """
    import dlt

    name = pipeline_name(spec)
    PIPELINE_SETTINGS.set_pipeline(name, pipeline_settings(spec))
    PIPELINE_SETTINGS.register()
    RESTSYNC_DEFAULTS.register()
    return dlt.pipeline(
        pipeline_name=name,
        destination=target
        if target is not None
        else destination(
            unique_indexes=declares_unique(spec), memory_cap=memory_cap and not merges(spec)
        ),
        dataset_name=spec.name,
        pipelines_dir=str(settings.pipelines_dir()),
        progress=progress,
    )


def may_load_again_uncapped(error: BaseException, pipeline: Pipeline) -> bool:
    """Whether the load that raised `error` may run again without a DuckDB buffer cap: DuckDB
    ran out of memory under restsync's default cap (`settings.default_duckdb_memory_limit`;
    not under one the user set).

    DuckDB reads a parquet row group in one piece, so rows of tens of kilobytes (long texts,
    JSON documents) can need more than the cap however the pages are cut (`runtime.load`
    then loads again). Tables of the failed package that did load are no obstacle: the rows
    of an unfinished load are removed before the next attempt (`runtime.exactly_once`).
    """
    from restsync_assets.text import causes

    if settings.user_duckdb_memory_limit():
        return False
    credentials = getattr(pipeline.destination, "config_params", {}).get("credentials")
    if "memory_limit" not in (getattr(credentials, "global_config", None) or {}):
        return False
    return any(type(e).__name__ == "OutOfMemoryException" for e in causes(error))

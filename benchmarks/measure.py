"""One measurement each: a restsync run through Dagster, a plain dlt run, a raw `requests` loop.

Everything here runs one thing once and returns what it saw; `benchmarks.cases` repeats and
alternates them. Each run gets fresh temp folders (DuckDB file, dlt pipelines dir) unless it
is told to reuse them (the incremental re-run).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in `os.environ` for the block (the benchmark's own process only)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def restsync_env(spec_dir: Path, workdir: Path) -> Iterator[Path]:
    """Point restsync at `spec_dir` and a warehouse in `workdir`; yields the DuckDB path."""
    db = workdir / "restsync.duckdb"
    values = {
        "RESTSYNC_SPECS_DIR": str(spec_dir),
        "RESTSYNC_DUCKDB_PATH": str(db),
        "RESTSYNC_PIPELINES_DIR": str(workdir / "pipelines"),
    }
    with environment(values):
        yield db


def restsync_definitions(spec_dir: Path) -> Any:
    from restsync_assets.definitions import build_definitions
    from restsync_assets.specs import load_specs

    return build_definitions(load_specs(spec_dir))


def restsync_materialize(defs: Any, keys: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    """One Dagster `materialize` of the given asset keys (all when None), timed.

    Only the assets are passed to `materialize` (no asset checks), so this is the load path.
    """
    from dagster import AssetKey, DagsterInstance, materialize

    selection = [AssetKey(list(k)) for k in keys] if keys is not None else None
    instance = DagsterInstance.ephemeral()
    start = time.perf_counter()
    result = materialize(
        list(defs.assets),
        resources=defs.resources,
        selection=selection,
        instance=instance,
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    seconds = time.perf_counter() - start
    rows = {}
    for event in result.get_asset_materialization_events():
        metadata = event.event_specific_data.materialization.metadata
        loaded = metadata.get("rows_loaded")
        rows["/".join(event.asset_key.path)] = getattr(loaded, "value", None)
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_failure]
        error = failures[0].message if failures else "run failed"
    return {"seconds": seconds, "success": result.success, "rows": rows, "error": error}


def restsync_run(
    spec_dir: Path, workdir: Path, keys: Sequence[Sequence[str]] | None = None
) -> dict[str, Any]:
    """Definitions (untimed) then one timed `materialize`, in a warehouse under `workdir`.

    `phases` are dlt's own step timings of the run (extract, normalize, load), read back from
    the trace dlt keeps in the pipeline folder: the rest of `seconds` is Dagster and restsync.
    """
    with restsync_env(spec_dir, workdir) as db:
        defs = restsync_definitions(spec_dir)
        out = restsync_materialize(defs, keys)
        out["phases"] = {}
        names = {("restsync_" + k[0]) for k in keys} if keys else None
        for folder in sorted((workdir / "pipelines").glob("restsync_*")):
            if names is None or folder.name in names:
                out["phases"][folder.name] = dlt_phases(folder.name, workdir / "pipelines")
    out["db"] = str(db)
    return out


def dlt_phases(pipeline_name: str, pipelines_dir: Path) -> dict[str, float]:
    """Seconds per step (extract, normalize, load) of a pipeline's last run, from its trace."""
    import dlt

    try:
        pipeline = dlt.attach(pipeline_name=pipeline_name, pipelines_dir=str(pipelines_dir))
        trace = pipeline.last_trace
    except Exception:  # no trace: report no phases rather than fail the benchmark
        return {}
    if trace is None:
        return {}
    return {
        step.step: (step.finished_at - step.started_at).total_seconds()
        for step in trace.steps
        if step.step in ("extract", "normalize", "load") and step.finished_at
    }


def _extracted_rows(info: Any, table: str) -> int:
    rows = 0
    for metrics in info.metrics.values():
        for step in metrics:
            table_metrics = step["table_metrics"].get(table)
            rows += table_metrics.items_count if table_metrics else 0
    return rows


def restsync_extract(
    spec_dir: Path, workdir: Path, spec_name: str, resource: str
) -> dict[str, Any]:
    """Extraction only: restsync's run-time source and pipeline, `pipeline.extract` of one
    resource (a child's parent is fetched to drive it but not written). Timed from building
    the source, like a run; restsync's pipeline settings (e.g. `client.concurrency`) apply.
    """
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.runtime.destination import build_pipeline
    from restsync_assets.runtime.source import build_source, finish
    from restsync_assets.specs import load_specs

    with restsync_env(spec_dir, workdir):
        (spec,) = [s for s in load_specs(spec_dir) if s.name == spec_name]
        credentials = ApiCredentials(source=spec.name).resolve()
        start = time.perf_counter()
        source = build_source(spec, credentials, resources=[resource])
        pipeline = build_pipeline(spec)
        info = pipeline.extract(source)
        seconds = time.perf_counter() - start
        finish(source)  # as a run does after it: the session's pools stop (untimed)
    return {"seconds": seconds, "rows": _extracted_rows(info, resource)}


def plain_dlt_pipeline(workdir: Path, name: str, dataset: str) -> Any:
    import dlt

    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(workdir / f"{name}.duckdb")),
        dataset_name=dataset,
        pipelines_dir=str(workdir / "pipelines"),
        progress=None,
    )


def plain_dlt_run(
    config: dict[str, Any], workdir: Path, name: str, dataset: str, loader_file_format: str
) -> dict[str, Any]:
    """Plain dlt: `rest_api_source(config)` run by a pipeline into DuckDB, timed end to end.

    The format is always passed explicitly: the repo's `.dlt/config.toml` sets `jsonl`, which
    would otherwise silently turn the "default loader" baseline into the jsonl one.
    """
    from dlt.sources.rest_api import rest_api_source

    pipeline = plain_dlt_pipeline(workdir, name, dataset)
    start = time.perf_counter()
    info = pipeline.run(
        rest_api_source(config, name=dataset), loader_file_format=loader_file_format
    )
    seconds = time.perf_counter() - start
    rows = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}
    return {
        "seconds": seconds,
        "phases": dlt_phases(name, workdir / "pipelines"),
        "db": str(workdir / f"{name}.duckdb"),
        "rows": {k: v for k, v in rows.items() if not k.startswith("_dlt")},
        "failed_jobs": info.has_failed_jobs,
    }


def plain_dlt_extract(
    config: dict[str, Any], workdir: Path, dataset: str, resource: str
) -> dict[str, Any]:
    """Plain dlt extraction only (`pipeline.extract`) of one resource, dlt's default settings."""
    from dlt.sources.rest_api import rest_api_source

    pipeline = plain_dlt_pipeline(workdir, "plain_extract", dataset)
    start = time.perf_counter()
    source = rest_api_source(config, name=dataset).with_resources(resource)
    info = pipeline.extract(source)
    return {"seconds": time.perf_counter() - start, "rows": _extracted_rows(info, resource)}


# --------------------------------------------------------------------------- raw requests


def raw_fetch(base_url: str, path: str, page: int = 1000) -> dict[str, Any]:
    """The raw baseline: one `requests.Session`, offset pages, `.json()` each, until `total`."""
    session = requests.Session()
    start = time.perf_counter()
    rows, offset, total = 0, 0, None
    while total is None or offset < total:
        response = session.get(f"{base_url}{path}", params={"offset": offset, "limit": page})
        response.raise_for_status()
        body = response.json()
        rows += len(body["data"])
        total = body["total"]
        offset += page
    seconds = time.perf_counter() - start
    session.close()
    return {"seconds": seconds, "rows": rows, "requests": offset // page}


def raw_fanout(base_url: str, parents: int, per: int, threads: int) -> dict[str, Any]:
    """The raw fan-out baseline: parents in one call, then children on `threads` threads."""
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def children(parent_id: int) -> int:
        response = session().get(
            f"{base_url}/fanout/{parents}/parents/{parent_id}/children", params={"per": per}
        )
        response.raise_for_status()
        return len(response.json()["data"])

    start = time.perf_counter()
    ids = [p["id"] for p in session().get(f"{base_url}/fanout/{parents}/parents").json()["data"]]
    with ThreadPoolExecutor(threads) as pool:
        rows = sum(pool.map(children, ids))
    return {"seconds": time.perf_counter() - start, "rows": rows, "parents": len(ids)}


def server_stats(base_url: str, reset: bool = False) -> dict[str, int]:
    response = requests.get(f"{base_url}/stats/reset" if reset else f"{base_url}/stats", timeout=10)
    return response.json()


# --------------------------------------------------------------------------- comparisons


def compare_tables(
    db_a: str, table_a: str, db_b: str, table_b: str, ignore_prefix: str = "_dlt"
) -> dict[str, Any]:
    """Same rows, column types and values? `table_*` is `schema.table` in each DuckDB file.

    dlt's own bookkeeping columns (`_dlt_load_id`, `_dlt_id`) differ per load by design and
    are compared by name and type only.
    """
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{db_a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{db_b}' AS b (READ_ONLY)")

        def columns(catalog: str, qualified: str) -> dict[str, str]:
            schema, table = qualified.split(".")
            rows = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_catalog = ? and table_schema = ? and table_name = ? "
                "order by ordinal_position",
                [catalog, schema, table],
            ).fetchall()
            return dict(rows)

        cols_a, cols_b = columns("a", table_a), columns("b", table_b)
        if not cols_a or not cols_b:
            return {"equal": False, "error": f"missing table: a={bool(cols_a)} b={bool(cols_b)}"}
        type_diffs = {
            c: (cols_a.get(c), cols_b.get(c))
            for c in sorted(set(cols_a) | set(cols_b))
            if cols_a.get(c) != cols_b.get(c)
        }
        common = [c for c in cols_a if c in cols_b and not c.startswith(ignore_prefix)]
        select = ", ".join(f'"{c}"' for c in common)
        count_a = con.execute(f"select count(*) from a.{table_a}").fetchone()[0]
        count_b = con.execute(f"select count(*) from b.{table_b}").fetchone()[0]
        only_a = con.execute(
            f"select count(*) from (select {select} from a.{table_a} except all "
            f"select {select} from b.{table_b})"
        ).fetchone()[0]
        only_b = con.execute(
            f"select count(*) from (select {select} from b.{table_b} except all "
            f"select {select} from a.{table_a})"
        ).fetchone()[0]
    finally:
        con.close()
    return {
        "equal": not type_diffs and count_a == count_b and only_a == 0 and only_b == 0,
        "rows": [count_a, count_b],
        "type_diffs": {k: list(v) for k, v in type_diffs.items()},
        "rows_only_in_restsync": only_a,
        "rows_only_in_plain_dlt": only_b,
        "columns": cols_a,
    }


def table_count(db: str, qualified: str) -> int | None:
    import duckdb

    if not Path(db).exists():
        return None
    with duckdb.connect(db, read_only=True) as con:
        try:
            return con.execute(f"select count(*) from {qualified}").fetchone()[0]
        except duckdb.CatalogException:
            return None

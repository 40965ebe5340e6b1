"""Issue 13's new cases: P1b (fixed cost per run), P6 (PostgreSQL loads), P7 (parallel steps).

P1b and P6 samples run in fresh processes (`python -m benchmarks.worker p1b|p6`); P7 runs
`dagster asset materialize` as a user would. PostgreSQL cases use a database created and
dropped by the run (`pg_database`), on the server of `BENCH_PG` (default
`postgres:@127.0.0.1:5432`, trust auth).
"""

from __future__ import annotations

import contextlib
import cProfile
import importlib
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import specs
from benchmarks.measure import environment

PG = os.environ.get("BENCH_PG", "postgres:@127.0.0.1:5432")
ADMIN_DB = "test"
#: rows of the P1b resource: one page
P1B_RECORDS = 100
#: P7: page size of each of the five specs (issue 23 item 5: every page answered after 200 ms,
#: `Config.p7_delay_ms`)
P7_PAGE = 100
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def p7_modes(max_concurrent: int) -> dict[str, dict[str, Any]]:
    """The run config of each P7 mode. Multiprocess is what a user writes for latency-bound
    specs: `{multiprocess: {max_concurrent: N}}` (steps still forked from restsync's forkserver
    with its run-time modules imported, `restsync_assets/executors.py`). A step of a
    latency-bound spec waits on the API most of its time, so more steps than cores run at once
    (Dagster's default is the number of cores): one per spec of the run."""
    return {
        "in_process": {"execution": {"config": {"in_process": {}}}},
        "multiprocess": {
            "execution": {"config": {"multiprocess": {"max_concurrent": max_concurrent}}}
        },
    }


def pg_url(database: str) -> str:
    return f"postgresql://{PG}/{database}"


def pg_rows(database: str, sql: str) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(pg_url(database), connect_timeout=5)
    connection.autocommit = True
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []


@contextlib.contextmanager
def pg_database(prefix: str = "restsync_bench") -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    pg_rows(ADMIN_DB, f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        pg_rows(ADMIN_DB, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        pg_rows(ADMIN_DB, "SELECT 1")
    except Exception as error:  # psycopg2 missing, server down, auth
        return f"PostgreSQL at {PG.split('@')[-1]} not usable: {type(error).__name__}: {error}"
    return None


def pg_compare(database: str, left: str, right: str) -> dict[str, Any]:
    """Two tables of one PostgreSQL database: row counts, column types (dlt's row ids left
    out), and rows in one but not the other (`EXCEPT ALL` both ways on the common columns)."""
    columns: dict[str, dict[str, str]] = {}
    for table in (left, right):
        schema, name = table.split(".")
        columns[table] = {
            c: t
            for c, t in pg_rows(
                database,
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{name}'",
            )
            if c not in ("_dlt_id", "_dlt_load_id")
        }
    common = sorted(set(columns[left]) & set(columns[right]))
    listed = ", ".join(f'"{c}"' for c in common)

    def only(a: str, b: str) -> int:
        sql = (
            f"select count(*) from (select {listed} from {a} except all select {listed} from {b}) x"
        )
        return pg_rows(database, sql)[0][0]

    rows = tuple(pg_rows(database, f"select count(*) from {t}")[0][0] for t in (left, right))
    type_diffs = {
        c: (columns[left].get(c), columns[right].get(c))
        for c in set(columns[left]) | set(columns[right])
        if columns[left].get(c) != columns[right].get(c)
    }
    left_only, right_only = only(left, right), only(right, left)
    return {
        "rows": rows,
        "type_diffs": type_diffs,
        "rows_only_in_restsync": left_only,
        "rows_only_in_plain_dlt": right_only,
        "columns": columns[left],
        "equal": rows[0] == rows[1] and not type_diffs and left_only == 0 and right_only == 0,
    }


#: the steps of a run worth seeing in P1b's profile (cumulative seconds each)
PROFILE_STEPS = (
    r"instance/instance.py.*\(ephemeral\)|definitions/materialize.py.*\(materialize\)"
    r"|runtime/source.py.*\(build_source\)|sources/rest_api/__init__.py.*\(rest_api_source\)"
    r"|runtime/destination.py.*\(build_pipeline\)|pipeline/pipeline.py.*\((extract|normalize|load)\)"
    r"|catalog.py.*\(table_metadata\)|checks.py|_bootstrap>.*\(_find_and_load\)"
)


def profile_excerpt(profile: cProfile.Profile, lines: int = 12) -> str:
    """The run's main steps (cumulative time each, first-use imports included), then the
    functions that spent the most time themselves; paths shortened."""
    parts = []
    for sort, restriction in (("cumulative", PROFILE_STEPS), ("tottime", lines)):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats(sort).print_stats(restriction)
        text = out.getvalue()
        for prefix in (str(Path(sys.prefix) / "lib"), str(Path(__file__).resolve().parent.parent)):
            text = text.replace(prefix + "/", "")
        body = text[text.find("ncalls") :] if "ncalls" in text else text
        parts.append(f"-- by {sort} --")
        parts += [line.rstrip() for line in body.splitlines() if line.strip()]
    return "\n".join(parts)


# --------------------------------------------------------------------------- workers


def p1b_run(
    base_url: str, workdir: Path, profile: bool = False, preimport: Path | None = None
) -> dict[str, Any]:
    """In a fresh process: the imports (timed apart), then definitions + one materialization
    of a one-page resource (the fixed cost), then the same again warm.

    The imports are restsync's definitions module, plus, with `preimport` (a JSON list of the
    modules an earlier sample's run imported first), every module the run will import: the
    timed run is then the run's own work, no import included."""
    start = time.perf_counter()
    import restsync_assets.definitions  # noqa: F401  (the process's imports)
    from benchmarks import measure

    if preimport is not None:
        for name in json.loads(preimport.read_text()):
            with contextlib.suppress(Exception):  # a module that imports only in context
                importlib.import_module(name)
    imports = time.perf_counter() - start
    before = set(sys.modules)
    spec_dir = workdir / "specs"
    specs.write_spec(spec_dir, specs.records_spec("bench_p1b", base_url, P1B_RECORDS))
    profiler = cProfile.Profile() if profile else None
    with measure.restsync_env(spec_dir, workdir):
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        out = measure.restsync_materialize(measure.restsync_definitions(spec_dir))
        if profiler:
            profiler.disable()
        cold = time.perf_counter() - start
        lazy = set(sys.modules) - before
        start = time.perf_counter()
        warm_out = measure.restsync_materialize(measure.restsync_definitions(spec_dir))
        warm = time.perf_counter() - start
    return {
        "seconds": cold,
        "warm_seconds": warm,
        "import_seconds": imports,
        "modules_imported_by_the_run": len(lazy),
        "run_modules": sorted(lazy),
        "success": out["success"] and warm_out["success"],
        "rows": out["rows"],
        "error": out["error"] or warm_out["error"],
        "profile": profile_excerpt(profiler) if profiler else None,
    }


def p6_run(variant: str, base_url: str, n: int, workdir: Path, database: str) -> dict[str, Any]:
    """One P6 sample in this fresh process (the parent times the whole command)."""
    from benchmarks import measure

    if variant in ("restsync", "restsync_duckdb"):
        target = {"RESTSYNC_DESTINATION": "postgres"} if variant == "restsync" else {}
        if target:
            target["DESTINATION__POSTGRES__CREDENTIALS"] = pg_url(database)
        spec_dir = workdir / "specs"
        specs.write_spec(spec_dir, specs.records_spec("bench_p6", base_url, n))
        with environment(target):
            out = measure.restsync_run(spec_dir, workdir)
        out["phases"] = out["phases"].get("restsync_bench_p6", {})
        out["loaded"] = out["rows"].get("bench_p6/items")
        return out
    import dlt
    from dlt.sources.rest_api import rest_api_source

    pipeline = dlt.pipeline(
        pipeline_name="plain_p6",
        destination=dlt.destinations.postgres(credentials=pg_url(database)),
        dataset_name="plain_p6",
        pipelines_dir=str(workdir / "pipelines"),
    )
    start = time.perf_counter()
    info = pipeline.run(
        rest_api_source(specs.records_dlt_config(base_url, n), name="plain_p6"),
        loader_file_format=variant,
    )
    seconds = time.perf_counter() - start
    rows = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}
    return {
        "seconds": seconds,
        "success": not info.has_failed_jobs,
        "phases": measure.dlt_phases("plain_p6", workdir / "pipelines"),
        "loaded": rows.get("items"),
        "error": None,
    }


# --------------------------------------------------------------------------- P7 helpers


def p7_specs(directory: Path, base_url: str, n: int, delay_ms: int, count: int = 5) -> list[str]:
    """`count` specs, one resource each over `n` records in pages of `P7_PAGE` (one request at
    a time, the default `client.concurrency: 1`), every request answered after `delay_ms`."""
    names = []
    for i in range(count):
        name = f"bench_p7_{i}"
        spec = specs.records_spec(name, base_url, n)
        endpoint = spec["resources"][0]["endpoint"]
        endpoint["path"] = f"/slow/{delay_ms}/records/{n}"
        endpoint["paginator"]["limit"] = P7_PAGE
        specs.write_spec(directory, spec)
        names.append(name)
    return names


def p7_run(
    mode: str, spec_dir: Path, workdir: Path, database: str, max_concurrent: int
) -> dict[str, Any]:
    """`dagster asset materialize --select '*'` of the P7 specs in `mode` (multiprocess with
    `max_concurrent` steps at once), into `database`;
    wall time, Dagster's RUN_START -> RUN_SUCCESS, and per step the time from
    STEP_WORKER_STARTING to STEP_START (a step process's start, imports, definitions)."""
    from dagster import DagsterEventType, DagsterInstance

    from benchmarks.server import REPO_ROOT, child_env

    home = workdir / f"home-{mode}"
    home.mkdir(parents=True)
    config = workdir / f"run-{mode}.json"
    run_config = {**p7_modes(max_concurrent)[mode], **QUIET}
    config.write_text(json.dumps(run_config), encoding="utf-8")
    env = {
        **child_env(),
        "DAGSTER_HOME": str(home),
        "RESTSYNC_SPECS_DIR": str(spec_dir),
        "RESTSYNC_DESTINATION": "postgres",
        "DESTINATION__POSTGRES__CREDENTIALS": pg_url(database),
        "RESTSYNC_PIPELINES_DIR": str(workdir / f"pipelines-{mode}"),
    }
    command = ["dagster", "asset", "materialize", "-m", "restsync_assets.definitions"]
    start = time.perf_counter()
    proc = subprocess.run(
        [*command, "--select", "*", "-c", str(config)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - start
    out: dict[str, Any] = {"wall_seconds": wall, "success": proc.returncode == 0}
    if proc.returncode != 0:
        out["error"] = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return out
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            (run,) = instance.get_runs(limit=1)
            logs = instance.all_logs(run.run_id)
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
    stamp = {e.dagster_event_type: e.timestamp for e in logs if e.dagster_event_type}
    out["run_seconds"] = stamp[DagsterEventType.RUN_SUCCESS] - stamp[DagsterEventType.RUN_START]
    starting: dict[str, float] = {}
    overheads: list[float] = []
    for event in logs:
        kind = event.dagster_event_type
        if kind == DagsterEventType.STEP_WORKER_STARTING:
            starting[event.step_key] = event.timestamp
        elif kind == DagsterEventType.STEP_START and event.step_key in starting:
            overheads.append(event.timestamp - starting[event.step_key])
    out["step_overheads"] = overheads
    out["steps"] = sum(1 for e in logs if e.dagster_event_type == DagsterEventType.STEP_SUCCESS)
    out["timeline"] = step_timeline(logs, stamp[DagsterEventType.RUN_START])
    out["rows"] = {
        name: pg_rows(database, f'select count(*) from "{name}"."items"')[0][0]
        for name in sorted(p.stem for p in spec_dir.glob("*.yaml"))
    }
    return out


#: the events of a step's timeline, by the name it is recorded under
TIMELINE_EVENTS = {
    "STEP_WORKER_STARTING": "worker",
    "STEP_START": "start",
    "STEP_SUCCESS": "end",
    "STEP_FAILURE": "end",
}


def step_timeline(logs: list[Any], run_start: float) -> dict[str, dict[str, float]]:
    """Per step: seconds from RUN_START to its worker starting (multiprocess only), its start
    and its end (success or failure)."""
    timeline: dict[str, dict[str, float]] = {}
    for event in logs:
        kind = event.dagster_event_type
        name = TIMELINE_EVENTS.get(kind.value if kind else "")
        if name and event.step_key:
            step = timeline.setdefault(event.step_key, {})
            step[name] = round(event.timestamp - run_start, 2)
    return dict(sorted(timeline.items(), key=lambda kv: kv[1].get("start", 1e9)))


def scratch(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))

"""`endpoint.async_job` end to end against the sandbox's `reports` vendor.

Each run is Dagster's own `materialize` of one monthly partition (one report job per window)
into DuckDB (PostgreSQL in one case); every table is compared with the vendor's truth as a
multiset, and the vendor's count of the jobs it created shows whether a job was created twice.
The poll clock is restsync's retry clock: in-process runs take a `FakeClock` (no real waits);
the kill -9 runs are real subprocesses whose progress is read from the sandbox's request log.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from restsync_assets.runtime import job_records, job_records_table
from restsync_assets.sandbox import Sandbox, reports
from restsync_assets.specs import load_specs

from .real_servers import pg_query as postgres_sql
from .support import Command, failure_message, refusal, write_spec

JANUARY = ("2026-01-01", "2026-02-01")
FEBRUARY = ("2026-02-01", "2026-03-01")
MARCH = ("2026-03-01", "2026-04-01")  # no rows: the vendor's job ends `empty`
TABLES = {"campaign_report": "campaign", "ad_report": "ad"}
FIELDS = {
    "campaign_report": reports.CAMPAIGN_FIELDS,
    "ad_report": reports.AD_FIELDS,
}
TIMEOUT = 60.0


def job(level: str, fmt: str, **changes: Any) -> dict:
    """The issue's example job for `level`, its files read as `fmt`."""
    spec = {
        "create": {
            "path": "v1/reports",
            "method": "POST",
            "json": {"level": level, "from": "{{ window.start }}", "to": "{{ window.end }}"},
        },
        "job_id": "{{ response.id }}",
        "poll": {"path": "v1/reports/{job_id}", "interval": 5, "timeout": 3600},
        "status": "{{ response.status }}",
        "done": ["completed"],
        "failed": ["failed", "error"],
        "skipped": ["empty"],
        "download": {"urls": "{{ response.files }}", "response_format": fmt, "compression": "auto"},
        "abort": {"path": "v1/reports/{job_id}/cancel", "method": "POST"},
    }
    for key, value in changes.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) else value
    return spec


def reports_spec(url: str, interval: float = 5, **changes: Any) -> dict:
    """Both report resources (multi-file gzip CSV, zip JSONL), monthly partitions."""
    changes = {
        **changes,
        "poll": {"interval": interval, "timeout": 3600, **changes.get("poll", {})},
    }
    return {
        "name": "reports",
        "client": {"base_url": f"{url}/reports", "auth": {"type": "bearer"}},
        "resource_defaults": {
            "write_disposition": "merge",
            "partitions": {"type": "monthly", "start": "2026-01-01"},
        },
        "resources": [
            {
                "name": "campaign_report",
                "primary_key": ["campaign_id", "day"],
                "schema": reports.CAMPAIGN_SCHEMA,
                "endpoint": {"async_job": job("campaign", "csv", **changes)},
            },
            {
                "name": "ad_report",
                "primary_key": ["ad_id", "day"],
                "endpoint": {"async_job": job("ad", "jsonl", **changes)},
            },
        ],
    }


@pytest.fixture
def reports_dir(specs_dir, sandbox, monkeypatch) -> Path:
    """The reports spec against the sandbox, its token set."""
    monkeypatch.setenv("REPORTS_TOKEN", reports.TOKEN)
    write_spec(specs_dir, reports_spec(sandbox.url))
    return specs_dir


def materialize_window(specs_dir: Path, window: tuple[str, str], instance: Any = None) -> Any:
    """One run of every reports asset for the monthly partition starting `window[0]`."""
    from dagster import DagsterInstance, materialize

    from restsync_assets.cli.run import QUIET
    from restsync_assets.definitions import build_definitions

    defs = build_definitions(load_specs(specs_dir))
    return materialize(
        list(defs.assets),
        resources=defs.resources,
        partition_key=window[0],
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config=QUIET,
    )


def loaded(table: str, database: str | None = None) -> Counter | None:
    """The rows of `reports.<table>` (its truth's fields) as a multiset; None when missing."""
    fields = FIELDS[table]
    columns = ", ".join(f'"{f}"' for f in fields)
    if database is not None:
        exists = postgres_sql(database, f"select to_regclass('reports.{table}')")[0][0]
        rows = postgres_sql(database, f"select {columns} from reports.{table}") if exists else None
    else:
        import duckdb

        from restsync_assets import settings

        with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
            try:
                rows = con.execute(f"select {columns} from reports.{table}").fetchall()
            except duckdb.CatalogException:
                rows = None
    return None if rows is None else Counter(tuple(str(v) for v in row) for row in rows)


def truth(table: str, *windows: tuple[str, str]) -> Counter:
    level, fields = TABLES[table], FIELDS[table]
    return Counter(
        tuple(str(row[f]) for f in fields)
        for start, end in windows
        for row in reports.Reports().truth(level, start, end)
    )


def assert_tables_are_truth(*windows: tuple[str, str], database: str | None = None) -> None:
    for table in TABLES:
        assert loaded(table, database) == truth(table, *windows), table


def created(sandbox: Sandbox, window: tuple[str, str]) -> dict[str, int]:
    """Jobs the vendor created for `window`, per level."""
    return {level: sandbox.reports.created[(level, *window)] for level in TABLES.values()}


# --------------------------------------------------------------------------- status paths


@dataclass(frozen=True)
class StatusCase:
    """A job outcome: the vendor's knobs, the window run, what the run must end with."""

    id: str
    knobs: dict[str, Any]
    window: tuple[str, str]
    #: None: the run succeeds; else a text its one-line failure holds ({window} filled)
    failure: str | None
    #: jobs the vendor created for the campaign and the ad table (a failed run never
    #: reaches the second table)
    jobs: tuple[int, int] = (1, 1)
    #: what each table holds afterwards: the window's truth, or nothing (None)
    loads: bool = True
    cancelled: int = 0
    spec: dict[str, Any] = field(default_factory=dict)


STATUS_CASES = [
    StatusCase("done", {}, JANUARY, None),
    StatusCase("skipped-empty-window", {}, MARCH, None, loads=False),
    StatusCase(
        "failed",
        {"fail": {"2026-01-01": "quota exceeded for account 42"}},
        JANUARY,
        "failed: quota exceeded for account 42; fix the request (async_job.create)",
        jobs=(1, 0),
        loads=False,
    ),
    StatusCase(
        "timeout-aborted",
        {"stall": {"2026-01-01"}},
        JANUARY,
        "still 'running' after 60 s (async_job.poll.timeout); abort sent"
        " (POST v1/reports/job-1/cancel)",
        jobs=(1, 0),
        loads=False,
        cancelled=1,
        spec={"poll": {"timeout": 60}},
    ),
    # the first job polled (the campaign report's) is forgotten by the API
    StatusCase("expired-id-created-again", {"forget_first": 1}, JANUARY, None, jobs=(2, 1)),
]


@pytest.mark.parametrize("case", STATUS_CASES, ids=[c.id for c in STATUS_CASES])
def test_each_job_status_path(case, specs_dir, sandbox, monkeypatch, retry_clock, caplog) -> None:
    """done loads the job's files (two gzipped CSVs; a zip of two JSONL members), skipped
    loads nothing, failed fails with the API's message, a stalled job is aborted at its
    timeout and named, and a job id the API forgot is created again with a log line; the
    vendor created exactly `jobs` jobs per table."""
    monkeypatch.setenv("REPORTS_TOKEN", reports.TOKEN)
    write_spec(specs_dir, reports_spec(sandbox.url, **case.spec))
    for knob, value in case.knobs.items():
        setattr(sandbox.reports, knob, value)
    caplog.set_level("INFO", logger="restsync_assets.runtime.async_jobs")
    result = materialize_window(specs_dir, case.window)
    if case.failure is None:
        assert result.success, failure_message(result)
    else:
        message = failure_message(result)
        assert not result.success
        assert "\n" not in message
        assert message.startswith("reports: resource ")
        assert f"async job job-1 for window [{case.window[0]}, {case.window[1]})" in message
        assert case.failure in message, message
    assert created(sandbox, case.window) == dict(zip(("campaign", "ad"), case.jobs, strict=True))
    assert len(sandbox.reports.cancelled) == case.cancelled
    if case.loads:
        assert_tables_are_truth(case.window)
    elif case.failure is None:  # skipped: nothing to load, the run still succeeds
        assert all(loaded(table) in (None, Counter()) for table in TABLES)
    if case.jobs[0] > 1:
        assert "is no longer known to the API (HTTP 404): creating it again" in caplog.text


def test_one_job_per_partition_window(reports_dir, sandbox, retry_clock) -> None:
    """Two monthly partitions: one job per window and table, and together the tables equal
    the vendor's truth; the polls waited `poll.interval` on restsync's clock."""
    for window in (JANUARY, FEBRUARY):
        result = materialize_window(reports_dir, window)
        assert result.success, failure_message(result)
        assert created(sandbox, window) == {"campaign": 1, "ad": 1}
    assert_tables_are_truth(JANUARY, FEBRUARY)
    assert sandbox.reports.jobs_created() == 4
    assert set(retry_clock.sleeps) == {5.0}


def job_records_kept(database: str | None) -> list[str]:
    """The job ids the reports spec's campaign report has records of: files under the
    pipelines folder (DuckDB), rows of the dataset's records table (PostgreSQL)."""
    from restsync_assets import settings

    if database is None:
        folder = settings.pipelines_dir() / job_records.FOLDER / "reports" / "campaign_report"
        return sorted(json.loads(p.read_text())["job_id"] for p in folder.glob("*.json"))
    table = f"reports.{job_records_table.TABLE}"
    if postgres_sql(database, "select to_regclass(%s)", table)[0][0] is None:
        return []
    return sorted(r[0] for r in postgres_sql(database, f"select job_id from {table}"))


def use_machine(monkeypatch, tmp_path: Path, name: str) -> None:
    """Runs from now on (in-process, and subprocesses started after) use a pipelines folder
    of their own, as a run on another machine would."""
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / f"machine_{name}"))


@dataclass(frozen=True)
class ResumeCase:
    """A job left running by one run, then a run of the same window (on another machine:
    another pipelines folder, on PostgreSQL)."""

    id: str
    where: str
    #: the API forgot the job between the runs (its id expired)
    expired: bool = False


RESUME_CASES = [
    ResumeCase("duckdb", "duckdb"),
    ResumeCase("postgres-other-machine", "postgres"),
    ResumeCase("postgres-other-machine-expired", "postgres", expired=True),
]


@pytest.mark.parametrize("case", RESUME_CASES, ids=[c.id for c in RESUME_CASES])
def test_a_job_left_running_is_resumed_and_its_record_cleared_by_its_load(
    case, request, specs_dir, sandbox, monkeypatch, retry_clock, caplog, tmp_path
) -> None:
    """A job that outlived `poll.timeout` with no `abort` keeps its record (a file on DuckDB,
    a row of the dataset's `_restsync_async_jobs` on PostgreSQL); the next run of the window
    (on PostgreSQL from another machine's pipelines folder) polls that job, creating no
    second one, and loads it, and its record is gone after that load. A recorded job the API
    forgot is created again, with a log line."""
    database = request.getfixturevalue("postgres_warehouse") if case.where == "postgres" else None
    monkeypatch.setenv("REPORTS_TOKEN", reports.TOKEN)
    spec = reports_spec(sandbox.url, abort=None, poll={"timeout": 60})
    spec["resources"].pop()  # the campaign report alone
    write_spec(specs_dir, spec)
    caplog.set_level("INFO", logger="restsync_assets.runtime.async_jobs")
    sandbox.reports.stall = {"2026-01-01"}
    failed = materialize_window(specs_dir, JANUARY)
    assert "no abort configured: the next run polls it again" in failure_message(failed)
    assert job_records_kept(database) == ["job-1"]

    sandbox.reports.stall = set()
    if case.expired:
        sandbox.reports.forget()
    if database is not None:
        use_machine(monkeypatch, tmp_path, "b")
    result = materialize_window(specs_dir, JANUARY)
    assert result.success, failure_message(result)
    assert sandbox.reports.ever == (["job-1", "job-2"] if case.expired else ["job-1"])
    assert loaded("campaign_report", database) == truth("campaign_report", JANUARY)
    assert job_records_kept(database) == []
    gone = "async job job-1 for window [2026-01-01, 2026-02-01) is no longer known to the API"
    assert (f"{gone} (HTTP 404): creating it again" in caplog.text) == case.expired
    resumed = "resuming async job job-1 for window [2026-01-01, 2026-02-01) (recorded in"
    assert resumed in caplog.text

    result = materialize_window(specs_dir, FEBRUARY)
    assert result.success, failure_message(result)
    assert sandbox.reports.ever[-1] == f"job-{2 + case.expired}"
    assert job_records_kept(database) == []
    assert loaded("campaign_report", database) == truth("campaign_report", JANUARY, FEBRUARY)


def test_a_record_left_after_its_load_warns_and_the_next_run_deletes_it(
    specs_dir, sandbox, monkeypatch, retry_clock
) -> None:
    """When deleting a loaded job's record fails right after the load, the run still
    succeeds, with a warning; the next run (another window) deletes that record before it
    starts its own job, and its own after its load."""
    from dagster import DagsterInstance

    from restsync_assets.runtime import load

    def unreachable(spec: Any, pipeline: Any) -> None:
        raise RuntimeError("server closed the connection unexpectedly\nmore")

    monkeypatch.setenv("REPORTS_TOKEN", reports.TOKEN)
    spec = reports_spec(sandbox.url)
    spec["resources"].pop()  # the campaign report alone
    write_spec(specs_dir, spec)
    instance = DagsterInstance.ephemeral()
    with monkeypatch.context() as patch:
        patch.setattr(load, "clear_loaded", unreachable)
        result = materialize_window(specs_dir, JANUARY, instance)
    assert result.success, failure_message(result)
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert (
        "reports: could not delete the records of the async jobs just loaded (server closed"
        " the connection unexpectedly); the next run deletes them"
    ) in logged
    assert job_records_kept(None) == ["job-1"]

    result = materialize_window(specs_dir, FEBRUARY)
    assert result.success, failure_message(result)
    assert sandbox.reports.ever == ["job-1", "job-2"]
    assert job_records_kept(None) == []


def store_of(kind: str, tmp_path: Path, database: str | None) -> job_records.JobRecords:
    """The campaign report's job records in a store of `kind`: files, or the table of a
    PostgreSQL dataset (through a dlt pipeline, as runs reach it)."""
    if kind == "files":
        return job_records.FileJobRecords(tmp_path / "records", "reports", "campaign_report")
    import dlt

    from .real_servers import pg_url

    pipeline = dlt.pipeline(
        pipeline_name="records_store",
        destination=dlt.destinations.postgres(credentials=pg_url(str(database))),
        dataset_name="records_store",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    return job_records_table.TableJobRecords(pipeline, "campaign_report")


@pytest.mark.parametrize("kind", ["files", "table"])
def test_each_job_record_store_keeps_and_clears_records_alike(kind, request, tmp_path) -> None:
    """Both stores read back what they recorded (a second job of one key replaces the
    first), list their keys, and clear a record only when the jobs a load committed hold its
    job id (`settled`, `sweep`); reading an empty store creates nothing."""
    database = request.getfixturevalue("postgres_warehouse") if kind == "table" else None
    store = store_of(kind, tmp_path, database)
    assert (store.read("a"), list(store.keys())) == (None, [])
    if database is not None:  # reading created neither the dataset nor the table
        assert postgres_sql(database, "select to_regnamespace('records_store')") == [(None,)]
    store.write("a", "job-1", {"window": ["2026-01-01", "2026-02-01"]}, 1_800_000_000.0)
    store.write("a", "job-3", {"window": ["2026-01-01", "2026-02-01"]}, 1_800_000_001.0)
    store.write("b", "job-2", {"parent": {"id": 7}}, 1_800_000_002.0)
    assert store.read("a") == {
        "job_id": "job-3",
        "scope": {"window": ["2026-01-01", "2026-02-01"]},
        "created_at": 1_800_000_001.0,
    }
    assert sorted(store.keys()) == ["a", "b"]
    assert store.settled("a", {"a": "job-1"}) is not None  # an older job of the key loaded
    store.sweep({"a": "job-1", "b": "job-2"})
    assert sorted(store.keys()) == ["a"]
    assert store.settled("a", {"a": "job-3"}) is None
    assert (store.read("a"), list(store.keys())) == (None, [])
    store.clear("missing")


def accounts_spec(url: str, concurrency: int) -> dict:
    """One campaign report job per account (a parent), `concurrency` jobs at once."""
    create = {
        "path": "v1/accounts/{account_id}/reports",
        "json": {"level": "campaign", "from": "2026-01-01", "to": "2026-03-01"},
    }
    return {
        "name": "reports",
        "client": {
            "base_url": f"{url}/reports",
            "auth": {"type": "bearer"},
            "concurrency": concurrency,
        },
        "resources": [
            {"name": "accounts", "primary_key": "id", "endpoint": {"path": "v1/accounts"}},
            {
                "name": "account_report",
                "primary_key": ["campaign_id", "day"],
                "include_from_parent": ["id"],
                "add_fields": {"account": "{{ 'account-' ~ parent.id }}"},
                "schema": reports.CAMPAIGN_SCHEMA,
                "endpoint": {"async_job": job("campaign", "csv", create=create)},
            },
        ],
    }


@pytest.mark.parametrize("concurrency", [1, 2])
def test_one_job_per_parent_at_most_concurrency_at_once(
    concurrency, specs_dir, sandbox, monkeypatch, retry_clock
) -> None:
    """A child resource creates one job per parent row (its path bound to the row), runs at
    most `client.concurrency` of them at once, and each row carries its parent's id and the
    field its transforms add from the parent row."""
    from .support import materialize_specs

    monkeypatch.setenv("REPORTS_TOKEN", reports.TOKEN)
    sandbox.reports.polls_to_finish = 3
    write_spec(specs_dir, accounts_spec(sandbox.url, concurrency))
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    accounts = range(1, reports.ACCOUNTS + 1)
    window = ("campaign", "2026-01-01", "2026-03-01")
    assert sandbox.reports.created == Counter({(*window, a): 1 for a in accounts})
    assert sandbox.reports.most_running == concurrency
    import duckdb

    from restsync_assets import settings

    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        rows = con.execute(
            "select campaign_id, day, clicks, _accounts_id, account from reports.account_report"
        ).fetchall()
    owner = reports.account_of
    assert Counter(rows) == Counter(
        (
            r["campaign_id"],
            r["day"],
            r["clicks"],
            owner(r["campaign_id"]),
            f"account-{owner(r['campaign_id'])}",
        )
        for r in reports.Reports().truth("campaign")
    )


def test_a_download_cut_short_past_its_retries_fails_in_one_line_and_keeps_the_job(
    specs_dir, sandbox, monkeypatch, retry_clock
) -> None:
    """A file whose body is cut short is downloaded again up to the resource's retries, then
    the run fails naming the file and the job; the next run downloads the same job again."""
    monkeypatch.setenv("REPORTS_TOKEN", reports.TOKEN)
    spec = reports_spec(sandbox.url)
    spec["resource_defaults"]["error_handler"] = {"max_retries": 1}
    write_spec(specs_dir, spec)
    sandbox.reports.break_downloads = 2
    result = materialize_window(specs_dir, JANUARY)
    message = failure_message(result)
    assert message.startswith(
        f"reports: resource campaign_report: download of {sandbox.url}/reports/v1/files/job-1/"
        "part-1.csv.gz (async job job-1 for window [2026-01-01, 2026-02-01)) failed after 2"
        " attempts: "
    ), message
    assert "\n" not in message
    result = materialize_window(specs_dir, JANUARY)
    assert result.success, failure_message(result)
    assert created(sandbox, JANUARY) == {"campaign": 1, "ad": 1}
    assert_tables_are_truth(JANUARY)


def test_an_incremental_job_starts_at_the_cursor(specs_dir, sandbox, monkeypatch, retry_clock):
    """With `endpoint.incremental` the job's window starts at the cursor (its initial value,
    then the last day loaded) and ends now: two runs, two jobs, and the table equals the truth
    (the last day, reported twice, merged)."""
    monkeypatch.setenv("REPORTS_TOKEN", reports.TOKEN)
    spec = reports_spec(sandbox.url)
    del spec["resource_defaults"]["partitions"]
    spec["resources"].pop()
    spec["resources"][0]["endpoint"]["incremental"] = {
        "cursor_path": "day",
        "initial_value": "2026-01-10",
    }
    write_spec(specs_dir, spec)
    from .support import materialize_specs

    for _ in range(2):
        result = materialize_specs(specs_dir)
        assert result.success, failure_message(result)
    starts = [start for _, start, _ in sandbox.reports.created.elements()]
    assert starts == ["2026-01-10", "2026-02-28"]
    assert loaded("campaign_report") == truth("campaign_report", ("2026-01-10", "9999"))


# --------------------------------------------------------------------------- kill -9


CHILD = """
import sys

from dagster import DagsterInstance, materialize

from restsync_assets import settings
from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs

defs = build_definitions(load_specs(settings.specs_dir()))
result = materialize(
    list(defs.assets),
    resources=defs.resources,
    partition_key=sys.argv[1],
    instance=DagsterInstance.ephemeral(),
    raise_on_error=False,
)
print("RESULT", "success" if result.success else "failure", flush=True)
sys.exit(0 if result.success else 1)
"""


def wait_for(sandbox: Sandbox, run: Command, resource: str, count: int) -> bool:
    """Wait until the sandbox served `count` requests of `resource` (True) or `run` ended."""
    seen = 0
    for _ in range(int(TIMEOUT / 0.25)):
        if sum(r.resource == resource for r in sandbox.requests) >= count:
            return True
        if run.process.poll() is not None:
            return False
        seen = len(sandbox.requests)
        sandbox.wait_for_requests(seen + 1, 0.25)
    return False


#: where the run is killed: the request it is waiting on when killed
KILL_POINTS = {"polling": ("hold_polls", "poll"), "downloading": ("hold_downloads", "download")}
WAREHOUSES = ("duckdb", "postgres")
KILL_CASES = [
    ("polling", "duckdb"),
    ("downloading", "duckdb"),
    ("polling", "postgres"),
    ("downloading", "postgres"),
]


@pytest.mark.parametrize(("point", "where"), KILL_CASES, ids=[f"{p}-{w}" for p, w in KILL_CASES])
def test_kill_9_then_a_clean_run_creates_no_second_job(
    point, where, request, reports_dir, sandbox, commands, tmp_path, monkeypatch, caplog
) -> None:
    """A run killed (SIGKILL) while polling or downloading a job leaves its id recorded; the
    next run polls that job instead of creating one: the vendor created exactly one job per
    window and table, and the tables equal the truth. On PostgreSQL the killed run is on
    "machine A" and the next on "machine B" (pipelines folders of their own): the record is
    a row of the dataset's `_restsync_async_jobs`, gone once the load committed."""
    database = request.getfixturevalue("postgres_warehouse") if where == "postgres" else None
    write_spec(reports_dir, reports_spec(sandbox.url, interval=0.05))
    knob, resource = KILL_POINTS[point]
    import threading

    release = threading.Event()
    setattr(sandbox.reports, knob, release)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    if database is not None:
        use_machine(monkeypatch, tmp_path, "a")
    run = commands([sys.executable, script, JANUARY[0]])
    try:
        assert wait_for(sandbox, run, resource, 1), run.text
        run.signal_group(signal.SIGKILL)
        assert run.finish() == -signal.SIGKILL, run.text
    finally:
        release.set()
    jobs_before = sandbox.reports.jobs_created()
    assert 1 <= jobs_before <= 2  # one job per table at most, possibly one still unsent
    if database is not None:
        recorded = postgres_sql(database, f"select job_id from reports.{job_records_table.TABLE}")
        assert sorted(r[0] for r in recorded) == sandbox.reports.ever
        use_machine(monkeypatch, tmp_path, "b")

    caplog.set_level("INFO", logger="restsync_assets.runtime.async_jobs")
    result = materialize_window(reports_dir, JANUARY)
    assert result.success, failure_message(result)
    assert created(sandbox, JANUARY) == {"campaign": 1, "ad": 1}
    assert_tables_are_truth(JANUARY, database=database)
    assert "resuming async job job-1 for window" in caplog.text
    if database is not None:
        assert postgres_sql(database, f"select * from reports.{job_records_table.TABLE}") == []


# --------------------------------------------------------------------------- spec errors


def _edit(path: tuple[str, ...], value: Any) -> Callable[[dict], None]:
    def apply(spec: dict) -> None:
        node = spec["resources"][0]["endpoint"]["async_job"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return apply


def _child_of_a_job(spec: dict) -> None:
    spec["resources"].append(
        {"name": "days", "endpoint": {"path": "v1/days/{resources.campaign_report.day}"}}
    )


REFUSALS = [
    (
        _child_of_a_job,
        "resource 'days': endpoint.path: its parent 'campaign_report' is read by an async job,"
        " which cannot be a parent; create one job per row of another resource instead",
    ),
    (
        _edit(("download", "compression"), "bz2"),
        "endpoint.async_job.download.compression: unknown compression 'bz2'; allowed: auto,"
        " gzip, none, zip",
    ),
    (
        _edit(("download", "response_format"), "xml"),
        "endpoint.async_job.download.response_format: unknown format 'xml'; allowed: csv,"
        " json, jsonl",
    ),
    (
        _edit(("job_id",), "{{ answer.id }}"),
        "endpoint.async_job.job_id: answer is not known here; allowed: job_id, response, window",
    ),
    (
        _edit(("poll", "path"), "v1/reports/{id}"),
        "endpoint.async_job.poll.path: {id} is not known here; allowed: job_id",
    ),
    (
        _edit(("skipped",), ["completed"]),
        "endpoint.async_job.skipped: status 'completed' is also in done; a status means one"
        " outcome",
    ),
    (
        _edit(("poll", "interval"), 0),
        "endpoint.async_job.poll.interval: must be a number of seconds above 0",
    ),
    (
        _edit(("surprise",), 1),
        "endpoint.async_job.surprise: unknown key; allowed: abort, create, done, download,"
        " failed, job_id, poll, skipped, status",
    ),
    (
        _edit(("create", "method"), "FETCH"),
        "endpoint.async_job.create.method: unknown method 'FETCH'; allowed: DELETE, GET,"
        " PATCH, POST, PUT",
    ),
]


@pytest.mark.parametrize(("edit", "line"), REFUSALS, ids=[r[1].split(": ")[-2] for r in REFUSALS])
def test_a_wrong_async_job_is_refused_in_one_line(edit, line, tmp_path, monkeypatch) -> None:
    """Each mistake is one line naming the file, the resource, the key and what is allowed."""
    monkeypatch.chdir(tmp_path)
    spec = reports_spec("http://127.0.0.1:1")
    edit(spec)
    resource = "campaign_report" if not line.startswith("resource ") else None
    prefix = f"resource '{resource}': " if resource else ""
    expected = f"specs/reports.yaml: {prefix}{line}"
    assert refusal(Path("specs"), spec) == expected


def test_preview_refuses_an_async_job_in_one_line_and_creates_no_job(
    specs_dir, sandbox, monkeypatch, capsys
) -> None:
    """`restsync preview` of an async-job resource would create a report at the API: it is
    refused in one line, exit 1, and the vendor created no job."""
    from restsync_assets.cli import main

    monkeypatch.setenv("REPORTS_TOKEN", reports.TOKEN)
    write_spec(specs_dir, reports_spec(sandbox.url))
    assert main(["preview", "reports", "campaign_report"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: reports: resource campaign_report: reads an async report job"
        " (endpoint.async_job),"
        " which preview does not run: it would create a report at the API; materialize the"
        " resource instead (restsync run)"
    ]
    assert sandbox.reports.jobs_created() == 0

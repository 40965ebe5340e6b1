"""Exactly-once loads of append tables (issue 18, items 1 and 2).

dlt commits each table's job on its own and marks the load complete last. A load that fails
or is killed in between leaves rows in some tables; the next run extracts the same rows again
(its cursor is the last *completed* load's). restsync removes those rows before it extracts
(`runtime.exactly_once`), so after a failed run and a clean one every table, root and nested,
holds the API's rows once. Each fault runs on DuckDB and on PostgreSQL, against `events`, an
incremental APPEND resource whose `tags` list becomes the nested table `events__tags`.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from restsync_assets import settings

from .fake_servers import JsonApi, page
from .real_servers import pg_query as postgres_sql
from .real_servers import warehouse_sql
from .support import (
    NARROW_ROWS,
    Command,
    child_script,
    failure_message,
    load_wide,
    materialize_specs,
    query,
    use_specs,
    wide_rows,
    write_spec,
)

SPEC = "feed"
#: A value the destination refuses (a CHECK constraint on `events.kind` or on
#: `events__tags.value`, see `refuse_poison`).
POISON = "poison"


def events(count: int = 30, poison_at: int | None = None, field: str = "tags") -> list[dict]:
    """`count` events with two tags each; event `poison_at` carries `POISON` as its first tag
    (`field="tags"`) or as its kind (`field="kind"`)."""
    return [
        {
            "id": i,
            "kind": POISON
            if (i, field) == (poison_at, "kind")
            else ("click", "view", "buy")[i % 3],
            "tags": [POISON if (i, field) == (poison_at, "tags") else f"t{i}", f"g{i % 4}"],
        }
        for i in range(1, count + 1)
    ]


def feed_spec() -> dict:
    """An incremental APPEND resource by `id` (`?since=`), 10 rows a page, with nested tags."""
    endpoint = {
        "path": "/events",
        "data_selector": "data",
        "paginator": {
            "type": "page_number",
            "page_param": "page",
            "total_path": "total_pages",
            "base_page": 1,
        },
        "incremental": {"cursor_path": "id", "start_param": "since", "initial_value": 0},
    }
    resource = {"name": "events", "write_disposition": "append", "endpoint": endpoint}
    return {"name": SPEC, "client": {"base_url": "http://unused"}, "resources": [resource]}


class Feed:
    """The API: its rows (`rows`, replaced to change what it serves), answered from `since`."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.api = JsonApi({"GET /events": self._events})
        #: called before page 2 is answered (a slow or held extract)
        self.before_page_2: Callable[[], None] = lambda: None

    def _events(self, request) -> dict:
        if request.query.get("page") == "2":
            self.before_page_2()
        since = int(request.query.get("since", 0))
        return page([r for r in self.rows if r["id"] > since], request.query, 10)


# --------------------------------------------------------------------------- warehouse reads


def assert_tables_are_truth(rows: list[dict]) -> None:
    """`feed.events` and `feed.events__tags` hold the API's rows and tags, each exactly once
    (as multisets, nested rows joined to their parent)."""
    got = Counter(warehouse_sql(f"select id, kind from {SPEC}.events"))
    assert got == Counter((r["id"], r["kind"]) for r in rows), "events differ from the API"
    tags = Counter(
        warehouse_sql(
            f"select e.id, t.value, t._dlt_list_idx from {SPEC}.events__tags t"
            f" left join {SPEC}.events e on e._dlt_id = t._dlt_parent_id"
        )
    )
    truth = Counter((r["id"], tag, i) for r in rows for i, tag in enumerate(r["tags"]))
    assert tags == truth, "events__tags differs from the API"


def orphan_count() -> int:
    """Rows of `events` whose load never completed (what a failed load committed)."""
    return warehouse_sql(
        f"select count(*) from {SPEC}.events where _dlt_load_id not in"
        f" (select load_id from {SPEC}._dlt_loads where status = 0)"
    )[0][0]


def left_behind() -> int:
    """Rows a failed load committed: `orphan_count()` plus the tags whose event is missing."""
    missing_parent = warehouse_sql(
        f"select count(*) from {SPEC}.events__tags t where not exists"
        f" (select 1 from {SPEC}.events e where e._dlt_id = t._dlt_parent_id)"
    )[0][0]
    return orphan_count() + missing_parent


#: The tables as dlt creates them, each with a CHECK refusing `POISON` in one column.
REFUSING_TABLES = {
    "events__tags": f"value varchar check (value <> '{POISON}'), _dlt_parent_id varchar not null,"
    " _dlt_list_idx bigint not null, _dlt_id varchar not null",
    "events": f"id bigint, kind varchar check (kind <> '{POISON}'),"
    " _dlt_load_id varchar not null, _dlt_id varchar not null",
}


def refuse_poison(table: str = "events__tags") -> None:
    """Create `table` before the first load, as dlt would, with a CHECK refusing `POISON`:
    its load job fails, the other table's job commits."""
    sql = (
        f"create schema if not exists {SPEC};"
        f" create table {SPEC}.{table} ({REFUSING_TABLES[table]})"
    )
    if settings.destination_name() == "postgres":
        warehouse_sql(sql)
        return
    import duckdb

    path = settings.duckdb_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(sql)


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Destination:
    name: str
    fixture: str | None  # the fixture that points loads at it


DESTINATIONS = (Destination("duckdb", None), Destination("postgres", "postgres_warehouse"))


@pytest.fixture(params=DESTINATIONS, ids=lambda d: d.name)
def destination(request, specs_dir) -> Destination:
    """Loads go to DuckDB (this test's file) or to the session's PostgreSQL database."""
    if request.param.fixture:
        request.getfixturevalue(request.param.fixture)
    return request.param


@pytest.fixture
def serve_feed(specs_dir, monkeypatch) -> Callable[[list[dict]], Feed]:
    """`serve_feed(rows)`: the spec `feed` in the specs folder, pointed at a running `Feed`."""
    started: list[Feed] = []

    def start(rows: list[dict]) -> Feed:
        server = Feed(rows)
        server.api.__enter__()
        started.append(server)
        write_spec(specs_dir, feed_spec())
        use_specs(monkeypatch, specs_dir, {SPEC: server.api.url})
        return server

    yield start
    for server in started:
        server.api.__exit__(None, None, None)


@pytest.fixture
def feed(destination, serve_feed) -> Callable[[list[dict]], Feed]:
    """`serve_feed`, loading into each destination in turn."""
    return serve_feed


@dataclass(frozen=True)
class Refusal:
    """The database refuses the load of `table` (the `field` of event 7 is `POISON`)."""

    table: str
    field: str


REFUSALS = (Refusal("events__tags", "tags"), Refusal("events", "kind"))


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda r: f"refused-{r.table}")
def test_a_database_error_on_one_table_then_a_clean_run_loads_each_row_once(
    refusal, feed, specs_dir
):
    """The destination refuses a value of one table (CHECK constraint): the other table's job
    committed, the run failed. Once the API serves a valid value, the next run loads every
    event and tag exactly once, the rows the failed load left (events, or tags whose event
    never loaded) removed first. (Today's code appended them a second time.)"""
    refuse_poison(refusal.table)
    api = feed(events(30, poison_at=7, field=refusal.field))
    failed = materialize_specs(specs_dir)
    assert not failed.success, "the refused value did not fail the load"
    assert left_behind() > 0, "the fault did not leave the other table's rows behind"
    api.rows = events(30)  # the vendor fixed the value
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_tables_are_truth(api.rows)
    assert left_behind() == 0


def test_more_rows_after_a_failed_load_are_loaded_once(feed, specs_dir):
    """A clean load, then new events whose load fails on the nested table, then a clean run:
    the first load's rows stay, the failed load's are removed and loaded once again."""
    refuse_poison()
    api = feed(events(20))
    assert materialize_specs(specs_dir).success
    api.rows = events(35, poison_at=30)
    assert not materialize_specs(specs_dir).success
    assert orphan_count() == 15
    api.rows = events(35)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_tables_are_truth(api.rows)


# --------------------------------------------------------------------------- kill -9

CHILD = """
import threading

from dagster import DagsterInstance, materialize
from dlt.common.destination.client import RunnableLoadJob

from restsync_assets import settings
from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs

release = RunnableLoadJob._release


def released(self, next_state):
    table = self.job_file_info().table_name
    if next_state == "completed" and not table.startswith("_dlt"):
        # this data table's job committed; the package is not complete while it waits
        print(f"JOB COMMITTED {table}", flush=True)
        threading.Event().wait()
    release(self, next_state)


RunnableLoadJob._release = released
defs = build_definitions(load_specs(settings.specs_dir()))
materialize(list(defs.assets), resources=defs.resources, instance=DagsterInstance.ephemeral())
"""


def test_kill_9_after_the_first_table_committed_then_a_run_loads_each_row_once(
    feed, specs_dir, commands, tmp_path
):
    """A real run is killed (SIGKILL) as soon as the first table's load job committed; the
    next run loads every event and tag exactly once."""
    api = feed(events(30))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    run = commands([sys.executable, script])
    assert run.wait_for_line("JOB COMMITTED"), run.text
    run.signal_group(signal.SIGKILL)
    run.finish()
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_tables_are_truth(api.rows)


# --------------------------------------------------------------------------- DuckDB memory


@pytest.mark.usefixtures("small_cap")
def test_the_out_of_memory_advice_then_a_run_loads_each_row_once(tmp_path, monkeypatch):
    """Under a cap the user set, `spaces` loads and `docs` runs out of memory; the run says
    "set RESTSYNC_DUCKDB_MEMORY_LIMIT higher, then run again". Doing exactly that loads each
    table's rows once (today's code appended `spaces` a second time)."""
    monkeypatch.setenv("RESTSYNC_DUCKDB_MEMORY_LIMIT", "16MB")
    result, db, _ = load_wide(tmp_path, monkeypatch, names=("spaces", "docs"))
    assert not result.success
    assert "RESTSYNC_DUCKDB_MEMORY_LIMIT" in failure_message(result)
    monkeypatch.setenv("RESTSYNC_DUCKDB_MEMORY_LIMIT", "1GB")
    result, db, _ = load_wide(tmp_path, monkeypatch, names=("spaces", "docs"))
    assert result.success, failure_message(result)
    assert Counter(query("select id from wiki.spaces", db, scalar_rows=True)) == Counter(
        r["id"] for r in NARROW_ROWS
    )
    assert Counter(query("select id from wiki.docs", db, scalar_rows=True)) == Counter(
        r["id"] for r in wide_rows()
    )


# --------------------------------------------------------------------------- the PostgreSQL lock


def lock_backends(database: str) -> list[int]:
    """The pids of `database`'s sessions holding an advisory lock."""
    return [
        pid
        for (pid,) in postgres_sql(
            database,
            "select l.pid from pg_locks l join pg_stat_activity a on a.pid = l.pid"
            f" where l.locktype = 'advisory' and l.granted and a.datname = '{database}'",
        )
    ]


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> object:
    """Poll `condition` until it is truthy (its value) or `timeout` s passed (AssertionError)."""
    done = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        done.wait(0.05)
    raise AssertionError("timed out")


def test_a_lock_lost_mid_extract_stops_the_run_before_it_loads(
    serve_feed, specs_dir, postgres_warehouse
):
    """The lock's connection is terminated (`pg_terminate_backend`) while the run extracts:
    the run fails with one line saying it lost the lock and loaded nothing, no row is in the
    warehouse, and the next run loads every row once. (Today's run loaded without the lock.)"""
    api = serve_feed(events(30))
    held = threading.Event()

    def terminate_the_lock_connection() -> None:
        for pid in wait_for(lambda: lock_backends(postgres_warehouse)):
            postgres_sql(postgres_warehouse, f"select pg_terminate_backend({pid})")
        wait_for(lambda: not lock_backends(postgres_warehouse))
        held.set()

    api.before_page_2 = lambda: held.wait(30) or None
    killer = threading.Thread(target=terminate_the_lock_connection)
    killer.start()
    failed = materialize_specs(specs_dir)
    killer.join()
    assert not failed.success
    line = failure_message(failed)
    assert "lost the lock on dataset feed in postgres" in line, line
    assert "nothing was loaded; run again" in line and "\n" not in line, line
    assert not warehouse_sql(
        "select table_name from information_schema.tables where table_name = 'events'"
    ), "the run loaded without its lock"
    api.before_page_2 = lambda: None
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_tables_are_truth(api.rows)


def test_a_lock_lost_during_the_load_stops_it_before_it_commits(
    serve_feed, specs_dir, postgres_warehouse, monkeypatch
):
    """The lock's connection is terminated as soon as the first data table's job committed:
    the run stops before the load commits (one line saying so), and the next run removes
    what the stopped load wrote and loads every row once."""
    from dlt.common.destination.client import RunnableLoadJob

    api = serve_feed(events(30))
    release = RunnableLoadJob._release

    def terminate_the_lock_first(job: RunnableLoadJob, next_state: str) -> None:
        if not job.job_file_info().table_name.startswith("_dlt"):
            for pid in lock_backends(postgres_warehouse):
                postgres_sql(postgres_warehouse, f"select pg_terminate_backend({pid})")
        release(job, next_state)

    monkeypatch.setattr(RunnableLoadJob, "_release", terminate_the_lock_first)
    failed = materialize_specs(specs_dir)
    monkeypatch.setattr(RunnableLoadJob, "_release", release)
    line = failure_message(failed)
    assert "lost the lock on dataset feed in postgres" in line, line
    assert "the load was not committed" in line, line
    assert not warehouse_sql(f"select load_id from {SPEC}._dlt_loads"), "the load committed"
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_tables_are_truth(api.rows)


def test_a_lock_lost_just_before_the_load_commits_fails_the_run_loudly(
    serve_feed, specs_dir, postgres_warehouse, monkeypatch
):
    """The lock's connection is terminated after every table's job, right before dlt inserts
    the load's `_dlt_loads` row (the window no check before the commit sees): the load is
    committed, and the run fails with one line saying the lock was lost while it committed
    and what to check (it used to succeed without a word); with no other run in between, the
    next run loads the rest once."""
    from dlt.destinations.job_client_impl import SqlJobClientBase

    api = serve_feed(events(30))
    complete_load = SqlJobClientBase.complete_load

    def terminate_the_lock_first(client: SqlJobClientBase, load_id: str) -> None:
        for pid in lock_backends(postgres_warehouse):
            postgres_sql(postgres_warehouse, f"select pg_terminate_backend({pid})")
        wait_for(lambda: not lock_backends(postgres_warehouse))
        complete_load(client, load_id)

    monkeypatch.setattr(SqlJobClientBase, "complete_load", terminate_the_lock_first)
    failed = materialize_specs(specs_dir)
    monkeypatch.setattr(SqlJobClientBase, "complete_load", complete_load)
    assert not failed.success, "a load committed without its lock passed in silence"
    line = failure_message(failed)
    assert "lost the lock on dataset feed in postgres" in line and "\n" not in line, line
    assert "while the load committed" in line, line
    assert len(warehouse_sql(f"select load_id from {SPEC}._dlt_loads")) == 1
    api.rows = events(40)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_tables_are_truth(api.rows)


@pytest.fixture
def short_idle_session_timeout(postgres_warehouse, monkeypatch) -> str:
    """New sessions of the test database are closed by PostgreSQL after 1 s idle; restsync's
    lock connection says `SELECT 1` every 0.2 s."""
    from restsync_assets.runtime import dataset_lock

    monkeypatch.setattr(dataset_lock, "KEEPALIVE_SECONDS", 0.2, raising=False)
    sql = f'alter database "{postgres_warehouse}"'
    postgres_sql("postgres", f"{sql} set idle_session_timeout = '1s'")
    try:
        yield "1s"
    finally:
        postgres_sql("postgres", f"{sql} reset idle_session_timeout")


def test_the_lock_outlives_an_idle_session_timeout_shorter_than_the_extract(
    serve_feed, specs_dir, short_idle_session_timeout
):
    """PostgreSQL closes sessions idle for 1 s; the API takes 3 s for page 2. The lock's
    connection is kept busy, so the run keeps its lock, loads and unlocks: every row once.
    (Today the connection was closed mid-extract and the run failed on unlock after loading.)"""
    api = serve_feed(events(30))
    api.before_page_2 = lambda: threading.Event().wait(3.0) and None  # a slow vendor
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert_tables_are_truth(api.rows)


OVERLAPPING_CHILD = child_script(
    """
from restsync_assets.runtime import dataset_lock

dataset_lock.KEEPALIVE_SECONDS = 0.2  # below the database's idle_session_timeout
"""
)


def test_two_overlapping_runs_from_two_pipelines_folders_load_each_row_once(
    serve_feed,
    specs_dir,
    short_idle_session_timeout,
    postgres_warehouse,
    commands,
    tmp_path,
    monkeypatch,
):
    """Two runs of one spec, each with its own pipelines folder (two machines), overlap while
    the API is slow (3 s for page 2) and PostgreSQL closes sessions idle for 1 s: the second
    waits for the first's lock, which the first keeps, then finds nothing new. Every row is
    loaded once. (Today the first lost its lock mid-extract and both appended the rows.)"""
    api = serve_feed(events(30))
    released = threading.Event()
    api.before_page_2 = lambda: released.wait(60) and None  # the first run waits here
    script = tmp_path / "run.py"
    script.write_text(OVERLAPPING_CHILD)
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "machine_a"))
    first = commands([sys.executable, script])
    wait_for(lambda: api.api.calls_to("/events"))
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "machine_b"))
    second = commands([sys.executable, script])
    # page 2 is answered once the second run waits for the lock, or (without a lock) fetches
    release_when_the_second_run_waits_or_fetches(second, api, released)
    assert first.finish() == 0, first.text
    assert second.finish() == 0, second.text
    assert "waiting for another restsync run" in second.text, second.text
    assert_tables_are_truth(api.rows)


def release_when_the_second_run_waits_or_fetches(
    second: Command, api: Feed, released: threading.Event
) -> None:
    """Read `second`'s output until it says it waits for the lock (or it ended, or the API saw
    a request past the first run's two), then set `released`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = second.next_line(0.1)
        except queue.Empty:
            line = ""
        if line is None or "waiting for another restsync run" in line:
            break
        if len(api.api.calls_to("/events")) > 2:
            break
    released.set()

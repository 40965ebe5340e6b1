"""`endpoint.incremental.step` (issue 21, vocabulary item 2): time windows of a given step, one
request window after another, each committed as it completes (`runtime.step_windows`).

Against `Events`, a fake API that serves events by their `at` time in `[from, to)` and records
the windows it was asked for, with an injected clock (`request_values.CLOCK`): the windows
asked are exactly the expected ones, in order; the table equals the API's rows as a multiset
on DuckDB and PostgreSQL; after a failure in window k (a 500 past the retries, or kill -9 of
the run while window k's rows commit) the next run does not ask the windows before k again
and loads every row once (append and merge); a later run asks only the new windows. Plus one
line per misuse when the spec loads.
"""

from __future__ import annotations

import signal
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest

from restsync_assets.runtime import request_values
from restsync_assets.runtime.step_windows import as_cursor
from restsync_assets.specs.template_functions import format_datetime, to_datetime

from .fake_servers import JsonApi, Reply, page
from .real_servers import warehouse_sql
from .support import (
    DELETE,
    child_script,
    edited,
    failure_message,
    materialize_specs,
    refusal,
    use_specs,
    write_spec,
)

SPEC = "stepped"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: the clock of the first run: windows of 1d are Jan 1, 2, 3 and the half day of Jan 4
FIRST_RUN = datetime(2026, 1, 4, 12, tzinfo=timezone.utc)
SECOND_RUN = datetime(2026, 1, 6, 6, tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    return format_datetime(moment, "iso")


def events(until: datetime = datetime(2026, 1, 7, tzinfo=timezone.utc)) -> list[dict]:
    """An event every 3 hours from Jan 1, 01:30 UTC (8 a day), `at` an ISO string."""
    rows, moment, number = [], START + timedelta(hours=1, minutes=30), 1
    while moment < until:
        rows.append({"id": number, "at": iso(moment), "kind": ("a", "b", "c")[number % 3]})
        moment += timedelta(hours=3)
        number += 1
    return rows


class Events:
    """The API: `GET /events?from=&to=&page=` answers the events with `from <= at < to`, 3 a
    page; `windows` are the `(from, to)` asked, in order (page 1 of each request sequence);
    a window whose `from` is in `failing` answers 500."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.failing: set[str] = set()
        self.api = JsonApi({"GET /events": self._events})

    def _events(self, request) -> dict | Reply:
        start, end = request.query.get("from"), request.query.get("to")
        if start in self.failing:
            return Reply({"error": "unavailable"}, status=500)
        low = to_datetime(start)
        high = to_datetime(end) if end else datetime.max.replace(tzinfo=timezone.utc)
        rows = [r for r in self.rows if low <= to_datetime(r["at"]) < high]
        return page(rows, request.query, 3)

    @property
    def windows(self) -> list[tuple[str, str]]:
        return [
            (c.query["from"], c.query["to"])
            for c in self.api.calls_to("/events")
            if c.query.get("page", "1") == "1" and c.query.get("from") not in self.failing
        ]

    def truth(self, until: datetime, since: datetime = START) -> list[dict]:
        return [r for r in self.rows if since <= to_datetime(r["at"]) < until]


def stepped_spec(disposition: str = "append", **incremental: object) -> dict:
    """An events resource by `at`, windows of `step` (1d) from Jan 1 sent in `from`/`to`."""
    endpoint = {
        "path": "/events",
        "data_selector": "data",
        "paginator": {
            "type": "page_number",
            "page_param": "page",
            "total_path": "total_pages",
            "base_page": 1,
        },
        "incremental": {
            "cursor_path": "at",
            "start_param": "from",
            "end_param": "to",
            "initial_value": iso(START),
            "step": "1d",
            **incremental,
        },
    }
    resource = {
        "name": "events",
        "primary_key": "id",
        "write_disposition": disposition,
        "endpoint": endpoint,
        "error_handler": {"max_retries": 1, "backoff_factor": 0},
    }
    return {"name": SPEC, "client": {"base_url": "http://unused"}, "resources": [resource]}


def days(first: datetime, last: datetime, step: timedelta = timedelta(days=1)) -> list:
    """The windows `[t, t+step)` from `first` up to `last` (the last one cut there), as sent."""
    windows = []
    while first < last:
        windows.append((iso(first), iso(min(first + step, last))))
        first += step
    return windows


# --------------------------------------------------------------------------- warehouse reads


def assert_table_is_truth(rows: list[dict]) -> None:
    """`stepped.events` holds `rows`, each exactly once (a multiset of id, at, kind)."""
    got = Counter(warehouse_sql(f'select id, "at", kind from {SPEC}.events'))
    loaded = Counter((i, to_datetime(a), k) for i, a, k in got.elements())
    assert loaded == Counter((r["id"], to_datetime(r["at"]), r["kind"]) for r in rows)


@pytest.fixture
def clock(monkeypatch):
    """`clock(moment)`: the run's start (`request_values.CLOCK`) from now on."""

    def set_clock(moment: datetime) -> None:
        monkeypatch.setattr(request_values, "CLOCK", lambda: moment)

    return set_clock


@pytest.fixture
def serve(destination, specs_dir, monkeypatch):
    """`serve(spec)`: `spec` in the specs folder, pointed at a running `Events` API, loading
    into each destination in turn."""
    started: list[Events] = []

    def start(spec: dict) -> Events:
        server = Events(events())
        server.api.__enter__()
        started.append(server)
        write_spec(specs_dir, spec)
        use_specs(monkeypatch, specs_dir, {SPEC: server.api.url})
        return server

    yield start
    for server in started:
        server.api.__exit__(None, None, None)


# --------------------------------------------------------------------------- windows asked


@dataclass(frozen=True)
class Case:
    name: str
    incremental: dict
    #: the windows the first run asks, as sent
    windows: list
    #: rows the first run loads: those from `since` up to this moment
    until: datetime
    since: datetime = START


def epoch(moment: datetime) -> str:
    return format_datetime(moment, "epoch")


CASES = [
    Case("1d-up-to-now", {}, days(START, FIRST_RUN), FIRST_RUN),
    Case(
        "6h-to-end_value-as-epoch",
        {
            "step": "PT6H",
            "param_format": "epoch",
            "end_value": "2026-01-02T03:00:00Z",
        },
        [
            (epoch(a), epoch(b))
            for a, b in (
                (START, START + timedelta(hours=6)),
                (START + timedelta(hours=6), START + timedelta(hours=12)),
                (START + timedelta(hours=12), START + timedelta(hours=18)),
                (START + timedelta(hours=18), START + timedelta(hours=24)),
                (START + timedelta(hours=24), START + timedelta(hours=27)),
            )
        ],
        START + timedelta(hours=27),
    ),
    Case(
        "1d-from-a-relative-start",
        {"initial_value": {"type": "now", "offset": "-2d"}},
        days(FIRST_RUN - timedelta(days=2), FIRST_RUN),
        FIRST_RUN,
        FIRST_RUN - timedelta(days=2),
    ),
]


MOMENT = datetime(2026, 1, 2, 6, 30, tzinfo=timezone.utc)
FORMS = [
    (1767225600, int(MOMENT.timestamp())),
    (1767225600.5, MOMENT.timestamp()),
    ("1767225600", str(int(MOMENT.timestamp()))),
    ("2026-01-01T00:00:00Z", "2026-01-02T06:30:00Z"),
    ("2026-01-01T00:00:00.000000Z", "2026-01-02T06:30:00.000000Z"),
    ("2026-01-01T00:00:00+00:00", "2026-01-02T06:30:00+00:00"),
    ("2026-01-01 00:00:00", "2026-01-02 06:30:00"),
    ("2026-01-01", "2026-01-02"),
    (datetime(2026, 1, 1, tzinfo=timezone.utc), MOMENT),
    (date(2026, 1, 1), date(2026, 1, 2)),
]


@pytest.mark.parametrize(("form", "expected"), FORMS, ids=[repr(f) for f, _ in FORMS])
def test_a_window_bound_is_written_like_the_initial_value(form, expected):
    """The bounds compare with the rows' cursor values: written as `initial_value` is (a
    number as epoch seconds, a string in its own format, a date or datetime as one)."""
    assert as_cursor(MOMENT, form) == expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_run_asks_each_window_in_order_and_loads_the_rows_once(case, serve, clock, specs_dir):
    """The first run asks exactly the expected windows, one after another (start and end
    sent as `param_format` says), and the table equals the API's rows of the range."""
    api = serve(stepped_spec(**case.incremental))
    clock(FIRST_RUN)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert api.windows == case.windows
    assert_table_is_truth(api.truth(case.until, case.since))


#: how the pages are read: sequentially with pages read ahead on a thread, or at
#: `client.concurrency: 2` without read-ahead (dlt's worker pool runs the resource)
READING = [({}, "1"), ({"concurrency": 2}, "0")]


@pytest.mark.parametrize(("client", "read_ahead"), READING, ids=["read-ahead", "dlt-pool"])
def test_a_second_run_asks_only_the_new_windows(
    client, read_ahead, serve, clock, specs_dir, monkeypatch
):
    """The second run (clock a day and a half later) starts where the first run's last window
    ended (its clock) and asks only the windows since; the rows are each loaded once.
    A run at the same moment again asks nothing. The same whichever thread reads the pages
    (the resume point is written to dlt's state from the extract's thread)."""
    monkeypatch.setenv("RESTSYNC_READ_AHEAD", read_ahead)
    spec = stepped_spec("merge")
    spec["client"].update(client)
    api = serve(spec)
    clock(FIRST_RUN)
    assert materialize_specs(specs_dir).success
    api.api.clear()
    clock(SECOND_RUN)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert api.windows == days(FIRST_RUN, SECOND_RUN, timedelta(days=1))
    assert_table_is_truth(api.truth(SECOND_RUN))
    api.api.clear()
    assert materialize_specs(specs_dir).success
    assert api.windows == []
    assert_table_is_truth(api.truth(SECOND_RUN))


def test_adding_step_goes_on_from_dlts_own_cursor(serve, clock, specs_dir):
    """A resource that ran without `step` (dlt's own cursor, no end sent) and then gets one:
    the first window starts at dlt's last cursor value, leaving out the rows at that value
    (already loaded), not at `initial_value`; the append table holds every row once."""
    plain = edited(
        stepped_spec("append"),
        resources__0__endpoint__incremental__step=DELETE,
        resources__0__endpoint__incremental__end_param=DELETE,
    )
    api = serve(plain)
    api.rows = events(FIRST_RUN)
    clock(FIRST_RUN)
    assert materialize_specs(specs_dir).success
    last = max(to_datetime(r["at"]) for r in api.rows)
    write_spec(specs_dir, stepped_spec("append"))
    api.rows = events()
    api.api.clear()
    clock(SECOND_RUN)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert api.windows == days(last, SECOND_RUN)
    assert_table_is_truth(api.truth(SECOND_RUN))


def test_the_materialization_counts_every_window(serve, clock, specs_dir):
    """One materialization of the asset, its `rows_loaded` the rows of all windows and
    `restsync/windows` their number."""
    api = serve(stepped_spec())
    clock(FIRST_RUN)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["rows_loaded"].value == len(api.truth(FIRST_RUN))
    assert metadata["restsync/windows"].value == 4


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("disposition", ["append", "merge"])
def test_a_window_failing_then_a_clean_run_resumes_at_that_window(
    disposition, serve, clock, specs_dir
):
    """Window 3 (Jan 3) answers 500 past the retries: the run fails after committing windows
    1 and 2. The next run asks from window 3 on (not 1 or 2 again) and the table holds every
    row once."""
    api = serve(stepped_spec(disposition))
    clock(FIRST_RUN)
    windows = days(START, FIRST_RUN)
    api.failing = {windows[2][0]}
    failed = materialize_specs(specs_dir)
    assert not failed.success
    assert api.windows == windows[:2]
    assert_table_is_truth(api.truth(START + timedelta(days=2)))
    api.failing = set()
    api.api.clear()
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert api.windows == windows[2:]
    assert_table_is_truth(api.truth(FIRST_RUN))


KILLED_IN_WINDOW = 3
CHILD = child_script(
    f"""
import threading
from datetime import datetime, timezone

from dlt.common.destination.client import RunnableLoadJob

from restsync_assets.runtime import request_values
from restsync_assets.runtime.step_windows import as_cursor

request_values.CLOCK = lambda: datetime(2026, 1, 4, 12, tzinfo=timezone.utc)
release = RunnableLoadJob._release
loads = []  # the loads (one per window) whose `events` job committed, in order


def released(self, next_state):
    table = self.job_file_info().table_name
    if next_state == "completed" and table == "events":
        if self._load_id not in loads:
            loads.append(self._load_id)
        if len(loads) == {KILLED_IN_WINDOW}:
            # window {KILLED_IN_WINDOW}'s rows committed; its load is not complete while it waits
            print("WINDOW ROWS COMMITTED", flush=True)
            threading.Event().wait()
    release(self, next_state)


RunnableLoadJob._release = released
"""
)


@pytest.mark.parametrize("disposition", ["append", "merge"])
def test_kill_9_while_a_window_commits_then_a_run_loads_each_row_once(
    disposition, serve, clock, specs_dir, commands, tmp_path
):
    """A real run is killed (SIGKILL) once window 3's rows committed but before its load
    completed: the next run asks from window 3 on, and every row is in the table once."""
    api = serve(stepped_spec(disposition))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    run = commands([sys.executable, script])
    assert run.wait_for_line("WINDOW ROWS COMMITTED"), run.text
    run.signal_group(signal.SIGKILL)
    run.finish()
    windows = days(START, FIRST_RUN)
    assert api.windows == windows[:KILLED_IN_WINDOW]
    api.api.clear()
    clock(FIRST_RUN)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    assert api.windows == windows[KILLED_IN_WINDOW - 1 :]
    assert_table_is_truth(api.truth(FIRST_RUN))


# --------------------------------------------------------------------------- validation

WHERE = f"{SPEC}.yaml: resource 'events': endpoint.incremental"
BASE = stepped_spec()
INCREMENTAL = "resources__0__endpoint__incremental__"
INVALID = [
    (
        {f"{INCREMENTAL}step": "daily"},
        f"{WHERE}.step: 'daily' is not a duration such as 90s, 30m, 6h, 2d, 1w, -7d or P1D,"
        " PT6H (years and months have no fixed length)",
    ),
    (
        {f"{INCREMENTAL}step": "-1d"},
        f"{WHERE}.step: must be a positive duration such as 1d, 6h, 30m or PT6H, got '-1d'",
    ),
    (
        {f"{INCREMENTAL}start_param": None},
        f"{WHERE}.step: needs start_param: the query param each window's start is sent in"
        " (and end_param for its end)",
    ),
    (
        {f"{INCREMENTAL}initial_value": None},
        f"{WHERE}.step: needs initial_value, where the first window starts: a date or time"
        " such as 2026-01-01T00:00:00Z or 2026-01-01, epoch seconds, or a relative time"
        " {type: now, offset: -7d}",
    ),
    (
        {f"{INCREMENTAL}initial_value": "soon"},
        f"{WHERE}.initial_value: 'soon' is not a date or time to step from; a date or time"
        " such as 2026-01-01T00:00:00Z or 2026-01-01, epoch seconds, or a relative time"
        " {type: now, offset: -7d}",
    ),
    (
        {f"{INCREMENTAL}initial_value": {"type": "now", "offset": "-7d", "format": "epoch_ms"}},
        f"{WHERE}.initial_value.format: with step, the format must be one of iso, epoch, date"
        " (the windows are counted from it), got 'epoch_ms'",
    ),
    (
        {f"{INCREMENTAL}lag": 3600},
        f"{WHERE}.lag: not supported with step (each window is a closed range); remove lag",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), INVALID, ids=[e[-30:] for _, e in INVALID])
def test_a_bad_step_is_one_line_naming_file_resource_and_key(
    tmp_path, monkeypatch, changes, expected
):
    """Each misuse of `step` is refused when the spec loads, in one line."""
    monkeypatch.chdir(tmp_path)
    spec = edited(BASE, **changes)
    incremental = spec["resources"][0]["endpoint"]["incremental"]
    spec["resources"][0]["endpoint"]["incremental"] = {
        k: v for k, v in incremental.items() if v is not None
    }
    assert refusal(tmp_path, spec) == expected


CHILD_RESOURCE = {
    "name": "notes",
    "endpoint": {
        "path": "/events/{resources.events.id}/notes",
        "incremental": {
            "cursor_path": "at",
            "start_param": "from",
            "initial_value": iso(START),
            "step": "1d",
        },
    },
}
PLAIN = {**BASE["resources"][0], "endpoint": {"path": "/events", "data_selector": "data"}}
NESTED = [
    (
        [PLAIN, CHILD_RESOURCE],
        f"{SPEC}.yaml: resource 'notes': endpoint.incremental.step: not supported on a child"
        " resource (its cursors are kept per parent); step the parent instead",
    ),
    (
        [
            BASE["resources"][0],
            {**CHILD_RESOURCE, "endpoint": {"path": CHILD_RESOURCE["endpoint"]["path"]}},
        ],
        f"{WHERE}.step: not supported on a resource with children (each window is a load of"
        " its own); load the children from a resource without step",
    ),
]


@pytest.mark.parametrize(("resources", "expected"), NESTED, ids=["child", "parent"])
def test_step_on_a_child_or_a_parent_is_refused(tmp_path, monkeypatch, resources, expected):
    """A child's cursors are per parent, and a parent's windows would each be a load of their
    own for its children: both are one line."""
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, {**BASE, "resources": resources}) == expected

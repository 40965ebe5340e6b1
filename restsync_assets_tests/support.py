"""Shared test helpers, one of each: a fake clock, spec builders, runs, subprocesses and log
capture, warehouse reads and secret searches.

- `FakeClock`: restsync's retry clock (records the waits instead of sleeping) and the
  sandbox's clock (a callable of epoch seconds), moved by hand.
- Spec builders: `write_spec`, `copy_seed_specs`, `edited`, `use_specs`, `use_spec`,
  `use_warehouse`.
- `materialize_specs` / `failure_message` / `check_evaluations`: runs through Dagster.
- `Command` / `background`: real subprocesses in their own process group, waited on with a
  bound; `child_script` (a subprocess's script that materializes the specs); `HEADER_SENDER`
  (a subprocess's script sending requests through a shared header budget);
  `write_dagster_yaml`, `free_port`, `check_results`, `debug_logs`.
- `table` / `table_rows` / `dataset_tables` / `typed_tables`: warehouse reads to compare with
  a truth row for row; `table_ids` / `query`: a DuckDB file read under the loads' lock.
- Shared scenarios: `wide_rows` / `NARROW_ROWS` / `load_wide` (a load too wide for DuckDB's
  default memory cap), `soft_delete_rows` / `marked_deleted` / `marketing_truth` /
  `assert_live_rows_are_the_truth` (the marketing API under `deletes: soft`),
  `STARTER_ITEMS` / `starter_items_api` (the API the starter spec describes), `new_dg_project`
  (create-dagster's layout).

The fake HTTP servers are in `fake_servers.py`, the machine's PostgreSQL, Redis and RabbitMQ
(fixtures and their helpers) in `real_servers.py`. Fixtures live in `conftest.py` and build on
this module (which imports nothing from it).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import decimal
import functools
import io
import json
import logging
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from restsync_assets import settings
from restsync_assets.cli.run import QUIET
from restsync_assets.runtime.http import retry
from restsync_assets.sandbox.data import ANALYTICS_DAYS, ANALYTICS_START
from restsync_assets.sandbox.reports import DAYS as REPORT_DAYS
from restsync_assets.sandbox.reports import FIRST_DAY as FIRST_REPORT_DAY
from restsync_assets.sandbox.server import SEEDS

from .fake_servers import JsonApi, page

REPO = Path(__file__).resolve().parent.parent


def seed_specs_folder(folder: Path) -> Path:
    """`folder` holding only the seed specs the sandbox serves (`SEEDS`), copied from
    the repo's `source_specs/` (each file replaced whole, so processes building it at once
    agree); any other spec file in `folder` is removed. The YAML lives in git once."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SEEDS:
        partial = folder / f".{name}.{os.getpid()}.tmp"
        partial.write_bytes((REPO / "source_specs" / f"{name}.yaml").read_bytes())
        os.replace(partial, folder / f"{name}.yaml")
    for path in folder.glob("*.y*ml"):
        if path.stem not in SEEDS:
            path.unlink(missing_ok=True)
    return folder


#: The tests' own folder of seed specs, never the user's `source_specs/` (where an API the
#: user adds would change what the tests count): built when the suite starts.
SEED_SPECS = seed_specs_folder(REPO / "data" / "tests" / "seed_specs")
#: This process's pytest-xdist worker (`gw0`, `gw1`, ...; `main` without xdist). It is part of
#: the name of everything a test creates on a shared server (PostgreSQL databases, RabbitMQ
#: vhosts), so that two workers never meet there and a leftover says whose it was.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
#: dlt's bookkeeping columns: they differ between any two loads of the same rows.
DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")
#: dlt's row ids, nested tables' included.
ROW_IDS = (*DLT_COLUMNS, "_dlt_parent_id", "_dlt_root_id")
#: How the fake APIs and the warehouse reads write timestamps: ISO 8601 in UTC.
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: The venv's console scripts (`dagster`, `restsync`), as a user runs them.
BIN = Path(sys.executable).parent
#: Bound on one wait for a subprocess: its next awaited line, or its exit.
PROCESS_TIMEOUT = 300.0
#: Dagster's "now" for partitions in a test that loads the seed specs' partitioned assets
#: over all their partitions (conftest's `seed_partitions`): a week after the last day the
#: sandbox has rows for (ad_analytics' daily analytics, the reports vendor's days), so every
#: day with rows is in the range and a week of empty partitions follows. At the real date the
#: daily asset has one partition more each day (340 on 2026-12-06), each costing Dagster's
#: events and the test's time, none of them a row.
SEED_PARTITIONS_NOW = dt.datetime.combine(
    max(
        ANALYTICS_START + dt.timedelta(days=ANALYTICS_DAYS),
        FIRST_REPORT_DAY + dt.timedelta(days=REPORT_DAYS),
    )
    + dt.timedelta(days=7),
    dt.time(),
    dt.UTC,
)

# --------------------------------------------------------------------------- the fake clock

#: The fake clock's start: whole seconds, so HTTP dates in `Retry-After` are exact.
NOW = 1_800_000_000.0


class FakeClock(retry.Clock):
    """A clock tests move by hand, never sleeping.

    As restsync's retry clock (`retry.CLOCK`, see conftest's `retry_clock`): `time()` is
    `now`; `sleep(seconds)` records the wait in `sleeps` (rounded to ms) and advances `now`.
    As the sandbox's clock (a callable of epoch seconds): calling it gives `now`.
    """

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._lock = threading.Lock()  # threads sharing the clock never lose a sleep

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(round(seconds, 3))
            self.now += seconds

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- spec builders

#: An `edited` change's value that removes the key.
DELETE = object()


def write_spec(directory: Path, spec: dict | str, filename: str | None = None) -> Path:
    """Write `spec` (a dict, or YAML text as it is) to `directory/filename` (default
    `<name>.yaml`); returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
    path = directory / (filename or f"{yaml.safe_load(text)['name']}.yaml")
    path.write_text(text)
    return path


def refusal(directory: Path, spec: dict | str) -> str:
    """The one line loading `spec` (written to `directory`) is refused with; fails the test
    when the spec loads. The line names the file as seen from the working directory."""
    from restsync_assets.specs import SpecError, load_spec_file

    path = write_spec(directory, spec)
    try:
        load_spec_file(path)
    except SpecError as error:
        return str(error)
    raise AssertionError(f"{path.name} loaded, but it should have been refused")


def copy_seed_specs(
    directory: Path,
    names: Iterable[str] | None = None,
    edit: Callable[[dict], None] | None = None,
) -> Path:
    """The seed specs `names` (default: all) written into `directory`, each changed by
    `edit(raw)` first when given; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = None if names is None else set(names)
    for path in sorted(SEED_SPECS.glob("*.yaml")):
        if wanted is not None and path.stem not in wanted:
            continue
        if edit is None:
            (directory / path.name).write_text(path.read_text())
            continue
        raw = yaml.safe_load(path.read_text())
        edit(raw)
        write_spec(directory, raw, path.name)
    return directory


def edited(base: dict, **changes: Any) -> dict:
    """A deep copy of `base` with changes at `__`-separated paths applied, e.g.
    `edited(spec, resources__0__endpoint__path="/x")`; the value `DELETE` removes the key."""
    spec = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        elif value is DELETE:
            node.pop(last)
        else:
            node[last] = value
    return spec


def use_specs(monkeypatch, directory: Path, apis: Mapping[str, str] | None = None) -> Path:
    """Point restsync at the specs in `directory` (`RESTSYNC_SPECS_DIR`) and spec `name` at
    `apis[name]` (`<NAME>_BASE_URL`); returns the directory."""
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(directory))
    for name, url in (apis or {}).items():
        monkeypatch.setenv(f"{name.upper()}_BASE_URL", url)
    return directory


def use_spec(monkeypatch, directory: Path, spec: dict, url: str) -> Path:
    """Write `spec` into `directory` and point restsync at it (`use_specs`), its API at `url`;
    returns the directory."""
    write_spec(directory, spec)
    return use_specs(monkeypatch, directory, {spec["name"]: url})


def use_warehouse(monkeypatch, duckdb_path: Path, pipelines_dir: Path | None = None) -> Path:
    """Load into the DuckDB file `duckdb_path`, dlt's working state in `pipelines_dir`
    (default: `pipelines` beside the file); returns the file."""
    monkeypatch.setenv("RESTSYNC_DUCKDB_PATH", str(duckdb_path))
    monkeypatch.setenv(
        "RESTSYNC_PIPELINES_DIR", str(pipelines_dir or duckdb_path.parent / "pipelines")
    )
    return duckdb_path


def arrow_pages_seen(monkeypatch) -> list[int]:
    """The rows of each page `ArrowPages` hands dlt as an Arrow table (the fast path), in
    order, from now on (the runs are in-process): a test tells whether the fast path ran."""
    import pyarrow as pa

    from restsync_assets.runtime.arrow_pages import ArrowPages

    seen: list[int] = []
    original = ArrowPages.__call__

    def counting(self: ArrowPages, item: Any, meta: Any = None) -> Any:
        out = original(self, item, meta)
        if isinstance(out, pa.Table):
            seen.append(out.num_rows)
        return out

    monkeypatch.setattr(ArrowPages, "__call__", counting)
    return seen


# --------------------------------------------------------------------------- runs


def materialize_specs(
    specs_dir: Path, select: list[tuple[str, str]] | None = None, instance: Any = None
) -> Any:
    """Materialize the specs of `specs_dir` (all assets, or `select`) with Dagster's own
    `materialize`, in this process; the result, failed or not."""
    from dagster import AssetKey, DagsterInstance, materialize

    from restsync_assets.definitions import build_definitions
    from restsync_assets.specs import load_specs

    defs = build_definitions(load_specs(specs_dir))
    return materialize(
        list(defs.assets),
        resources=defs.resources,
        selection=[AssetKey(list(k)) for k in select] if select else None,
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config=QUIET,
    )


def failure_message(result: Any) -> str:
    """restsync's one-line failure of a run (the step failure's description); a line saying
    what happened instead when the run failed otherwise, or did not fail."""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    if failure is None:
        return "no step failed"
    data = failure.step_failure_data
    if data.user_failure_data is None:
        return f"a failure restsync did not explain: {data.error.message.strip()}"
    return data.user_failure_data.description


#: Every kind of check restsync generates: the seed tables with a primary key, declared
#: column types and a max lag (ledger's, ad_analytics' campaign analytics) get all five.
LEDGER_CHECKS = {"primary_key", "not_null", "column_types", "row_count", "freshness"}


def check_evaluations(defs: Any) -> dict[tuple[tuple[str, ...], str], Any]:
    """Every asset check of `defs`, run once: `{(asset key path, check name): evaluation}`."""
    from dagster import DagsterInstance

    from restsync_assets.definitions import CHECKS_JOB

    result = defs.resolve_job_def(CHECKS_JOB).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False, run_config=QUIET
    )
    return {
        (tuple(e.asset_key.path), e.check_name): e for e in result.get_asset_check_evaluations()
    }


# --------------------------------------------------------------------------- processes and logs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_dagster_yaml(home: Path, **settings: object) -> None:
    """`$DAGSTER_HOME/dagster.yaml`: telemetry off (tests stay on loopback) plus `settings`."""
    config = {"telemetry": {"enabled": False}, **settings}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


CHECK_LINE = re.compile(r"Asset check '(\w+)' on '([\w/]+)' (passed|failed)")


def check_results(output: str) -> dict[tuple[str, str], str]:
    """`{(asset, check): "passed" | "failed"}` from the event log lines a Dagster CLI run prints."""
    return {(m[2], m[1]): m[3] for m in CHECK_LINE.finditer(output)}


#: the loggers that write request URLs, params or headers at DEBUG
REQUEST_LOGGERS = ("dlt", "urllib3.connectionpool", "requests")


@contextmanager
def debug_logs(names: tuple[str, ...] = REQUEST_LOGGERS) -> Iterator[io.StringIO]:
    """Capture what `names` log at DEBUG during the block (levels restored afterwards)."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)
    try:
        yield captured
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


class Command:
    """A real subprocess with this test's env, in its own process group; its merged output is
    read line by line (waits are bounded by the next line or the exit, never by the clock)."""

    def __init__(self, argv: Sequence[str], cwd: Path | None = None) -> None:
        self.argv = [str(a) for a in argv]
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        env = dict(os.environ)  # this checkout's code first, in the subprocess too
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # signals reach its children too (`dagster dev`)
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def next_line(self, timeout: float) -> str | None:
        """The next output line, None once output ended; `queue.Empty` after `timeout` s."""
        line = self.lines.get(timeout=timeout)
        if line is not None:
            self.output.append(line)
        return line

    def wait_for_line(self, needle: str, timeout: float = PROCESS_TIMEOUT) -> bool:
        """Read output until a line contains `needle` (True); False if it ended or timed out."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.next_line(left)
            except queue.Empty:
                return False
            if line is None:
                return False
            if needle in line:
                return True
        return False

    def finish(self, timeout: float = PROCESS_TIMEOUT) -> int:
        """Wait for the exit (bounded) and the rest of the output; the exit code."""
        code = self.process.wait(timeout=timeout)
        while self.next_line(timeout) is not None:
            pass
        return code

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C (SIGINT to its group), then the exit code; SIGKILL if it does not stop."""
        self.signal_group(signal.SIGINT)
        try:
            return self.finish(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            return self.finish(timeout)


#: A subprocess sending `count` GETs to `url` one after another, each through one
#: `HeaderBudget` reading the IETF fields on a shared state: a file (`store` a path) or Redis
#: (`store` a redis:// URL, `key` its key). Prints `ready`, waits on the FIFO `go` (its read
#: returns once the test opened and closed it: an event, no clock), then prints the statuses
#: as a JSON list. argv: url count store go key
HEADER_SENDER = """import json, pathlib, sys

import requests

from restsync_assets.runtime.http.rate_headers import FileState, HeaderBudget, RedisState
from restsync_assets.specs.model import HeaderBudgetSpec

url, count, store, go, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
redis = store.startswith("redis://")
shared = RedisState(store, key) if redis else FileState(pathlib.Path(store))
budget = HeaderBudget(shared, HeaderBudgetSpec(ietf=True), "sender")
print("ready", flush=True)
pathlib.Path(go).read_text()
statuses = []
with requests.Session() as session:
    for _ in range(count):
        with budget.slot(lease=10) as held:
            answer = session.get(url, params={"offset": 0, "limit": 1}, timeout=10)
            held.answered(answer)
        statuses.append(answer.status_code)
print(json.dumps(statuses), flush=True)
"""


#: `child_script`'s script (`str.format` fills `setup` and `run_config`)
_CHILD_SCRIPT = """import sys

from dagster import DagsterInstance, materialize

from restsync_assets import settings
from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs
{setup}
defs = build_definitions(load_specs(settings.specs_dir()))
result = materialize(
    list(defs.assets),
    resources=defs.resources,
    instance=DagsterInstance.ephemeral(),
    raise_on_error=False,
{run_config})
print("RESULT", "success" if result.success else "failure", flush=True)
sys.exit(0 if result.success else 1)
"""


def child_script(setup: str = "", log_level: str | None = "INFO") -> str:
    """A Python script for a subprocess: runs `setup` (code), then materializes every asset of
    the specs in `settings.specs_dir()` in an ephemeral instance, its console logger at
    `log_level` (None: Dagster's default), prints `RESULT success|failure` and exits 0 / 1."""
    level = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    run_config = f"    run_config={level!r},\n" if log_level else ""
    return _CHILD_SCRIPT.format(setup=setup, run_config=run_config)


@contextlib.contextmanager
def background(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Run `args` in its own process group (output to `log`); stop the group after the block:
    SIGTERM, then SIGKILL if it is not gone within the bound."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            cwd=REPO,
            env=env or dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    # children that outlive the group leader (a celery pool) get the same signals
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- warehouse reads


def normal(value: Any) -> Any:
    """A warehouse value as the APIs write it: timestamps as `STAMP_FORMAT` in UTC, dates
    ISO, decimals as floats."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime(STAMP_FORMAT)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def table_ids(dataset: str, table: str, path: Path | None = None) -> list | None:
    """Every `id` of `dataset.table` of a DuckDB file, or None when the file or table is missing."""
    return query(f'select id from "{dataset}"."{table}"', path, scalar_rows=True)


def query(sql: str, path: Path | None = None, *, scalar_rows: bool = False) -> list | None:
    """Run `sql` on a DuckDB file (default: the configured one), read-only and under the
    loads' lock on `<file>.lock`; None when the file or a table in the query is missing."""
    import duckdb

    from restsync_assets.runtime.locks import exclusive

    path = path or settings.duckdb_path()
    with exclusive(path.with_name(path.name + ".lock")):
        if not path.exists():
            return None
        with duckdb.connect(str(path), read_only=True) as con:
            try:
                rows = con.execute(sql).fetchall()
            except duckdb.CatalogException:
                return None
    return [r[0] for r in rows] if scalar_rows else rows


@functools.cache
def seed_key(spec: str, resource: str) -> tuple[str, ...]:
    """The primary key columns of a seed spec's resource (`id`, but `reports`' campaign
    report: `campaign_id`, `day`); `id` for a table no seed spec has."""
    from restsync_assets.specs import load_specs

    columns = {
        (s.name, r.name): r.primary_key_columns for s in load_specs(SEED_SPECS) for r in s.resources
    }
    return columns.get((spec, resource)) or ("id",)


def sandbox_keys(sandbox: Any, spec: str, resource: str) -> set[tuple[str, ...]]:
    """The keys (`seed_key`, values as text) of every row the sandbox serves."""
    columns = seed_key(spec, resource)
    return {tuple(str(row[c]) for c in columns) for row in sandbox.rows(spec, resource)}


def table_keys(dataset: str, table: str, path: Path | None = None) -> list[tuple] | None:
    """The keys (`seed_key`, values as text) of every row of a DuckDB table, None when the
    file or table is missing."""
    columns = ", ".join(_quote(c) for c in seed_key(dataset, table))
    rows = query(f"select {columns} from {_quote(dataset)}.{_quote(table)}", path)
    return None if rows is None else [tuple(str(v) for v in row) for row in rows]


def canonical(rows: Iterable[dict]) -> list[dict]:
    """`rows` in one order whatever order they came in (tables compare as lists)."""
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _rows(dataset: str, name: str, path: Path | None, drop: tuple[str, ...]) -> list[dict] | None:
    import duckdb

    path = path or settings.duckdb_path()
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        try:
            cursor = con.execute(f'select * from "{dataset}"."{name}"')
        except duckdb.CatalogException:
            return None
        names = [d[0] for d in cursor.description]
        return [
            {k: normal(v) for k, v in zip(names, row, strict=True) if k not in drop}
            for row in cursor.fetchall()
        ]


def table(dataset: str, name: str, path: Path | None = None) -> list[dict] | None:
    """Every row of `dataset.name` without dlt's bookkeeping columns, sorted; None if missing."""
    rows = _rows(dataset, name, path, DLT_COLUMNS)
    return None if rows is None else canonical(rows)


def table_rows(dataset: str, name: str, path: Path | None = None) -> dict[Any, dict] | None:
    """`{id: row}` of a warehouse table, every column (dlt's too: a rewritten row differs);
    None when missing. Asserts the ids are unique."""
    rows = _rows(dataset, name, path, ())
    if rows is None:
        return None
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{dataset}.{name} has duplicate primary keys"
    return {r["id"]: r for r in rows}


def dataset_tables(dataset: str, path: Path | None = None) -> dict[str, list[dict] | None]:
    """Every data table of `dataset` (dlt's `_dlt_*` tables left out), rows as `table()`."""
    names = query(
        "select table_name from information_schema.tables "
        f"where table_schema = '{dataset}' and table_name not like '\\_dlt\\_%' escape '\\'",
        path,
        scalar_rows=True,
    )
    return {n: table(dataset, n, path) for n in sorted(names or [])}


@dataclass(frozen=True)
class Table:
    """A table's columns with their types (sorted by name) and its rows on them, sorted."""

    columns: tuple[tuple[str, str], ...]
    rows: list[tuple]


def typed_tables(db: Path, dataset: str) -> dict[str, Table]:
    """Every data table of `dataset` in the DuckDB file `db`: its columns but dlt's row ids
    (`ROW_IDS`) with their types, and its rows on them, sorted."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        columns: dict[str, list[tuple[str, str]]] = {}
        for name, column, kind in con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = ? order by table_name, ordinal_position",
            [dataset],
        ).fetchall():
            if not name.startswith("_dlt_") and column not in ROW_IDS:
                columns.setdefault(name, []).append((column, kind))
        return {
            name: Table(
                tuple(sorted(cols)),
                sorted_rows(
                    con.execute(
                        f"select {', '.join(_quote(c) for c, _ in sorted(cols))}"
                        f" from {_quote(dataset)}.{_quote(name)}"
                    ).fetchall()
                ),
            )
            for name, cols in columns.items()
        }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sorted_rows(rows: Iterable[tuple]) -> list[tuple]:
    """Row tuples in one order, whatever their values' types (None sorts last)."""
    return sorted(rows, key=lambda row: [(v is None, str(v)) for v in row])


def assert_table_is(
    rows: dict[Any, dict] | None, truth: list[dict], *, ignore: tuple[str, ...] = ()
) -> None:
    """The table (`table_rows`) holds exactly the `truth` rows, every scalar field equal."""
    assert rows is not None, "table not loaded"
    assert set(rows) == {t["id"] for t in truth}
    for expected in truth:
        got = rows[expected["id"]]
        for key, value in expected.items():
            if key in ignore or isinstance(value, (dict, list)):
                continue
            assert got.get(key) == value, (expected["id"], key, got.get(key), value)


def assert_table_equals_truth(sandbox: Any, spec: str, resource: str, **kw: Any) -> None:
    """The warehouse table of `spec`'s `resource` holds exactly the sandbox's rows."""
    assert_table_is(table_rows(spec, resource), sandbox.rows(spec, resource), **kw)


# --------------------------------------------------------------------------- secrets


def warehouse_texts(path: Path) -> list[str]:
    """Every value of every table of the DuckDB file (dlt's included), its pipeline state
    decoded."""
    import duckdb

    texts = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
        assert any(name == "_dlt_pipeline_state" for _, name in tables)
        for schema, name in tables:
            for row in con.execute(f'select * from "{schema}"."{name}"').fetchall():
                texts.append(repr(row))
                if name == "_dlt_pipeline_state":
                    for value in row:
                        if isinstance(value, str) and len(value) > 40:
                            with contextlib.suppress(ValueError, zlib.error):
                                texts.append(zlib.decompress(base64.b64decode(value)).decode())
    return texts


def secrets_found(secrets: Iterable[str], texts: Mapping[str, str]) -> list[str]:
    """`"<where>: <secret's start>…"` for each secret found in a text of `{where: text}`."""
    return [f"{where}: {s[:12]}…" for where, text in texts.items() for s in secrets if s in text]


# --------------------------------------------------------------------------- wide rows


@functools.cache
def wide_rows() -> list[dict]:
    """1,200 rows of 20 KB of random text (one parquet row group of about 24 MB), made when a
    test first asks, not when pytest collects the module."""
    return [{"id": i, "body": secrets.token_hex(10_000)} for i in range(1, 1201)]


#: a narrow table beside the wide one
NARROW_ROWS = [{"id": i, "name": f"space {i}"} for i in range(1, 11)]


def _wide_resource(name: str) -> dict:
    paginator = {"type": "page_number", "page_param": "page", "total_path": "total_pages"}
    endpoint = {
        "path": f"/{name}",
        "data_selector": "data",
        "paginator": {**paginator, "base_page": 1},
    }
    return {"name": name, "primary_key": "id", "write_disposition": "append", "endpoint": endpoint}


def _wide_spec(*names: str) -> dict:
    resources = [_wide_resource(name) for name in names]
    return {"name": "wiki", "client": {"base_url": "http://unused"}, "resources": resources}


def load_wide(
    tmp_path: Path, monkeypatch, instance: Any = None, names: Sequence[str] = ("docs",)
) -> tuple[Any, Path, int]:
    """Materialize the `wiki` spec's append resources `names` (`docs`: `wide_rows()`,
    `spaces`: `NARROW_ROWS`, 400 rows a page) from a `JsonApi` into a DuckDB file under
    `tmp_path`; returns the run's result, the file and how many requests went to `/docs`."""
    api = JsonApi(
        {
            "GET /docs": lambda request: page(wide_rows(), request.query, 400),
            "GET /spaces": lambda request: page(NARROW_ROWS, request.query, 400),
        }
    )
    with api:
        specs = write_spec(tmp_path / "specs", _wide_spec(*names)).parent
        use_specs(monkeypatch, specs, {"wiki": api.url})
        db = use_warehouse(monkeypatch, tmp_path / "warehouse.duckdb")
        result = materialize_specs(specs, instance=instance)
        requests = len(api.calls_to("/docs"))
    return result, db, requests


# --------------------------------------------------------------------------- soft deletes

#: the marketing API seed spec and its tables under `deletes: soft`
_MARKETING, _ORGS, _ACCOUNTS = "marketing_api", "organizations", "adaccounts"


def soft_delete_rows(specs_dir: Path, table: str) -> dict:
    """`{id: row}` of `marketing_api.<table>`, read back through restsync's dlt pipeline on
    either warehouse (values as the API writes them)."""
    from restsync_assets.runtime import warehouse
    from restsync_assets.specs import load_specs

    (spec,) = load_specs(specs_dir)
    with (
        warehouse.reading(spec) as place,
        place.sql.execute_query(f"select * from {place.table(table)}") as cursor,
    ):
        columns = [c[0] for c in cursor.description]
        read = cursor.fetchall()
    found = {
        row[columns.index("id")]: dict(zip(columns, map(normal, row), strict=True)) for row in read
    }
    assert len(found) == len(read), f"{table} has duplicate ids"
    return found


def marked_deleted(loaded: dict) -> dict:
    """`{id: _restsync_deleted_at}` of the rows (`soft_delete_rows`) marked deleted."""
    from restsync_assets.runtime.soft_deletes import DELETED_AT

    return {k: r[DELETED_AT] for k, r in loaded.items() if r[DELETED_AT] is not None}


def assert_live_rows_are_the_truth(loaded: dict, truth: list[dict]) -> None:
    """The rows (`soft_delete_rows`) not marked deleted are exactly the source's rows, field
    for field."""
    from restsync_assets.runtime.soft_deletes import DELETED_AT

    live = {k: r for k, r in loaded.items() if r[DELETED_AT] is None}
    assert_table_is(live, truth)


def marketing_truth(sandbox: Any, table: str) -> list[dict]:
    """The rows the marketing API serves now: an ad account of a deleted organization is not
    served."""
    served = sandbox.rows(_MARKETING, table)
    if table == _ACCOUNTS:
        orgs = {o["id"] for o in sandbox.rows(_MARKETING, _ORGS)}
        served = [a for a in served if a["organization_id"] in orgs]
    return served


# --------------------------------------------------------------------------- the starter spec's API

#: the items of the API the starter spec (`component.STARTER_SPEC`) describes
STARTER_ITEMS = [
    {"id": 1, "name": "first", "price": 9.5},
    {"id": 2, "name": "second", "price": 12.0},
]


def starter_items_api() -> JsonApi:
    """The API the starter spec describes, `GET /v1/items` -> `{"data": STARTER_ITEMS}`, as a
    `JsonApi` (serve it with `with starter_items_api() as api:`, at `api.url`)."""
    return JsonApi({"GET /v1/items": lambda request: {"data": STARTER_ITEMS}})


# --------------------------------------------------------------------------- a new dg project


def new_dg_project(project: Path) -> Path:
    """create-dagster's project layout: pyproject.toml naming the package, `definitions.py`
    loading the `defs/` folder. Returns the package folder (`src/acme`)."""
    package = project / "src" / "acme"
    (package / "defs").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(
        "from pathlib import Path\n\n"
        "from dagster import definitions, load_from_defs_folder\n\n\n"
        "@definitions\ndef defs():\n"
        "    return load_from_defs_folder(path_within_project=Path(__file__).parent)\n"
    )
    (project / "pyproject.toml").write_text(
        '[project]\nname = "acme"\nversion = "0.1.0"\ndependencies = ["restsync"]\n\n'
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "acme"\n'
    )
    return package


def helpdesk_spec(
    concurrency: object = 1, limit: object = None, page: int = 3, name: str = "desk"
) -> dict:
    """A spec over the sandbox's bearer vendor `helpdesk` (47 tickets, offset pages of `page`),
    with `client.concurrency` and, when given, `client.rate_limit`."""
    return {
        "name": name,
        "client": {
            "base_url": "https://helpdesk.example.com",
            "auth": {"type": "bearer"},
            "concurrency": concurrency,
            **({"rate_limit": limit} if limit is not None else {}),
        },
        "resources": [
            {
                "name": "tickets",
                "primary_key": "id",
                "endpoint": {
                    "path": "/v1/tickets",
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": page},
                },
            }
        ],
    }

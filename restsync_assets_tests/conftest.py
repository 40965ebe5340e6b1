"""Shared fixtures: a real sandbox API on 127.0.0.1, a private warehouse and specs folder per
test, the seed specs, a fake retry clock, real subprocesses, and a fresh PostgreSQL database
per session. The helpers they build on are in `support.py`."""

from __future__ import annotations

import io
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import yaml

from restsync_assets.runtime.http import retry
from restsync_assets.sandbox import Sandbox

from .support import (
    REPO,
    SEED_SPECS,
    WORKER,
    FakeClock,
    RawApi,
    serving,
    use_specs,
    use_warehouse,
)

#: `serving` is imported from here by the session, OAuth and paginator tests too.
__all__ = ["REPO", "SEED_SPECS", "serving"]

#: PostgreSQL / Dagster instance / RabbitMQ fixtures of the production path
pytest_plugins = ("restsync_assets_tests.servers",)

#: The venv's console scripts (`dagster`, `restsync`), as a user runs them.
BIN = Path(sys.executable).parent
#: Bound on one wait for a subprocess: its next awaited line, or its exit.
PROCESS_TIMEOUT = 300.0


#: Modules whose tests take longest (whole Dagster processes, servers, every seed spec), run
#: first: xdist hands whole modules to its workers in collection order (`--dist loadfile
#: --no-loadscope-reorder`), so a long one left for the end would keep one worker busy while
#: the other has nothing left to do.
LONGEST_FIRST = (
    "test_wheel_project",
    "test_deploying",
    "test_parallel_runs",
    "test_dg_project",
    "test_server_runs",
    "test_e2e_seeds",
    "test_features_together",
    "test_quarantine",
    "test_readme_commands",
    "test_child_cursors",
    "test_operations",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `LONGEST_FIRST` modules' tests first, in that order; the rest as collected."""
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


@pytest.fixture(autouse=True)
def _fresh_masking_registry() -> Iterator[None]:
    """Each test starts with no registered secrets: the registry is process-wide, and a
    test's short fake secret ("secret") would otherwise mask words in later tests' messages."""
    from restsync_assets.runtime.http.masking import forget_secrets

    forget_secrets()
    yield
    forget_secrets()


@pytest.fixture
def sandbox():
    """The sandbox serving all five seed APIs on a free loopback port."""
    with Sandbox() as running:
        yield running


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    """A DuckDB file and dlt pipelines folder of this test's own."""
    path = use_warehouse(
        monkeypatch, tmp_path / "warehouse" / "restsync_test.duckdb", tmp_path / "pipelines"
    )
    use_specs(monkeypatch, SEED_SPECS)
    return path


@pytest.fixture
def sandbox_env(sandbox, warehouse, monkeypatch):
    """Every seed spec pointed at the sandbox through the documented env vars."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    return sandbox


@pytest.fixture
def specs_dir(tmp_path, warehouse, monkeypatch) -> Path:
    """An empty specs folder restsync reads (`RESTSYNC_SPECS_DIR`), with this test's own
    warehouse: write specs into it with `support.write_spec`."""
    directory = tmp_path / "specs"
    directory.mkdir()
    return use_specs(monkeypatch, directory)


@pytest.fixture
def specs():
    """The seed specs (`source_specs/`), loaded, by name."""
    from restsync_assets.specs import load_specs

    return {s.name: s for s in load_specs(SEED_SPECS)}


@pytest.fixture
def defs(specs):
    """The Dagster definitions of the seed specs."""
    from restsync_assets.definitions import build_definitions

    return build_definitions(list(specs.values()))


@pytest.fixture
def retry_clock(monkeypatch) -> FakeClock:
    """A `FakeClock` as restsync's retry clock: every wait is recorded in `sleeps`, none slept."""
    fake = FakeClock()
    monkeypatch.setattr(retry, "CLOCK", fake)
    return fake


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


CHECK_LINE = re.compile(r"Asset check '(\w+)' on '([\w/]+)' (passed|failed)")


def check_results(output: str) -> dict[tuple[str, str], str]:
    """`{(asset, check): "passed" | "failed"}` from the event log lines a Dagster CLI run prints."""
    return {(m[2], m[1]): m[3] for m in CHECK_LINE.finditer(output)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C (SIGINT to its group), then the exit code; SIGKILL if it does not stop."""
        self.signal_group(signal.SIGINT)
        try:
            return self.finish(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            return self.finish(timeout)


@pytest.fixture
def commands() -> Iterator[Callable[..., Command]]:
    """`start(argv, cwd=None)` runs a `Command`; any still running at teardown is killed."""
    started: list[Command] = []

    def start(argv: Sequence[object], cwd: Path | None = None) -> Command:
        started.append(Command([str(a) for a in argv], cwd))
        return started[-1]

    yield start
    for command in started:
        if command.process.poll() is None:
            command.signal_group(signal.SIGKILL)
            command.process.wait(timeout=PROCESS_TIMEOUT)


def write_dagster_yaml(home: Path, **settings: object) -> None:
    """`$DAGSTER_HOME/dagster.yaml`: telemetry off (tests stay on loopback) plus `settings`."""
    config = {"telemetry": {"enabled": False}, **settings}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    """A fresh `DAGSTER_HOME`, initialised once as the README says before runs start at once
    (`dagster instance migrate`; two first runs creating its SQLite storage together race)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_dagster_yaml(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    init = subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    return home


# --------------------------------------------------------------------------- servers

#: The local PostgreSQL server tests use (trust authentication, user postgres).
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def server_unavailable(reason: str) -> None:
    """Skip the test with `reason`, or fail it when `RESTSYNC_REQUIRE_SERVERS=1` (CI)."""
    if os.environ.get("RESTSYNC_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{reason}, and RESTSYNC_REQUIRE_SERVERS=1 requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432, one per test session (per xdist worker:
    the name holds the worker's id and a random part), dropped after the session."""
    try:
        import psycopg2
    except ImportError:
        server_unavailable('psycopg2 is not installed (pip install -e ".[postgres]")')
    try:
        admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **POSTGRES)
    except psycopg2.OperationalError as error:
        reason = str(error).strip().splitlines()[0]
        server_unavailable(f"no PostgreSQL on 127.0.0.1:5432 ({reason})")
    admin.autocommit = True
    name = f"restsync_test_{WORKER}_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'create database "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


def postgres_sql(database: str, sql: str) -> list[tuple]:
    """Run `sql` on `database` (committed); its rows, if it returns any."""
    import psycopg2

    with psycopg2.connect(dbname=database, **POSTGRES) as con, con.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def postgres_warehouse(postgres_database, warehouse, monkeypatch) -> str:
    """Loads and reads go to the session's PostgreSQL database, emptied first; dlt's state stays
    in this test's own folder (`warehouse`). Returns the database name."""
    schemas = postgres_sql(
        postgres_database,
        "select nspname from pg_namespace where nspname not like 'pg\\_%'"
        " and nspname not in ('public', 'information_schema')",
    )
    for (schema,) in schemas:
        postgres_sql(postgres_database, f'drop schema "{schema}" cascade')
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__CREDENTIALS",
        f"postgresql://postgres:@127.0.0.1:5432/{postgres_database}",
    )
    return postgres_database


@pytest.fixture(scope="module")
def _server() -> Iterator[RawApi]:
    """One raw HTTP server per test module (the HTTP-layer tests)."""
    with RawApi().running() as server:
        yield server


@pytest.fixture
def api(_server: RawApi) -> RawApi:
    """The module's raw server, its requests forgotten and answering `200 {}` again."""
    return _server.reset()

"""Every fixture but the real servers': a real sandbox API on 127.0.0.1, a private warehouse
and specs folder per test, the seed specs, a fake retry clock, real subprocesses, a Dagster
home, a raw HTTP server. The helpers they build on are in `support.py` and
`fake_servers.py`; the PostgreSQL, Redis and RabbitMQ fixtures in `real_servers.py`."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from restsync_assets import settings
from restsync_assets.runtime.http import retry
from restsync_assets.sandbox import Sandbox

from .fake_servers import RawApi
from .support import (
    BIN,
    PROCESS_TIMEOUT,
    SEED_PARTITIONS_NOW,
    SEED_SPECS,
    Command,
    FakeClock,
    use_specs,
    use_warehouse,
    write_dagster_yaml,
)

#: The machine's PostgreSQL, Redis and RabbitMQ: their fixtures
pytest_plugins = ("restsync_assets_tests.real_servers",)


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
    "test_benchmarks_smoke",
    "test_exactly_once",
    "test_child_pool_faults",
    "test_step_windows",
    "test_airbyte_import",
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
    """The sandbox serving every seed API (`SEEDS`) on a free loopback port."""
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


@pytest.fixture(params=["duckdb", "postgres"])
def destination(request) -> str:
    """Each test on a DuckDB file of its own and on the session's PostgreSQL database (a
    module needing more than the name overrides this fixture)."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_warehouse")
    else:
        request.getfixturevalue("warehouse")
    return request.param


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
def seed_partitions() -> Iterator[datetime]:
    """Dagster's partitions in this process take `SEED_PARTITIONS_NOW` for now (Dagster's
    `partition_loading_context`): a run over all of a seed asset's partitions covers every day
    the sandbox has rows for and a week more, whatever the date. A subprocess computing its
    own range still sees the real date: give it the range computed here."""
    from dagster import partition_loading_context

    with partition_loading_context(effective_dt=SEED_PARTITIONS_NOW):
        yield SEED_PARTITIONS_NOW


@pytest.fixture
def small_cap(monkeypatch) -> None:
    """restsync's default DuckDB memory cap at its floor (16 MB), below what one row group of
    `support.wide_rows()` needs."""
    monkeypatch.setattr(settings, "DUCKDB_MEMORY_CAP_MB", 16)
    assert settings.default_duckdb_memory_limit() == "16MB"


@pytest.fixture
def retry_clock(monkeypatch) -> FakeClock:
    """A `FakeClock` as restsync's retry clock: every wait is recorded in `sleeps`, none slept."""
    fake = FakeClock()
    monkeypatch.setattr(retry, "CLOCK", fake)
    return fake


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


@pytest.fixture(scope="module")
def _server() -> Iterator[RawApi]:
    """One raw HTTP server per test module (the HTTP-layer tests)."""
    with RawApi().running() as server:
        yield server


@pytest.fixture
def api(_server: RawApi) -> RawApi:
    """The module's raw server, its requests forgotten and answering `200 {}` again."""
    return _server.reset()

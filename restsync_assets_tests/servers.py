"""Test support for the production path: the machine's PostgreSQL, RabbitMQ and Redis.

Every test gets what it needs fresh and drops it after: a PostgreSQL database for the
warehouse, one for the Dagster instance (a copy of a template migrated once per session),
a RabbitMQ vhost for Celery, a Redis key prefix for shared rate budgets. When a server does
not answer, the test is skipped with one line naming it, unless `RESTSYNC_REQUIRE_SERVERS=1`
(CI), which makes it fail instead.

Names of databases and vhosts hold the pytest-xdist worker's id (`support.WORKER`): the
suite runs on several workers at once against the same servers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import REPO
from .support import WORKER

PG_HOST, PG_PORT, PG_USER, PG_ADMIN_DB = "127.0.0.1", 5432, "postgres", "test"
RABBITMQ = "127.0.0.1:5672"
REDIS_URL = "redis://127.0.0.1:6379/0"
#: Bound on anything a test waits for (a subprocess, a run, a daemon tick).
TIMEOUT = 180.0


def unavailable(what: str, why: object) -> None:
    """Skip (one line) when a server is missing; fail when CI requires the servers."""
    first_line = str(why).strip().splitlines()[:1] or [type(why).__name__]
    message = f"{what} not available: {first_line[0]}"
    if os.environ.get("RESTSYNC_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{message} (RESTSYNC_REQUIRE_SERVERS=1)", pytrace=False)
    pytest.skip(message)


def pg_url(database: str, driver: str = "postgresql") -> str:
    """`postgresql://postgres:@127.0.0.1:5432/<database>` (dlt needs the `:` before `@`)."""
    return f"{driver}://{PG_USER}:@{PG_HOST}:{PG_PORT}/{database}"


def pg_connect(database: str = PG_ADMIN_DB):
    import psycopg2

    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database, connect_timeout=5
    )
    connection.autocommit = True
    return connection


def pg_query(database: str, sql: str, *args: object) -> list[tuple]:
    with contextlib.closing(pg_connect(database)) as connection, connection.cursor() as cursor:
        cursor.execute(sql, args or None)
        return cursor.fetchall() if cursor.description else []


@contextlib.contextmanager
def fresh_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database (a copy of `template` if given), dropped when the block ends; its name
    holds the xdist worker's id."""
    name = f"{prefix}_{WORKER}_{uuid.uuid4().hex[:10]}"
    copy = f" TEMPLATE {template}" if template else ""
    pg_query(PG_ADMIN_DB, f"CREATE DATABASE {name}{copy}")
    try:
        yield name
    finally:
        pg_query(PG_ADMIN_DB, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_server() -> None:
    try:
        pg_query(PG_ADMIN_DB, "SELECT 1")
    except Exception as error:
        unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT}", error)


@pytest.fixture
def warehouse_db(postgres_server, tmp_path, monkeypatch) -> str:
    """A fresh PostgreSQL database as restsync's destination (env vars as the README says)."""
    with fresh_database("restsync_wh") as name:
        monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", pg_url(name))
        monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
        monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")  # no call beyond loopback
        yield name


@pytest.fixture(scope="session")
def dagster_template(postgres_server, tmp_path_factory) -> Iterator[str]:
    """A database holding Dagster's PostgreSQL schema, migrated once; tests copy it."""
    from dagster import DagsterInstance

    with fresh_database("restsync_dagster_tmpl") as name:
        home = tmp_path_factory.mktemp("dagster_template")
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DAGSTER_PG_URL", pg_url(name, "postgresql+psycopg2"))
            with DagsterInstance.from_config(str(home)) as instance:
                instance.get_runs(limit=1)  # creates the tables
        yield name


@dataclass(frozen=True)
class DagsterHome:
    path: Path
    database: str

    def instance(self):
        from dagster import DagsterInstance

        return DagsterInstance.from_config(str(self.path))


@pytest.fixture
def dagster_db(dagster_template) -> Iterator[str]:
    """A fresh database with Dagster's schema (a copy of the session's template)."""
    with fresh_database("restsync_dagster", template=dagster_template) as name:
        yield name


@pytest.fixture
def pg_dagster_home(dagster_db, tmp_path, monkeypatch) -> DagsterHome:
    """DAGSTER_HOME with deploy/dagster.yaml, its storage the fresh database `dagster_db`."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", pg_url(dagster_db, "postgresql+psycopg2"))
    return DagsterHome(home, dagster_db)


@pytest.fixture
def celery_broker(monkeypatch) -> Iterator[str]:
    """A fresh RabbitMQ vhost (made with `rabbitmqctl`) as RESTSYNC_CELERY_BROKER."""
    vhost = f"restsync_test_{WORKER}_{uuid.uuid4().hex[:10]}"
    try:
        _rabbitmqctl("add_vhost", vhost)
    except (OSError, subprocess.SubprocessError) as error:
        unavailable(f"RabbitMQ at {RABBITMQ} (rabbitmqctl add_vhost)", _stderr(error))
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        url = f"pyamqp://guest:guest@{RABBITMQ}/{vhost}"
        monkeypatch.setenv("RESTSYNC_CELERY_BROKER", url)
        yield url
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@dataclass(frozen=True)
class RedisBudgets:
    """The machine's Redis as `RESTSYNC_RATE_LIMIT_URL`; spec names starting with `prefix`
    (fresh per session) have budget keys no other session touches."""

    url: str
    prefix: str


@pytest.fixture(scope="session")
def redis_budgets() -> Iterator[RedisBudgets]:
    """Redis at 127.0.0.1:6379 for rate budgets; every key of the session's prefix is deleted
    afterwards."""
    from restsync_assets.runtime.http.rate_limit_redis import KEY_PREFIX

    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
        client.ping()
    except Exception as error:  # ImportError, redis.RedisError
        unavailable(f"Redis at {REDIS_URL}", error)
    prefix = f"rl{uuid.uuid4().hex[:10]}"
    try:
        yield RedisBudgets(REDIS_URL, prefix)
    finally:
        for key in client.scan_iter(match=f"{KEY_PREFIX}{prefix}*"):
            client.delete(key)
        client.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def _stderr(error: Exception) -> object:
    output = getattr(error, "stderr", None)
    return output.decode(errors="replace") if output else error


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


def warehouse_ids(database: str, spec: str, resource: str) -> list:
    """Every `id` of `spec.resource` in the PostgreSQL warehouse `database`."""
    return [r[0] for r in pg_query(database, f'SELECT id FROM "{spec}"."{resource}"')]


def assert_tables_equal_sandbox(database: str, sandbox, tables) -> None:
    """Each `(spec, resource)` table holds exactly the sandbox's ids, none twice."""
    for spec, resource in tables:
        ids = warehouse_ids(database, spec, resource)
        assert len(ids) == len(set(ids)), f"{spec}.{resource} has duplicate ids"
        assert set(ids) == sandbox.ids(spec, resource), (
            f"{spec}.{resource} differs from the sandbox"
        )

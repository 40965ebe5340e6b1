"""The machine's PostgreSQL, Redis and RabbitMQ: every fixture and helper that uses them
(a pytest plugin, registered in `conftest.py`).

Each test gets what it needs fresh and nothing outlives the session: one PostgreSQL database
per session for the warehouse (`postgres_warehouse` empties it before each test), one per test
for the Dagster instance (a copy of a template migrated once per session), a RabbitMQ vhost for
Celery, a Redis key prefix for shared rate budgets; all dropped after. When a server does not
answer, the test is skipped with one line naming it, unless `RESTSYNC_REQUIRE_SERVERS=1` (CI),
which makes it fail instead.

Names of databases and vhosts hold the pytest-xdist worker's id (`support.WORKER`): the
suite runs on several workers at once against the same servers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .support import REPO, WORKER, normal, query, sandbox_keys, seed_key

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


# --------------------------------------------------------------------------- PostgreSQL


def pg_url(database: str, driver: str = "postgresql") -> str:
    """`postgresql://postgres:@127.0.0.1:5432/<database>` (dlt needs the `:` before `@`)."""
    return f"{driver}://{PG_USER}:@{PG_HOST}:{PG_PORT}/{database}"


def pg_connect(database: str = PG_ADMIN_DB):
    """A psycopg2 connection to `database`, in autocommit mode."""
    import psycopg2

    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database, connect_timeout=5
    )
    connection.autocommit = True
    return connection


def pg_query(database: str, sql: str, *args: object) -> list[tuple]:
    """Run `sql` (with `%s` placeholders for `args`) on `database`, committed; its rows, if it
    returns any."""
    with contextlib.closing(pg_connect(database)) as connection, connection.cursor() as cursor:
        cursor.execute(sql, args or None)
        return cursor.fetchall() if cursor.description else []


def warehouse_sql(sql: str) -> list[tuple]:
    """Rows of `sql` on the configured warehouse (the DuckDB file, or the PostgreSQL database
    of `DESTINATION__POSTGRES__CREDENTIALS`)."""
    from restsync_assets import settings

    if settings.destination_name() == "postgres":
        database = os.environ["DESTINATION__POSTGRES__CREDENTIALS"].rsplit("/", 1)[1]
        return pg_query(database, sql)
    return query(sql) or []


def pg_table(database: str, dataset: str, name: str) -> list[dict] | None:
    """Every row of `dataset."name"` in `database`, its values made comparable (`normal`);
    None if there is no such table."""
    with contextlib.closing(pg_connect(database)) as con, con.cursor() as cursor:
        cursor.execute("select to_regclass(%s)", (f'{dataset}."{name}"',))
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute(f'select * from {dataset}."{name}"')
        names = [d[0] for d in cursor.description]
        return [{k: normal(v) for k, v in zip(names, row, strict=True)} for row in cursor]


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
    """PostgreSQL answers at 127.0.0.1:5432 (and psycopg2 is installed), or skip/fail."""
    try:
        pg_query(PG_ADMIN_DB, "SELECT 1")
    except Exception as error:  # ImportError, psycopg2.OperationalError
        unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT}", error)


@pytest.fixture(scope="session")
def postgres_database(postgres_server) -> Iterator[str]:
    """A fresh PostgreSQL database, one per test session (per xdist worker), dropped after."""
    with fresh_database("restsync_test") as name:
        yield name


@pytest.fixture
def postgres_warehouse(postgres_database, warehouse, monkeypatch) -> str:
    """Loads and reads go to the session's PostgreSQL database, emptied first (env vars as the
    docs say); dlt's state stays in this test's own folder (`warehouse`). Returns the
    database name."""
    schemas = pg_query(
        postgres_database,
        "select nspname from pg_namespace where nspname not like 'pg\\_%'"
        " and nspname not in ('public', 'information_schema')",
    )
    for (schema,) in schemas:
        pg_query(postgres_database, f'drop schema "{schema}" cascade')
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", pg_url(postgres_database))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")  # no call beyond loopback
    return postgres_database


def assert_tables_equal_sandbox(database: str, sandbox, tables) -> None:
    """Each `(spec, resource)` table holds exactly the sandbox's keys (`id`, or the seed's
    primary key), none twice."""
    for spec, resource in tables:
        columns = ", ".join(f'"{c}"' for c in seed_key(spec, resource))
        rows = pg_query(database, f'SELECT {columns} FROM "{spec}"."{resource}"')
        ids = [tuple(str(v) for v in row) for row in rows]
        assert len(ids) == len(set(ids)), f"{spec}.{resource} has duplicate ids"
        assert set(ids) == sandbox_keys(sandbox, spec, resource), (
            f"{spec}.{resource} differs from the sandbox"
        )


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


# --------------------------------------------------------------------------- RabbitMQ, Redis


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

    client = _redis_client()
    prefix = f"rl{uuid.uuid4().hex[:10]}"
    try:
        yield RedisBudgets(REDIS_URL, prefix)
    finally:
        for key in client.scan_iter(match=f"{KEY_PREFIX}{prefix}*"):
            client.delete(key)
        client.close()


@pytest.fixture
def redis_store() -> Iterator[tuple[str, list[str]]]:
    """The machine's Redis as RESTSYNC_TOKEN_STORE_URL: `(url, keys)`; the test appends the
    keys it uses to `keys`, deleted after (with their leases)."""
    client = _redis_client()
    keys: list[str] = []
    yield REDIS_URL, keys
    for key in keys:
        client.delete(key, f"{key}:lease")
    client.close()


def _redis_client():
    """A client of Redis at `REDIS_URL` that answered a ping, or skip/fail."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
        client.ping()
    except Exception as error:  # ImportError, redis.RedisError
        unavailable(f"Redis at {REDIS_URL}", error)
    return client


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def _stderr(error: Exception) -> object:
    output = getattr(error, "stderr", None)
    return output.decode(errors="replace") if output else error

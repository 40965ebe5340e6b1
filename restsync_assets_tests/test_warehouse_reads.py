"""Checks, `restsync check` and the demo read the warehouse the run wrote (issue 8, item 3).

DuckDB and PostgreSQL (a fresh database per session, see `real_servers.postgres_database`),
empty partitions, and readers taking the loads' lock.
"""

from __future__ import annotations

import io
import logging
import os
import threading

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from restsync_assets import settings
from restsync_assets.cli import main as cli_main
from restsync_assets.cli.demo import run_demo
from restsync_assets.cli.run import QUIET, checks_definition, load_definitions, materialize_spec
from restsync_assets.runtime.locks import exclusive, lock_path
from restsync_assets.runtime.warehouse import reading

from .real_servers import pg_query
from .support import (
    LEDGER_CHECKS,
    check_evaluations,
    copy_seed_specs,
    failure_message,
    normal,
    use_specs,
)

LEDGER = ("ledger", "resource_name")


def _stale_duckdb_ledger() -> None:
    """A DuckDB file at the configured path whose ledger table would pass every row check."""
    path = settings.duckdb_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema ledger")
        con.execute("create table ledger.resource_name (id varchar not null, name varchar)")
        con.execute("insert into ledger.resource_name values ('stale-1', 'a'), ('stale-2', 'b')")


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# --------------------------------------------------------------------------- PostgreSQL


def test_checks_on_postgres_read_postgres_and_fail_when_it_is_tampered_with(
    defs, specs, sandbox_env, postgres_warehouse
):
    """A ledger load into PostgreSQL equals the sandbox row for row, uses a file format
    PostgreSQL loads without dlt's per-table fallback warning (and whose `rows_loaded` counts
    rows), and its checks read PostgreSQL,
    not the stale DuckDB file at the configured path: duplicates, a wrong column type and a
    delete made in PostgreSQL fail them."""
    _stale_duckdb_ledger()
    warnings = _Warnings()
    logging.getLogger("dlt").addHandler(warnings)
    try:
        (result,) = materialize_spec(defs, specs["ledger"], DagsterInstance.ephemeral())
    finally:
        logging.getLogger("dlt").removeHandler(warnings)
    assert result.success
    assert not [m for m in warnings.messages if "format" in m], warnings.messages
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == LEDGER_CHECKS
    assert all(e.passed for e in evaluations.values()), evaluations
    truth = sandbox_env.rows(*LEDGER)
    (materialization,) = result.get_asset_materialization_events()
    metadata = materialization.event_specific_data.materialization.metadata
    assert metadata["rows_loaded"].value == len(truth)

    fields = sorted(truth[0])
    loaded = pg_query(postgres_warehouse, f"select {', '.join(fields)} from ledger.resource_name")
    assert sorted(tuple(normal(v) for v in row) for row in loaded) == sorted(
        tuple(row[f] for f in fields) for row in truth
    )

    victim = sorted(r["id"] for r in truth)[0]
    table = "ledger.resource_name"
    pg_query(  # the same row again, under a new dlt row id (_dlt_id is unique)
        postgres_warehouse,
        f"create temp table copy as select * from {table} where id = '{victim}';"
        f" update copy set _dlt_id = 'duplicate'; insert into {table} select * from copy",
    )
    pg_query(postgres_warehouse, f"alter table {table} alter column active type varchar")
    checks = check_evaluations(defs)
    primary_key = checks[(LEDGER, "primary_key")]
    assert not primary_key.passed
    assert primary_key.description == (
        f"1 duplicate key in (id), e.g. {victim};"
        " reload: `restsync run ledger/resource_name --full-refresh`"
    )
    types = checks[(LEDGER, "column_types")]
    assert not types.passed
    assert types.description == "active is character varying, declared bool"

    pg_query(postgres_warehouse, f"delete from {table}")
    row_count = check_evaluations(defs)[(LEDGER, "row_count")]
    assert not row_count.passed and row_count.description == "0 rows (minimum 1)"


def test_checks_with_postgres_as_destination_never_read_a_stale_duckdb_file(
    defs, postgres_warehouse
):
    """Nothing loaded into PostgreSQL yet: the ledger is missing there, whatever the DuckDB
    file at the configured path holds."""
    _stale_duckdb_ledger()
    row_count = check_evaluations(defs)[(LEDGER, "row_count")]
    assert not row_count.passed
    assert row_count.description == (
        "table ledger.resource_name does not exist: load it with"
        " `restsync run ledger/resource_name --full-refresh`"
    )


def test_demo_on_postgres_equals_the_sandbox_and_restsync_check_passes(
    postgres_warehouse, seed_partitions, capsys
):
    """The demo with RESTSYNC_DESTINATION=postgres compares all 20 tables in PostgreSQL with
    the sandbox (rows loaded = rows in the table, no file format warning from dlt);
    `restsync check` then names the PostgreSQL warehouse and passes."""
    out = io.StringIO()
    warnings = _Warnings()
    logging.getLogger("dlt").addHandler(warnings)
    try:
        report = run_demo(out=out)
    finally:
        logging.getLogger("dlt").removeHandler(warnings)
    assert report.summary() == "20/20 assets loaded and equal to the sandbox", out.getvalue()
    assert report.ok, out.getvalue()
    assert [(r.asset, r.rows_loaded) for r in report.rows] == [
        (r.asset, r.table_rows) for r in report.rows
    ]
    assert not [m for m in warnings.messages if "format" in m], warnings.messages
    where = f"postgres postgresql://postgres:***@127.0.0.1:5432/{postgres_warehouse}"
    assert report.warehouse == where
    assert cli_main(["check"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"checks against {where}"
    assert lines[-1] == "67/67 checks passed"


CREDENTIAL_PROBLEMS = [
    pytest.param(
        None,
        "postgres warehouse: credentials missing or incomplete (credentials): set"
        " DESTINATION__POSTGRES__CREDENTIALS to postgresql://USER:PASSWORD@HOST:5432/DATABASE"
        " (an empty password still needs the ':', as in postgresql://postgres:@127.0.0.1:5432/restsync)"
        " (or [destination.postgres] credentials in .dlt/secrets.toml)",
        id="missing",
    ),
    pytest.param(
        "postgresql://postgres:secret-pw@127.0.0.1:1/restsync",
        'postgres warehouse: cannot connect (connection to server at "127.0.0.1", port 1 failed:'
        " Connection refused): check DESTINATION__POSTGRES__CREDENTIALS",
        id="unreachable",
    ),
]


@pytest.mark.parametrize(("credentials", "line"), CREDENTIAL_PROBLEMS)
def test_a_bad_postgres_credential_is_one_line_naming_what_to_set(
    credentials, line, warehouse, monkeypatch, capsys
):
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    if credentials is None:
        monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    else:
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", credentials)
    assert cli_main(["check"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == line
    assert "secret-pw" not in captured.out + captured.err


def test_a_load_without_postgres_credentials_fails_with_the_same_line(
    defs, specs, sandbox_env, monkeypatch
):
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    (result,) = materialize_spec(defs, specs["ledger"], DagsterInstance.ephemeral())
    assert not result.success
    assert failure_message(result) == (f"ledger: {CREDENTIAL_PROBLEMS[0].values[1]}")


# --------------------------------------------------------------------------- restsync check


def test_restsync_check_after_restsync_demo_checks_the_demo_warehouse_and_passes(
    tmp_path, monkeypatch, capfd
):
    """With nothing configured, `restsync check` of an empty default warehouse says so in one
    line; after `restsync demo` (its own default file, handed to a child process: the
    environment of the caller is left as it was) it checks the demo's warehouse, names it,
    and passes."""
    monkeypatch.setenv("RESTSYNC_PROJECT_DIR", str(tmp_path))  # both default files go under it
    for name in ("RESTSYNC_DUCKDB_PATH", "RESTSYNC_PIPELINES_DIR", "RESTSYNC_DESTINATION"):
        monkeypatch.delenv(name, raising=False)
    use_specs(monkeypatch, copy_seed_specs(tmp_path / "specs", ["ledger"]))
    default = tmp_path / "data" / "restsync.duckdb"
    demo = tmp_path / "data" / "demo" / "restsync_demo.duckdb"

    assert cli_main(["check"]) == 1
    assert capfd.readouterr().out.strip().splitlines() == [
        f"checks against duckdb {default}: it is empty, nothing restsync loaded to check"
        " (materialize assets first, or run `restsync demo`)"
    ]

    assert cli_main(["demo"]) == 0
    assert capfd.readouterr().out.rstrip().endswith(f"warehouse: duckdb {demo}")
    assert "RESTSYNC_DUCKDB_PATH" not in os.environ  # the demo never writes the environment
    assert cli_main(["check"]) == 0
    lines = capfd.readouterr().out.strip().splitlines()
    assert lines[0] == (
        f"checks against duckdb {demo} (the `restsync demo` warehouse: {default} holds"
        " nothing restsync loaded)"
    )
    assert lines[-1] == "5/5 checks passed"


# --------------------------------------------------------------------------- empty partitions


def test_an_empty_partition_passes_its_checks_and_a_never_loaded_table_still_fails(
    defs, specs, sandbox_env
):
    """A daily partition with no rows in the API (March; the sandbox's analytics are January's)
    loads nothing, so dlt creates no table: its checks pass, saying so; `accounts`, never
    loaded, still fails with the materialize-first line, and so does the analytics table once
    it had rows and is gone."""
    spec = specs["ad_analytics"]
    (partitioned,) = [a for a in load_definitions(defs, spec) if a.partitions_def]
    result = materialize(
        [partitioned, checks_definition(defs, spec)],
        resources=defs.resources,
        partition_key="2026-03-01",
        instance=DagsterInstance.ephemeral(),
        run_config=QUIET,
    )
    assert result.success
    asked = [r.query for r in sandbox_env.requests if r.resource == "ad_campaign_analytics"]
    assert {(q["start_date"], q["end_date"]) for q in asked} == {("2026-03-01", "2026-03-02")}
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == LEDGER_CHECKS
    assert all(e.passed for e in evaluations.values()), evaluations
    assert evaluations["row_count"].description == "0 rows (minimum 0): no rows in this partition"
    for name in ("primary_key", "not_null", "column_types"):
        assert evaluations[name].description == "no rows in this partition"
    assert evaluations["freshness"].description.startswith(
        "no rows in this partition; fresh: last materialization"
    )

    checks = check_evaluations(defs)
    analytics = ("ad_analytics", "ad_campaign_analytics")
    assert all(checks[(analytics, name)].passed for name in LEDGER_CHECKS)
    assert checks[(analytics, "freshness")].description == "no rows in this partition"
    accounts = checks[(("ad_analytics", "accounts"), "row_count")]
    assert not accounts.passed
    assert accounts.description == (
        "table ad_analytics.accounts does not exist: load it with"
        " `restsync run ad_analytics/accounts --full-refresh`"
    )

    # once a partition brought rows, a missing table is no empty partition: it is gone
    assert materialize(
        [partitioned],
        resources=defs.resources,
        partition_key="2026-01-07",
        instance=DagsterInstance.ephemeral(),
        run_config=QUIET,
    ).success
    assert check_evaluations(defs)[(analytics, "row_count")].description == "10 rows (minimum 0)"
    with duckdb.connect(str(settings.duckdb_path())) as con:
        con.execute("drop table ad_analytics.ad_campaign_analytics")
    gone = check_evaluations(defs)[(analytics, "row_count")]
    assert not gone.passed
    assert gone.description == (
        "table ad_analytics.ad_campaign_analytics does not exist: load it with"
        " `restsync run ad_analytics/ad_campaign_analytics --full-refresh`"
    )


# --------------------------------------------------------------------------- the lock


def test_a_warehouse_reader_waits_for_the_lock_loads_hold(specs, warehouse):
    """Checks and the demo read DuckDB only under `<file>.lock`, the lock every load holds, so
    a reader never opens the file while a load writes it (DuckDB's "Could not set lock")."""
    spec = specs["ledger"]
    lock = lock_path(spec)
    assert lock == warehouse.with_name(warehouse.name + ".lock")
    waited, entered = threading.Event(), threading.Event()

    def read():
        with reading(spec, on_wait=lambda _msg: waited.set()):
            entered.set()

    with exclusive(lock):  # a load in progress
        reader = threading.Thread(target=read)
        reader.start()
        assert waited.wait(timeout=60)
        assert not entered.is_set()
    reader.join(timeout=60)
    assert entered.is_set()

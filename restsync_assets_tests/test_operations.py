"""Incremental merges, partitions, freshness, asset checks and schedules (issue 4)."""

from __future__ import annotations

import io
import re
import threading
import time

import duckdb
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

from restsync_assets import settings
from restsync_assets.checks import build_spec_checks
from restsync_assets.cli import main as cli_main
from restsync_assets.cli.check import checks_summary
from restsync_assets.cli.run import QUIET, load_definitions, materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.partitions import RANGE_END_TAG, RANGE_START_TAG

from .support import LEDGER_CHECKS, FakeClock, check_evaluations, query, table_ids

ANALYTICS = AssetKey(["ad_analytics", "ad_campaign_analytics"])
LEDGER = AssetKey(["ledger", "resource_name"])


def _requests(sandbox, spec, resource):
    return [r for r in sandbox.requests if r.spec == spec and r.resource == resource]


def _ledger_table():
    return {
        row[0]: row[1:]
        for row in query('select id, name, updated_at from "ledger"."resource_name"')
    }


# --------------------------------------------------------------------------- incremental


def test_incremental_second_run_fetches_only_changed_rows_and_merges(defs, specs, sandbox_env):
    instance = DagsterInstance.ephemeral()
    (first,) = materialize_spec(defs, specs["ledger"], instance)
    assert first.success
    truth = sandbox_env.rows("ledger", "resource_name")
    assert set(_ledger_table()) == {r["id"] for r in truth}
    high_water = max(r["updated_at"] for r in truth)
    assert len(_requests(sandbox_env, "ledger", "resource_name")) >= 5  # 23 rows in pages of 5

    changed = dict(truth[3], name="renamed", updated_at="2026-11-01T00:00:00Z")
    added = dict(truth[0], id="ledger-new-1", name="brand new", updated_at="2026-11-02T00:00:00Z")
    sandbox_env.upsert_row("ledger", "resource_name", changed)
    sandbox_env.upsert_row("ledger", "resource_name", added)
    sandbox_env.clear_requests()

    (second,) = materialize_spec(defs, specs["ledger"], instance)
    assert second.success
    requests = _requests(sandbox_env, "ledger", "resource_name")
    assert len(requests) == 1  # one short page: only rows updated since the last run
    assert requests[0].query["updated_since"] == high_water
    table = _ledger_table()
    assert len(table) == len(truth) + 1  # merged: no duplicate of the changed row
    assert table[changed["id"]][0] == "renamed"
    assert table["ledger-new-1"][0] == "brand new"
    assert set(table) == sandbox_env.ids("ledger", "resource_name")


# --------------------------------------------------------------------------- partitions


def _analytics_ids(sandbox, days):
    return {
        r["id"] for r in sandbox.rows("ad_analytics", "ad_campaign_analytics") if r["date"] in days
    }


def _analytics_job(defs, specs):
    (partitioned,) = [a for a in load_definitions(defs, specs["ad_analytics"]) if a.partitions_def]
    return partitioned


def test_a_partition_loads_exactly_its_window_and_reruns_idempotently(defs, specs, sandbox_env):
    assets_def = _analytics_job(defs, specs)
    instance = DagsterInstance.ephemeral()
    for _ in range(2):
        result = materialize(
            [assets_def],
            resources=defs.resources,
            partition_key="2026-01-07",
            instance=instance,
            run_config=QUIET,
        )
        assert result.success
        ids = table_ids("ad_analytics", "ad_campaign_analytics")
        assert len(ids) == len(set(ids))
        assert set(ids) == _analytics_ids(sandbox_env, {"2026-01-07"})
    queries = [r.query for r in _requests(sandbox_env, "ad_analytics", "ad_campaign_analytics")]
    assert {(q["start_date"], q["end_date"]) for q in queries} == {("2026-01-07", "2026-01-08")}


def test_backfill_of_three_days_is_one_run_with_one_range(defs, specs, sandbox_env):
    assets_def = _analytics_job(defs, specs)
    result = materialize(
        [assets_def],
        resources=defs.resources,
        instance=DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: "2026-01-10", RANGE_END_TAG: "2026-01-12"},
        run_config=QUIET,
    )
    assert result.success
    days = {"2026-01-10", "2026-01-11", "2026-01-12"}
    assert set(table_ids("ad_analytics", "ad_campaign_analytics")) == _analytics_ids(
        sandbox_env, days
    )
    queries = [r.query for r in _requests(sandbox_env, "ad_analytics", "ad_campaign_analytics")]
    assert {(q["start_date"], q["end_date"]) for q in queries} == {("2026-01-10", "2026-01-13")}


def test_two_partitions_in_parallel_do_not_race(defs, specs, sandbox_env):
    assets_def = _analytics_job(defs, specs)
    results, errors = {}, []

    def run(day):
        try:
            results[day] = materialize(
                [assets_def],
                resources=defs.resources,
                partition_key=day,
                instance=DagsterInstance.ephemeral(),
                run_config=QUIET,
            )
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(day,))
        for day in ("2026-01-15", "2026-01-16", "2026-01-17")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert all(r.success for r in results.values()) and len(results) == 3
    ids = table_ids("ad_analytics", "ad_campaign_analytics")
    assert len(ids) == len(set(ids))
    assert set(ids) == _analytics_ids(sandbox_env, {"2026-01-15", "2026-01-16", "2026-01-17"})
    # partition runs keep no incremental cursor, so the unpartitioned part of the spec is unaffected
    (unpartitioned,) = [
        a for a in load_definitions(defs, specs["ad_analytics"]) if not a.partitions_def
    ]
    assert materialize([unpartitioned], resources=defs.resources, run_config=QUIET).success


def test_child_of_a_partitioned_parent_shares_its_partitions(tmp_path):
    from restsync_assets.specs import parse_spec

    raw = {
        "name": "shop",
        "client": {"base_url": "https://api.example.com"},
        "resources": [
            {
                "name": "orders",
                "endpoint": "/orders",
                "partitions": {"type": "daily", "start": "2026-01-01"},
            },
            {"name": "order_lines", "endpoint": "/orders/{order_id}/lines"},
            {"name": "customers", "endpoint": "/customers"},
        ],
    }
    spec = parse_spec(raw, tmp_path / "shop.yaml")
    assert spec.resource("order_lines").partitions == spec.resource("orders").partitions
    groups = {p.type if p else None: [r.name for r in rs] for p, rs in spec.load_groups()}
    assert groups == {"daily": ["orders", "order_lines"], None: ["customers"]}
    names = sorted(a.node_def.name for a in build_definitions([spec]).assets)
    assert names == ["shop_daily_load", "shop_load"]


# --------------------------------------------------------------------------- checks


def _tamper(sql: str) -> None:
    with duckdb.connect(str(settings.duckdb_path())) as con:
        con.execute(sql)


def test_checks_pass_after_a_load_and_fail_on_purpose_naming_rows(defs, specs, sandbox_env):
    assert all(
        r.success for r in materialize_spec(defs, specs["ledger"], DagsterInstance.ephemeral())
    )
    key = ("ledger", "resource_name")
    checks = check_evaluations(defs)
    assert {n for (k, n) in checks if k == key} == LEDGER_CHECKS
    assert all(checks[(key, n)].passed for n in LEDGER_CHECKS)

    table = '"ledger"."resource_name"'
    victim = sorted(sandbox_env.ids("ledger", "resource_name"))[0]
    _tamper(f"insert into {table} select * from {table} where id = '{victim}'")
    _tamper(f'alter table {table} alter column "name" set data type varchar')
    _tamper(f"alter table {table} alter column id drop not null")
    _tamper(f"update {table} set id = null where id = (select max(id) from {table})")
    _tamper(f'alter table {table} alter column "active" set data type varchar')
    checks = check_evaluations(defs)
    pk = checks[(key, "primary_key")]
    assert not pk.passed
    assert pk.description == (
        f"1 duplicate key in (id), e.g. {victim}; 1 row with a null key;"
        " reload: `restsync run ledger/resource_name --full-refresh`"
    )
    not_null = checks[(key, "not_null")]
    assert not not_null.passed and not_null.description.startswith("1 null id")
    types = checks[(key, "column_types")]
    assert not types.passed and types.description == "active is VARCHAR, declared bool"

    _tamper(f"delete from {table}")
    rows = check_evaluations(defs)[(key, "row_count")]
    assert not rows.passed and rows.description == "0 rows (minimum 1)"


def test_checks_of_a_missing_table_say_what_to_do(defs, warehouse):
    checks = check_evaluations(defs)
    evaluation = checks[(("workspace_docs", "users"), "row_count")]
    assert not evaluation.passed
    assert evaluation.description == (
        "table workspace_docs.users does not exist: load it with"
        " `restsync run workspace_docs/users --full-refresh`"
    )


def test_freshness_check_fails_when_stale_with_an_injected_clock(defs, specs, sandbox_env):
    instance = DagsterInstance.ephemeral()
    assert all(
        r.success for r in materialize_spec(defs, specs["ledger"], instance, with_checks=False)
    )
    ledger = specs["ledger"]
    selection = AssetSelection.checks_for_assets(LEDGER)

    def freshness(clock):
        result = materialize(
            [build_spec_checks(ledger, clock=clock)],
            resources=defs.resources,
            instance=instance,
            selection=selection,
            run_config=QUIET,
        )
        (evaluation,) = [
            e for e in result.get_asset_check_evaluations() if e.check_name == "freshness"
        ]
        return evaluation

    fresh = freshness(FakeClock(time.time()))
    assert fresh.passed and fresh.description.startswith("fresh: last materialization")
    stale = freshness(FakeClock(time.time() + 3 * 3600))  # max_lag is 2h
    assert not stale.passed
    assert stale.description.startswith("stale: last materialization")
    assert stale.description.endswith("(max lag 2.0h)")


def table_rows_of(out: str) -> list[list[str]]:
    """The rows of the first table (`restsync check`, `restsync run`) in `out`, cells split."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    body = lines[rule + 1 : lines.index("", rule)]
    return [re.split(r"\s{2,}", line.strip()) for line in body]


CHECK_FAILED = re.compile(
    r"^\d+/67 checks passed; FAILED on ([\w/ ]+): fix what the detail says or reload"
    r" \(`restsync run \1 --full-refresh`\), then `restsync check` again$"
)


def test_restsync_check_command_exits_by_the_checks(
    defs, specs, sandbox_env, seed_partitions, capsys
):
    """`restsync check --verbose` lists every check in the run's table style; without it a
    failure shows only the failing checks in that table and ends with what to do next,
    exiting 1."""
    instance = DagsterInstance.ephemeral()
    for spec in specs.values():
        assert all(r.success for r in materialize_spec(defs, spec, instance))
    assert cli_main(["check", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("checks against duckdb "), out
    assert re.search(r"^asset +check +result +detail$", out, re.M), out
    rows = table_rows_of(out)
    assert len(rows) == 67 and {r[2] for r in rows} == {"ok"}, rows
    assert ["workspace_docs/users", "row_count", "ok"] in [r[:3] for r in rows]
    assert out.strip().splitlines()[-1] == "67/67 checks passed"

    _tamper('delete from "workspace_docs"."users"')
    assert cli_main(["check"]) == 1
    out = capsys.readouterr().out
    rows = table_rows_of(out)
    assert ["workspace_docs/users", "row_count", "FAILED", "0 rows (minimum 1)"] in rows, out
    assert {r[2] for r in rows} == {"FAILED"}, out  # passing checks are not listed
    last = CHECK_FAILED.match(out.strip().splitlines()[-1])
    assert last and "workspace_docs/users" in last[1].split(), out


SUMMARIES = [
    pytest.param([("a/x", "row_count", "ok", "3 rows")], "1/1 checks passed", id="all passed"),
    pytest.param(
        [("a/x", "row_count", "ok", ""), ("a/y", "unique", "FAILED", "2 duplicates")],
        "1/2 checks passed; FAILED on a/y: fix what the detail says or reload"
        " (`restsync run a/y --full-refresh`), then `restsync check` again",
        id="one failed",
    ),
    pytest.param(
        [("a/x", "freshness", "FAILED", "stale"), ("a/y", "primary_key", "FAILED", "2 dup")],
        "0/2 checks passed; FAILED on a/x a/y: fix what the detail says or reload"
        " (`restsync run a/y --full-refresh`) and load what is new (`restsync run a/x`),"
        " then `restsync check` again",
        id="stale and broken",
    ),
    pytest.param(
        [("a/x", "row_count", "ok", ""), ("a_checks", "-", "ERROR", "no warehouse")],
        "1/1 checks passed; 1 check step could not run (ERROR): fix what it says first",
        id="a step raised",
    ),
]


@pytest.mark.parametrize(("rows", "line"), SUMMARIES)
def test_restsync_check_ends_with_the_counts_and_what_to_do_next(rows, line):
    """The last line of `restsync check`: passed/total, then the failing assets to reload and
    the check steps that could not run."""
    assert checks_summary(rows) == line


# --------------------------------------------------------------------------- schedules


def test_schedules_have_the_spec_cron_and_selection(defs):
    ledger = defs.resolve_schedule_def("ledger_schedule")
    assert ledger.cron_schedule == "*/30 * * * *"
    assert ledger.default_status.value == "STOPPED"
    job = defs.resolve_job_def(ledger.job_name)
    assert job.asset_layer.selected_asset_keys == {LEDGER}

    daily = defs.resolve_schedule_def("ad_analytics_daily_schedule")
    assert daily.cron_schedule == "0 0 * * *"
    assert defs.resolve_job_def(daily.job_name).asset_layer.selected_asset_keys == {ANALYTICS}

    analytics = defs.resolve_schedule_def("ad_analytics_schedule")
    assert analytics.cron_schedule == "0 6 * * *"
    assert defs.resolve_job_def(analytics.job_name).asset_layer.selected_asset_keys == {
        AssetKey(["ad_analytics", "accounts"]),
        AssetKey(["ad_analytics", "account_users"]),
    }


def test_enabled_schedule_and_automation_condition(tmp_path):
    from restsync_assets.specs import parse_spec

    raw = {
        "name": "shop",
        "schedule": {"cron": "15 * * * *", "enabled": True},
        "client": {"base_url": "https://api.example.com"},
        "resources": [
            {
                "name": "orders",
                "endpoint": "/orders",
                "automation_condition": {"on_cron": "0 * * * *"},
            }
        ],
    }
    defs = build_definitions([parse_spec(raw, tmp_path / "shop.yaml")])
    assert defs.resolve_schedule_def("shop_schedule").default_status.value == "RUNNING"
    (assets_def,) = defs.assets
    assert assets_def.specs_by_key[AssetKey(["shop", "orders"])].automation_condition is not None


def test_demo_prints_checks_and_matches_the_sandbox(warehouse, seed_partitions):
    from restsync_assets.cli.demo import run_demo

    out = io.StringIO()
    report = run_demo(out=out)
    assert report.ok, out.getvalue()
    assert report.summary() == "20/20 assets loaded and equal to the sandbox"
    assert "checks passed" in out.getvalue()


# ------------------------------------------------------------ check selection, broken specs


def test_restsync_check_takes_a_selection_and_skips_specs_never_loaded(sandbox_env, capsys):
    """Only the ledger loaded: `restsync check` checks the ledger's 5 checks and no spec the
    warehouse holds no load of; `restsync check ledger` the same; a selected spec never
    loaded fails with the command that loads it; an unknown spec is one line, exit 2."""
    assert cli_main(["run", "ledger", "--no-checks"]) == 0
    capsys.readouterr()
    for args in ([], ["ledger"], ["ledger/resource_name"]):
        assert cli_main(["check", *args]) == 0, args
        assert capsys.readouterr().out.strip().splitlines()[-1] == "5/5 checks passed", args

    assert cli_main(["check", "workspace_docs/users", "-v"]) == 1
    out = capsys.readouterr().out
    assert {r[0] for r in table_rows_of(out)} == {"workspace_docs/users"}
    assert ["workspace_docs/users", "row_count", "FAILED"] in [r[:3] for r in table_rows_of(out)]
    assert "reload (`restsync run workspace_docs/users --full-refresh`)" in out

    assert cli_main(["check", "nope"]) == 2
    assert capsys.readouterr().err.startswith("nope: unknown spec 'nope'; specs: ad_analytics")


BROKEN_SPEC = """\
name: broken
client:
  base_url: http://127.0.0.1:1
resources:
  - name: things
    endpoint:
      path: /things
    write_disposition: upsert
    primary_key: id
"""


def test_one_broken_spec_stops_only_a_selection_that_names_it(
    sandbox_env, tmp_path, monkeypatch, capsys
):
    """A spec file that does not validate next to the ledger: `restsync run ledger`,
    `restsync check ledger` and `restsync preview ledger resource_name` work (the ledger table
    equals the sandbox's truth); `restsync run broken` exits 1 with the file's problem."""
    from .conftest import SEED_SPECS
    from .support import assert_table_equals_truth, use_specs

    directory = tmp_path / "specs"
    directory.mkdir()
    (directory / "ledger.yaml").write_text((SEED_SPECS / "ledger.yaml").read_text())
    (directory / "broken.yaml").write_text(BROKEN_SPEC)
    use_specs(monkeypatch, directory)

    assert cli_main(["run", "ledger"]) == 0
    assert_table_equals_truth(sandbox_env, "ledger", "resource_name")
    assert cli_main(["check", "ledger"]) == 0
    assert cli_main(["preview", "ledger", "resource_name", "--limit", "2"]) == 0
    capsys.readouterr()

    assert cli_main(["run", "broken"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "broken.yaml" in captured.err and "write_disposition" in captured.err

    assert cli_main(["check"]) == 0  # every loaded spec: the ledger
    captured = capsys.readouterr()
    assert "left out 1 spec file that do not validate (broken.yaml)" in captured.err

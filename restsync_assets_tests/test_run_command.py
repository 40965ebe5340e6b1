"""`restsync run`: selections, partitions, the quiet console, the summary table, the instance."""

from __future__ import annotations

import contextlib
import io
import re
import sys

import pytest
import yaml
from dagster import AssetKey, DagsterInstance

from restsync_assets.cli import main
from restsync_assets.cli.run import _first_use_notices, plan
from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs

from .support import SEED_SPECS, assert_table_equals_truth, assert_table_is, table_rows


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    """A DAGSTER_HOME of this test's own (telemetry off: no test reaches beyond loopback)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def summary_line(asset, loaded, in_table, checks, status="ok", requests=r"\d+", retries="0"):
    """The regex of an asset's line in the summary table: rows loaded by this run, rows in the
    table, requests, retries, lock wait, seconds, checks, status (None: `-`)."""
    cells = [
        re.escape(asset),
        *("-" if v is None else str(v) for v in (loaded, in_table, requests, retries)),
        r"(-|[\d.]+s)",
        r"(-|[\d.]+)",
        re.escape(checks),
        re.escape(status),
    ]
    return "^" + r"\s+".join(cells) + "$"


def latest(key: list[str]):
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey(key))
        return event.asset_materialization, len(instance.get_runs())


def test_run_loads_the_selection_on_dagster_home_with_a_quiet_console(
    sandbox_env, warehouse, dagster_home, capsys
):
    """Two selections -> two runs on DAGSTER_HOME's instance, tables equal to the API, one line
    per asset, the summary table; none of Dagster's log lines on the console."""
    assert main(["run", "ledger", "marketing_api/organizations"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert_table_equals_truth(sandbox_env, "ledger", "resource_name")
    assert_table_equals_truth(sandbox_env, "marketing_api", "organizations")
    assert table_rows("marketing_api", "adaccounts") is None  # not selected
    ledger = len(sandbox_env.rows("ledger", "resource_name"))
    orgs = len(sandbox_env.rows("marketing_api", "organizations"))
    assert out.splitlines()[0].startswith(
        f"restsync run: 2 assets in 2 runs; Dagster instance: DAGSTER_HOME={dagster_home};"
    )
    assert (
        f"   ledger/resource_name: materialized, {ledger} rows in the table ({ledger} loaded)"
        in out
    )
    assert re.search(summary_line("ledger/resource_name", ledger, ledger, "5/5 passed"), out, re.M)
    assert re.search(
        summary_line("marketing_api/organizations", orgs, orgs, "3/3 passed"), out, re.M
    )
    assert re.search(r"^2/2 assets materialized, 8/8 checks passed in [\d.]+s$", out, re.M)
    for noise in (" - dagster - ", "DEBUG", "Warning", "Traceback"):
        assert noise not in captured.out + captured.err

    materialization, runs = latest(["ledger", "resource_name"])
    assert runs == 2
    assert materialization.metadata["dagster/row_count"].value == ledger
    assert (
        materialization.metadata["dagster/table_name"].value
        == f"{warehouse.stem}.ledger.resource_name"
    )
    assert "dagster/partition_row_count" not in materialization.metadata


def test_one_partition_records_the_table_and_the_partition_row_counts(
    sandbox_env, warehouse, dagster_home, capsys
):
    """`--partition`: the table holds the day's rows; `dagster/row_count` counts the whole table,
    `dagster/partition_row_count` the partition's rows, after each of two days."""
    key = ["ad_analytics", "ad_campaign_analytics"]
    truth = sandbox_env.rows(*key)
    days = {}
    for day in ("2026-01-05", "2026-01-06"):
        command = ["run", "ad_analytics/ad_campaign_analytics", "--partition", day, "--no-checks"]
        assert main(command) == 0
        days[day] = [r for r in truth if r["date"] == day]
        loaded = [r for d in days for r in days[d]]
        assert_table_is(table_rows(*key), loaded)
        materialization, _ = latest(key)
        assert materialization.partition == day
        assert materialization.metadata["dagster/partition_row_count"].value == len(days[day])
        assert materialization.metadata["dagster/row_count"].value == len(loaded)
    out = capsys.readouterr().out
    assert "-> ad_analytics: ad_campaign_analytics [partition 2026-01-06]" in out
    last_day = len(days["2026-01-06"])
    assert re.search(
        summary_line("ad_analytics/ad_campaign_analytics", last_day, len(loaded), "-"), out, re.M
    )


def test_a_failed_run_ends_with_one_line_and_exit_1(sandbox_env, warehouse, capsys, monkeypatch):
    """A missing credential fails its run; the other run still loads; the last line says why."""
    from restsync_assets.runtime.http.masking import forget_secrets

    forget_secrets()  # another test may have registered a "secret" that masks "secrets.toml"
    monkeypatch.delenv("LEDGER_CLIENT_ID")
    assert main(["run", "ledger", "workspace_docs/users", "--no-checks"]) == 1
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == (
        "error: ledger: missing client id: set the env var LEDGER_CLIENT_ID"
        " (or sources.ledger.client_id in .dlt/secrets.toml)"
    )
    assert re.search(
        summary_line(
            "ledger/resource_name", None, None, "-", "FAILED", requests=None, retries=None
        ),
        out,
        re.M,
    )
    assert_table_equals_truth(sandbox_env, "workspace_docs", "users")
    assert "Traceback" not in out


def test_a_failed_check_fails_the_command(sandbox_env, warehouse, capsys, monkeypatch, tmp_path):
    """A check that fails (fewer rows than `checks.min_rows`) is counted and ends the output."""
    raw = yaml.safe_load((SEED_SPECS / "ledger.yaml").read_text())
    raw["resources"][0]["checks"] = {"min_rows": 100}
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "ledger.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(tmp_path / "specs"))
    assert main(["run"]) == 1
    out = capsys.readouterr().out
    rows = len(sandbox_env.rows("ledger", "resource_name"))
    assert re.search(
        summary_line(
            "ledger/resource_name", rows, rows, "4/5 passed, 1 FAILED", "ok, checks failed"
        ),
        out,
        re.M,
    )
    assert out.strip().splitlines()[-1] == (
        f"error: 1 check failed, the first: ledger/resource_name row_count: {rows} rows"
        " (minimum 100)"
    )


USAGE_ERRORS = [
    (
        ["nope"],
        "nope: unknown spec 'nope'; specs: ad_analytics, ledger, marketing_api, native_ads,"
        " reports, workspace_docs",
    ),
    (
        ["ledger/records"],
        "ledger/records: ledger has no resource 'records'; resources: resource_name",
    ),
    (
        ["ledger", "--partition", "2026-01-05"],
        "--partition: none of the selected assets is partitioned",
    ),
    (
        ["ad_analytics", "--partition", "2025-12-31"],
        "--partition 2025-12-31: not a partition of ad_analytics/ad_campaign_analytics"
        " (Daily, starting 2026-01-01 UTC); the first is 2026-01-01, the latest ",
    ),
]


@pytest.mark.parametrize(("args", "line"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_a_wrong_selection_is_one_line_and_exit_2(warehouse, capsys, args, line):
    assert main(["run", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(line) and captured.err.count("\n") == 1
    assert captured.out == ""


def test_no_selection_means_every_asset_and_the_latest_partition():
    specs = load_specs(SEED_SPECS)
    targets = plan(build_definitions(specs), specs)
    keys = [k for t in targets for k in t.keys]
    assert len(keys) == len(set(keys)) == 20
    for target in targets:
        partitions = target.assets_def.partitions_def
        assert target.partition == (partitions.get_last_partition_key() if partitions else None)
    assert any(t.partition for t in targets)


def test_dagsters_first_use_banner_becomes_one_line():
    """The telemetry banner Dagster prints once per DAGSTER_HOME is replaced by one line; any
    other stderr output passes unchanged."""
    from dagster_shared.telemetry import SLACK_PROMPT, TELEMETRY_TEXT

    real = io.StringIO()
    with contextlib.redirect_stderr(real), _first_use_notices("/home/x"):
        print("before", file=sys.stderr)
        print(TELEMETRY_TEXT, file=sys.stderr)
        print(SLACK_PROMPT, file=sys.stderr)
        print("after", file=sys.stderr)
    assert real.getvalue() == (
        "note: Dagster collects usage statistics for this DAGSTER_HOME; to opt out, put"
        " `telemetry: {enabled: false}` in /home/x/dagster.yaml\nbefore\nafter\n"
    )

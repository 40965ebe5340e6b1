"""Every seed spec through Dagster's own materialize, against the sandbox, into real DuckDB."""

from __future__ import annotations

from collections import Counter

from dagster import AssetKey, DagsterInstance, materialize

from restsync_assets.cli.run import QUIET, materialize_spec
from restsync_assets.sandbox import reports
from restsync_assets.specs import load_specs

from .support import SEED_SPECS, failure_message, query, sandbox_keys, table_ids, table_keys

REPORT = AssetKey(["reports", "campaign_report"])


def _materialize(defs, selection=None, instance=None, raise_on_error=True):
    return materialize(
        list(defs.assets),
        resources=defs.resources,
        selection=selection,
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
        run_config=QUIET,
    )


def _assert_tables_equal_sandbox(sandbox, keys):
    """Each table holds the sandbox's primary keys (`id`, or the report's campaign and day),
    none twice."""
    for spec, resource in keys:
        ids = table_keys(spec, resource)
        assert ids is not None, f"{spec}.{resource} was not loaded"
        assert len(ids) == len(set(ids)), f"{spec}.{resource} has duplicate ids"
        assert set(ids) == sandbox_keys(sandbox, spec, resource), (
            f"{spec}.{resource} differs from the sandbox"
        )


def _report_window(defs) -> tuple[str, str]:
    """The window of the campaign report's single-run backfill: first to last partition."""
    partitions = defs.get_assets_def(REPORT).partitions_def
    start = partitions.get_first_partition_window().start
    return start.strftime("%Y-%m-%d"), partitions.get_last_partition_window().end.strftime(
        "%Y-%m-%d"
    )


def _assert_report_is_the_vendors(sandbox, window: tuple[str, str], jobs: int) -> None:
    """`reports.campaign_report` holds the vendor's rows of the window (every field, as a
    multiset), and the vendor created `jobs` jobs in all, each over that window."""
    fields = reports.CAMPAIGN_FIELDS
    rows = query(f"select {', '.join(fields)} from reports.campaign_report")
    assert Counter(tuple(str(v) for v in row) for row in rows or []) == Counter(
        tuple(str(row[f]) for f in fields) for row in sandbox.reports.truth("campaign", *window)
    )
    assert sandbox.reports.created == Counter({("campaign", *window): jobs})


def _materialize_all(defs):
    """Every spec, its partitioned assets as one single-run backfill of all partitions."""
    instance = DagsterInstance.ephemeral()
    return [r for spec in load_specs(SEED_SPECS) for r in materialize_spec(defs, spec, instance)]


def test_every_seed_asset_loads_exactly_the_sandbox_rows(defs, sandbox_env, seed_partitions):
    """All 20 seed assets load the sandbox's ids, all 67 checks pass, and a second run in
    the same process merges without duplicates. The campaign report equals the reports
    vendor's rows, from exactly one report job per run (its window: the backfill's range)."""
    results = _materialize_all(defs)
    assert all(r.success for r in results)
    keys = [tuple(k.path) for a in defs.assets for k in a.keys]
    assert len(keys) == 20
    materialized = {
        tuple(e.asset_key.path) for r in results for e in r.get_asset_materialization_events()
    }
    assert materialized == set(keys)
    _assert_tables_equal_sandbox(sandbox_env, keys)
    window = _report_window(defs)
    _assert_report_is_the_vendors(sandbox_env, window, jobs=1)
    evaluations = [e for r in results for e in r.get_asset_check_evaluations()]
    assert len(evaluations) == 67
    assert [e for e in evaluations if not e.passed] == []
    # merge on the primary key: a second materialization in the same process adds no duplicate
    # (and does not trip dagster-dlt's schema mutation, dagster issue 34052)
    assert all(r.success for r in _materialize_all(defs))
    _assert_tables_equal_sandbox(sandbox_env, keys)
    _assert_report_is_the_vendors(sandbox_env, window, jobs=2)


def test_rows_loaded_metadata_matches_the_sandbox(defs, sandbox_env):
    result = _materialize(defs, selection=[AssetKey(["ledger", "resource_name"])])
    (event,) = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    assert metadata["rows_loaded"].value == len(sandbox_env.rows("ledger", "resource_name"))
    assert metadata["dagster/table_name"].value.endswith("ledger.resource_name")


def test_a_child_asset_materializes_alone(defs, sandbox_env):
    """Selected alone, a child loads all its rows; its parents drive it but are not written."""
    key = AssetKey(["native_ads", "campaign_items"])
    result = _materialize(defs, selection=[key])
    assert result.success
    assert {tuple(e.asset_key.path) for e in result.get_asset_materialization_events()} == {
        ("native_ads", "campaign_items")
    }
    _assert_tables_equal_sandbox(sandbox_env, [("native_ads", "campaign_items")])
    assert table_ids("native_ads", "campaigns") is None
    assert table_ids("native_ads", "accounts") is None


def test_columns_follow_the_declared_schema(defs, sandbox_env):
    assert _materialize(defs, selection=[AssetKey(["ledger", "resource_name"])]).success
    types = dict(
        query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'ledger' and table_name = 'resource_name'"
        )
    )
    assert types["id"] == "VARCHAR"
    assert types["active"] == "BOOLEAN"
    assert types["updated_at"].startswith("TIMESTAMP")


def test_missing_credential_fails_the_run_naming_the_env_var(defs, sandbox_env, monkeypatch):
    monkeypatch.delenv("WORKSPACE_DOCS_CLIENT_SECRET")
    result = _materialize(
        defs, selection=[AssetKey(["workspace_docs", "users"])], raise_on_error=False
    )
    assert not result.success
    assert failure_message(result) == (
        "workspace_docs: missing client secret: set the env var WORKSPACE_DOCS_CLIENT_SECRET "
        "(or sources.workspace_docs.client_secret in .dlt/secrets.toml)"
    )
    assert table_ids("workspace_docs", "users") is None


def test_wrong_credentials_fail_with_one_line_and_keep_loaded_data(defs, sandbox_env, monkeypatch):
    key = AssetKey(["workspace_docs", "pages"])
    assert _materialize(defs, selection=[key]).success
    before = table_ids("workspace_docs", "pages")
    secret = "definitely-wrong-secret-value"
    monkeypatch.setenv("WORKSPACE_DOCS_CLIENT_SECRET", secret)
    result = _materialize(defs, selection=[key], raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "\n" not in message and message.startswith("workspace_docs: ")
    assert "401" in message and secret not in message
    assert table_ids("workspace_docs", "pages") == before


def test_another_dlt_destination_by_configuration(defs, sandbox_env, tmp_path, monkeypatch):
    """`RESTSYNC_DESTINATION=filesystem` writes parquet files to the bucket, nothing to DuckDB."""
    bucket = tmp_path / "bucket"
    monkeypatch.setenv("RESTSYNC_DESTINATION", "filesystem")
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", bucket.as_uri())
    spec = next(s for s in load_specs(SEED_SPECS) if s.name == "workspace_docs")
    results = materialize_spec(defs, spec, DagsterInstance.ephemeral(), with_checks=False)
    assert all(r.success for r in results)
    for resource in ("blocks", "databases", "pages", "users"):
        assert list((bucket / "workspace_docs" / resource).glob("*.parquet")), resource
    assert not table_ids("workspace_docs", "users")  # nothing went to DuckDB

"""`restsync preview`: a test read against the sandbox, through the CLI, that writes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dagster import DagsterInstance

from restsync_assets.cli import main
from restsync_assets.cli.run import materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.runtime.token_store import store_path
from restsync_assets.sandbox import Fault, FaultPlan
from restsync_assets.specs import load_specs

from .support import SEED_SPECS, failure_message


def preview_json(capsys, *args: str) -> dict:
    assert main(["preview", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def truth_by_id(sandbox, spec: str, resource: str) -> dict:
    return {row["id"]: row for row in sandbox.rows(spec, resource)}


def assert_wrote_nothing(warehouse: Path) -> None:
    assert not warehouse.exists(), "preview created the warehouse"
    pipelines = Path(os.environ["RESTSYNC_PIPELINES_DIR"])
    # the refresh lease's empty lock file (`token_store`) is no state: a run takes it too
    left = [p for p in pipelines.glob("*") if not p.name.endswith(".refresh_token.lock")]
    assert not left, f"preview left dlt state: {left}"


def test_top_level_resource_shows_requests_records_and_dlt_types(sandbox_env, warehouse, capsys):
    """One line per request, the first records (equal to the API's rows), dlt's column types."""
    assert main(["preview", "ledger", "resource_name", "--limit", "3", "--pages", "2"]) == 0
    text = capsys.readouterr().out
    base = sandbox_env.base_url("ledger")
    assert f"POST  {sandbox_env.token_url('ledger')}" in text
    pages = [line for line in text.splitlines() if line.startswith(f"GET   {base}/v1/resource?")]
    assert len(pages) == 2 and all(line.split()[-3:-2] == ["200"] for line in pages)
    assert [line.split()[-1] for line in pages] == ["5", "5"]  # records on each page
    assert "ledger/resource_name: 10 records read in 3 requests; the first 3:" in text
    assert "resource_name  created_at  timestamp  yes" in text  # an ISO string typed as dlt does
    assert "resource_name  id          text       no" in text  # the spec's schema hint
    for secret in sandbox_env.secrets():
        assert secret not in text

    data = preview_json(capsys, "ledger", "resource_name", "--limit", "4")
    truth = truth_by_id(sandbox_env, "ledger", "resource_name")
    assert len(data["records"]) == 4
    assert all(record == truth[record["id"]] for record in data["records"])
    assert data["records_read"] == 5  # one page of 5
    columns = {(c["name"], c["data_type"]) for c in data["columns"]}
    assert {("id", "text"), ("balance", "double"), ("active", "bool")} <= columns
    assert_wrote_nothing(warehouse)


def test_child_reads_its_first_parents_then_their_children(sandbox_env, warehouse, capsys):
    """campaign_items (child of campaigns, grandchild of accounts): parents first, then children
    of those parents only, every record as the API serves it."""
    data = preview_json(capsys, "native_ads", "campaign_items", "--limit", "3")
    kinds = [r["resource"] for r in data["requests"]]
    assert kinds[0] == "(token)" and kinds[1] == "accounts"
    assert kinds.count("accounts") == 1  # --pages 1 of the top-level ancestor
    assert kinds.index("campaigns") < kinds.index("campaign_items")
    truth = truth_by_id(sandbox_env, "native_ads", "campaign_items")
    assert len(data["records"]) == 3
    for record in data["records"]:
        expected = truth[record["id"]]
        assert {k: record[k] for k in expected} == expected  # plus the carried parent keys
    first_accounts = {
        r["id"] for r in sandbox_env.rows("native_ads", "accounts")
    }  # every account fits on one page
    assert {r["account_id"] for r in data["records"]} <= first_accounts
    assert all(r["status"] == 200 for r in data["requests"])
    assert_wrote_nothing(warehouse)


def test_error_is_the_line_a_run_gives(sandbox_env, warehouse, capsys, monkeypatch):
    """A rejected client secret: the preview prints its requests, then exactly the one-line
    error a Dagster run of the same spec fails with, and exits 1."""
    monkeypatch.setenv("LEDGER_CLIENT_SECRET", "not-the-secret")
    assert main(["preview", "ledger", "resource_name"]) == 1
    captured = capsys.readouterr()
    assert f"{sandbox_env.token_url('ledger')}     401" in captured.out
    spec = next(s for s in load_specs(SEED_SPECS) if s.name == "ledger")
    results = materialize_spec(build_definitions([spec]), spec, DagsterInstance.ephemeral())
    run_line = failure_message(results[0])
    assert run_line.startswith("ledger: token request to ")
    assert captured.err == f"error: {run_line}\n"
    assert "not-the-secret" not in captured.out + captured.err


def test_a_preview_starts_from_the_cursor_of_the_last_load(sandbox_env, warehouse, capsys):
    """After a run, a preview asks from the cursor that run stored in the warehouse (what the
    next run sends), `--fresh` from `initial_value`; the run's pipeline stays active and the
    preview moves no cursor (a second preview asks the same)."""
    from urllib.parse import quote

    import dlt

    spec = next(s for s in load_specs(SEED_SPECS) if s.name == "ledger")
    results = materialize_spec(build_definitions([spec]), spec, DagsterInstance.ephemeral())
    assert all(r.success for r in results)
    active = dlt.current.pipeline()
    newest = max(r["updated_at"] for r in sandbox_env.rows("ledger", "resource_name"))
    for _ in range(2):
        data = preview_json(capsys, "ledger", "resource_name", "--limit", "1")
        (first,) = [r["url"] for r in data["requests"] if r["resource"] == "resource_name"]
        assert f"updated_since={quote(newest)}" in first
    data = preview_json(capsys, "ledger", "resource_name", "--limit", "1", "--fresh")
    (first,) = [r["url"] for r in data["requests"] if r["resource"] == "resource_name"]
    assert "updated_since=2000-01-01T00%3A00%3A00Z" in first
    assert dlt.current.pipeline() is active


def test_a_child_preview_sends_each_parents_own_cursor(tmp_path, warehouse, monkeypatch, capsys):
    """An incremental child with per-parent cursors (library books): after a load and a new
    book under an unchanged author, the preview asks each author's books from that author's
    own cursor (as the next run does) and reads only the new book; `--fresh` asks every
    author from `initial_value` and reads every book."""
    from .support import use_specs, write_spec
    from .test_incremental_parents import INITIAL, Library, _later, _ts

    library = Library()
    with library.api:
        write_spec(tmp_path / "specs", library.spec())
        use_specs(monkeypatch, tmp_path / "specs", {"library": library.api.url})
        assert main(["run", "library", "--no-checks"]) == 0
        new = {"id": 11, "author_id": 1, "title": "Sketch", "updated_at": _later(10)}
        library.books.append(new)
        capsys.readouterr()

        library.api.clear()
        data = preview_json(capsys, "library", "books")
        asked = {c.path: c.query for c in library.api.calls}
        assert asked == {
            "/authors": {},  # the parent read in full, as a run of the books alone reads it
            "/authors/1/books": {"since": _ts(4)},
            "/authors/2/books": {"since": _ts(6)},
            "/authors/3/books": {"since": _ts(7)},
        }
        assert data["records"] == [new]

        library.api.clear()
        data = preview_json(capsys, "library", "books", "--fresh")
        assert {c.query["since"] for c in library.api.calls_to(r"/authors/\d+/books")} == {INITIAL}
        assert sorted(r["id"] for r in data["records"]) == sorted(b["id"] for b in library.books)


def test_rotated_refresh_token_is_stored_like_a_run_stores_it(sandbox_env, warehouse, capsys):
    """A token endpoint that rotates the refresh token: the preview keeps the new one (the
    configured one is dead), and the next preview authenticates with it."""
    sandbox_env.faults = FaultPlan(Fault("rotate_refresh_token", "ledger", "oauth"))
    configured = sandbox_env.credentials("ledger")["refresh_token"]
    assert main(["preview", "ledger", "resource_name", "--limit", "1"]) == 0
    stored = json.loads(store_path("ledger").read_text())["refresh_token"]
    assert stored == sandbox_env.refresh_token("ledger") != configured
    assert main(["preview", "ledger", "resource_name", "--limit", "1"]) == 0
    assert "error" not in capsys.readouterr().err
    assert not warehouse.exists()


def test_a_partition_reads_its_window(sandbox_env, warehouse, capsys):
    """`--partition`: the request carries the day's window; the records are that day's rows."""
    data = preview_json(
        capsys,
        "ad_analytics",
        "ad_campaign_analytics",
        "--partition",
        "2026-01-05",
        "--limit",
        "50",
    )
    (request,) = [r for r in data["requests"] if r["resource"] == "ad_campaign_analytics"]
    assert "start_date=2026-01-05&end_date=2026-01-06" in request["url"]
    truth = sandbox_env.rows("ad_analytics", "ad_campaign_analytics")
    assert data["records"] == [r for r in truth if r["date"] == "2026-01-05"]
    assert_wrote_nothing(warehouse)


WRONG = [
    (
        ["ledgr", "resource_name"],
        "unknown spec 'ledgr'; specs: ad_analytics, ledger, marketing_api, native_ads,"
        " reports, workspace_docs",
    ),
    (["ledger", "records"], "ledger has no resource 'records'; resources: resource_name"),
    (
        ["ledger", "resource_name", "--partition", "2026-01-05"],
        "--partition: resource_name is not partitioned",
    ),
    (
        ["ad_analytics", "ad_campaign_analytics", "--partition", "2025-12-31"],
        "--partition 2025-12-31: not a partition of ad_campaign_analytics (Daily, starting"
        " 2026-01-01 UTC); the first is 2026-01-01, the latest ",
    ),
]


@pytest.mark.parametrize(("args", "line"), WRONG, ids=[" ".join(a) for a, _ in WRONG])
def test_a_wrong_argument_is_one_line_with_the_choices(warehouse, capsys, args, line):
    """Before any request: exit 2 and one line naming what exists."""
    assert main(["preview", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(line) and captured.err.count("\n") == 1
    assert captured.out == ""

"""`restsync preview`: a test read against the sandbox, through the CLI, that writes nothing."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from restsync_assets.cli import main
from restsync_assets.cli.run import materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.runtime import request_values
from restsync_assets.runtime.token_store import store_path
from restsync_assets.sandbox import Fault, FaultPlan
from restsync_assets.specs import load_specs
from restsync_assets.specs.template_functions import to_datetime

from .support import (
    DELETE,
    SEED_SPECS,
    edited,
    failure_message,
    materialize_specs,
    secrets_found,
    use_specs,
    write_spec,
)
from .test_step_windows import SPEC, START, Events, epoch, events, iso, stepped_spec


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


def _dlt_contexts() -> tuple[bool, object]:
    """(a state injected in dlt's container, the active pipeline or None) of this thread."""
    from dlt.common.configuration.container import Container
    from dlt.common.pipeline import PipelineContext, StateInjectableContext

    container = Container()
    pipeline = container[PipelineContext]
    return (
        StateInjectableContext in container,
        pipeline.pipeline() if pipeline.is_active() else None,
    )


def test_a_preview_that_stops_early_gives_dlts_contexts_back_at_once(
    tmp_path, warehouse, monkeypatch, capsys
):
    """A child preview stops reading after `--limit` records. The reader it stops holds dlt
    contexts (the state it reads, no active pipeline); they are given back when the preview
    returns, not when the garbage collector gets to the reader, which would swap them under
    whatever runs at that moment (a later load then lost its state: `KeyError: '_local'`)."""
    import gc

    from .support import use_specs, write_spec
    from .test_incremental_parents import Library

    library = Library()
    with library.api:
        write_spec(tmp_path / "specs", library.spec())
        use_specs(monkeypatch, tmp_path / "specs", {"library": library.api.url})
        assert main(["run", "library", "--no-checks"]) == 0
        capsys.readouterr()
        before = _dlt_contexts()
        gc.disable()
        try:
            data = preview_json(capsys, "library", "books", "--fresh", "--limit", "1")
            returned = _dlt_contexts()
        finally:
            gc.enable()
        gc.collect()
        collected = _dlt_contexts()
        assert main(["run", "library", "--no-checks"]) == 0, "a later load still has its state"
    assert len(data["records"]) == 1, "the preview stopped early"
    assert returned == before, "the contexts are back when the preview returns"
    assert collected == before, "collecting the reader later changes nothing"


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


# --------------------------------------------------------------------------- incremental.step

DAY = timedelta(days=1)
#: the clock of the previews below: three days after `START`
THREE_DAYS_ON = START + 3 * DAY


def epoch_events() -> list[dict]:
    """The events with `at` in epoch seconds (an epoch cursor)."""
    return [{**row, "at": int(to_datetime(row["at"]).timestamp())} for row in events()]


@dataclass(frozen=True)
class StepCase:
    name: str
    #: changes to `stepped_spec`'s incremental (1d windows of ISO `at` from `START`)
    incremental: dict
    rows: list[dict]
    #: the query of the preview's request (window 1's, as a run sends it), page aside
    query: dict
    #: the end of window 1 (None: no end)
    until: datetime | None
    #: the window line (None: no step, no line)
    line: str | None
    windows: dict | None


STEP_CASES = [
    StepCase(
        "iso-cursor-1d-over-3-days",
        {},
        events(),
        {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
        START + DAY,
        "events: window 1 of 3 (2026-01-01T00:00:00Z to 2026-01-02T00:00:00Z), step 1d",
        {"step": "1d", "count": 3, "start": iso(START), "end": iso(START + DAY)},
    ),
    StepCase(
        "epoch-cursor-1d-over-3-days",
        {"initial_value": int(START.timestamp())},
        epoch_events(),
        {"from": "1767225600", "to": "1767312000"},
        START + DAY,
        "events: window 1 of 3 (2026-01-01T00:00:00Z to 2026-01-02T00:00:00Z), step 1d",
        {"step": "1d", "count": 3, "start": iso(START), "end": iso(START + DAY)},
    ),
    StepCase(
        "PT6H-to-end_value-sent-as-epoch",
        {"step": "PT6H", "param_format": "epoch", "end_value": "2026-01-02T03:00:00Z"},
        events(),
        {"from": epoch(START), "to": epoch(START + timedelta(hours=6))},
        START + timedelta(hours=6),
        "events: window 1 of 5 (2026-01-01T00:00:00Z to 2026-01-01T06:00:00Z), step PT6H",
        {
            "step": "PT6H",
            "count": 5,
            "start": iso(START),
            "end": iso(START + timedelta(hours=6)),
        },
    ),
    StepCase(
        "no-step-unchanged",
        {"step": DELETE},
        events(),
        {"from": "2026-01-01T00:00:00Z"},  # from initial_value, no end: one range up to now
        None,
        None,
        None,
    ),
]


def use_clock(monkeypatch, moment: datetime) -> None:
    """`moment` is the run's start (`request_values.CLOCK`) from now on."""
    monkeypatch.setattr(request_values, "CLOCK", lambda: moment)


@pytest.mark.parametrize("case", STEP_CASES, ids=lambda c: c.name)
def test_a_stepped_preview_asks_the_first_window_and_counts_them(
    case, specs_dir, warehouse, monkeypatch, capsys
):
    """Before any run: the one request is window 1's, with the exact params a run sends for
    it; the records are that window's rows; the text's first line and `windows` in the JSON
    say which window of how many. Without `step`: no line, `windows` null, one open range."""
    spec = edited(
        stepped_spec(),
        **{f"resources__0__endpoint__incremental__{k}": v for k, v in case.incremental.items()},
    )
    api = Events(case.rows)
    use_clock(monkeypatch, THREE_DAYS_ON)
    with api.api:
        write_spec(specs_dir, spec)
        use_specs(monkeypatch, specs_dir, {SPEC: api.api.url})
        assert main(["preview", SPEC, "events"]) == 0
        text = capsys.readouterr().out
        (call,) = api.api.calls_to("/events")
        data = preview_json(capsys, SPEC, "events")
    assert {k: v for k, v in call.query.items() if k != "page"} == case.query
    first = text.splitlines()[0]
    if case.line is None:
        assert first.split() == ["request", "status", "ms", "records"], text
        assert "window" not in text
    else:
        assert first == case.line
    assert data["windows"] == case.windows
    until = case.until or THREE_DAYS_ON
    asked = [r for r in case.rows if START <= to_datetime(r["at"]) < until]
    assert data["records"] == asked[:3]  # the first page of the window
    assert_wrote_nothing(warehouse)


#: the clock of the first run in the test below: Jan 2, 12:00
RESUMED = START + DAY + timedelta(hours=12)


def test_a_stepped_preview_asks_what_the_next_run_asks(specs_dir, warehouse, monkeypatch, capsys):
    """After a run: the preview starts at the end of the last committed window (the run's
    resume point, not `initial_value`), and its window and count are the next run's first
    window and number of windows; once that run asked them all, the preview says a run asks
    nothing and sends no request."""
    api = Events(events())
    with api.api:
        write_spec(specs_dir, stepped_spec())
        use_specs(monkeypatch, specs_dir, {SPEC: api.api.url})
        use_clock(monkeypatch, RESUMED)  # the run's last window ends there
        assert materialize_specs(specs_dir).success
        use_clock(monkeypatch, THREE_DAYS_ON + timedelta(hours=18))
        api.api.clear()
        data = preview_json(capsys, SPEC, "events")
        (previewed,) = api.windows
        api.api.clear()
        result = materialize_specs(specs_dir)
        assert result.success, failure_message(result)
        assert api.windows[0] == previewed == (iso(RESUMED), iso(RESUMED + DAY))
        assert data["windows"]["count"] == len(api.windows) == 3  # to Jan 4, 18:00
        api.api.clear()
        assert main(["preview", SPEC, "events"]) == 0
        assert capsys.readouterr().out.splitlines()[0] == (
            "events: no window to ask, step 1d (the windows committed reach the end:"
            " end_value or now); a run asks nothing"
        )
        assert api.api.calls == []


# --------------------------------------------------------------------------- session auth

KIOSK = yaml.safe_load((Path(__file__).parent / "specs" / "auth" / "kiosk.yaml").read_text())
SESSION_TOKEN_IN = [
    ("header", {}),
    ("query", {"client__auth__location": "query", "client__auth__name": "session"}),
]


@pytest.mark.parametrize(
    ("where", "changes"), SESSION_TOKEN_IN, ids=[w for w, _ in SESSION_TOKEN_IN]
)
def test_a_session_login_is_a_request_line_without_secrets(
    where, changes, sandbox, specs_dir, monkeypatch, capsys
):
    """`session` auth: the login request is the first line (method, URL, status), then the
    pages; neither the password nor the session token is anywhere in the output (the token
    sent as a query param is masked)."""
    for key, value in sandbox.env(["kiosk"]).items():
        monkeypatch.setenv(key, value)
    write_spec(specs_dir, edited(KIOSK, **changes), "kiosk.yaml")
    data = preview_json(capsys, "kiosk", "orders", "--limit", "2")
    assert main(["preview", "kiosk", "orders", "--limit", "2"]) == 0
    text = capsys.readouterr().out
    base = sandbox.base_url("kiosk")
    login, page = data["requests"][:2]
    assert (login["resource"], login["method"], login["url"], login["status"]) == (
        "(login)",
        "POST",
        f"{base}/api/login",
        200,
    )
    assert page["resource"] == "orders" and page["url"].startswith(f"{base}/v1/orders?")
    assert ("session=***" in page["url"]) == (where == "query")
    assert text.splitlines()[2].split()[:3] == ["POST", f"{base}/api/login", "200"]
    assert secrets_found(sandbox.secrets(), {"json": json.dumps(data), "text": text}) == []

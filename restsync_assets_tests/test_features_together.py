"""Issue 12's keys together: one sandbox spec loads the same rows whatever the concurrency, the
format path (Arrow pages or dlt's rows) or the destination (DuckDB, PostgreSQL).

The spec reads the sandbox's `exports` vendor with `client.rate_limit` (generous) and:

- `readings`: JSON Lines, page-numbered, record transforms and `on_invalid: quarantine` (some
  readings break the schema, one of them is filtered out before it is judged);
- `batches` (JSON, its key renamed) and its child `batch_events` (reading `parent` in
  `add_fields`), both `deletes: soft`;
- `events`: CSV typed by its `schema`, merged, read in full, `deletes: soft`, filtered.

Each combination loads three times: once, again after rows were deleted (an event, a whole
batch) or filtered away (an event archived) at the source, and again once they are back.
After each run every table (`__rejected` without dlt's ids, `_restsync_deleted_at` as marked
or not) must equal the truth computed here in plain Python from the sandbox's rows, with the
same column types in every combination; after the last, every asset check passes but
`rejected_rows`, which warns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from restsync_assets.definitions import build_definitions
from restsync_assets.runtime import warehouse
from restsync_assets.runtime.soft_deletes import DELETED_AT
from restsync_assets.sandbox import Sandbox, exports
from restsync_assets.specs import load_specs

from .support import (
    DLT_COLUMNS,
    arrow_pages_seen,
    canonical,
    check_evaluations,
    failure_message,
    materialize_specs,
    normal,
    write_spec,
)

SPEC = "exports"
#: why each broken reading (`exports.BROKEN`, by index) is set aside, named as after the
#: transforms (`value` is renamed `celsius`); None: good after dlt's coercion. Index 12 is a
#: `retired` reading: `record_filter` drops it before it is judged.
REASONS = {
    10: "id: missing primary key",
    12: "celsius: null in a non-nullable field",
    25: "id: null primary key",
    40: "celsius: null in a non-nullable field",
    55: "celsius: missing in a non-nullable field",
    70: "celsius: 'n/a' cannot be coerced to double",
    85: "taken_at: 'yesterday' cannot be coerced to timestamp",
    100: "id: 'r-101' cannot be coerced to bigint",
    115: "celsius: an object where double is declared",
    130: None,
}
#: where the CSV feed's reasons differ: a missing field is an empty one (null), an object is
#: its text
CSV_REASONS = {
    10: "id: null primary key",
    55: "celsius: null in a non-nullable field",
    115: "celsius: \"{'celsius': 3}\" cannot be coerced to double",
}
#: the second run's source: these events deleted, this batch deleted (with its events, for
#: `batch_events`), this event archived (so `events`' filter drops it)
DELETED_EVENTS = (2, 8)
DELETED_BATCH = 5
ARCHIVED_EVENT = 4
#: the rows the second run marks deleted, by table (batch 5 holds events 5, 10, ..., 250)
MARKED = {
    "batches": {DELETED_BATCH},
    "batch_events": {*DELETED_EVENTS, *range(DELETED_BATCH, exports.EVENTS + 1, exports.BATCHES)},
    "events": {*DELETED_EVENTS, ARCHIVED_EVENT},
}
_DLT = {"_dlt_load_id": "text", "_dlt_id": "text"}
_EVENT = {
    "id": "bigint",
    "batch_id": "bigint",
    "name": "text",
    "status": "text",
    "amount": "double",
    "quantity": "bigint",
    "active": "bool",
    "created_at": "timestamp",
    DELETED_AT: "timestamp",
    **_DLT,
}
_READING = {
    "id": "bigint",
    "celsius": "double",
    "taken_at": "timestamp",
    "sensor": "text",
    "status": "text",
    "unit": "text",
    "site": "text",
    "calibrated": "bool",
    **_DLT,
}
#: every table's columns with dlt's data types, whatever the combination
TYPES = {
    "readings": _READING,
    "readings_csv": _READING,
    "readings_csv__rejected": {"raw": "text", "reason": "text", **_DLT},
    "readings__rejected": {"raw": "text", "reason": "text", **_DLT},
    "batches": {
        "batch_key": "bigint",
        "label": "text",
        "region": "text",
        DELETED_AT: "timestamp",
        **_DLT,
    },
    "batch_events": {**_EVENT, "old_name": "text", "region": "text", "title": "text"},
    "events": {**_EVENT, "legacy_name": "text"},
}


#: what both readings resources do to a reading, and the schema they judge it by
TRANSFORMS = {
    "record_filter": "{{ record.status != 'retired' }}",
    "add_fields": {"site": "{{ 'lab-' ~ record.sensor }}", "calibrated": True},
    "remove_fields": ["note"],
    "rename_fields": {"value": "celsius"},
    "schema": {
        "id": "integer",
        "celsius": {"type": "number", "nullable": False},
        "taken_at": "date-time",
    },
}


def spec(url: str, concurrency: int) -> dict:
    return {
        "name": SPEC,
        "client": {
            "base_url": f"{url}/exports",
            "concurrency": concurrency,
            "rate_limit": {"requests": 1000, "per": "second"},
        },
        "resource_defaults": {"write_disposition": "merge"},
        "resources": [
            {
                "name": "readings",
                "primary_key": "id",
                "on_invalid": "quarantine",
                "endpoint": {
                    "path": "v1/page/readings.jsonl",
                    "response_format": "jsonl",
                    "params": {"per_page": 120},  # a first page of >100 good rows: Arrow
                    "paginator": {"type": "page_number", "base_page": 1, "total_path": None},
                },
                **TRANSFORMS,
            },
            {
                "name": "readings_csv",
                "primary_key": "id",
                "on_invalid": "quarantine",
                "endpoint": {
                    "path": "v1/offset/readings.csv",
                    "response_format": "csv",
                    "paginator": {"type": "offset", "limit": 120, "total_path": None},
                },
                **TRANSFORMS,
            },
            {
                "name": "batches",
                "primary_key": "batch_key",
                "deletes": "soft",
                "endpoint": {
                    "path": "v1/batches",
                    "data_selector": "data",
                    "paginator": "single_page",
                },
                "rename_fields": {"id": "batch_key"},
            },
            {
                "name": "batch_events",
                "primary_key": "id",
                "deletes": "soft",
                "endpoint": {
                    "path": "v1/batches/{resources.batches.batch_key}/events",
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": 20, "total_path": None},
                },
                "add_fields": {
                    "region": "{{ parent.region }}",
                    "title": "{{ record.name }} ({{ parent.label }})",
                },
                "remove_fields": ["internal_notes"],
            },
            {
                "name": "events",
                "primary_key": "id",
                "deletes": "soft",
                "endpoint": {
                    "path": "v1/offset/events.csv",
                    "response_format": "csv",
                    "paginator": {"type": "offset", "limit": 200, "total_path": None},
                },
                "record_filter": "{{ record.status != 'archived' }}",
                "remove_fields": ["internal_notes"],
                "rename_fields": {"old_name": "legacy_name"},
                "schema": exports.EVENT_SCHEMA,
            },
        ],
    }


# --------------------------------------------------------------------------- the truth


def readings_truth(readings: list[dict], loads: int) -> dict[str, list[dict]]:
    """`readings` (JSON Lines), `readings_csv` and their `__rejected` after `loads` full reads of
    the sandbox's readings."""
    assert set(REASONS) == set(exports.BROKEN), "REASONS must cover the sandbox's broken rows"
    tables: dict[str, list[dict]] = {}
    for name, parse, reasons in (
        ("readings", dict, REASONS),
        ("readings_csv", as_csv_reads, {**REASONS, **CSV_REASONS}),
    ):
        good, rejected = [], []
        for index, row in enumerate(map(parse, readings)):
            if row["status"] == "retired":
                continue
            row = {k: v for k, v in row.items() if k != "note"}
            row["site"], row["calibrated"] = f"lab-{row['sensor']}", True
            if "value" in row:
                row["celsius"] = row.pop("value")
            if reasons.get(index) is None:
                good.append({**row, "id": int(row["id"]), "celsius": float(row["celsius"])})
            else:
                rejected += [{"raw": row, "reason": reasons[index]}] * loads
        tables[name], tables[f"{name}__rejected"] = good, rejected
    return tables


def as_csv_reads(reading: dict) -> dict:
    """A reading as restsync reads the CSV feed: every field, an empty one null, `id` and
    `value` typed by the declared schema when they parse, the rest text."""
    row = {}
    for field in exports.READING_FIELDS:
        value = reading.get(field)
        text = None if value is None else str(value)
        kind = {"id": int, "value": float}.get(field)
        row[field] = _parsed(text, kind) if kind and text is not None else text
    return row


def _parsed(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text


def source_truth(sandbox: Sandbox) -> dict[str, dict[Any, dict]]:
    """The rows one complete scan of the merged resources loads now, by primary key."""
    batches = {b["id"]: b for b in sandbox.rows(SPEC, "batches")}
    events = sandbox.rows(SPEC, "events")
    return {
        "batches": {
            key: {"batch_key": key, **{k: v for k, v in b.items() if k != "id"}}
            for key, b in batches.items()
        },
        "batch_events": {
            e["id"]: {
                **{k: v for k, v in e.items() if k != "internal_notes"},
                "region": batches[e["batch_id"]]["region"],
                "title": f"{e['name']} ({batches[e['batch_id']]['label']})",
            }
            for e in events
            if e["batch_id"] in batches
        },
        "events": {
            e["id"]: {
                **{k: v for k, v in e.items() if k not in ("internal_notes", "old_name")},
                "legacy_name": e["old_name"],
            }
            for e in events
            if e["status"] != "archived"
        },
    }


def truth(scans: list[dict[str, dict[Any, dict]]], readings: list[dict]) -> dict[str, list]:
    """Every table after one run per scan: a soft-deleted table holds each row it ever loaded,
    as last loaded, marked when the latest scan did not return it."""
    tables: dict[str, list] = readings_truth(readings, len(scans))
    for name in scans[-1]:
        rows: dict[Any, dict] = {}
        for scan in scans:
            rows.update(scan[name])
        tables[name] = [
            {**row, DELETED_AT: key not in scans[-1][name]} for key, row in rows.items()
        ]
    return {name: canonical(rows) for name, rows in tables.items()}


@contextmanager
def changed_source(sandbox: Sandbox) -> Iterator[None]:
    """Delete events and a batch and archive an event at the source; put them back after."""
    archived = next(e for e in sandbox.rows(SPEC, "events") if e["id"] == ARCHIVED_EVENT)
    assert archived["status"] != "archived"
    removed = [sandbox.delete_row(SPEC, "events", i) for i in DELETED_EVENTS]
    batch = sandbox.delete_row(SPEC, "batches", DELETED_BATCH)
    sandbox.upsert_row(SPEC, "events", {**archived, "status": "archived"})
    try:
        yield
    finally:
        sandbox.upsert_row(SPEC, "events", archived)
        sandbox.upsert_row(SPEC, "batches", batch)
        for row in removed:
            sandbox.upsert_row(SPEC, "events", row)


# --------------------------------------------------------------------------- loads


@dataclass(frozen=True)
class Combo:
    destination: str
    concurrency: int
    arrow: bool

    @property
    def name(self) -> str:
        path = "arrow" if self.arrow else "rows"
        return f"{self.destination}-concurrency{self.concurrency}-{path}"


DUCKDB = [Combo("duckdb", c, arrow) for c in (1, 4) for arrow in (True, False)]
#: the fewest PostgreSQL runs that cover both: sequential rows and concurrent Arrow pages
POSTGRES = [Combo("postgres", 1, False), Combo("postgres", 4, True)]


@dataclass(frozen=True)
class Snapshot:
    """A warehouse after one run: each table's rows (dlt's ids left out, the soft-delete
    mark as a bool), the marks' distinct times, and each table's column types (dlt's)."""

    tables: dict[str, list[dict]]
    marked_at: set
    types: dict[str, dict[str, str | None]]


@dataclass
class Loads:
    """One combination's runs (as `RUNS` says), the truth after each, the pages that took
    the Arrow path and the asset checks after the last run (passed, severity)."""

    runs: list[Snapshot]
    truths: list[dict[str, list]]
    arrow_pages: int
    checks: dict[tuple[str, str], tuple[bool, str]]


def snapshot() -> Snapshot:
    """Read the configured warehouse (DuckDB or PostgreSQL) through restsync's own reader."""
    (loaded,) = load_specs(Path(os.environ["RESTSYNC_SPECS_DIR"]))
    tables, types, marked_at = {}, {}, set()
    with warehouse.reading(loaded) as wh:
        names = [
            n
            for (n,) in wh.rows(
                "select table_name from information_schema.tables where table_schema = %s",
                wh.sql.dataset_name,
            )
            if not n.startswith("_dlt")
        ]
        for name in names:
            with wh.sql.execute_query(f"select * from {wh.table(name)}") as cursor:
                columns = [d[0] for d in cursor.description]
                rows = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
            types[name] = {c: t for c, (_, t) in wh.columns(name).items()}
            marked_at |= {r[DELETED_AT] for r in rows if r.get(DELETED_AT) is not None}
            tables[name] = canonical(_row(name, r) for r in rows)
    return Snapshot(tables, marked_at, types)


def _row(table: str, row: dict) -> dict:
    out = {k: normal(v) for k, v in row.items() if k not in DLT_COLUMNS}
    if DELETED_AT in out:
        out[DELETED_AT] = out[DELETED_AT] is not None
    if table.endswith("__rejected"):
        out["raw"] = json.loads(out["raw"])
    return out


def run(combo: Combo, sandbox: Sandbox, root: Path, patch: pytest.MonkeyPatch) -> Snapshot:
    """Materialize the spec for `combo` into its warehouse; the warehouse after it."""
    folder = root / combo.name
    specs = folder / "specs"
    if combo.destination == "duckdb":
        patch.setenv("RESTSYNC_DUCKDB_PATH", str(folder / "warehouse.duckdb"))
    patch.setenv("RESTSYNC_PIPELINES_DIR", str(folder / "pipelines"))
    patch.setenv("RESTSYNC_SPECS_DIR", str(specs))
    patch.setenv("RESTSYNC_ARROW_PAGES", "1" if combo.arrow else "0")
    write_spec(specs, spec(sandbox.url, combo.concurrency))
    result = materialize_specs(specs)
    assert result.success, f"{combo.name}: {failure_message(result)}"
    assert (folder / "pipelines" / f"{SPEC}.rate_limit.json").exists(), "no rate budget used"
    return snapshot()


#: what each run of a combination meets at the source
RUNS = ("first run", "second run (rows deleted)", "third run (rows back)")


def load_three_times(
    combo: Combo, sandbox: Sandbox, root: Path, patch: pytest.MonkeyPatch
) -> Loads:
    """Run, change the source, run, put it back, run; the truth of each run from the
    sandbox; the checks after the last."""
    arrow_pages = arrow_pages_seen(patch)
    readings = sandbox.rows(SPEC, "readings")
    scans, runs = [source_truth(sandbox)], [run(combo, sandbox, root, patch)]
    with changed_source(sandbox):
        scans.append(source_truth(sandbox))
        runs.append(run(combo, sandbox, root, patch))
    scans.append(source_truth(sandbox))
    runs.append(run(combo, sandbox, root, patch))
    evaluations = check_evaluations(
        build_definitions(load_specs(Path(os.environ["RESTSYNC_SPECS_DIR"])))
    )
    return Loads(
        runs,
        [truth(scans[: n + 1], readings) for n in range(len(scans))],
        len(arrow_pages),
        {(k[0][1], k[1]): (e.passed, e.severity.value) for k, e in evaluations.items()},
    )


@pytest.fixture(scope="module")
def source() -> Iterator[Sandbox]:
    """One sandbox for the module (each load puts back what it changed)."""
    with Sandbox() as running:
        yield running


# --------------------------------------------------------------------------- the tests


def assert_loads_the_truth(combo: Combo, loads: Loads) -> None:
    for run_name, got, expected in zip(RUNS, loads.runs, loads.truths, strict=True):
        assert set(got.tables) == set(expected), f"{combo.name}, {run_name}: tables differ"
        for name, rows in expected.items():
            assert got.tables[name] == rows, f"{combo.name}, {run_name}: {name} differs"
        assert got.types == TYPES, f"{combo.name}, {run_name}: column types differ"
    first, second, third = (snapshot.marked_at for snapshot in loads.runs)
    assert first == set(), f"{combo.name}: the first run marked rows"
    assert len(second) == 1, f"{combo.name}: one load marks at one time"
    assert third == set(), f"{combo.name}: rows that came back are still marked"
    if combo.arrow:
        assert loads.arrow_pages > 0, f"{combo.name}: no page took the Arrow path"
    else:
        assert loads.arrow_pages == 0, f"{combo.name}: a page took the Arrow path"
    warned = {k: v for k, v in loads.checks.items() if v != (True, "ERROR")}
    assert warned == {
        ("readings", "rejected_rows"): (False, "WARN"),
        ("readings_csv", "rejected_rows"): (False, "WARN"),
    }, f"{combo.name}: checks"


@pytest.mark.parametrize("combo", DUCKDB + POSTGRES, ids=lambda c: c.name)
def test_each_combination_loads_the_sources_truth(source, request, tmp_path, monkeypatch, combo):
    """Three runs, every table, row for row: the truth computed from the sandbox's rows; the
    column types as declared or inferred (dlt's types), the same in every combination."""
    if combo.destination == "postgres":
        request.getfixturevalue("postgres_warehouse")
    else:
        monkeypatch.delenv("RESTSYNC_DESTINATION", raising=False)
    assert_loads_the_truth(combo, load_three_times(combo, source, tmp_path, monkeypatch))


def test_the_truth_holds_every_case_the_keys_meet(source):
    """The second run's truth is no trivial one: rows rejected twice, rows marked deleted in
    each soft-deleted table (a deleted event, a filtered one, a deleted batch's children), and
    a child row whose event was archived updated, not marked."""
    readings = source.rows(SPEC, "readings")
    scans = [source_truth(source)]
    with changed_source(source):
        scans.append(source_truth(source))
    assert source_truth(source) == scans[0], "the source is put back as it was"
    second = truth(scans, readings)
    bad = [i for i, why in REASONS.items() if why is not None and i != 12]  # 12: retired
    kept = sum(r["status"] != "retired" for r in readings) - len(bad)
    for name, reasons in (("readings", REASONS), ("readings_csv", {**REASONS, **CSV_REASONS})):
        assert len(second[f"{name}__rejected"]) == 2 * len(bad)
        assert {r["reason"] for r in second[f"{name}__rejected"]} == {reasons[i] for i in bad}
        assert len(second[name]) == kept
    marked = {
        n: {r.get("id", r.get("batch_key")) for r in second[n] if r[DELETED_AT]} for n in MARKED
    }
    assert marked == MARKED
    (archived,) = [r for r in second["batch_events"] if r["id"] == ARCHIVED_EVENT]
    assert archived["status"] == "archived" and not archived[DELETED_AT]

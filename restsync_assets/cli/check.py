"""`restsync check [--duckdb FILE] [-v]`: every asset check against the warehouse as it is.

Runs the `restsync_checks` job in process on an ephemeral instance and prints a table of the
checks that did not pass (all of them with `-v`) and one line of counts. With nothing
configured and nothing loaded at the default DuckDB path, reads `restsync demo`'s warehouse.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from dagster import DagsterInstance, ExecuteInProcessResult

from restsync_assets import settings
from restsync_assets.cli.run import QUIET, warns
from restsync_assets.cli.tables import cell, render_table
from restsync_assets.specs.errors import SpecValidationError
from restsync_assets.text import plural

if TYPE_CHECKING:
    from restsync_assets.specs.model import SourceSpec

#: Width of a check's detail in `restsync check`'s table
DETAIL_WIDTH = 80


def check_command(duckdb: Path | None, verbose: bool = False) -> int:
    """Run every generated asset check against the warehouse; non-zero if any fails.

    With nothing configured (DuckDB at the default path) and nothing loaded there, the checks
    read `restsync demo`'s warehouse when there is one, and say so.
    """
    from restsync_assets.runtime.warehouse import WarehouseError

    try:
        note = ""
        if duckdb is not None:
            os.environ["RESTSYNC_DUCKDB_PATH"] = str(duckdb.resolve())
        else:
            note = _demo_fallback()
        return 0 if run_checks(out=sys.stdout, note=note, verbose=verbose) else 1
    except (SpecValidationError, WarehouseError) as error:
        print(error, file=sys.stderr)
        return 1


def _demo_fallback() -> str:
    """Point the checks at `restsync demo`'s DuckDB file when the default one holds nothing."""
    from restsync_assets.cli.demo import default_duckdb
    from restsync_assets.specs import load_project_specs

    if settings.destination_name() != "duckdb" or "RESTSYNC_DUCKDB_PATH" in os.environ:
        return ""
    demo = default_duckdb()
    if not demo.exists() or not describe(load_project_specs())[1]:
        return ""
    default = settings.duckdb_path()
    os.environ["RESTSYNC_DUCKDB_PATH"] = str(demo)
    return f" (the `restsync demo` warehouse: {default} holds nothing restsync loaded)"


def run_checks(out: TextIO, note: str = "", verbose: bool = False) -> bool:
    """Run every asset check of every spec against the warehouse the specs load into; print
    first which warehouse that is (`note` says why, when it is not the configured one), then
    the table of failed checks (of every check when `verbose`) and a last line of counts.
    An empty warehouse is one line, and false."""
    from restsync_assets.checks import CHECKS_JOB
    from restsync_assets.definitions import build_definitions
    from restsync_assets.specs import load_project_specs

    specs = load_project_specs()
    place, empty = describe(specs)
    if empty:
        print(
            f"checks against {place}{note}: it is empty, nothing restsync loaded to check"
            " (materialize assets first, or run `restsync demo`)",
            file=out,
        )
        return False
    print(f"checks against {place}{note}", file=out)
    defs = build_definitions(specs)
    result = defs.resolve_job_def(CHECKS_JOB).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False, run_config=QUIET
    )
    rows = check_rows(result)
    shown = [r for r in rows if verbose or r[2] != "ok"]
    if shown:
        print(f"\n{render_table(('asset', 'check', 'result', 'detail'), shown)}\n", file=out)
    print(checks_summary(rows), file=out)
    return result.success and bool(rows) and all(r[2] in ("ok", "WARN") for r in rows)


def check_rows(result: ExecuteInProcessResult) -> list[tuple[str, str, str, str]]:
    """(asset, check, ok | WARN | FAILED | ERROR, detail) of a checks run, by asset and check;
    a check step that raised is one ERROR row with its message."""
    evaluations = sorted(
        result.get_asset_check_evaluations(), key=lambda e: (e.asset_key.path, e.check_name)
    )
    rows = [
        (
            "/".join(e.asset_key.path),
            e.check_name,
            "ok" if e.passed else "WARN" if warns(e) else "FAILED",
            cell(e.description, DETAIL_WIDTH),
        )
        for e in evaluations
    ]
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            data = event.step_failure_data
            message = data.user_failure_data.description if data.user_failure_data else None
            detail = cell(message or data.error.message.strip(), DETAIL_WIDTH)
            rows.append((event.step_key, "-", "ERROR", detail))
    return rows


def checks_summary(rows: list[tuple[str, str, str, str]]) -> str:
    """`63/63 checks passed`, then, when some did not, what to do next."""
    passed = sum(r[2] == "ok" for r in rows)
    line = f"{passed}/{sum(r[2] != 'ERROR' for r in rows)} checks passed"
    if warned := sum(r[2] == "WARN" for r in rows):
        line += f", {warned} warned"
    failed = sorted({r[0] for r in rows if r[2] == "FAILED"})
    if failed:
        assets = " ".join(failed)
        line += (
            f"; FAILED on {assets}: fix what the detail says or reload"
            f" (`restsync run {assets}`), then `restsync check` again"
        )
    if errors := sum(r[2] == "ERROR" for r in rows):
        line += f"; {plural(errors, 'check step')} could not run (ERROR): fix what it says first"
    return line


def describe(specs: Sequence[SourceSpec]) -> tuple[str, bool]:
    """Where the specs' warehouse is, and whether it holds nothing restsync loaded."""
    from restsync_assets.runtime.destination import destination
    from restsync_assets.runtime.warehouse import location, reading

    place, empty = location(destination(read_only=True)), True
    for spec in specs:
        with reading(spec) as warehouse:
            place = warehouse.location
            empty = empty and not warehouse.has_table("_dlt_loads")
    return place, empty

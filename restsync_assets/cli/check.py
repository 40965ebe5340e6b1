"""`restsync check [SELECTION ...] [--duckdb FILE] [-v]`: asset checks against the warehouse.

SELECTION is a spec or `spec/resource`, as `restsync run` takes it; none means every spec the
warehouse holds a load of (a spec never loaded is not checked). Runs the selected checks in
process on an ephemeral instance and prints a table of the checks that did not pass (all of
them with `-v`) and one line of counts, with the command that repairs what failed. With
nothing configured and nothing loaded at the default DuckDB path, reads `restsync demo`'s
warehouse. A spec file that does not validate stops only a selection that names it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    materialize,
)

from restsync_assets import settings
from restsync_assets.cli.rerun import changed, rerun
from restsync_assets.cli.run import QUIET, warns
from restsync_assets.cli.tables import cell, render_table
from restsync_assets.keys import asset_key
from restsync_assets.specs.errors import SpecValidationError
from restsync_assets.text import plural

if TYPE_CHECKING:
    from restsync_assets.specs.model import SourceSpec

#: Width of a check's detail in `restsync check`'s table
DETAIL_WIDTH = 80


def check_command(
    duckdb: Path | None, verbose: bool = False, selection: Sequence[str] = (), note: str = ""
) -> int:
    """Run every generated asset check against the warehouse; non-zero if any fails.

    With nothing configured (DuckDB at the default path) and nothing loaded there, the checks
    read `restsync demo`'s warehouse when there is one, and say so (`note`). A DuckDB file the
    environment does not name (`--duckdb`, the demo's) is a setting read deep in the run: the
    checks then run in a child process given it (`cli/rerun.py`).
    """
    from restsync_assets.cli.run import RunUsageError
    from restsync_assets.runtime.warehouse import WarehouseError

    try:
        wanted, note = check_settings(duckdb, note)
        if wanted:
            flags = [*(["--verbose"] if verbose else []), *(["--note", note] if note else [])]
            return rerun(["check", *flags, "--", *selection], wanted)
        passed = run_checks(out=sys.stdout, note=note, verbose=verbose, selection=selection)
        return 0 if passed else 1
    except RunUsageError as error:
        print(error, file=sys.stderr)
        return 2
    except (SpecValidationError, WarehouseError) as error:
        print(error, file=sys.stderr)
        return 1


def check_settings(duckdb: Path | None, note: str = "") -> tuple[dict[str, str], str]:
    """The settings the checks need that the environment does not say (`RESTSYNC_DUCKDB_PATH`
    of `--duckdb`, else of the demo's warehouse: `_demo_fallback`), and the note saying why."""
    if duckdb is not None:
        return changed({"RESTSYNC_DUCKDB_PATH": str(duckdb.resolve())}), note
    demo, why = _demo_fallback()
    if demo is None:
        return {}, note
    return changed({"RESTSYNC_DUCKDB_PATH": str(demo)}), why


def _demo_fallback() -> tuple[Path | None, str]:
    """`restsync demo`'s DuckDB file and why the checks read it, when nothing is configured
    and the default file holds nothing; else (None, "")."""
    from restsync_assets.cli.demo import default_duckdb
    from restsync_assets.specs import read_project_specs

    if settings.destination_name() != "duckdb" or settings.duckdb_path_configured():
        return None, ""
    demo = default_duckdb()
    if not demo.exists() or not describe(read_project_specs().specs)[1]:
        return None, ""
    default = settings.duckdb_path()
    return demo, f" (the `restsync demo` warehouse: {default} holds nothing restsync loaded)"


def run_checks(
    out: TextIO, note: str = "", verbose: bool = False, selection: Sequence[str] = ()
) -> bool:
    """Run the asset checks of `selection` (default: of every spec the warehouse holds a load
    of) against the warehouse the specs load into; print first which warehouse that is
    (`note` says why, when it is not the configured one), then the table of failed checks (of
    every check when `verbose`) and a last line of counts. An empty warehouse is one line,
    and false."""
    from restsync_assets.cli.run import _selected_keys, selectable_specs
    from restsync_assets.definitions import build_definitions

    specs = selectable_specs(selection)
    keys = _selected_keys(specs, selection)
    if selection:
        specs = [s for s in specs if any(asset_key(s, r) in keys for r in s.resources)]
    place, loaded = describe_loads(specs)
    if not loaded and not selection:
        print(
            f"checks against {place}{note}: it is empty, nothing restsync loaded to check"
            " (materialize assets first, or run `restsync demo`)",
            file=out,
        )
        return False
    if not selection:
        specs = [s for s in specs if s.name in loaded]
        keys = {asset_key(s, r) for s in specs for r in s.resources}
    print(f"checks against {place}{note}", file=out)
    defs = build_definitions(specs)
    result = _run_checks_of(defs, specs, keys)
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
        stale = [a for a in failed if _only_stale(rows, a)]
        broken = [a for a in failed if a not in stale]
        advice = []
        if broken:
            advice.append(f"reload (`restsync run {' '.join(broken)} --full-refresh`)")
        if stale:
            advice.append(f"load what is new (`restsync run {' '.join(stale)}`)")
        line += (
            f"; FAILED on {' '.join(failed)}: fix what the detail says or"
            f" {' and '.join(advice)}, then `restsync check` again"
        )
    if errors := sum(r[2] == "ERROR" for r in rows):
        line += f"; {plural(errors, 'check step')} could not run (ERROR): fix what it says first"
    return line


def _only_stale(rows: list[tuple[str, str, str, str]], asset: str) -> bool:
    """Whether `asset`'s only failed check is `freshness` (a plain run repairs that)."""
    return {r[1] for r in rows if r[0] == asset and r[2] == "FAILED"} == {"freshness"}


def _run_checks_of(
    defs: Definitions, specs: Sequence[SourceSpec], keys: set[AssetKey]
) -> ExecuteInProcessResult:
    """The checks of the assets `keys` (of `specs`), in one run without loading anything."""
    from restsync_assets.cli.run import checks_definition, load_definitions

    assets = [a for s in specs for a in load_definitions(defs, s)]
    checks = [checks_definition(defs, s) for s in specs]
    return materialize(
        [*assets, *checks],
        resources=defs.resources,
        instance=DagsterInstance.ephemeral(),
        selection=AssetSelection.checks_for_assets(*keys),
        raise_on_error=False,
        run_config=QUIET,
    )


def describe(specs: Sequence[SourceSpec]) -> tuple[str, bool]:
    """Where the specs' warehouse is, and whether it holds nothing restsync loaded."""
    place, loaded = describe_loads(specs)
    return place, not loaded


def describe_loads(specs: Sequence[SourceSpec]) -> tuple[str, set[str]]:
    """Where the specs' warehouse is, and the specs whose dataset holds a dlt load."""
    from restsync_assets.runtime.destination import destination
    from restsync_assets.runtime.warehouse import location, reading

    place, loaded = location(destination(read_only=True)), set()
    for spec in specs:
        with reading(spec) as warehouse:
            place = warehouse.location
            if warehouse.has_table("_dlt_loads"):
                loaded.add(spec.name)
    return place, loaded

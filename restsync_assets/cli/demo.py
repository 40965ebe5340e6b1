"""`restsync demo`: every spec the bundled sandbox serves, through Dagster, into the warehouse.

The specs are the project's (`specs.read_project_specs`, or `--specs`); those the sandbox does
not serve (an API added to the folder) are listed as skipped, which fails nothing.

The warehouse is the configured one (`RESTSYNC_DESTINATION`); for DuckDB the demo's own file
`data/demo/restsync_demo.duckdb` unless `--duckdb`/`RESTSYNC_DUCKDB_PATH` say otherwise. Each
table's primary keys (`id`, or `reports`' `campaign_id` and `day`) are compared with the
sandbox's through the same dlt pipeline the load used.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from dagster import DagsterInstance

from restsync_assets import settings
from restsync_assets.cli.rerun import changed, rerun
from restsync_assets.cli.run import materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.keys import resources_by_key
from restsync_assets.runtime import warehouse
from restsync_assets.specs import load_project_specs, load_specs
from restsync_assets.specs.errors import SpecValidationError


def default_duckdb() -> Path:
    """The demo's DuckDB file when none is configured (apart from the dev warehouse)."""
    return settings.data_dir() / "demo" / "restsync_demo.duckdb"


@dataclass
class AssetRow:
    asset: str
    rows_loaded: int | None
    table_rows: int | None
    status: str
    checks: str
    seconds: float


@dataclass
class DemoReport:
    rows: list[AssetRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warehouse: str = ""
    #: specs of the folder the sandbox does not serve (an API the user added): not loaded
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every served asset loaded and equal to the sandbox (skipped specs are no failure),
        and at least one was."""
        return bool(self.rows) and not self.errors and all(r.status == "ok" for r in self.rows)

    def summary(self) -> str:
        good = sum(r.status == "ok" for r in self.rows)
        line = f"{good}/{len(self.rows)} assets loaded and equal to the sandbox"
        if self.skipped:
            line += f"; skipped (not served by the sandbox): {', '.join(self.skipped)}"
        return line

    def table(self) -> str:
        from restsync_assets.cli.tables import render_table

        header = ("asset", "rows loaded", "rows in table", "vs sandbox", "checks passed", "seconds")
        rows = [
            (r.asset, r.rows_loaded, r.table_rows, r.status, r.checks, f"{r.seconds:.2f}")
            for r in self.rows
        ]
        return render_table(header, rows, right=(1, 2, 4, 5))


def demo_command(duckdb: Path | None, specs_folder: Path | None, faults: bool = False) -> int:
    """Start the sandbox, point every spec at it, materialize everything, print a summary.

    The DuckDB file (`--duckdb`, else `RESTSYNC_DUCKDB_PATH`, else `default_duckdb()`) is a
    setting read deep in the run: when the environment does not already name it, the demo runs
    in a child process given it (`cli/rerun.py`)."""
    from restsync_assets.runtime.warehouse import WarehouseError

    if wanted := demo_settings(duckdb):
        argv = ["demo", *(["--specs", str(specs_folder.resolve())] if specs_folder else [])]
        return rerun([*argv, *(["--faults"] if faults else [])], wanted)
    started = time.perf_counter()
    try:
        plan = None
        if faults:
            from restsync_assets.sandbox.faults import demo_plan

            plan = demo_plan()
        report = run_demo(out=sys.stdout, faults=plan, specs_folder=specs_folder)
    except (SpecValidationError, WarehouseError) as error:
        print(error, file=sys.stderr)
        return 1
    print(
        f"\n{report.summary()} in {time.perf_counter() - started:.1f}s; warehouse: {report.warehouse}"
    )
    return 0 if report.ok else 1


def demo_settings(duckdb: Path | None) -> dict[str, str]:
    """The settings the demo needs that the environment does not say: `RESTSYNC_DUCKDB_PATH`
    when `duckdb` names another file, or when nothing names one (`default_duckdb()`)."""
    if duckdb is None and settings.duckdb_path_configured():
        return {}
    path = duckdb.resolve() if duckdb is not None else default_duckdb()
    return changed({"RESTSYNC_DUCKDB_PATH": str(path)})


def run_demo(
    out: TextIO, faults: object | None = None, specs_folder: Path | None = None
) -> DemoReport:
    """Start the sandbox on a free port, materialize every asset of every spec it serves
    (the others are listed as skipped), compare ids. The specs are `specs_folder`'s, else the
    project's; the sandbox's credentials and URLs are handed to the assets in code."""
    from restsync_assets.sandbox import SEEDS, Sandbox

    specs = load_specs(specs_folder) if specs_folder else load_project_specs()
    report = DemoReport()
    instance = DagsterInstance.ephemeral()
    with Sandbox() as sandbox:
        if faults is not None:
            sandbox.faults = faults
        known = [s for s in specs if s.name in SEEDS]
        for spec in specs:
            if spec not in known:
                report.skipped.append(spec.name)
                print(f"-- {spec.name}: not served by the sandbox, skipped", file=out)
        if not known:
            report.errors.append(
                "no spec of the folder is one the sandbox serves"
                f" ({', '.join(SEEDS)}); nothing to load"
            )
        if known:
            with warehouse.reading(known[0]) as place:  # fails early on a bad configuration
                report.warehouse = place.location
        print(f"sandbox on {sandbox.url}; warehouse {report.warehouse}", file=out)
        defs = build_definitions(known, credentials={s.name: sandbox.values(s.name) for s in known})
        for spec in known:
            report.rows.extend(_load_spec(spec, defs, instance, sandbox, out, report))
    print("", file=out)
    print(report.table(), file=out)
    for error in report.errors:
        print(f"error: {error}", file=out)
    return report


def _load_spec(spec, defs, instance, sandbox, out: TextIO, report: DemoReport) -> list[AssetRow]:
    print(f"-> {spec.name}: materializing {len(spec.resources)} assets ...", file=out, flush=True)
    started = time.perf_counter()
    results = materialize_spec(defs, spec, instance)
    seconds = time.perf_counter() - started
    loaded, checks, names = {}, {}, resources_by_key(spec)
    for result in results:
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
                data = event.step_failure_data
                message = (
                    data.user_failure_data.description
                    if data.user_failure_data
                    else data.error.message
                )
                report.errors.append(message.strip().splitlines()[-1])
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization
            value = mat.metadata.get("rows_loaded")
            loaded[names[mat.asset_key]] = int(value.value) if value is not None else 0
        for evaluation in result.get_asset_check_evaluations():
            name = names[evaluation.asset_key]
            passed, total = checks.get(name, (0, 0))
            checks[name] = (passed + evaluation.passed, total + 1)
            if not evaluation.passed:
                report.errors.append(
                    f"{spec.name}/{name} check {evaluation.check_name}: {evaluation.description}"
                )
    with warehouse.reading(spec) as loaded_into:
        tables = {r.name: loaded_into.keys(r.name, _key_columns(r)) for r in spec.resources}
    rows = []
    for resource in spec.resources:
        table_ids = tables[resource.name]
        columns = _key_columns(resource)
        truth = {_key(row, columns) for row in sandbox.rows(spec.name, resource.name)}
        if resource.name not in loaded:
            status = "FAILED"
        elif table_ids is None or {tuple(map(str, k)) for k in table_ids} != truth:
            status = "MISMATCH"
        else:
            status = "ok"
        passed, total = checks.get(resource.name, (0, 0))
        rows.append(
            AssetRow(
                asset=f"{spec.name}/{resource.name}",
                rows_loaded=loaded.get(resource.name),
                table_rows=None if table_ids is None else len(table_ids),
                status=status,
                checks=f"{passed}/{total}",
                seconds=seconds,
            )
        )
    state = "done" if all(r.success for r in results) else "FAILED"
    print(f"   {spec.name}: {state} in {seconds:.1f}s", file=out, flush=True)
    return rows


def _key_columns(resource) -> tuple[str, ...]:
    """The columns a row is known by: the resource's primary key, else `id`."""
    return resource.primary_key_columns or ("id",)


def _key(row: dict, columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(row[c]) for c in columns)

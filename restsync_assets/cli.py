"""restsync's command line.

restsync run [SELECTION ...]        materialize specs through Dagster (progress, summary)
restsync preview SPEC RESOURCE      test-read one resource from its API; writes nothing
restsync validate [DIR]             check spec files; one line per problem
restsync check [-v]                 run every asset check against the warehouse
restsync demo                       the bundled sandbox API -> every asset -> DuckDB
restsync sandbox [--print-env]      serve the five seed APIs on 127.0.0.1
restsync import airbyte MANIFEST --config CONFIG.json --name NAME --out DIR
                                    an Airbyte manifest into a spec (one resource per stream)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from restsync_assets import settings
from restsync_assets.importers import airbyte
from restsync_assets.report import plural
from restsync_assets.specs.errors import SpecValidationError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="restsync", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check spec files; one line per problem")
    validate.add_argument(
        "directory",
        nargs="?",
        type=Path,
        help="folder of specs (default: RESTSYNC_SPECS_DIR or source_specs/)",
    )

    demo = commands.add_parser(
        "demo", help="load every asset from the bundled sandbox API into the warehouse"
    )
    demo.add_argument(
        "--duckdb",
        type=Path,
        help="DuckDB file (default: RESTSYNC_DUCKDB_PATH or data/demo/restsync_demo.duckdb);"
        " RESTSYNC_DESTINATION=postgres loads into PostgreSQL instead",
    )
    demo.add_argument(
        "--specs", type=Path, help="folder of specs (default: RESTSYNC_SPECS_DIR or source_specs/)"
    )
    demo.add_argument(
        "--faults",
        action="store_true",
        help="make the sandbox throw the faults real APIs throw (rate limits, 5xx, resets, expired tokens...)",
    )

    check = commands.add_parser("check", help="run every asset check against the warehouse")
    check.add_argument(
        "--duckdb",
        type=Path,
        help="DuckDB file (default: RESTSYNC_DUCKDB_PATH, else data/restsync.duckdb, else the"
        " demo's when that one is empty); RESTSYNC_DESTINATION picks another warehouse",
    )
    check.add_argument(
        "-v", "--verbose", action="store_true", help="list every check, not only those that fail"
    )

    sandbox = commands.add_parser("sandbox", help="serve the five seed APIs on 127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument(
        "--faults", action="store_true", help="throw the demo's mix of survivable faults"
    )
    sandbox.add_argument(
        "--print-env",
        action="store_true",
        help="print `export NAME=value` lines for a sandbox on --port and exit "
        '(eval "$(restsync sandbox --print-env)")',
    )
    add_run_and_preview(commands)
    airbyte.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "validate":
        return validate_command(args.directory)
    if args.command == "demo":
        return demo_command(args.duckdb, args.specs, args.faults)
    if args.command == "check":
        return check_command(args.duckdb, args.verbose)
    if args.command == "import":
        return airbyte.import_command(args.manifest, args.config, args.name, args.out)
    if args.command == "run":
        return run_command(args.selection, args.partition, args.with_checks)
    if args.command == "preview":
        return preview_command(
            args.spec, args.resource, args.limit, args.pages, args.json, args.partition
        )
    if args.print_env:
        from restsync_assets.sandbox.server import SANDBOX_SPECS, VENDORS, export_lines

        print("\n".join(export_lines(port=args.port, specs=[*SANDBOX_SPECS, *VENDORS])))
        return 0
    from restsync_assets.sandbox import serve
    from restsync_assets.sandbox.faults import demo_plan

    serve(args.port, faults=demo_plan() if args.faults else None)
    return 0


def validate_command(directory: Path | None) -> int:
    from restsync_assets.specs import load_specs

    directory = directory or settings.specs_dir()
    try:
        specs = load_specs(directory)
    except SpecValidationError as error:
        print(error, file=sys.stderr)
        return 1
    for spec in specs:
        print(f"ok  {spec.path.name}: {spec.name} ({plural(len(spec.resources), 'resource')})")
    return 0


def demo_command(duckdb: Path | None, specs_folder: Path | None, faults: bool = False) -> int:
    """Start the sandbox, point every spec at it, materialize everything, print a summary."""
    from restsync_assets.demo import default_duckdb, run_demo
    from restsync_assets.runtime.warehouse import WarehouseError

    if duckdb is not None:
        os.environ["RESTSYNC_DUCKDB_PATH"] = str(duckdb.resolve())
    elif "RESTSYNC_DUCKDB_PATH" not in os.environ:
        os.environ["RESTSYNC_DUCKDB_PATH"] = str(default_duckdb())
    if specs_folder is not None:
        os.environ["RESTSYNC_SPECS_DIR"] = str(specs_folder.resolve())
    started = time.perf_counter()
    try:
        plan = None
        if faults:
            from restsync_assets.sandbox.faults import demo_plan

            plan = demo_plan()
        report = run_demo(out=sys.stdout, faults=plan)
    except (SpecValidationError, WarehouseError) as error:
        print(error, file=sys.stderr)
        return 1
    print(
        f"\n{report.summary()} in {time.perf_counter() - started:.1f}s; warehouse: {report.warehouse}"
    )
    return 0 if report.ok else 1


def check_command(duckdb: Path | None, verbose: bool = False) -> int:
    """Run every generated asset check against the warehouse; non-zero if any fails.

    With nothing configured (DuckDB at the default path) and nothing loaded there, the checks
    read `restsync demo`'s warehouse when there is one, and say so.
    """
    from restsync_assets.runner import run_checks
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
    from restsync_assets.demo import default_duckdb
    from restsync_assets.runtime import warehouse
    from restsync_assets.specs import load_specs

    if settings.destination_name() != "duckdb" or "RESTSYNC_DUCKDB_PATH" in os.environ:
        return ""
    demo = default_duckdb()
    if not demo.exists() or not warehouse.describe(load_specs(settings.specs_dir()))[1]:
        return ""
    default = settings.duckdb_path()
    os.environ["RESTSYNC_DUCKDB_PATH"] = str(demo)
    return f" (the `restsync demo` warehouse: {default} holds nothing restsync loaded)"


def add_run_and_preview(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="materialize specs through Dagster: progress, then a table of rows and checks",
        description="Materialize through Dagster (on DAGSTER_HOME's instance when set). "
        "No SELECTION: every unpartitioned asset and the latest partition of each partitioned one.",
    )
    run.add_argument("selection", nargs="*", metavar="SELECTION", help="SPEC or SPEC/RESOURCE")
    run.add_argument("--partition", metavar="KEY", help="partition of the partitioned assets")
    checks = run.add_mutually_exclusive_group()
    checks.add_argument(
        "--with-checks",
        dest="with_checks",
        action="store_true",
        default=True,
        help="run the selected assets' checks after them (the default)",
    )
    checks.add_argument(
        "--no-checks", dest="with_checks", action="store_false", help="load only, no checks"
    )
    preview = commands.add_parser(
        "preview",
        help="test-read one resource from its real API (writes nothing)",
        description="Requests (secrets masked), the first records and their dlt column types.",
    )
    preview.add_argument("spec")
    preview.add_argument("resource")
    preview.add_argument("--limit", type=_positive, default=10, help="records to show (default 10)")
    preview.add_argument(
        "--pages",
        type=_positive,
        default=1,
        help="pages of the top-level resource to read (default 1)",
    )
    preview.add_argument(
        "--partition", metavar="KEY", help="a partitioned resource's partition (default: latest)"
    )
    preview.add_argument("--json", action="store_true", help="print everything as JSON")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def run_command(selection: Sequence[str], partition: str | None, with_checks: bool) -> int:
    """Materialize the selection; non-zero when a run or a check failed."""
    from restsync_assets.run_command import RunUsageError, run

    try:
        report = run(selection, partition, with_checks, out=sys.stdout)
    except (SpecValidationError, RunUsageError) as error:
        print(error, file=sys.stderr)
        return 2 if isinstance(error, RunUsageError) else 1
    return 0 if report.ok else 1


def preview_command(
    spec_name: str,
    resource: str,
    limit: int,
    pages: int,
    as_json: bool,
    partition: str | None = None,
) -> int:
    """Test-read `resource` of `spec_name`; the error (if any) is the one line a run gives."""
    from restsync_assets.runtime.preview import (
        PreviewError,
        UnknownPartitionError,
        partition_window,
        preview,
        render,
    )
    from restsync_assets.specs import load_specs

    try:
        specs = {s.name: s for s in load_specs(settings.specs_dir())}
    except SpecValidationError as error:
        print(error, file=sys.stderr)
        return 1
    spec = specs.get(spec_name)
    if spec is None:
        print(f"unknown spec {spec_name!r}; specs: {', '.join(specs)}", file=sys.stderr)
        return 2
    if resource not in {r.name for r in spec.resources}:
        names = ", ".join(r.name for r in spec.resources)
        print(f"{spec_name} has no resource {resource!r}; resources: {names}", file=sys.stderr)
        return 2
    try:
        partition_window(spec.resource(resource), partition)
    except UnknownPartitionError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        result = preview(spec, resource, limit=limit, pages=pages, partition=partition)
    except PreviewError as error:
        print(error.result.to_json(limit) if as_json else render(error.result, limit))
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.to_json(limit) if as_json else render(result, limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

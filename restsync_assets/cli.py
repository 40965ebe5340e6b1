"""`restsync validate | demo | sandbox`: the operator's command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from restsync_assets import settings
from restsync_assets.specs.errors import SpecValidationError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="restsync", description=__doc__)
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

    sandbox = commands.add_parser("sandbox", help="serve the five seed APIs on 127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument(
        "--faults", action="store_true", help="throw the demo's mix of survivable faults"
    )

    args = parser.parse_args(argv)
    if args.command == "validate":
        return validate_command(args.directory)
    if args.command == "demo":
        return demo_command(args.duckdb, args.specs, args.faults)
    if args.command == "check":
        return check_command(args.duckdb)
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
        print(f"ok  {spec.path.name}: {spec.name} ({len(spec.resources)} resources)")
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


def check_command(duckdb: Path | None) -> int:
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
        return 0 if run_checks(out=sys.stdout, note=note) else 1
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


if __name__ == "__main__":
    raise SystemExit(main())

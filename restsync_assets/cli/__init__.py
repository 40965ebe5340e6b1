"""restsync's command line.

restsync run [SELECTION ...]        materialize specs through Dagster (progress, summary)
                                    --full-refresh: drop tables and state, load from scratch
restsync preview SPEC RESOURCE      test-read one resource from its API; writes nothing
restsync validate [DIR]             check spec files; one line per problem
restsync check [SELECTION ...]      run the asset checks against the warehouse
restsync demo                       the bundled sandbox API -> every asset -> DuckDB
restsync sandbox [--print-env]      serve the six seed APIs on 127.0.0.1
restsync import airbyte MANIFEST --config CONFIG.json --name NAME --out DIR
                                    an Airbyte manifest into a spec (one resource per stream)
"""

# The `restsync` console script (`main`; the docstring above is its --help). This module parses
# the arguments; each command lives in the module named for it (`run`: also the in-process
# runner the demo, `check` and the tests use; `preview`, `validate`, `check`, `demo`), imported
# when its command runs; `tables` renders what they print. `import airbyte` runs
# `restsync_assets.importers.airbyte`.

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any


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

    check = commands.add_parser(
        "check", help="run the asset checks (of every loaded spec, or of SELECTION)"
    )
    check.add_argument(
        "selection",
        nargs="*",
        metavar="SELECTION",
        help="SPEC or SPEC/RESOURCE (default: every spec the warehouse holds a load of)",
    )
    check.add_argument(
        "--duckdb",
        type=Path,
        help="DuckDB file (default: RESTSYNC_DUCKDB_PATH, else data/restsync.duckdb, else the"
        " demo's when that one is empty); RESTSYNC_DESTINATION picks another warehouse",
    )
    check.add_argument(
        "-v", "--verbose", action="store_true", help="list every check, not only those that fail"
    )
    # why the checks read another warehouse than the configured one: the child process
    # `check_command` runs with the demo's (`cli/rerun.py`) prints it
    check.add_argument("--note", default="", help=argparse.SUPPRESS)

    sandbox = commands.add_parser("sandbox", help="serve the six seed APIs on 127.0.0.1")
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
    add_import(commands)

    args = parser.parse_args(argv)
    if args.command == "validate":
        from restsync_assets.cli.validate import validate_command

        return validate_command(args.directory)
    if args.command == "demo":
        from restsync_assets.cli.demo import demo_command

        return demo_command(args.duckdb, args.specs, args.faults)
    if args.command == "check":
        from restsync_assets.cli.check import check_command

        return check_command(args.duckdb, args.verbose, args.selection, args.note)
    if args.command == "run":
        from restsync_assets.cli.run import run_command

        return run_command(
            args.selection,
            args.partition,
            args.with_checks,
            full_refresh=args.full_refresh,
            as_json=args.json,
            verbose=args.verbose,
        )
    if args.command == "preview":
        from restsync_assets.cli.preview import preview_command

        return preview_command(
            args.spec,
            args.resource,
            args.limit,
            args.pages,
            args.json,
            args.partition,
            fresh=args.fresh,
        )
    if args.command == "import":
        from restsync_assets.importers.airbyte import import_command

        return import_command(args.manifest, args.config, args.name, args.out)
    if args.print_env:
        from restsync_assets.sandbox.server import SEEDS, VENDORS, export_lines

        print("\n".join(export_lines(port=args.port, specs=[*SEEDS, *VENDORS])))
        return 0
    from restsync_assets.sandbox import serve
    from restsync_assets.sandbox.faults import demo_plan

    serve(args.port, faults=demo_plan() if args.faults else None)
    return 0


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
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="drop the selected tables (and their nested and __rejected tables) and their state"
        " (cursors, per-parent cursors), then load them again from initial_value",
    )
    run.add_argument(
        "--json", action="store_true", help="print one JSON object: per asset figures, failures"
    )
    run.add_argument(
        "-v", "--verbose", action="store_true", help="also print Dagster's and dlt's own log lines"
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
    preview.add_argument(
        "--fresh",
        action="store_true",
        help="start from initial_value, not from the cursors of the last load in the warehouse",
    )


def add_import(commands: Any) -> None:
    """Add `import airbyte ...` (run by `restsync_assets.importers.airbyte.import_command`)."""
    importer = commands.add_parser("import", help="write a spec from another tool's connector")
    kinds = importer.add_subparsers(dest="import_kind", required=True)
    airbyte = kinds.add_parser("airbyte", help="an Airbyte declarative (low-code) manifest.yaml")
    airbyte.add_argument("manifest", type=Path, help="the connector's manifest.yaml")
    airbyte.add_argument("--config", type=Path, help="CONFIG.json: the connector's config values")
    airbyte.add_argument("--name", required=True, help="the spec's name (snake_case)")
    airbyte.add_argument(
        "--out", type=Path, default=Path("source_specs"), help="folder to write NAME.yaml into"
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value

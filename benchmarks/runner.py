"""Command line: start the server, run the cases, print and write the results."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks import report
from benchmarks.cases import Config, Row, run_cases
from benchmarks.server import REPO_ROOT, ServerProcess

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "out"
DEFAULT_RESULTS_MD = REPO_ROOT / "benchmarks" / "RESULTS.md"


def run(
    config: Config,
    out: Path,
    results_md: Path | None,
    log=print,
    base_url: str | None = None,
) -> tuple[list[Row], dict]:
    """Run `config` against `base_url` (or a fresh server process) and write every output."""
    start = time.perf_counter()
    load_before = os.getloadavg()
    code_before = report.git_state()  # the code measured: other sessions may commit meanwhile
    if base_url is None:
        with ServerProcess(seed=config.seed, delay=config.p2_delay) as server:
            log(f"benchmark server at {server.url} (seed {config.seed}, mode {config.mode})")
            rows = run_cases(config, server.url, log)
    else:
        rows = run_cases(config, base_url, log)
    wall = time.perf_counter() - start
    info = report.machine()
    info["loadavg_1min"] = {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)}
    if info["git"] != code_before:
        info["git"] = f"{code_before} at start, {info['git']} at end"
    report.write_json(out / "results.json", rows, config, info, wall)
    png = report.write_png(out / "results.png", rows)
    if results_md is not None:
        report.write_markdown(results_md, rows, config, info, wall, png)
    log("")
    log(report.text_table(rows))
    log("")
    log(f"whole run {wall:.0f}s; wrote {out / 'results.json'}; {png}")
    if results_md is not None:
        log(f"wrote {results_md}")
    return rows, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="restsync vs raw requests and plain dlt (targets of issues 5 and 13: P1-P7)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, k=1 (about a minute)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for results.json/png")
    parser.add_argument(
        "--results-md",
        type=Path,
        default=None,
        help="where to write the markdown table (default: benchmarks/RESULTS.md for a full run, "
        "none for --quick)",
    )
    parser.add_argument("--k", type=int, default=None, help="repetitions per case (median)")
    parser.add_argument(
        "--cases", default=None, help="comma-separated subset, e.g. P1,P3 (default: all)"
    )
    args = parser.parse_args(argv)
    config = Config.quick(args.seed) if args.quick else Config.full(args.seed)
    if args.k is not None:
        config.k = config.p7_k = args.k
    if args.cases:
        config.cases = tuple(c.strip().upper() for c in args.cases.split(",") if c.strip())
    results_md = args.results_md
    if results_md is None and not args.quick and args.cases is None:
        results_md = DEFAULT_RESULTS_MD
    run(config, args.out, results_md, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

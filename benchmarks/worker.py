"""Measurements that need a fresh process: definitions load time (P3) and peak RSS (P4).

`python -m benchmarks.worker p3|p4 ...` prints one JSON object on its last stdout line;
`run_worker` starts it and parses that line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

#: Modules restsync's spec stages and dlt import lazily (inside functions): imported up front so the
#: timed call measures building definitions, not importing. Any module that still gets imported
#: during the timed call is reported as `lazy_imports`.
LAZY_MODULES = (
    "dlt.sources.rest_api",
    "dlt.sources.rest_api.config_setup",
    "dlt.sources.rest_api.typing",
    "dlt.common.validation",
    "croniter",
    "jinja2",
    "jinja2.sandbox",
    "restsync_assets.specs.templates",
)


def _maxrss_mb() -> float:
    """Peak RSS of this process in MB: `VmHWM` of /proc/self/status.

    Not `getrusage().ru_maxrss`: Linux carries the forked parent's RSS over `exec` into it,
    so a worker started from a 1.5 GB benchmark process would report at least 1.5 GB.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _import_lazy_modules() -> None:
    import importlib

    for name in LAZY_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _new_modules(before: set[str]) -> dict[str, int]:
    """Modules imported since `before`, counted per top-level package."""
    counts: dict[str, int] = {}
    for name in set(sys.modules) - before:
        top = name.split(".")[0]
        counts[top] = counts.get(top, 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------- P3


def p3_restsync(spec_dir: Path) -> dict[str, Any]:
    """Imports first, then `build_definitions(load_specs(dir))` timed (cold, then warm)."""
    start = time.perf_counter()
    empty = Path(tempfile.mkdtemp(prefix="restsync-bench-empty-"))
    os.environ["RESTSYNC_SPECS_DIR"] = str(empty)  # importing `definitions` loads that dir
    import restsync_assets.definitions as definitions
    from restsync_assets.specs import load_specs

    _import_lazy_modules()
    imports = time.perf_counter() - start
    before = set(sys.modules)
    start = time.perf_counter()
    defs = definitions.build_definitions(load_specs(spec_dir))
    seconds = time.perf_counter() - start
    lazy = _new_modules(before)
    start = time.perf_counter()
    repo = defs.get_repository_def()
    resolve = time.perf_counter() - start
    assets = len(list(repo.asset_graph.get_all_asset_keys()))
    start = time.perf_counter()
    definitions.build_definitions(load_specs(spec_dir))
    warm = time.perf_counter() - start
    shutil.rmtree(empty, ignore_errors=True)
    return {
        "seconds": seconds,
        "warm_seconds": warm,
        "resolve_seconds": resolve,
        "import_seconds": imports,
        "assets": assets,
        "lazy_imports": lazy,
    }


def p3_eager(config_dir: Path | None, spec_dir: Path | None) -> dict[str, Any]:
    """Baseline: plain dagster-dlt, which needs each dlt source built when definitions load.

    With `config_dir`: YAML files of plain dlt `rest_api` configs -> `rest_api_source` ->
    `@dlt_assets`. With `spec_dir` (seed specs, which have no plain config): restsync's own
    run-time `build_source` per spec -> `@dlt_assets`.
    """
    start = time.perf_counter()
    import yaml
    from dagster import Definitions
    from dagster_dlt import DagsterDltResource
    from dlt.sources.rest_api import rest_api_source

    from benchmarks.eager import dlt_assets_for
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.runtime.source import build_source
    from restsync_assets.specs import load_specs

    _import_lazy_modules()
    imports = time.perf_counter() - start
    pipelines = tempfile.mkdtemp(prefix="restsync-bench-eager-")
    before = set(sys.modules)
    start = time.perf_counter()
    assets = []
    if config_dir is not None:
        for path in sorted(config_dir.glob("*.yaml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            source = rest_api_source(doc["config"], name=doc["name"])
            assets.append(dlt_assets_for(source, doc["name"], pipelines))
    else:
        assert spec_dir is not None
        for spec in load_specs(spec_dir):
            credentials = ApiCredentials(
                source=spec.name, client_id="bench", client_secret="bench"
            ).resolve()
            # a static auth's secrets (the reports seed's bearer token) are fake here too
            fake = {key: "bench" for key in spec.secret_keys}
            credentials = dataclasses.replace(credentials, extra={**credentials.extra, **fake})
            assets.append(dlt_assets_for(build_source(spec, credentials), spec.name, pipelines))
    defs = Definitions(assets=assets, resources={"dlt": DagsterDltResource()})
    seconds = time.perf_counter() - start
    lazy = _new_modules(before)
    start = time.perf_counter()
    repo = defs.get_repository_def()
    resolve = time.perf_counter() - start
    shutil.rmtree(pipelines, ignore_errors=True)
    return {
        "seconds": seconds,
        "resolve_seconds": resolve,
        "import_seconds": imports,
        "assets": len(list(repo.asset_graph.get_all_asset_keys())),
        "lazy_imports": lazy,
    }


# --------------------------------------------------------------------------- P4


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _RssSampler:
    """Samples this process's RSS every `interval` seconds on a daemon thread."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), _rss_mb()))
            self._stop.wait(self.interval)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> float | None:
        values = [rss for t, rss in self.samples if start <= t <= end]
        return max(values) if values else None


def _phase_peaks(sampler: _RssSampler, pipeline_name: str, pipelines_dir: Path) -> dict[str, float]:
    """Peak sampled RSS during each dlt step of the run (boundaries from dlt's trace)."""
    import dlt

    try:
        trace = dlt.attach(pipeline_name=pipeline_name, pipelines_dir=str(pipelines_dir)).last_trace
    except Exception:
        return {}
    peaks: dict[str, float] = {}
    if trace is None:
        return peaks
    for step in trace.steps:
        if step.step in ("extract", "normalize", "load") and step.finished_at:
            peak = sampler.peak_between(step.started_at.timestamp(), step.finished_at.timestamp())
            if peak is not None:
                peaks[step.step] = peak
    return peaks


def p1_run(variant: str, spec_dir: Path, base_url: str, n: int, workdir: Path) -> dict[str, Any]:
    """One P1 sample in this fresh process: imports first, then the timed run only."""
    from dlt.sources.rest_api import rest_api_source  # noqa: F401

    import restsync_assets.definitions  # noqa: F401
    from benchmarks import measure, specs

    if variant == "restsync":
        return measure.restsync_run(spec_dir, workdir)
    config = specs.records_dlt_config(base_url, n)
    return measure.plain_dlt_run(config, workdir, "plain", "bench_p1", variant)


def p4_restsync(base_url: str, n: int, workdir: Path) -> dict[str, Any]:
    """Peak RSS of this process while restsync streams `n` records through `materialize`.

    Also samples RSS every 50 ms to give the peak within each dlt step (extract, normalize,
    load), so a failing memory target says which step holds the memory.
    """
    rss_start = _maxrss_mb()
    import restsync_assets.definitions  # noqa: F401  (imports, before the measured run)
    from benchmarks import measure, specs
    from benchmarks.server import FRESH

    rss_imports = _maxrss_mb()
    spec_dir = workdir / "specs"
    spec = specs.records_spec("bench_p4", base_url, n)
    endpoint = spec["resources"][0]["endpoint"]
    endpoint["path"] = FRESH + endpoint["path"]  # the server's cost per page is the same at any n
    specs.write_spec(spec_dir, spec)
    with _RssSampler() as sampler:
        out = measure.restsync_run(spec_dir, workdir)
    out["rss_start_mb"] = rss_start
    out["rss_after_imports_mb"] = rss_imports
    out["peak_rss_mb"] = _maxrss_mb()
    out["phase_peak_rss_mb"] = _phase_peaks(sampler, "restsync_bench_p4", workdir / "pipelines")
    out["rows_in_table"] = measure.table_count(out["db"], "bench_p4.items")
    return out


# --------------------------------------------------------------------------- plumbing


def run_worker(args: list[str], timeout: float = 900) -> dict[str, Any]:
    """Run `python -m benchmarks.worker ARGS` and return its JSON answer."""
    from benchmarks.server import REPO_ROOT, child_env

    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=child_env(),
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {
            "error": f"worker {' '.join(args[:1])} exited {proc.returncode}: {' | '.join(tail)}"
        }
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="restsync benchmark worker (one fresh process)")
    sub = parser.add_subparsers(dest="case", required=True)
    p3 = sub.add_parser("p3")
    p3.add_argument("--variant", choices=("restsync", "eager"), required=True)
    p3.add_argument("--specs", type=Path)
    p3.add_argument("--configs", type=Path)
    p1 = sub.add_parser("p1")
    p1.add_argument("--variant", choices=("restsync", "jsonl", "insert_values"), required=True)
    p1.add_argument("--specs", type=Path, required=True)
    p1.add_argument("--url", required=True)
    p1.add_argument("--n", type=int, required=True)
    p1.add_argument("--workdir", type=Path, required=True)
    p4 = sub.add_parser("p4")
    p4.add_argument("--url", required=True)
    p4.add_argument("--n", type=int, required=True)
    p4.add_argument("--workdir", type=Path, required=True)
    p1b = sub.add_parser("p1b")
    p1b.add_argument("--url", required=True)
    p1b.add_argument("--workdir", type=Path, required=True)
    p1b.add_argument("--profile", action="store_true")
    p1b.add_argument(
        "--preimport", type=Path, help="a JSON list of modules to import before the timed run"
    )
    p6 = sub.add_parser("p6")
    p6.add_argument(
        "--variant", choices=("restsync", "restsync_duckdb", "insert_values"), required=True
    )
    p6.add_argument("--url", required=True)
    p6.add_argument("--n", type=int, required=True)
    p6.add_argument("--workdir", type=Path, required=True)
    p6.add_argument("--database", required=True)
    args = parser.parse_args()
    if args.case in ("p1b", "p6"):
        from benchmarks import production

        if args.case == "p1b":
            result = production.p1b_run(args.url, args.workdir, args.profile, args.preimport)
        else:
            result = production.p6_run(args.variant, args.url, args.n, args.workdir, args.database)
    elif args.case == "p1":
        result = p1_run(args.variant, args.specs, args.url, args.n, args.workdir)
    elif args.case == "p3":
        if args.variant == "restsync":
            result = p3_restsync(args.specs)
        else:
            result = p3_eager(args.configs, None if args.configs else args.specs)
    else:
        result = p4_restsync(args.url, args.n, args.workdir)
    print(json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()

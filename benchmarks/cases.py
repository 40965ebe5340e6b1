"""The cases of issues 5 and 13 (P1-P7). Each runs restsync and its baselines alternately (A/B/A/B...),
keeps every sample, and turns the medians into result rows (case, baseline, restsync, ratio,
target, pass).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import measure, specs
from benchmarks.server import REPO_ROOT
from benchmarks.worker import run_worker

SEED_SPECS = REPO_ROOT / "source_specs"


@dataclass
class Config:
    """Sizes and repetitions of one benchmark run (`full`, `quick` or the test's `smoke`)."""

    mode: str = "full"
    seed: int = 7
    k: int = 3
    p1_records: int = 100_000
    p1_default_loader_runs: int = 1  # dlt's insert_values loader is ~50x slower: fewer runs
    p1_isolated: bool = True  # each restsync / plain dlt sample in a fresh process
    p2_parents: int = 200
    p2_children: int = 50
    p2_threads: int = 20
    p2_delay: float = 0.02
    p3_specs: int = 30
    p3_resources: int = 10
    p3_isolated: bool = True  # a fresh process per measurement (imports excluded)
    p4_small: int = 1_000_000
    p4_large: int = 10_000_000
    p4_isolated: bool = True
    p5_records: int = 5_000
    p1_large: int = 1_000_000  # P1 at scale (issue 13): restsync vs the raw loop only
    p1_large_k: int = 2
    p6_records: int = 1_000_000
    p6_k: int = 3
    p6_plain_runs: int = 1
    p7_records: int = 2_000  # issue 23 item 5: 20 pages of 100 per spec, each after 200 ms
    p7_delay_ms: int = 200
    p7_max_concurrent: int = 5  # multiprocess steps at once: one per spec (latency-bound)
    p7_k: int = 2
    p8_pages: int = 400  # issue 23: pages of 100, every one answered after p8_delay_ms
    p8_delay_ms: int = 50
    p9_rate: int = 40  # requests per second the server enforces
    p9_pages: int = 400
    cases: tuple[str, ...] = ("P1", "P1b", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9")

    @classmethod
    def full(cls, seed: int = 7) -> Config:
        return cls(seed=seed)

    @classmethod
    def quick(cls, seed: int = 7) -> Config:
        return cls(
            mode="quick",
            seed=seed,
            k=1,
            p1_records=10_000,
            p2_parents=50,
            p3_specs=5,
            p4_small=10_000,
            p4_large=100_000,
            p5_records=3_000,
            p1_large=100_000,
            p1_large_k=1,
            p6_records=20_000,
            p7_records=500,
            p7_k=1,
            p8_pages=60,
            p9_pages=90,
        )

    @classmethod
    def smoke(cls, seed: int = 7) -> Config:
        """Correctness only (the pytest smoke test): tiny sizes, no subprocess workers."""
        return cls(
            mode="smoke",
            seed=seed,
            k=1,
            p1_records=2_000,
            p1_default_loader_runs=0,
            p1_isolated=False,
            p2_parents=6,
            p2_children=5,
            p2_threads=3,
            p2_delay=0.0,
            p3_specs=2,
            p3_resources=3,
            p3_isolated=False,
            p4_small=500,
            p4_large=1_500,
            p4_isolated=False,
            p5_records=1_000,
            p1_large=3_000,
            p1_large_k=1,
            p6_records=1_500,
            p6_plain_runs=1,
            p7_records=200,
            p7_delay_ms=5,
            p7_k=1,
            p8_pages=6,
            p8_delay_ms=0,
            p9_rate=200,
            p9_pages=9,
        )


@dataclass
class Row:
    """One line of the results table."""

    case: str
    name: str
    unit: str
    baseline_name: str | None
    baseline: float | None
    restsync: float | None
    ratio: float | None
    target: str
    passed: bool | None
    notes: list[str] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


class Bench:
    """Holds the server URL, a scratch folder and the config while cases run."""

    def __init__(self, config: Config, base_url: str, log: Callable[[str], None] = print):
        self.config = config
        self.url = base_url
        self.log = log
        self.scratch = Path(tempfile.mkdtemp(prefix="restsync-bench-"))

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def workdir(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.scratch))
        return path

    # ------------------------------------------------------------------------------ P1

    def _p1_sample(self, variant: str, spec_dir: Path, n: int) -> dict[str, Any]:
        """One restsync or plain dlt P1 run; in a fresh process unless `p1_isolated` is off."""
        workdir = self.workdir(f"p1-{variant}")
        if self.config.p1_isolated:
            args = ["--specs", str(spec_dir), "--url", self.url, "--n", str(n)]
            out = run_worker(["p1", "--variant", variant, *args, "--workdir", str(workdir)])
            if "seconds" not in out:
                raise RuntimeError(out.get("error", "P1 worker gave no result"))
            return out
        if variant == "restsync":
            return measure.restsync_run(spec_dir, workdir)
        config = specs.records_dlt_config(self.url, n)
        return measure.plain_dlt_run(config, workdir, "plain", "bench_p1", variant)

    def p1(self) -> list[Row]:
        c = self.config
        n = c.p1_records
        spec_dir = self.scratch / "p1_specs"
        specs.write_spec(spec_dir, specs.records_spec("bench_p1", self.url, n))
        path = f"/records/{n}"
        measure.raw_fetch(self.url, path)  # warm the server's page cache and the sockets
        samples: dict[str, list[float]] = {"raw": [], "restsync": [], "jsonl": [], "default": []}
        phases: dict[str, list[dict[str, float]]] = {"restsync": [], "jsonl": [], "default": []}
        last: dict[str, dict[str, Any]] = {}
        errors: list[str] = []
        for rep in range(c.k):
            raw = measure.raw_fetch(self.url, path)
            samples["raw"].append(raw["seconds"])
            out = self._p1_sample("restsync", spec_dir, n)
            if out["success"] and out["rows"].get("bench_p1/items") == n:
                samples["restsync"].append(out["seconds"])
            else:
                errors.append(f"restsync run failed: {out['error'] or out['rows']}")
            phases["restsync"].append(out["phases"].get("restsync_bench_p1", {}))
            last["restsync"] = out
            out = self._p1_sample("jsonl", spec_dir, n)
            samples["jsonl"].append(out["seconds"])
            phases["jsonl"].append(out["phases"])
            last["jsonl"] = out
            if rep < c.p1_default_loader_runs:
                out = self._p1_sample("insert_values", spec_dir, n)
                samples["default"].append(out["seconds"])
                phases["default"].append(out["phases"])
                last["default"] = out
            self.log(
                f"  P1 rep {rep + 1}/{c.k}: "
                + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in samples.items() if len(v) > rep)
            )
        rate = {k: _ratio(n, median(v)) for k, v in samples.items()}
        rs = rate["restsync"]
        common = {"unit": "records/s", "samples": {"seconds": samples, "phases": phases}}
        notes = [
            f"{n:,} records of 11 fields, pages of 1,000, one Dagster materialize per run"
            + (", each run in a fresh process (imports not timed)" if c.p1_isolated else "")
        ]
        for key, label in (
            ("restsync", "restsync"),
            ("jsonl", "plain dlt jsonl"),
            ("default", "plain dlt default"),
        ):
            if phases[key] and samples[key]:
                steps = {
                    s: median([p.get(s) for p in phases[key]])
                    for s in ("extract", "normalize", "load")
                }
                known = sum(v for v in steps.values() if v is not None)
                notes.append(
                    f"{label} phases (dlt trace, median): "
                    + ", ".join(f"{s} {v:.2f}s" for s, v in steps.items() if v is not None)
                    + f", rest ({'Dagster run + restsync setup' if key == 'restsync' else 'source build, pipeline setup'}) "
                    f"{median(samples[key]) - known:.2f}s"
                )
        if errors:
            notes += errors[:2]
        rows = [
            Row(
                "P1",
                "throughput (absolute)",
                baseline_name=None,
                baseline=None,
                restsync=rs,
                ratio=None,
                target=">= 40,000 records/s",
                passed=rs is not None and rs >= 40_000,
                notes=notes,
                **common,
            ),
            Row(
                "P1",
                "throughput vs raw requests loop",
                baseline_name="raw requests loop",
                baseline=rate["raw"],
                restsync=rs,
                ratio=_ratio(rs, rate["raw"]),
                target=">= 0.35x",
                passed=_ratio(rs, rate["raw"]) is not None and _ratio(rs, rate["raw"]) >= 0.35,
                **common,
            ),
            Row(
                "P1",
                "throughput vs plain dlt (jsonl)",
                baseline_name="plain dlt rest_api_source, jsonl",
                baseline=rate["jsonl"],
                restsync=rs,
                ratio=_ratio(rs, rate["jsonl"]),
                target=">= 4x",
                passed=_ratio(rs, rate["jsonl"]) is not None and _ratio(rs, rate["jsonl"]) >= 4,
                **common,
            ),
        ]
        if samples["default"]:
            ratio = _ratio(rs, rate["default"])
            rows.append(
                Row(
                    "P1",
                    "throughput vs plain dlt (default loader)",
                    baseline_name="plain dlt rest_api_source, insert_values",
                    baseline=rate["default"],
                    restsync=rs,
                    ratio=ratio,
                    target=">= 25x (issue title)",
                    passed=ratio is not None and ratio >= 25,
                    notes=[f"default loader: {len(samples['default'])} run(s) (it is ~50x slower)"],
                    **common,
                )
            )
        # same rows, column types and values as plain dlt
        checks = {}
        for other in ("default", "jsonl"):
            if other in last and "restsync" in last:
                checks[other] = measure.compare_tables(
                    last["restsync"]["db"], "bench_p1.items", last[other]["db"], "bench_p1.items"
                )
        equal = bool(checks) and all(v.get("equal") for v in checks.values())
        eq_notes = []
        for other, check in checks.items():
            if check.get("error"):
                eq_notes.append(f"vs {other}: {check['error']}")
            else:
                eq_notes.append(
                    f"vs {other}: rows {check['rows'][0]:,}/{check['rows'][1]:,}, "
                    f"type diffs {check['type_diffs'] or 'none'}, rows only in restsync "
                    f"{check['rows_only_in_restsync']}, only in plain dlt {check['rows_only_in_plain_dlt']}"
                )
        some = next(iter(checks.values()), {})
        if some.get("columns"):
            eq_notes.append(
                "restsync columns: "
                + ", ".join(
                    f"{k} {v}" for k, v in some["columns"].items() if not k.startswith("_dlt")
                )
            )
        rows.append(
            Row(
                "P1",
                "same rows, column types, values as plain dlt",
                unit="",
                baseline_name="plain dlt tables (" + ", ".join(checks) + ")",
                baseline=None,
                restsync=None,
                ratio=None,
                target="equal",
                passed=equal,
                notes=eq_notes,
                samples={"comparisons": checks},
            )
        )
        rows.append(self._p1_large())
        return rows

    def _p1_large(self) -> Row:
        """P1 at scale (issue 13): restsync vs the raw loop at `p1_large` records."""
        c = self.config
        n = c.p1_large
        spec_dir = self.scratch / "p1_large_specs"
        specs.write_spec(spec_dir, specs.records_spec("bench_p1", self.url, n))
        path = f"/records/{n}"
        measure.raw_fetch(self.url, path)  # warm the server's page cache
        samples: dict[str, list[float]] = {"raw": [], "restsync": []}
        phases: list[dict[str, float]] = []
        errors: list[str] = []
        for rep in range(c.p1_large_k):
            samples["raw"].append(measure.raw_fetch(self.url, path)["seconds"])
            out = self._p1_sample("restsync", spec_dir, n)
            if out["success"] and out["rows"].get("bench_p1/items") == n:
                samples["restsync"].append(out["seconds"])
                phases.append(out["phases"].get("restsync_bench_p1", {}))
            else:
                errors.append(f"restsync run failed: {out['error'] or out['rows']}")
            self.log(
                f"  P1 {n:,} rep {rep + 1}/{c.p1_large_k}: raw {samples['raw'][-1]:.2f}s"
                + (f", restsync {samples['restsync'][-1]:.2f}s" if samples["restsync"] else "")
            )
        raw, rs = median(samples["raw"]), median(samples["restsync"])
        ratio = _ratio(raw, rs)  # = restsync's rate / the raw loop's rate
        steps = {s: median([p.get(s) for p in phases]) for s in ("extract", "normalize", "load")}
        notes = [
            f"{n:,} records, pages of 1,000, one Dagster materialize per run"
            + (" in a fresh process (imports not timed)" if c.p1_isolated else "")
            + f"; raw {median(samples['raw']) or 0:.2f}s, restsync {rs or 0:.2f}s"
            + (
                "; restsync phases (dlt trace, median): "
                + ", ".join(f"{s} {v:.2f}s" for s, v in steps.items() if v is not None)
                if phases
                else ""
            ),
            *errors[:2],
        ]
        return Row(
            "P1",
            f"throughput at scale ({n:,} records) vs raw requests loop",
            unit="records/s",
            baseline_name="raw requests + orjson loop, keep-alive",
            baseline=_ratio(n, raw),
            restsync=_ratio(n, rs),
            ratio=ratio,
            target=">= 0.35x",
            passed=ratio is not None and ratio >= 0.35 and not errors,
            notes=notes,
            samples={"seconds": samples, "phases": phases},
        )

    def p1b(self) -> list[Row]:
        from benchmarks.cases_production import p1b

        return p1b(self)

    def p6(self) -> list[Row]:
        from benchmarks.cases_production import p6

        return p6(self)

    def p8(self) -> list[Row]:
        from benchmarks.cases_latency import p8

        return p8(self)

    def p9(self) -> list[Row]:
        from benchmarks.cases_latency import p9

        return p9(self)

    def p7(self) -> list[Row]:
        from benchmarks.cases_production import p7

        return p7(self)

    # ------------------------------------------------------------------------------ P2

    def p2(self) -> list[Row]:
        c = self.config
        parents, per, threads = c.p2_parents, c.p2_children, c.p2_threads
        spec_dir = self.scratch / "p2_specs"
        specs.write_spec(spec_dir, specs.fanout_spec("bench_p2", self.url, parents, per))
        specs.write_spec(
            spec_dir,
            specs.fanout_spec("bench_p2_conc", self.url, parents, per, concurrency=threads),
        )
        # one parent: the fixed cost of a run (source, pipeline, dlt's extract setup, state)
        specs.write_spec(
            spec_dir, specs.fanout_spec("bench_p2_one", self.url, 1, per, concurrency=threads)
        )
        plain = specs.fanout_dlt_config(self.url, parents, per)
        plain_par = specs.fanout_dlt_config(self.url, parents, per, parallelized=True)
        expected = parents * per
        measure.raw_fanout(self.url, parents, per, threads)  # warm-up
        runs: dict[str, Callable[[], dict[str, Any]]] = {
            "raw": lambda: measure.raw_fanout(self.url, parents, per, threads),
            "restsync": lambda: measure.restsync_extract(
                spec_dir, self.workdir("p2-rs"), "bench_p2", "children"
            ),
            "restsync_concurrency": lambda: measure.restsync_extract(
                spec_dir, self.workdir("p2-rsc"), "bench_p2_conc", "children"
            ),
            "raw_one": lambda: measure.raw_fanout(self.url, 1, per, threads),
            "restsync_one": lambda: measure.restsync_extract(
                spec_dir, self.workdir("p2-rs1"), "bench_p2_one", "children"
            ),
            "dlt": lambda: measure.plain_dlt_extract(
                plain, self.workdir("p2-dlt"), "p2", "children"
            ),
            "dlt_parallelized": lambda: measure.plain_dlt_extract(
                plain_par, self.workdir("p2-dltp"), "p2", "children"
            ),
        }
        samples: dict[str, list[float | None]] = {k: [] for k in [*runs, "materialize"]}
        counts: dict[str, Any] = {}
        inflight: dict[str, int] = {}
        for rep in range(c.k):
            for key, run in runs.items():
                measure.server_stats(self.url, reset=True)
                out = run()
                samples[key].append(out["seconds"])
                counts[key] = out["rows"]
                inflight[key] = measure.server_stats(self.url).get("max_inflight_children", 0)
            out = measure.restsync_run(
                spec_dir, self.workdir("p2-mat"), keys=[("bench_p2_conc", "children")]
            )
            samples["materialize"].append(out["seconds"] if out["success"] else None)
            counts["materialize"] = out["rows"].get("bench_p2_conc/children", out["error"])
            self.log(
                f"  P2 rep {rep + 1}/{c.k}: "
                + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in samples.items() if v[-1] is not None)
            )
        med = {k: median(v) for k, v in samples.items()}
        wrong = {k: v for k, v in counts.items() if v != (per if k.endswith("_one") else expected)}
        setup = (
            f"{parents} parents x {per} children, {c.p2_delay * 1000:.0f} ms server delay per "
            f"child call; raw = {threads} threads; restsync and plain dlt timed as "
            "source build + pipeline.extract"
        )
        plain_note = (
            f"plain dlt rest_api_source: sequential {med['dlt']:.2f}s, `parallelized: true` "
            f"(dlt default extract workers) {med['dlt_parallelized']:.2f}s"
        )
        plain_note += "; most child calls in flight at once (server side): " + ", ".join(
            f"{k} {v}" for k, v in inflight.items()
        )
        if wrong:
            plain_note += f"; WRONG child row counts (expected {expected}): {wrong}"

        def row(name: str, key: str, target: bool, notes: list[str]) -> Row:
            ratio = _ratio(med[key], med["raw"])
            return Row(
                "P2",
                name,
                unit="s",
                baseline_name=f"raw requests, {threads} threads",
                baseline=med["raw"],
                restsync=med[key],
                ratio=ratio,
                target="<= 1.4x" if target else "info",
                passed=(ratio is not None and ratio <= 1.4 and key not in wrong)
                if target
                else None,
                notes=notes,
                samples={"seconds": samples, "rows": counts, "max_inflight": inflight},
            )

        return [
            row(
                f"fan-out child extraction, `client.concurrency: {threads}`",
                "restsync_concurrency",
                True,
                [setup, plain_note],
            ),
            self._p2_marginal(med, threads, parents),
            row(
                "fan-out child extraction, no concurrency set (default 1)",
                "restsync",
                False,
                ["sequential by design: the spec did not allow parallel requests"],
            ),
            row(
                f"fan-out child asset, Dagster materialize (`concurrency: {threads}`)",
                "materialize",
                False,
                ["end to end: parent fetched to drive the child, child loaded into DuckDB"],
            ),
        ]

    def _p2_marginal(self, med: dict[str, float], threads: int, parents: int) -> Row:
        """P2 without each side's fixed cost: the 200-parent time minus the 1-parent time
        (restsync builds a source and a pipeline and dlt sets up the extract and its state
        once per run; the raw loop has none of it)."""
        raw = med["raw"] - med["raw_one"]
        mine = med["restsync_concurrency"] - med["restsync_one"]
        return Row(
            "P2",
            f"fan-out marginal cost: {parents} parents minus 1 (`concurrency: {threads}`)",
            unit="s",
            baseline_name=f"raw requests, {threads} threads, {parents} minus 1 parent",
            baseline=raw,
            restsync=mine,
            ratio=_ratio(mine, raw),
            target="info",
            passed=None,
            notes=[
                f"fixed cost (1 parent x 1 child call): restsync {med['restsync_one']:.3f}s,"
                f" raw {med['raw_one']:.3f}s"
            ],
        )

    # ------------------------------------------------------------------------------ P3

    def _p3_measure(self, variant: str, spec_dir: Path, config_dir: Path | None) -> dict[str, Any]:
        if self.config.p3_isolated:
            args = ["p3", "--variant", variant, "--specs", str(spec_dir)]
            if config_dir is not None:
                args += ["--configs", str(config_dir)]
            return run_worker(args)
        from benchmarks import worker

        if variant == "restsync":
            start = time.perf_counter()
            defs = measure.restsync_definitions(spec_dir)
            return {"seconds": time.perf_counter() - start, "assets": len(list(defs.assets))}
        return worker.p3_eager(config_dir, None if config_dir else spec_dir)

    def p3(self) -> list[Row]:
        c = self.config
        gen_specs, gen_configs = self.scratch / "p3_specs", self.scratch / "p3_configs"
        specs.write_generated_specs(gen_specs, gen_configs, c.p3_specs, c.p3_resources)
        total = c.p3_specs * c.p3_resources
        cases = [
            (
                f"definitions: {c.p3_specs} specs / {total} resources",
                gen_specs,
                gen_configs,
                0.5,
                "plain dagster-dlt: rest_api_source + @dlt_assets per spec",
            ),
            (
                "definitions: the 5 seed specs",
                SEED_SPECS,
                None,
                0.15,
                "eager: restsync build_source + @dlt_assets per spec",
            ),
        ]
        rows = []
        for name, spec_dir, config_dir, limit, baseline_name in cases:
            samples: dict[str, list[Any]] = {"restsync": [], "baseline": []}
            for rep in range(c.k):
                samples["restsync"].append(self._p3_measure("restsync", spec_dir, None))
                samples["baseline"].append(self._p3_measure("eager", spec_dir, config_dir))
                self.log(
                    f"  P3 {name} rep {rep + 1}/{c.k}: restsync "
                    f"{samples['restsync'][-1].get('seconds', float('nan')):.3f}s, baseline "
                    f"{samples['baseline'][-1].get('seconds', float('nan')):.3f}s"
                )
            rs = median([s.get("seconds") for s in samples["restsync"]])
            base = median([s.get("seconds") for s in samples["baseline"]])
            notes = ["YAML -> Definitions, timed in a fresh process after imports"]
            first = samples["restsync"][-1]
            if "error" in first:
                notes.append(first["error"])
            if first.get("warm_seconds") is not None:
                notes.append(
                    f"restsync: warm repeat {median([s.get('warm_seconds') for s in samples['restsync']]):.3f}s, "
                    f"Dagster resolve of the repository {median([s.get('resolve_seconds') for s in samples['restsync']]):.3f}s, "
                    f"{first.get('assets')} assets, modules imported during the timed call "
                    f"{first.get('lazy_imports')}"
                )
            rows.append(
                Row(
                    "P3",
                    name,
                    unit="s",
                    baseline_name=baseline_name,
                    baseline=base,
                    restsync=rs,
                    ratio=_ratio(rs, base),
                    target=f"<= {limit} s",
                    passed=rs is not None and rs <= limit,
                    notes=notes,
                    samples=samples,
                )
            )
        return rows

    # ------------------------------------------------------------------------------ P4

    def _p4_measure(self, n: int) -> dict[str, Any]:
        workdir = self.workdir(f"p4-{n}")
        if self.config.p4_isolated:
            return run_worker(["p4", "--url", self.url, "--n", str(n), "--workdir", str(workdir)])
        from benchmarks import worker

        return worker.p4_restsync(self.url, n, workdir)

    def p4(self) -> list[Row]:
        c = self.config
        small = self._p4_measure(c.p4_small)
        self.log(f"  P4 {c.p4_small:,}: {small.get('peak_rss_mb', float('nan')):.0f} MB")
        large = self._p4_measure(c.p4_large)
        self.log(f"  P4 {c.p4_large:,}: {large.get('peak_rss_mb', float('nan')):.0f} MB")
        notes = []
        for n, out in ((c.p4_small, small), (c.p4_large, large)):
            if "peak_rss_mb" not in out or out.get("error"):
                notes.append(f"{n:,}: {out.get('error')}")
                if "peak_rss_mb" not in out:
                    continue
            phase_peaks = ", ".join(
                f"{k} {v:.0f} MB" for k, v in out.get("phase_peak_rss_mb", {}).items()
            )
            notes.append(
                f"{n:,} records: peak RSS {out['peak_rss_mb']:.0f} MB (after imports "
                f"{out['rss_after_imports_mb']:.0f} MB; peak per dlt step: {phase_peaks or 'n/a'}), "
                f"{out['seconds']:.1f}s = {n / out['seconds']:,.0f} records/s, "
                f"{out['rows_in_table']} rows in table"
            )
        if not c.p4_isolated:
            notes.append("measured in-process (smoke): RSS numbers are not meaningful")
        if c.mode != "full":
            notes.append(f"{c.mode} mode: {c.p4_small:,} -> {c.p4_large:,} instead of 1M -> 10M")
        peak_small, peak_large = small.get("peak_rss_mb"), large.get("peak_rss_mb")
        ok_small = small.get("success") and small.get("rows_in_table") == c.p4_small
        ok = ok_small and large.get("success") and large.get("rows_in_table") == c.p4_large
        growth = _ratio(peak_large, peak_small)
        time_growth = _ratio(large.get("seconds"), small.get("seconds"))
        scale = c.p4_large / c.p4_small
        return [
            Row(
                "P4",
                f"peak RSS streaming {c.p4_small:,} records (default settings)",
                unit="MB",
                baseline_name=None,
                baseline=None,
                restsync=peak_small,
                ratio=None,
                target="<= 350 MB",
                passed=bool(ok_small) and peak_small is not None and peak_small <= 350,
                notes=notes,
                samples={"small": small, "large": large},
            ),
            Row(
                "P4",
                f"peak RSS {c.p4_small:,} -> {c.p4_large:,} records (memory stays flat)",
                unit="MB",
                baseline_name=f"restsync at {c.p4_small:,}",
                baseline=peak_small,
                restsync=peak_large,
                ratio=growth,
                target="<= 1.1x",
                passed=bool(ok) and growth is not None and growth <= 1.1,
            ),
            Row(
                "P4",
                f"time {c.p4_small:,} -> {c.p4_large:,} records (cost grows linearly)",
                unit="s",
                baseline_name=f"restsync at {c.p4_small:,}",
                baseline=small.get("seconds"),
                restsync=large.get("seconds"),
                ratio=time_growth,
                target=f"<= {scale * 1.05:g}x",
                passed=bool(ok) and time_growth is not None and time_growth <= scale * 1.05,
            ),
        ]

    # ------------------------------------------------------------------------------ P5

    def p5(self) -> list[Row]:
        c = self.config
        n = c.p5_records
        spec_dir = self.scratch / "p5_specs"
        specs.write_spec(spec_dir, specs.incremental_spec("bench_p5", self.url, n))
        plain = specs.incremental_dlt_config(self.url, n)
        resources = ("events", "events_nototal")

        def per_resource(stats: dict[str, int]) -> dict[str, int]:
            return {r: stats.get(f"/inc/{n}/{r}", 0) for r in resources}

        counts: dict[str, dict[str, dict[str, int]]] = {"restsync": {}, "plain": {}}
        tables: dict[str, Any] = {}
        # restsync: two materializations into the same warehouse; the second finds nothing new
        workdir = self.workdir("p5-restsync")
        with measure.restsync_env(spec_dir, workdir) as db:
            defs = measure.restsync_definitions(spec_dir)
            for run in ("first", "rerun"):
                measure.server_stats(self.url, reset=True)
                out = measure.restsync_materialize(defs)
                counts["restsync"][run] = per_resource(measure.server_stats(self.url))
                if not out["success"]:
                    counts["restsync"][run]["error"] = out["error"]
            tables["restsync"] = {
                r: measure.table_count(str(db), f"bench_p5.{r}") for r in resources
            }
        # plain dlt: the same two runs with one pipeline
        workdir = self.workdir("p5-plain")
        pipeline = measure.plain_dlt_pipeline(workdir, "plain_p5", "bench_p5")
        from dlt.sources.rest_api import rest_api_source

        for run in ("first", "rerun"):
            measure.server_stats(self.url, reset=True)
            pipeline.run(rest_api_source(plain, name="bench_p5"), loader_file_format="jsonl")
            counts["plain"][run] = per_resource(measure.server_stats(self.url))
        tables["plain"] = {
            r: measure.table_count(str(workdir / "plain_p5.duckdb"), f"bench_p5.{r}")
            for r in resources
        }
        self.log(f"  P5 requests: {counts}")
        rows = []
        for r in resources:
            rerun = counts["restsync"]["rerun"].get(r)
            ok = "error" not in counts["restsync"]["rerun"] and tables["restsync"].get(r) == n
            rows.append(
                Row(
                    "P5",
                    f"incremental re-run, nothing new: requests ({r})",
                    unit="requests",
                    baseline_name="plain dlt rest_api_source",
                    baseline=counts["plain"]["rerun"][r],
                    restsync=rerun,
                    ratio=None,
                    target="<= 1",
                    passed=bool(ok) and rerun is not None and rerun <= 1,
                    notes=[
                        f"{n:,} events, pages of 1,000, `updated_since` cursor; first run "
                        f"restsync {counts['restsync']['first'].get(r)} / plain dlt "
                        f"{counts['plain']['first'][r]} requests; rows after both runs restsync "
                        f"{tables['restsync'].get(r)} / plain dlt {tables['plain'].get(r)}"
                        + (
                            f"; restsync error: {counts['restsync']['rerun']['error']}"
                            if "error" in counts["restsync"]["rerun"]
                            else ""
                        )
                    ],
                    samples={"requests": counts, "rows": tables},
                )
            )
        return rows


def run_cases(config: Config, base_url: str, log: Callable[[str], None] = print) -> list[Row]:
    """Every case of `config.cases`, in order; a case that crashes becomes a failed row."""
    bench = Bench(config, base_url, log)
    rows: list[Row] = []
    try:
        for case in config.cases:
            start = time.perf_counter()
            log(f"{case} ...")
            try:
                rows.extend(getattr(bench, case.lower())())
            except Exception as error:  # keep the other cases' results
                rows.append(
                    Row(
                        case,
                        "crashed",
                        "",
                        None,
                        None,
                        None,
                        None,
                        "-",
                        False,
                        notes=[f"{type(error).__name__}: {error}"],
                    )
                )
            log(f"{case} done in {time.perf_counter() - start:.1f}s")
    finally:
        bench.close()
    return rows

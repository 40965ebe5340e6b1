"""Issue 13's cases as result rows: P1b (fixed cost), P6 (PostgreSQL), P7 (parallel steps).

Each function takes the running `cases.Bench` (server URL, config, scratch folders, log).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from benchmarks import measure, production
from benchmarks.cases import Bench, Row, _ratio, median
from benchmarks.worker import run_worker


def _skipped(case: str, name: str, why: str) -> list[Row]:
    return [Row(case, name, "", None, None, None, None, "-", False, notes=[why])]


# ------------------------------------------------------------------------------ P1b


def p1b(bench: Bench) -> list[Row]:
    """Two fresh processes per repetition: the first imports restsync's definitions, times
    the run (the modules it imports first included) and lists those modules; the second
    imports them too before the timed run, which is then the run's work without imports."""
    c = bench.config
    samples: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for rep in range(c.k):
        workdir = bench.workdir("p1b")
        if c.p1_isolated:
            out = run_worker(["p1b", "--url", bench.url, "--workdir", str(workdir)])
            modules = workdir / "run_modules.json"
            modules.write_text(json.dumps(out.get("run_modules") or []))
            workdir = bench.workdir("p1b-preimported")
            pre = ["--preimport", str(modules)]
            bare.append(run_worker(["p1b", "--url", bench.url, "--workdir", str(workdir), *pre]))
        else:
            out = production.p1b_run(bench.url, workdir)
        out.pop("run_modules", None)
        samples.append(out)
        shown = f"  P1b rep {rep + 1}/{c.k}: {out.get('seconds', float('nan')):.3f}s"
        if bare:
            bare[-1].pop("run_modules", None)
            shown += f", beyond all imports {bare[-1].get('seconds', float('nan')):.3f}s"
        bench.log(shown)
    profile = None
    if c.p1_isolated:  # one more fresh process, profiled (not timed)
        workdir = bench.workdir("p1b-profile")
        profiled = run_worker(["p1b", "--url", bench.url, "--workdir", str(workdir), "--profile"])
        profile = profiled.get("profile")
    cold = median([s.get("seconds") for s in samples])
    warm = median([s.get("warm_seconds") for s in samples])
    imports = median([s.get("import_seconds") for s in samples])
    ok = all(s.get("success") for s in samples + bare)
    notes = [
        f"a spec of one resource, {production.P1B_RECORDS} records in one page: definitions "
        "build + one Dagster materialize, timed after the process's imports"
        + (" in a fresh process per sample" if c.p1_isolated else " (in-process: smoke)"),
        f"imports before it {imports:.2f}s; the same run again in that process (warm: lazy "
        f"imports and first-run caches done) {warm:.3f}s; modules first imported by the run "
        f"{samples[-1].get('modules_imported_by_the_run')}",
    ]
    errors = [s.get("error") for s in samples + bare if s.get("error")]
    notes += errors[:1]
    row = Row(
        "P1b",
        "fixed cost: one 1-page materialization, the run's first-use imports included",
        unit="s",
        baseline_name=None,
        baseline=None,
        restsync=cold,
        ratio=None,
        target="info",
        passed=None,
        notes=notes,
        samples={"runs": samples, "profile": profile},
    )
    if not bare:  # in-process smoke: no fresh processes, nothing to judge
        return [row]
    beyond = median([s.get("seconds") for s in bare])
    bare_imports = median([s.get("import_seconds") for s in bare])
    return [
        Row(
            "P1b",
            "fixed cost: one 1-page materialization beyond the process's imports (fresh process)",
            unit="s",
            baseline_name=None,
            baseline=None,
            restsync=beyond,
            ratio=None,
            target="<= 0.35 s",
            passed=ok and beyond is not None and beyond <= 0.35,
            notes=[
                "the same run in a fresh process that imported, before the timed run, the "
                f"modules the run imports (listed by the sample above; {bare_imports:.2f}s of "
                "imports): Dagster's instance, definitions, dlt's extract/normalize/load, the "
                "first-run caches, no import"
            ],
            samples={"runs": bare},
        ),
        row,
    ]


# ------------------------------------------------------------------------------ P6


def _p6_sample(bench: Bench, variant: str, database: str) -> dict[str, Any]:
    c = bench.config
    workdir = bench.workdir(f"p6-{variant}")
    args = ["--url", bench.url, "--n", str(c.p6_records), "--workdir", str(workdir)]
    start = time.perf_counter()
    if c.p1_isolated:
        out = run_worker(["p6", "--variant", variant, *args, "--database", database])
    else:
        out = production.p6_run(variant, bench.url, c.p6_records, workdir, database)
    out["command_seconds"] = time.perf_counter() - start
    return out


def p6(bench: Bench) -> list[Row]:
    c = bench.config
    why = production.pg_available()
    if why:
        return _skipped("P6", "PostgreSQL loads", why)
    n = c.p6_records
    seconds: dict[str, list[float]] = {"restsync": [], "restsync_duckdb": [], "insert_values": []}
    phases: dict[str, list[dict]] = {k: [] for k in seconds}
    errors: list[str] = []
    comparison: dict[str, Any] = {}
    # warm the server's page cache: otherwise the first variant (restsync into PostgreSQL) also
    # waits for the server to build the pages, and the others do not
    measure.raw_fetch(bench.url, f"/records/{n}")
    with production.pg_database() as database:
        for rep in range(c.p6_k):
            variants = ["restsync", "restsync_duckdb"]
            if rep < c.p6_plain_runs:
                variants.append("insert_values")
            for variant in variants:
                if variant == "restsync":  # a fresh warehouse dataset each time
                    production.pg_rows(database, "drop schema if exists bench_p6 cascade")
                    production.pg_rows(database, "drop schema if exists bench_p6_staging cascade")
                out = _p6_sample(bench, variant, database)
                if out.get("success") and out.get("loaded") == n:
                    seconds[variant].append(out["command_seconds"])
                    phases[variant].append(out.get("phases") or {})
                else:
                    errors.append(f"{variant}: {out.get('error') or out.get('loaded')}")
            bench.log(
                f"  P6 rep {rep + 1}/{c.p6_k}: "
                + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in seconds.items() if len(v) > rep)
            )
        if seconds["restsync"] and seconds["insert_values"]:
            comparison = production.pg_compare(database, "bench_p6.items", "plain_p6.items")
    med = {k: median(v) for k, v in seconds.items()}
    notes = [
        f"{n:,} records, pages of 1,000; whole command (a fresh process: imports, definitions, "
        "run) per sample; a database created and dropped by the benchmark"
    ]
    for key, label in (
        ("restsync", "restsync PostgreSQL"),
        ("restsync_duckdb", "restsync DuckDB"),
        ("insert_values", "plain dlt PostgreSQL insert_values"),
    ):
        if phases[key]:
            steps = {
                s: median([p.get(s) for p in phases[key]]) for s in ("extract", "normalize", "load")
            }
            notes.append(
                f"{label} {med[key]:.1f}s (n={len(seconds[key])}), dlt phases: "
                + ", ".join(f"{s} {v:.1f}s" for s, v in steps.items() if v is not None)
            )
    notes += errors[:2]
    vs_plain = _ratio(med["insert_values"], med["restsync"])
    vs_duck = _ratio(med["restsync"], med["restsync_duckdb"])
    eq_notes = []
    if comparison:
        eq_notes.append(
            f"rows {comparison['rows'][0]:,}/{comparison['rows'][1]:,}, type diffs "
            f"{comparison['type_diffs'] or 'none'}, rows only in restsync "
            f"{comparison['rows_only_in_restsync']}, only in plain dlt "
            f"{comparison['rows_only_in_plain_dlt']}"
        )
    return [
        Row(
            "P6",
            f"PostgreSQL {n:,} records vs plain dlt default loader (speed-up)",
            unit="s",
            baseline_name="plain dlt rest_api_source, insert_values",
            baseline=med["insert_values"],
            restsync=med["restsync"],
            ratio=vs_plain,
            target=">= 6x faster",
            passed=vs_plain is not None and vs_plain >= 6 and not errors,
            notes=notes,
            samples={"seconds": seconds, "phases": phases},
        ),
        Row(
            "P6",
            f"PostgreSQL {n:,} records vs restsync into DuckDB",
            unit="s",
            baseline_name="restsync DuckDB",
            baseline=med["restsync_duckdb"],
            restsync=med["restsync"],
            ratio=vs_duck,
            target="<= 1.2x",
            passed=vs_duck is not None and vs_duck <= 1.2 and not errors,
        ),
        Row(
            "P6",
            "PostgreSQL: same rows, column types, values as plain dlt",
            unit="",
            baseline_name="plain dlt table in the same database",
            baseline=None,
            restsync=None,
            ratio=None,
            target="equal",
            passed=bool(comparison.get("equal")),
            notes=eq_notes or ["not compared: a run failed"],
            samples={"comparison": comparison},
        ),
    ]


# ------------------------------------------------------------------------------ P7

#: issue 23 item 5: five latency-bound specs under the multiprocess executor finish in at most
#: this share of the in-process sequential time
P7_TARGET = 0.4


def p7(bench: Bench) -> list[Row]:
    c = bench.config
    why = production.pg_available()
    if why:
        return _skipped("P7", "parallel steps", why)
    spec_dir = bench.scratch / "p7_specs"
    production.p7_specs(spec_dir, bench.url, c.p7_records, c.p7_delay_ms)
    runs: dict[str, list[dict[str, Any]]] = {"in_process": [], "multiprocess": []}
    for rep in range(c.p7_k):
        for mode in runs:
            with production.pg_database() as database:
                workdir = bench.workdir(f"p7-{mode}")
                out = production.p7_run(mode, spec_dir, workdir, database, c.p7_max_concurrent)
            runs[mode].append(out)
        bench.log(
            f"  P7 rep {rep + 1}/{c.p7_k}: "
            + ", ".join(
                f"{m} {v[-1].get('run_seconds', float('nan')):.1f}s run / "
                f"{v[-1].get('wall_seconds', float('nan')):.1f}s wall"
                for m, v in runs.items()
            )
        )
    errors = [f"{m}: {o['error']}" for m, v in runs.items() for o in v if o.get("error")]
    wrong = [
        f"{m}: {o['rows']}"
        for m, v in runs.items()
        for o in v
        if o.get("rows") and set(o["rows"].values()) != {c.p7_records}
    ]
    overheads = [x for o in runs["multiprocess"] for x in o.get("step_overheads", [])]
    per_step = statistics.median(overheads) if overheads else None
    seq = median([o.get("run_seconds") for o in runs["in_process"]])
    par = median([o.get("run_seconds") for o in runs["multiprocess"]])
    ratio = _ratio(par, seq)
    pages = -(-c.p7_records // production.P7_PAGE)
    setup = (
        f"5 specs x 1 resource x {c.p7_records:,} records in pages of {production.P7_PAGE} "
        f"({pages} pages each, one request at a time, every one answered after "
        f"{c.p7_delay_ms} ms), "
        "into a fresh PostgreSQL database per run; `dagster asset materialize --select '*'` "
        "(5 load steps + 5 check steps), times = Dagster's RUN_START -> RUN_SUCCESS; "
        "multiprocess = restsync's default run config with PostgreSQL (Dagster's multiprocess "
        "executor, steps forked from a forkserver that preloads restsync's run-time modules, "
        "Dagster's CLI and instance storage and dlt's PostgreSQL destination "
        f"(`executors.FORKSERVER_PRELOAD`), `max_concurrent: {c.p7_max_concurrent}` steps at "
        "once: latency-bound steps wait on the API, not the cores)"
    )
    walls = ", ".join(
        f"{m} wall {median([o.get('wall_seconds') for o in v]) or 0:.1f}s" for m, v in runs.items()
    )
    notes_overhead = [
        "STEP_WORKER_STARTING -> STEP_START per step of the multiprocess runs: "
        + (
            f"median {per_step:.2f}s, min {min(overheads):.2f}s, max {max(overheads):.2f}s over "
            f"{len(overheads)} steps"
            if overheads
            else "none recorded"
        )
    ]
    return [
        Row(
            "P7",
            "per-step overhead under the multiprocess executor",
            unit="s",
            baseline_name=None,
            baseline=None,
            restsync=per_step,
            ratio=None,
            target="<= 1.5 s",
            passed=per_step is not None and per_step <= 1.5 and not errors,
            notes=notes_overhead + errors[:2],
            samples={"runs": runs},
        ),
        Row(
            "P7",
            f"5 specs at {c.p7_delay_ms} ms per page: multiprocess vs in-process sequential"
            " (PostgreSQL)",
            unit="s",
            baseline_name="in-process sequential",
            baseline=seq,
            restsync=par,
            ratio=ratio,
            target=f"<= {P7_TARGET}x",
            passed=ratio is not None and ratio <= P7_TARGET and not errors and not wrong,
            notes=[setup, walls, *wrong[:2]],
        ),
    ]

"""Issue 23's latency-bound cases: P8 (parallel pages of one endpoint) and P9 (spending a rate
budget the server enforces).

P8: `/slow/<ms>/records/<n>`: offset pages of 100 with a `total`, every page answered after
50 ms. restsync's run-time extraction (`build_source` + `pipeline.extract`) at
`client.concurrency: 8` and `auto`, against the raw sequential `requests` loop and plain dlt's
`rest_api_source` extraction of the same pages.

P9: the same pages behind `/limited/40/<style>/`: at most 40 requests per one-second window
(429 + `Retry-After` beyond). restsync at `rate_limit: {requests: 40, per: second}`; with
`from_headers` and no declared budget; and three processes sharing one budget through Redis
(`RESTSYNC_RATE_LIMIT_URL`), each extracting a third of the pages. Budget use = requests served
per second between the first and last arrival / 40, counted by the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from benchmarks import measure, specs
from benchmarks.cases import Row, _ratio, median

PER_PAGE = 100
REDIS_URL = "redis://127.0.0.1:6379/0"
X_HEADERS = {"remaining": "X-RateLimit-Remaining", "reset": "X-RateLimit-Reset"}


def paged_spec(name: str, base_url: str, path: str, client: dict[str, Any]) -> dict[str, Any]:
    """One resource `items` over `path` in offset pages of 100 (with `total`)."""
    return {
        "name": name,
        "client": {"base_url": base_url, **client},
        "resources": [
            {
                "name": "items",
                "primary_key": "id",
                "endpoint": {
                    "path": path,
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": PER_PAGE},
                },
            }
        ],
    }


def dlt_config(base_url: str, path: str) -> dict[str, Any]:
    spec = paged_spec("x", base_url, path, {})
    resource = spec["resources"][0]
    resource["endpoint"]["paginator"] = {
        "type": "offset",
        "limit": PER_PAGE,
        "total_path": "total",
    }
    return {"client": {"base_url": base_url}, "resources": [resource]}


def p8(bench: Any) -> list[Row]:
    """restsync at concurrency 8 and auto vs the raw sequential loop and plain dlt."""
    c = bench.config
    n = c.p8_pages * PER_PAGE
    path = f"/slow/{c.p8_delay_ms}/records/{n}"
    spec_dir = bench.scratch / "p8_specs"
    for name, client in (
        ("bench_p8", {"concurrency": 8}),
        ("bench_p8_auto", {"concurrency": "auto"}),
    ):
        specs.write_spec(spec_dir, paged_spec(name, bench.url, path, client))
    runs = {
        "raw": lambda: measure.raw_fetch(bench.url, path, PER_PAGE),
        "dlt": lambda: measure.plain_dlt_extract(
            dlt_config(bench.url, path), bench.workdir("p8-dlt"), "p8", "items"
        ),
        "conc8": lambda: measure.restsync_extract(
            spec_dir, bench.workdir("p8-c8"), "bench_p8", "items"
        ),
        "auto": lambda: measure.restsync_extract(
            spec_dir, bench.workdir("p8-auto"), "bench_p8_auto", "items"
        ),
    }
    samples: dict[str, list[float]] = {k: [] for k in runs}
    rows: dict[str, Any] = {}
    for rep in range(c.k):
        for key, run in runs.items():
            out = run()
            samples[key].append(out["seconds"])
            rows[key] = out.get("rows", out.get("records"))
        bench.log(
            f"  P8 rep {rep + 1}/{c.k}: "
            + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in samples.items())
        )
    med = {k: median(v) for k, v in samples.items()}
    wrong = {k: v for k, v in rows.items() if v != n}
    setup = (
        f"{c.p8_pages} pages x {PER_PAGE} records, every page answered after {c.p8_delay_ms} ms,"
        f" offset paginator with total; raw sequential {med['raw']:.2f}s, plain dlt extract"
        f" {med['dlt']:.2f}s; rows {rows}"
    )

    def row(name: str, key: str, against: str, label: str, times: float) -> Row:
        speedup = _ratio(med[against], med[key])
        return Row(
            "P8",
            name,
            unit="s",
            baseline_name=label,
            baseline=med[against],
            restsync=med[key],
            ratio=speedup,
            target=f">= {times:g}x faster",
            passed=speedup is not None and speedup >= times and key not in wrong,
            notes=[setup] + ([f"WRONG row counts (expected {n}): {wrong}"] if wrong else []),
            samples={"seconds": samples, "rows": rows},
        )

    return [
        row(
            "one endpoint's pages, `concurrency: 8` vs raw loop",
            "conc8",
            "raw",
            "raw sequential requests",
            4,
        ),
        row(
            "one endpoint's pages, `concurrency: 8` vs plain dlt",
            "conc8",
            "dlt",
            "plain dlt rest_api_source",
            4,
        ),
        row(
            "one endpoint's pages, `concurrency: auto` vs raw loop",
            "auto",
            "raw",
            "raw sequential requests",
            3,
        ),
    ]


# ------------------------------------------------------------------------------ P9


def limited_stats(base_url: str, reset: bool = False) -> dict[str, Any]:
    path = "/limited_stats/reset" if reset else "/limited_stats"
    return requests.get(f"{base_url}{path}", timeout=30).json()


def budget_use(stats: dict[str, Any], limit: int) -> float | None:
    """Requests served in the server's full windows (every one-second window strictly between
    the first and the last arrival's) over what those windows allow; None when under three
    windows were used. The first and last windows are partial by nature (the run starts and
    ends inside them) and are left out."""
    windows = Counter(int(t) for t in stats["arrivals"])
    if len(windows) < 3:
        return None
    first, last = min(windows), max(windows)
    full = range(first + 1, last)
    return sum(windows[w] for w in full) / (limit * len(full))


def p9(bench: Any) -> list[Row]:
    """Declared budget, from_headers, and three processes through Redis."""
    c = bench.config
    limit, pages = c.p9_rate, c.p9_pages
    n = pages * PER_PAGE
    path = f"/limited/{limit}/x/slow/{c.p8_delay_ms}/records/{n}"
    third = f"/limited/{limit}/x/slow/{c.p8_delay_ms}/records/{n // 3}"
    spec_dir = bench.scratch / "p9_specs"
    declared = {"rate_limit": {"requests": limit, "per": "second"}}
    headers = {"rate_limit": {"from_headers": X_HEADERS}}
    variants = {
        "declared": ("bench_p9", path, {"concurrency": 8, **declared}, 1),
        "from_headers": ("bench_p9_headers", path, {"concurrency": 8, **headers}, 1),
        "redis_declared": ("bench_p9_shared", third, {"concurrency": 8, **declared}, 3),
        "redis_headers": ("bench_p9_shared_h", third, {"concurrency": 8, **headers}, 3),
    }
    results: dict[str, dict[str, Any]] = {}
    for key, (name, spec_path, client, processes) in variants.items():
        folder = spec_dir / key
        specs.write_spec(folder, paged_spec(name, bench.url, spec_path, client))
        limited_stats(bench.url, reset=True)
        outs = _extract_in_processes(bench, folder, name, processes, key)
        stats = limited_stats(bench.url)
        asked = stats["served"] + stats["rejected"]
        results[key] = {
            "use": budget_use(stats, limit),
            "served": stats["served"],
            "rejected": stats["rejected"],
            "share_429": stats["rejected"] / asked if asked else None,
            "rows": sum(o.get("rows", 0) for o in outs),
            "expected": processes * (n // 3 if processes == 3 else n),
            "seconds": max(o.get("seconds", 0) for o in outs),
        }
        bench.log(f"  P9 {key}: {results[key]}")

    def row(name: str, key: str, use: float, most_429: float) -> Row:
        r = results[key]
        ok = (
            r["use"] is not None
            and r["use"] >= use
            and (r["share_429"] or 0) <= most_429
            and r["rows"] == r["expected"]
        )
        return Row(
            "P9",
            name,
            unit="budget use",
            baseline_name=f"{limit} req/s enforced",
            baseline=1.0,
            restsync=r["use"],
            ratio=r["use"],
            target=f">= {use:.0%}, 429s <= {most_429:.0%}",
            passed=ok,
            notes=[
                f"served {r['served']}, answered 429: {r['rejected']}, rows {r['rows']}"
                f" of {r['expected']}, {r['seconds']:.2f}s"
            ],
            samples=results,
        )

    return [
        row("declared `rate_limit: 40/second`, concurrency 8", "declared", 0.85, 0.0),
        row("`from_headers`, no declared budget", "from_headers", 0.80, 0.01),
        row("three processes, declared budget via Redis", "redis_declared", 0.85, 0.0),
        row("three processes, `from_headers` via Redis", "redis_headers", 0.80, 0.01),
    ]


def _extract_in_processes(
    bench: Any, folder: Path, name: str, processes: int, key: str
) -> list[dict[str, Any]]:
    """`restsync_extract` of `name` in one (this) process, or in `processes` fresh ones at
    once sharing the budget through Redis."""
    if processes == 1:
        os.environ.pop("RESTSYNC_RATE_LIMIT_URL", None)
        return [measure.restsync_extract(folder, bench.workdir(f"p9-{key}"), name, "items")]
    env = {**os.environ, "RESTSYNC_RATE_LIMIT_URL": REDIS_URL}
    go = bench.scratch / f"p9-{key}.go"
    go.unlink(missing_ok=True)
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.cases_latency",
                str(folder),
                name,
                str(bench.workdir(f"p9-{key}-{i}")),
                str(go),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    for process in started:  # each imported everything and waits: start them at once
        assert process.stdout is not None
        process.stdout.readline()
    go.touch()
    outs = []
    for process in started:
        stdout, stderr = process.communicate(timeout=600)
        if process.returncode != 0:
            bench.log(f"  P9 {key}: a sharing process failed: {stderr.strip()[-1500:]!r}")
            outs.append({})
            continue
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outs


def main(argv: list[str]) -> int:
    """One extraction in this process (P9's sharers): imports what it runs, says `ready`,
    waits for the `go` file (at most 120 s), then prints its result as JSON."""
    folder, name, workdir, go = Path(argv[0]), argv[1], Path(argv[2]), Path(argv[3])
    import dlt.sources.rest_api  # noqa: F401  (imports are not what P9 measures)

    import restsync_assets.runtime.source  # noqa: F401

    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    print(json.dumps(measure.restsync_extract(folder, workdir, name, "items")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

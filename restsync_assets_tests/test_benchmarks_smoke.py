"""The benchmark code on tiny sizes, for correctness only: no timing is asserted here."""

from __future__ import annotations

import contextlib
import json

import pytest
import requests

from benchmarks import data, production
from benchmarks.cases import Config
from benchmarks.runner import run
from benchmarks.server import BenchServer


@pytest.fixture(scope="module")
def server():
    with BenchServer(seed=3, delay=0.0) as running:
        yield running


def test_server_serves_deterministic_pages_counts_and_filters(server):
    url = server.url
    requests.get(f"{url}/stats/reset", timeout=10)
    pages = [
        requests.get(f"{url}/records/2500", params={"offset": o, "limit": 1000}, timeout=10).json()
        for o in (0, 1000, 2000, 3000)
    ]
    assert [len(p["data"]) for p in pages] == [1000, 1000, 500, 0]
    assert {p["total"] for p in pages} == {2500}
    rows = [r for p in pages for r in p["data"]]
    assert [r["id"] for r in rows] == list(range(1, 2501))
    assert rows[1234] == data.record(3, 1234)
    assert set(rows[0]) == set(data.FIELDS) and len(data.FIELDS) == 11
    assert any(r["note"] is None for r in rows) and any(r["note"] for r in rows)

    parents = requests.get(f"{url}/fanout/4/parents", timeout=10).json()["data"]
    assert [p["id"] for p in parents] == [1, 2, 3, 4]
    children = requests.get(
        f"{url}/fanout/4/parents/2/children", params={"per": 5}, timeout=10
    ).json()["data"]
    assert [c["parent_id"] for c in children] == [2] * 5

    events = requests.get(f"{url}/inc/50/events", timeout=10).json()
    assert events["total"] == 50 and len(events["data"]) == 50
    since = events["data"][9]["updated_at"]
    newer = requests.get(f"{url}/inc/50/events", params={"updated_since": since}, timeout=10)
    assert [e["id"] for e in newer.json()["data"]] == list(range(11, 51))
    latest = events["data"][-1]["updated_at"]
    none_new = requests.get(
        f"{url}/inc/50/events_nototal", params={"updated_since": latest}, timeout=10
    ).json()
    assert none_new == {"data": []}

    stats = requests.get(f"{url}/stats", timeout=10).json()
    assert stats["/records/2500"] == 4
    assert stats["/inc/50/events"] == 2
    assert stats["/fanout/4/parents/2/children"] == 1

    # P4's never-cached pages and P7's slow pages are the same pages
    for prefix in ("/fresh", "/slow/5"):
        again = requests.get(
            f"{url}{prefix}/records/2500", params={"offset": 1000, "limit": 1000}, timeout=10
        )
        assert again.json() == pages[1], prefix


def test_tiny_benchmark_run_writes_every_case_and_restsync_matches_plain_dlt(server, tmp_path):
    config = Config.smoke()
    config.cases = ("P1", "P1b", "P2", "P3", "P4", "P5")
    rows, _ = run(
        config, tmp_path / "out", tmp_path / "RESULTS.md", log=lambda _m: None, base_url=server.url
    )

    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["cases"] == ["P1", "P1b", "P2", "P3", "P4", "P5"]
    crashed = [r for r in doc["rows"] if r["name"] == "crashed"]
    assert crashed == []
    for row in doc["rows"]:
        assert set(row) >= {"case", "name", "baseline", "restsync", "ratio", "target", "passed"}

    (same,) = [r for r in rows if r.case == "P1" and r.name.startswith("same rows")]
    comparison = same.samples["comparisons"]["jsonl"]
    assert comparison["rows"] == [config.p1_records, config.p1_records], comparison
    assert comparison["type_diffs"] == {}, comparison
    assert comparison["rows_only_in_restsync"] == comparison["rows_only_in_plain_dlt"] == 0
    assert same.passed

    fanout = next(r for r in rows if r.case == "P2")
    counts = fanout.samples["rows"]  # `*_one`: one parent (the run's fixed cost)
    assert {v for k, v in counts.items() if not k.endswith("_one")} == {
        config.p2_parents * config.p2_children
    }
    assert {v for k, v in counts.items() if k.endswith("_one")} == {config.p2_children}
    (fixed,) = [r for r in rows if r.case == "P1b"]
    assert [run["rows"] for run in fixed.samples["runs"]] == [{"bench_p1b/items": 100}]
    (at_scale,) = [r for r in rows if r.case == "P1" and r.name.startswith("throughput at scale")]
    assert len(at_scale.samples["seconds"]["restsync"]) == config.p1_large_k, at_scale.notes
    memory = [r for r in rows if r.case == "P4"]
    linear = f"<= {config.p4_large / config.p4_small * 1.05:g}x"  # 10.5x for 1M -> 10M
    assert [r.target for r in memory] == ["<= 350 MB", "<= 1.1x", linear]
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "| case | baseline | restsync | ratio | target | result |" in markdown


def test_tiny_postgresql_cases_load_the_same_rows_and_time_steps(
    server, postgres_server, tmp_path, monkeypatch
):
    """P6 (restsync into PostgreSQL vs plain dlt's insert_values, same rows and values) and
    P7 (five specs in-process vs multiprocess, per-step overhead recorded) at tiny sizes, in
    databases the benchmark creates and drops (this run's own: a benchmark run by hand on the
    same server at the same time has databases of its own)."""
    created: list[str] = []
    fresh = production.pg_database

    @contextlib.contextmanager
    def recorded(*args, **kwargs):
        with fresh(*args, **kwargs) as name:
            created.append(name)
            yield name

    def left_behind() -> set[str]:
        sql = "select datname from pg_database where datname like 'restsync_bench_%'"
        return {name for (name,) in production.pg_rows(production.ADMIN_DB, sql)} & set(created)

    monkeypatch.setattr(production, "pg_database", recorded)
    config = Config.smoke()
    config.cases = ("P6", "P7")
    rows, _ = run(config, tmp_path / "out", None, log=lambda _m: None, base_url=server.url)

    assert [r.name for r in rows if r.name == "crashed" or r.target == "-"] == []
    (same,) = [r for r in rows if r.case == "P6" and r.name.startswith("PostgreSQL: same")]
    comparison = same.samples["comparison"]
    assert comparison["rows"] == (config.p6_records, config.p6_records), comparison
    assert comparison["type_diffs"] == {}, comparison
    assert same.passed, same.notes
    steps, parallel = [r for r in rows if r.case == "P7"]
    runs = steps.samples["runs"]
    assert all(o["success"] for v in runs.values() for o in v), runs
    assert {n for o in runs["multiprocess"] for n in o["rows"].values()} == {config.p7_records}
    assert len(runs["multiprocess"][0]["step_overheads"]) == 10  # 5 loads + 5 check steps
    assert parallel.baseline is not None and parallel.restsync is not None
    assert created, "the PostgreSQL cases created no database of their own"
    assert not left_behind(), "a benchmark database was left behind"


def test_tiny_latency_cases_load_every_row_and_draw_no_429(server, tmp_path, redis_budgets):
    """P8 and P9 (issue 23) at tiny sizes: every variant loads every row, and the budget
    variants (one process, and three sharing Redis) draw no 429 from the enforcing server
    (`/limited/<n>/x/...`); no timing is asserted."""
    config = Config.smoke()
    config.cases = ("P8", "P9")
    rows, _ = run(config, tmp_path / "out", None, log=lambda _m: None, base_url=server.url)
    assert [r for r in rows if r.name == "crashed"] == []
    p8 = [r for r in rows if r.case == "P8"]
    assert len(p8) == 3
    assert set(p8[0].samples["rows"].values()) == {config.p8_pages * 100}
    p9 = {key: value for key, value in rows[-1].samples.items()}
    assert set(p9) == {"declared", "from_headers", "redis_declared", "redis_headers"}
    for key, result in p9.items():
        assert result["rows"] == result["expected"] > 0, (key, result)
    assert p9["declared"]["rejected"] == p9["redis_declared"]["rejected"] == 0, p9

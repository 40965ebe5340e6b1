"""Children at `client.concurrency` > 1 (`runtime.ordered_jobs`, `runtime.child_batches`):
the child jobs of a page of parents run on the child's own pool and their rows reach dlt in
parent order, joined; the warehouse holds the same multiset of rows at concurrency 1, 20 and
`auto` (the blog mock's child cases of `parity_cases`, incremental children over two runs
included, and the sandbox's `batch_size`/`explode` children, on DuckDB)."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance

from restsync_assets.cli.run import materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.runtime.ordered_jobs import JobPool, in_order
from restsync_assets.specs import load_specs

from .mock_api import BlogApi
from .parity_cases import CASES
from .support import (
    assert_table_is,
    failure_message,
    materialize_specs,
    table_rows,
    typed_tables,
    use_specs,
    use_warehouse,
    write_spec,
)

#: a bound for every wait of a job on another (never reached when the code is right)
WAIT = 10.0


def finishing_in_reverse(count: int, rows: int = 2) -> tuple[list, list[int]]:
    """`count` jobs where job k returns only once job k+1 has returned (the last first);
    and the order in which they returned."""
    done = [threading.Event() for _ in range(count)]
    returned: list[int] = []

    def job(k: int) -> list[Any]:
        if k + 1 < count:
            assert done[k + 1].wait(WAIT), f"job {k + 1} never finished"
        returned.append(k)
        done[k].set()
        return [(k, i) for i in range(rows)]

    return [lambda k=k: job(k) for k in range(count)], returned


@pytest.mark.parametrize(
    ("count", "batch_rows"),
    [(5, 100), (5, 2), (8, 3)],
    ids=["all_joined", "one_job_per_batch", "batches_of_two_jobs"],
)
def test_rows_reach_the_consumer_in_job_order_whatever_order_jobs_finish(count, batch_rows):
    """Jobs finishing last-first still hand their rows over in job order, the jobs done
    behind the first joined with it while the batch holds fewer than `batch_rows` rows (a job's
    rows are never split)."""
    jobs, returned = finishing_in_reverse(count)
    batches = list(in_order(jobs, JobPool(count, "test"), batch_rows=batch_rows))
    assert returned == list(reversed(range(count)))
    assert [row for batch in batches for row in batch] == [
        (k, i) for k in range(count) for i in range(2)
    ]
    # a job joins a batch while it holds fewer than `batch_rows` rows
    assert all(len(batch) - 2 < batch_rows for batch in batches)
    if batch_rows >= 2 * count:
        assert len(batches) == 1


def test_a_failed_job_raises_after_the_rows_of_the_jobs_before_it():
    """Job 2 of 5 fails: the rows of jobs 0 and 1 are handed over, then its error is raised,
    and no row of a later job is ever handed over."""

    def job(k: int) -> list[Any]:
        if k == 2:
            raise ValueError("child 2 failed")
        return [k]

    seen: list[Any] = []
    with pytest.raises(ValueError, match="child 2 failed"):
        for batch in in_order([lambda k=k: job(k) for k in range(5)], JobPool(3, "test")):
            seen.extend(batch)
    assert seen == [0, 1]


def test_a_consumer_that_stops_early_leaves_the_queued_jobs_unrun():
    """The consumer takes one batch and closes the generator: of 50 jobs on one thread, at
    most the ones submitted ahead ever run (the rest are cancelled)."""
    ran: list[int] = []
    release = threading.Event()

    def job(k: int) -> list[Any]:
        if k > 0:
            assert release.wait(WAIT)
        ran.append(k)
        return [k]

    rows = in_order([lambda k=k: job(k) for k in range(50)], JobPool(1, "test"))
    assert next(rows) == [0]
    rows.close()
    release.set()
    assert len(ran) <= 4, ran


#: the blog mock's cases whose resources include children (incremental ones among them)
CHILD_CASES = [c for c in CASES if c.name in ("children", "incremental")]


def load_at(case: Any, folder: Path, concurrency: int | str, monkeypatch) -> dict:
    """The case's tables after restsync loaded it (through Dagster, `case.runs` runs, the mock
    growing in between) with `client.concurrency: concurrency`."""
    config = copy.deepcopy(case.config)
    spec = {"name": case.name, **config}
    spec["client"] = {
        **config["client"],
        "base_url": "http://127.0.0.1:9" + config["client"]["base_url"],
    }
    spec["client"]["concurrency"] = concurrency
    specs = write_spec(folder / "specs", spec).parent
    db = use_warehouse(monkeypatch, folder / "restsync.duckdb", folder / "pipelines")
    (loaded,) = load_specs(specs)
    defs = build_definitions([loaded])
    instance = DagsterInstance.ephemeral()
    with BlogApi() as api:
        use_specs(monkeypatch, specs, {case.name: api.url + config["client"]["base_url"]})
        for run in range(case.runs):
            if run:
                api.blog.grow()
            for result in materialize_spec(defs, loaded, instance, with_checks=False):
                assert result.success, failure_message(result)
    return typed_tables(db, case.name)


@pytest.mark.parametrize("case", CHILD_CASES, ids=[c.name for c in CHILD_CASES])
def test_children_load_the_same_rows_at_concurrency_1_20_and_auto(case, tmp_path, monkeypatch):
    """Every table (each child kind of the case: path, query, header and body bindings,
    `include_from_parent`, ignored 404s and contents, per-parent cursors over two runs) holds
    the same multiset of rows, with the same columns and types, whether the children were
    fetched one at a time, 20 at once or at `auto`'s level."""
    sequential = load_at(case, tmp_path / "c1", 1, monkeypatch)
    assert any(t.rows for t in sequential.values()), "nothing loaded: the case proves nothing"
    for concurrency in (20, "auto"):
        tables = load_at(case, tmp_path / f"c{concurrency}", concurrency, monkeypatch)
        assert set(tables) == set(sequential), concurrency
        for name, table in sequential.items():
            assert tables[name].columns == table.columns, (concurrency, name)
            assert tables[name].rows == table.rows, (concurrency, name)


MEMBERS_FILE = Path(__file__).parent / "specs" / "vocab" / "partnerhub_members.yaml"


@pytest.mark.parametrize("concurrency", [20, "auto"])
def test_batched_and_exploded_children_fetch_concurrently_and_load_each_member_once(
    concurrency, specs_dir, sandbox, monkeypatch
):
    """The sandbox's `partnerhub` members spec (a `batch_size: 4` child and an `explode` child)
    at `client.concurrency` 20 and `auto`: each table holds exactly the members the sandbox
    serves (every one once), and each batch of 4 ids was asked for once."""
    spec = yaml.safe_load(MEMBERS_FILE.read_text())
    spec["client"]["concurrency"] = concurrency
    write_spec(specs_dir, spec, "partnerhub.yaml")
    for key, value in sandbox.env(["partnerhub"]).items():
        monkeypatch.setenv(key, value)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    members = sandbox.rows("partnerhub", "members")
    listed = {i for team in sandbox.rows("partnerhub", "teams") for i in team["member_ids"]}
    assert_table_is(
        table_rows("partnerhub", "team_members"), [m for m in members if m["id"] in listed]
    )
    assert_table_is(table_rows("partnerhub", "member_details"), members)
    batches = [r.query["ids"] for r in sandbox.requests if "ids" in r.query]
    assert len(batches) == len(set(batches)) == 7

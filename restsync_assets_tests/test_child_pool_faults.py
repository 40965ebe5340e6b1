"""Faults while the ordered child pool fetches children at `client.concurrency` > 1
(`runtime.ordered_jobs`, `runtime.child_batches`, `runtime.child_cursors`), on DuckDB and on
PostgreSQL.

One spec, `family`, holds three parent/child pairs (`CHAINS`), each against the same fake API
on 127.0.0.1 under its own prefix: `GET /<chain>/parents?since=` (24 parents with `id` past
`since`, 10 a page) and `GET /<chain>/parents/{id}/children?since=` (each parent's 3 children
with `id` at or past `since`, each with a list `tags`: the nested table
`<chain>_children__tags`). The spec sets `client.concurrency: 8`: each page of parents has
its children fetched 8 at once on the source's one pool (shared by the three children) and
handed to dlt in parent order. Each fault (`FAULTS`) hits the child of parent `K` (in the
middle of the second page of parents):

- `500`: child `K` answers 500 past the retries; the run fails in one line naming its URL;
- `kill-mid-extract`: child `K` is held until the test kills the run (SIGKILL), once a later
  parent's child was asked for too (jobs in flight side by side on the pool);
- `kill-after-a-child-table-committed`: the run is killed as soon as the load job of an
  append child's table (root or nested) committed, its load never completed (the rows it left
  are there when the next run starts).

Then the API heals and two clean runs follow (one, then one with nothing changed at the
source): after each, every table (root and nested) holds the API's rows exactly once, as a
multiset.

What "exactly once" means for append (docs/resilience.md#exactly-once and the
spec-reference's `parents` section): a failed or killed load leaves nothing a later run loads
again, but a clean run loads what the API returns in that run. An append child asked for
every parent on every run (a non-incremental parent, or an incremental one with `parents:
all` and no cursor on the child) appends its rows again by design. The two append chains are
therefore the documented ways a child is asked only for what is new: an incremental parent
with `parents: changed` (the child is asked for the parents the run returned only: dlt's
`rest_api` child through `child_batches`), and an incremental parent with an incremental
child (`parents: all`: each known parent's children asked from its own cursor, through
`child_cursors`). The merge chain has a non-incremental parent and child (every run asks
every parent again; the merge keeps each key once).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .fake_servers import JsonApi, Reply, Request, page
from .real_servers import warehouse_sql
from .support import Command, child_script, failure_message, materialize_specs, use_spec

SPEC = "family"
PARENTS = 24
CHILDREN = 3
#: the parent whose child the fault hits: the second of the second page of parents
K = 12
CONCURRENCY = 8
#: bound on every wait of the test (never reached when the code is right)
BOUND = 120.0


# --------------------------------------------------------------------------- the chains


@dataclass(frozen=True)
class Chain:
    """A parent `<name>_parents` and its child `<name>_children`, both `disposition` with
    primary key `id`; `parent_cursor`: the parent is incremental (`?since=` its newest id);
    `child_cursor`: the child too (a cursor per parent); `parents`: the child's `parents` key
    (None: the default, `all`)."""

    name: str
    disposition: str
    parent_cursor: bool
    child_cursor: bool
    parents: str | None = None

    @property
    def parent(self) -> str:
        return f"{self.name}_parents"

    @property
    def child(self) -> str:
        return f"{self.name}_children"


CHAINS = (
    Chain("changed", "append", parent_cursor=True, child_cursor=False, parents="changed"),
    Chain("cursor", "append", parent_cursor=True, child_cursor=True),
    Chain("merged", "merge", parent_cursor=False, child_cursor=False),
)

PAGES = {"type": "page_number", "page_param": "page", "total_path": "total_pages", "base_page": 1}
BY_ID = {"cursor_path": "id", "start_param": "since", "initial_value": 0}


def chain_resources(chain: Chain) -> list[dict]:
    parent_endpoint = {
        "path": f"/{chain.name}/parents",
        "data_selector": "data",
        "paginator": PAGES,
    }
    if chain.parent_cursor:
        parent_endpoint["incremental"] = BY_ID
    child_endpoint = {
        "path": f"/{chain.name}/parents/{{resources.{chain.parent}.id}}/children",
        "data_selector": "data",
        "paginator": "single_page",
    }
    if chain.child_cursor:
        child_endpoint["incremental"] = BY_ID
    common = {"primary_key": "id", "write_disposition": chain.disposition}
    child = {"name": chain.child, **common, "endpoint": child_endpoint}
    if chain.parents:
        child["parents"] = chain.parents
    return [{"name": chain.parent, **common, "endpoint": parent_endpoint}, child]


def family_spec() -> dict:
    """Every chain of `CHAINS` in one spec at `client.concurrency: CONCURRENCY`."""
    return {
        "name": SPEC,
        "client": {"base_url": "http://unused", "concurrency": CONCURRENCY},
        "resources": [r for chain in CHAINS for r in chain_resources(chain)],
    }


# --------------------------------------------------------------------------- the API


class Family:
    """Parents and their children, the same under each chain's prefix. `broken` (a parent
    id): its child answers 500; `held` (a parent id): its child is held until `released` is
    set (`reached` once it is asked for)."""

    def __init__(self) -> None:
        self.parents = [{"id": p, "name": f"parent {p}"} for p in range(1, PARENTS + 1)]
        self.children = [
            {"id": p * 100 + j, "parent_id": p, "seq": j, "tags": [f"t{p}-{j}", f"g{j % 2}"]}
            for p in range(1, PARENTS + 1)
            for j in range(1, CHILDREN + 1)
        ]
        self.broken: int | None = None
        self.held: int | None = None
        self.reached = threading.Event()
        self.released = threading.Event()
        self.api = JsonApi(
            {
                "GET /{chain}/parents": self._parents,
                "GET /{chain}/parents/{id}/children": self._children_of,
            }
        )

    def _parents(self, request: Request) -> dict:
        since = int(request.query.get("since", 0))
        return page([p for p in self.parents if p["id"] > since], request.query, 10)

    def _children_of(self, request: Request) -> dict | Reply:
        parent = int(request.params["id"])
        if parent == self.broken:
            return Reply({"error": "internal"}, status=500)
        if parent == self.held:
            self.reached.set()
            self.released.wait(BOUND)
        since = int(request.query.get("since", 0))
        return {"data": [c for c in self.children if c["parent_id"] == parent and c["id"] >= since]}

    def children_asked(self) -> set[int]:
        """The parents whose children were asked for (under any prefix)."""
        return {int(c.path.split("/")[3]) for c in self.api.calls_to(r"/\w+/parents/\d+/children")}

    def heal(self) -> None:
        self.broken = self.held = None
        self.released.set()


def assert_tables_are_truth(family: Family) -> None:
    """Each chain's parents, children and their tags hold the API's rows, each exactly once
    (as multisets; a tag joined to its child)."""
    parents = Counter((p["id"], p["name"]) for p in family.parents)
    children = Counter((c["id"], c["parent_id"], c["seq"]) for c in family.children)
    tags = Counter((c["id"], tag, i) for c in family.children for i, tag in enumerate(c["tags"]))
    for chain in CHAINS:
        got = Counter(warehouse_sql(f"select id, name from {SPEC}.{chain.parent}"))
        assert got == parents, f"{chain.parent} differs from the API"
        got = Counter(warehouse_sql(f"select id, parent_id, seq from {SPEC}.{chain.child}"))
        assert got == children, f"{chain.child} differs from the API"
        got = Counter(
            warehouse_sql(
                f"select c.id, t.value, t._dlt_list_idx from {SPEC}.{chain.child}__tags t"
                f" left join {SPEC}.{chain.child} c on c._dlt_id = t._dlt_parent_id"
            )
        )
        assert got == tags, f"{chain.child}__tags differs from the API"


def wait_for(condition: Callable[[], object], what: str) -> None:
    """Poll `condition` until it is truthy, at most `BOUND` s (then fail saying `what`)."""
    pause = threading.Event()
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.02)


# --------------------------------------------------------------------------- the faults


@dataclass(frozen=True)
class Run:
    """What a fault needs: the API, the specs folder, a way to start a subprocess, a folder."""

    family: Family
    specs_dir: Path
    start: Callable[..., Command]
    tmp_path: Path

    def killed(self, script: str, until: Callable[[Command], None]) -> None:
        """A real run of `script` in a subprocess, killed (SIGKILL to its group) once
        `until(run)` returned."""
        path = self.tmp_path / "run.py"
        path.write_text(script)
        run = self.start([sys.executable, path])
        until(run)
        run.signal_group(signal.SIGKILL)
        assert run.finish() == -signal.SIGKILL, run.text


def child_answers_500(run: Run) -> None:
    """Child `K` answers 500 past the retries: the run fails in one line naming its URL."""
    run.family.broken = K
    result = materialize_specs(run.specs_dir)
    assert not result.success, "a child answering 500 did not fail the run"
    line = failure_message(result)
    assert f"/parents/{K}/children" in line and "HTTP 500" in line and "\n" not in line, line


def killed_mid_extract(run: Run) -> None:
    """Child `K` is held; once a later parent's child was asked for too (jobs side by side on
    the pool), the run is killed."""
    family = run.family
    family.held = K

    def children_in_flight(_: Command) -> None:
        assert family.reached.wait(BOUND), f"child {K} was never asked for"
        wait_for(lambda: max(family.children_asked()) > K, f"a child after {K} while {K} is held")

    run.killed(child_script(), children_in_flight)


#: the tables of the append children (root and nested): their rows are what an unfinished
#: load may leave behind for the next run to remove
APPEND_CHILD_TABLES = tuple(
    table
    for chain in CHAINS
    if chain.disposition == "append"
    for table in (chain.child, f"{chain.child}__tags")
)
#: a run that waits forever once the load job of an append child's table committed (its load
#: is not complete then: that job never returns), saying so on stdout; other jobs go on
WAIT_AFTER_AN_APPEND_CHILD_COMMITTED = child_script(
    f"""
import threading

from dlt.common.destination.client import RunnableLoadJob

release = RunnableLoadJob._release


def released(self, next_state):
    table = self.job_file_info().table_name
    if next_state == "completed" and table in {APPEND_CHILD_TABLES!r}:
        print(f"JOB COMMITTED {{table}}", flush=True)
        threading.Event().wait()
    release(self, next_state)


RunnableLoadJob._release = released
"""
)


def left_behind() -> int:
    """Rows of the append children that no completed load wrote: a root row whose
    `_dlt_load_id` is no completed load, a nested row whose parent row is missing."""
    count = 0
    for chain in CHAINS:
        if chain.disposition != "append":
            continue
        table, tags = f"{SPEC}.{chain.child}", f"{SPEC}.{chain.child}__tags"
        count += warehouse_sql(
            f"select count(*) from {table} where _dlt_load_id not in"
            f" (select load_id from {SPEC}._dlt_loads where status = 0)"
        )[0][0]
        count += warehouse_sql(
            f"select count(*) from {tags} t where not exists"
            f" (select 1 from {table} c where c._dlt_id = t._dlt_parent_id)"
        )[0][0]
    return count


def killed_after_an_append_child_committed(run: Run) -> None:
    """The run is killed as soon as the load job of an append child's table committed
    (every child was fetched by then): that table holds rows of a load never completed."""

    def committed(command: Command) -> None:
        assert command.wait_for_line("JOB COMMITTED", BOUND), command.text

    run.killed(WAIT_AFTER_AN_APPEND_CHILD_COMMITTED, committed)
    assert run.family.children_asked() == set(range(1, PARENTS + 1))
    assert left_behind() > 0, "the killed load left no row behind: the fault proves nothing"


FAULTS = {
    "500": child_answers_500,
    "kill-mid-extract": killed_mid_extract,
    "kill-after-a-child-table-committed": killed_after_an_append_child_committed,
}


@pytest.fixture
def family(destination, specs_dir, monkeypatch) -> Family:
    """A running `Family`, the spec `family` in the specs folder pointed at it; loads go to
    each destination in turn."""
    served = Family()
    with served.api:
        use_spec(monkeypatch, specs_dir, family_spec(), served.api.url)
        yield served
        served.heal()


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_fault_in_the_child_pool_then_clean_runs_load_each_row_once(
    fault, family, specs_dir, commands, tmp_path, retry_clock
):
    """The fault hits the children while the pool fetches them 8 at once; once the API
    heals, a clean run loads every parent, child and tag of each chain exactly once, and a
    second run with nothing new at the source leaves every table so (append: see the module
    docstring)."""
    fault(Run(family, specs_dir, commands, tmp_path))
    family.heal()
    for run in ("the clean run", "a second run"):
        result = materialize_specs(specs_dir)
        assert result.success, f"{run}: {failure_message(result)}"
        assert_tables_are_truth(family)

"""Runs at once on one DuckDB file: every `dagster asset materialize` succeeds, no table loses a row.

Each run is a real `dagster asset materialize` process (the README's CLI) against the sandbox
of this test process, one DuckDB file and one fresh `DAGSTER_HOME` (initialised once, as the
README says). Loads and asset checks take turns on `<warehouse>.lock`. So that the runs of a
round really overlap, the sandbox holds every token request of the round's specs until the
two runs that did not get the lock first are seen waiting for it (or, with a Dagster pool
limit of 1, blocked by the pool); nothing is timed.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass

from restsync_assets.checks import check_names
from restsync_assets.sandbox.faults import Fault, FaultPlan
from restsync_assets.specs import load_specs
from restsync_assets.specs.model import ResourceSpec, SourceSpec

from .support import (
    BIN,
    PROCESS_TIMEOUT,
    SEED_SPECS,
    Command,
    assert_table_equals_truth,
    check_results,
    write_dagster_yaml,
)

MATERIALIZE = (BIN / "dagster", "asset", "materialize", "-m", "restsync_assets.definitions")
LOCK_WAIT = "waiting for another restsync run to release"
POOL = "restsync_warehouse"
POOL_WAIT = f"Step blocked by limit for pool {POOL}"


@dataclass(frozen=True)
class Round:
    specs: tuple[str, str, str]  # one `dagster asset materialize` per spec, started at once
    pool_limit: int | None = None  # `concurrency: pools: default_limit` in dagster.yaml
    #: the line the two runs that do not go first print while they wait
    wait_line: str = LOCK_WAIT


ROUNDS = [
    Round(("ledger", "workspace_docs", "marketing_api")),
    Round(("native_ads", "ad_analytics", "ledger")),
    Round(("workspace_docs", "marketing_api", "native_ads"), pool_limit=1, wait_line=POOL_WAIT),
]


def selection(spec: SourceSpec) -> str:
    """A spec's unpartitioned assets (Dagster's CLI takes one partitions definition per run)."""
    return f"group:{spec.name} and partitions:none"


def unpartitioned(spec: SourceSpec) -> list[ResourceSpec]:
    return [r for r in spec.resources if r.partitions is None]


def set_pool(pool: str, limit: int) -> None:
    """`dagster instance concurrency set`: Dagster creates a pool's slots when a run first
    claims one, and runs claiming at once can each create one (seen here: two of three runs
    granted a slot under `default_limit: 1`)."""
    done = subprocess.run(
        [str(BIN / "dagster"), "instance", "concurrency", "set", pool, str(limit)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def wait_until_seen_waiting(runs: dict[str, Command], line: str, count: int) -> set[str]:
    """Read every run's output until `count` of them printed `line` (or one ended, or the
    bound passed); the specs whose run printed it."""
    seen: set[str] = set()
    ended: set[str] = set()
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while len(seen) < count and not ended and time.monotonic() < deadline:
        for name, run in runs.items():
            try:
                text = run.next_line(timeout=0.05)
            except queue.Empty:
                continue
            if text is None:
                ended.add(name)
            elif line in text:
                seen.add(name)
    return seen


def test_three_rounds_of_three_runs_at_once_on_one_duckdb_file(
    sandbox_env, dagster_home, commands, tmp_path
) -> None:
    """3 rounds x 3 `dagster asset materialize` of different specs, started together on one
    DuckDB file: every run succeeds, every check passes, every table equals the sandbox."""
    specs = {s.name: s for s in load_specs(SEED_SPECS)}
    loaded: set[str] = set()
    for number, round_ in enumerate(ROUNDS, 1):
        pools = {"concurrency": {"pools": {"default_limit": round_.pool_limit}}}
        write_dagster_yaml(dagster_home, **(pools if round_.pool_limit else {}))
        if round_.pool_limit:  # created once first, as the README says (see `set_pool`)
            set_pool(POOL, round_.pool_limit)
        release = threading.Event()
        sandbox_env.faults = FaultPlan(
            *(
                Fault("slow", name, "oauth", seconds=PROCESS_TIMEOUT, until=release)
                for name in round_.specs
            )
        )
        runs = {
            name: commands(
                [*MATERIALIZE, "--select", selection(specs[name])],
                cwd=tmp_path,
            )
            for name in round_.specs
        }
        try:
            waiting = wait_until_seen_waiting(runs, round_.wait_line, count=2)
        finally:
            release.set()
        outputs = {name: run.text for name, run in runs.items()}
        assert len(waiting) == 2, f"round {number}: runs seen waiting: {waiting}\n{outputs}"

        for name, run in runs.items():
            code = run.finish()
            assert code == 0, f"round {number}: {name} exited {code}:\n{run.text}"
            expected = {
                (f"{name}/{r.name}", check): "passed"
                for r in unpartitioned(specs[name])
                for check in check_names(r)
            }
            assert check_results(run.text) == expected, f"round {number}: {name}"

        loaded.update(round_.specs)
        for name in sorted(loaded):  # this round's tables, and no row lost from earlier ones
            for resource in unpartitioned(specs[name]):
                assert_table_equals_truth(sandbox_env, name, resource.name)

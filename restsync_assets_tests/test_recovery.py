"""Recovery: kill -9 mid-run then materialize again; two runs of one spec at once.

The materializing process is a real subprocess (`support.Command` running a small script
calling Dagster's `materialize`, see CHILD) against the sandbox of this test process. Its
progress is observed, never waited for by the clock: the sandbox's request log
(`wait_for_requests`) and the stage markers the script prints when dlt enters normalize and
load.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from restsync_assets.sandbox import Sandbox
from restsync_assets.sandbox.faults import Fault, FaultPlan

from .support import (
    Command,
    assert_table_equals_truth,
    child_script,
    copy_seed_specs,
    materialize_specs,
    table_rows,
    use_specs,
)

SPECS = ("ledger", "workspace_docs")  # the seeds: incremental offset pages and plain ones
TABLES = [("ledger", "resource_name")] + [
    ("workspace_docs", name) for name in ("blocks", "databases", "pages", "users")
]
#: A clean run of both specs: 2 token requests, ledger 23 rows / 5 -> 5 pages,
#: workspace_docs 389, 211, 247, 203 rows / 100 -> 4 + 3 + 3 + 3 pages.
FULL_RUN_REQUESTS = 2 + 5 + 13
STAGES = ("normalize", "load")
TIMEOUT = 60.0

CHILD = child_script(
    """
from dlt.pipeline.pipeline import Pipeline


def mark(stage):
    original = getattr(Pipeline, stage)

    def marked(self, *args, **kwargs):
        print(f"STAGE {self.pipeline_name} {stage}", flush=True)
        return original(self, *args, **kwargs)

    setattr(Pipeline, stage, marked)


for stage in ("extract", "normalize", "load"):
    mark(stage)
"""
)


def wait_for_requests(command: Command, sandbox: Sandbox, count: int) -> bool:
    """Wait until the sandbox served `count` requests (True) or `command`'s process ended."""
    deadline = TIMEOUT
    while deadline > 0:
        if sandbox.wait_for_requests(count, 0.25):
            return True
        if command.process.poll() is not None:
            return sandbox.wait_for_requests(count, 0)
        deadline -= 0.25
    return False


@pytest.fixture
def seed_specs_dir(tmp_path, sandbox_env, monkeypatch) -> Path:
    """The seed specs `SPECS` in a specs folder restsync reads."""
    return use_specs(monkeypatch, copy_seed_specs(tmp_path / "specs", SPECS))


@pytest.fixture
def child(tmp_path, commands) -> Callable[[], Command]:
    """`child()` starts CHILD in a subprocess (killed at teardown if still running)."""
    script = tmp_path / "materialize_child.py"
    script.write_text(CHILD)
    return lambda: commands([sys.executable, script])


def kill_point(seed: int) -> tuple[str, int | str, str]:
    """Where to kill, from a seeded RNG: a phase, then a point within it."""
    rng = random.Random(seed)
    phase = rng.choice(("extract", "normalize", "load"))
    if phase == "extract":
        return ("extract", rng.randint(1, FULL_RUN_REQUESTS), "")
    return (phase, f"restsync_{rng.choice(SPECS)}", phase)


SEEDS = (4, 5, 7)  # extract (10th request), load of workspace_docs, normalize of ledger


def _describe(seed: int) -> str:
    phase, where, _ = kill_point(seed)
    return f"seed{seed}-{phase}-{where}"


def assert_every_table_is_the_truth(sandbox: Sandbox) -> None:
    for spec, resource in TABLES:
        assert_table_equals_truth(sandbox, spec, resource)


@pytest.mark.parametrize("seed", SEEDS, ids=[_describe(s) for s in SEEDS])
def test_kill_9_at_a_random_point_then_materialize_again(
    seed, seed_specs_dir, child, sandbox_env
) -> None:
    """A run killed (SIGKILL) in extract, normalize or load leaves a warehouse that opens
    without duplicate keys, and the next run makes every table equal the sandbox's truth."""
    phase, where, stage = kill_point(seed)
    run = child()
    if phase == "extract":
        reached = wait_for_requests(run, sandbox_env, int(where))
    else:
        reached = run.wait_for_line(f"STAGE {where} {stage}")
    assert reached, f"the run ended before {phase} {where}:\n{run.text}"
    run.signal_group(signal.SIGKILL)
    code = run.finish()
    assert code == -signal.SIGKILL, f"exited by itself ({code}) before the kill"

    # the warehouse opens, and no table holds duplicate keys from a half-written load
    db = Path(os.environ["RESTSYNC_DUCKDB_PATH"])
    if db.exists():
        with duckdb.connect(str(db)) as con:
            con.execute("select 1").fetchall()
        for spec, resource in TABLES:
            table_rows(spec, resource)

    # materialize again: each table equals the sandbox truth; the first seed re-materializes
    # a second time in this same process (dagster-dlt's schema mutation, dagster issue 34052)
    for _ in range(2 if seed == SEEDS[0] else 1):
        result = materialize_specs(seed_specs_dir)
        assert result.success
        assert_every_table_is_the_truth(sandbox_env)


def test_two_runs_of_one_spec_at_once_take_turns(tmp_path, child, sandbox_env, monkeypatch) -> None:
    """The second run waits on the warehouse lock while the first holds it; both succeed."""
    use_specs(monkeypatch, copy_seed_specs(tmp_path / "one_spec", ["workspace_docs"]))
    release = threading.Event()
    # the first run's second page is held back until the second run is seen waiting
    sandbox_env.faults = FaultPlan(
        Fault("slow", "workspace_docs", "blocks", nth=2, seconds=TIMEOUT, until=release)
    )
    first = child()
    try:
        assert wait_for_requests(first, sandbox_env, 3), first.text  # holds the lock
        second = child()
        waiting = second.wait_for_line("waiting for another restsync run to release")
        assert waiting, second.text
        release.set()
        assert first.finish() == 0, first.text
        assert second.finish() == 0, second.text
    finally:
        release.set()
    assert any("RESULT success" in line for line in first.output)
    assert any("RESULT success" in line for line in second.output)
    tables = [t for t in TABLES if t[0] == "workspace_docs"]
    for spec, resource in tables:
        assert_table_equals_truth(sandbox_env, spec, resource)
    with duckdb.connect(os.environ["RESTSYNC_DUCKDB_PATH"], read_only=True) as con:
        loads = con.execute("select status from workspace_docs._dlt_loads").fetchall()
    assert loads == [(0,), (0,)]  # two complete loads, one after the other

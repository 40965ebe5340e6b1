"""Recovery: kill -9 mid-run then materialize again; two runs of one spec at once.

The materializing process is a real subprocess (a small script calling Dagster's
`materialize`, see CHILD) against the sandbox of this test process. Its progress is
observed, never waited for by the clock: the sandbox's request log (`wait_for_requests`)
and the stage markers the script prints when dlt enters normalize and load.
"""

from __future__ import annotations

import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from restsync_assets.sandbox import Sandbox
from restsync_assets.sandbox.faults import Fault, FaultPlan

from .conftest import SEED_SPECS
from .test_faults import assert_table_equals_truth, run, table_rows

SPECS = ("ledger", "workspace_docs")  # the seeds: incremental offset pages and plain ones
TABLES = [("ledger", "resource_name")] + [
    ("workspace_docs", name) for name in ("blocks", "databases", "pages", "users")
]
#: A clean run of both specs: 2 token requests, ledger 23 rows / 5 -> 5 pages,
#: workspace_docs 389, 211, 247, 203 rows / 100 -> 4 + 3 + 3 + 3 pages.
FULL_RUN_REQUESTS = 2 + 5 + 13
STAGES = ("normalize", "load")
TIMEOUT = 60.0

CHILD = """
import sys

from dagster import DagsterInstance, materialize

from restsync_assets import settings
from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs
from dlt.pipeline.pipeline import Pipeline


def mark(stage):
    original = getattr(Pipeline, stage)

    def marked(self, *args, **kwargs):
        print(f"STAGE {self.pipeline_name} {stage}", flush=True)
        return original(self, *args, **kwargs)

    setattr(Pipeline, stage, marked)


for stage in ("extract", "normalize", "load"):
    mark(stage)
defs = build_definitions(load_specs(settings.specs_dir()))
result = materialize(
    list(defs.assets),
    resources=defs.resources,
    instance=DagsterInstance.ephemeral(),
    raise_on_error=False,
    run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
)
print("RESULT", "success" if result.success else "failure", flush=True)
sys.exit(0 if result.success else 1)
"""


class Child:
    """`python CHILD` with the test's env; its merged output is read line by line."""

    def __init__(self, script: Path, *args: object) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(script), *map(str, args)],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_line(self, needle: str) -> bool:
        """Read output until a line contains `needle` (True) or the process ended (False)."""
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            if line is None:
                return False
            self.output.append(line)
            if needle in line:
                return True

    def wait_for_requests(self, sandbox: Sandbox, count: int) -> bool:
        """Wait until the sandbox served `count` requests (True) or this process ended."""
        deadline = TIMEOUT
        while deadline > 0:
            if sandbox.wait_for_requests(count, 0.25):
                return True
            if self.process.poll() is not None:
                return sandbox.wait_for_requests(count, 0)
            deadline -= 0.25
        return False

    def finish(self) -> int:
        code = self.process.wait(timeout=TIMEOUT)
        while (line := self.lines.get(timeout=TIMEOUT)) is not None:
            self.output.append(line)
        return code

    def kill(self) -> int:
        self.process.send_signal(signal.SIGKILL)
        return self.finish()


@pytest.fixture
def seed_specs(tmp_path, sandbox_env, monkeypatch) -> Path:
    directory = tmp_path / "specs"
    directory.mkdir()
    for name in SPECS:
        shutil.copy(SEED_SPECS / f"{name}.yaml", directory)
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(directory))
    return directory


@pytest.fixture
def child_script(tmp_path) -> Path:
    script = tmp_path / "materialize_child.py"
    script.write_text(CHILD)
    return script


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
    seed, seed_specs, child_script, sandbox_env
) -> None:
    phase, where, stage = kill_point(seed)
    child = Child(child_script)
    try:
        if phase == "extract":
            reached = child.wait_for_requests(sandbox_env, int(where))
        else:
            reached = child.wait_for_line(f"STAGE {where} {stage}")
        assert reached, f"the run ended before {phase} {where}:\n{''.join(child.output)}"
        code = child.kill()
    finally:
        if child.process.poll() is None:
            child.process.kill()
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
        result = run(seed_specs)
        assert result.success
        assert_every_table_is_the_truth(sandbox_env)


def test_two_runs_of_one_spec_at_once_take_turns(
    tmp_path, child_script, sandbox_env, monkeypatch
) -> None:
    """The second run waits on the warehouse lock while the first holds it; both succeed."""
    specs = tmp_path / "one_spec"
    specs.mkdir()
    shutil.copy(SEED_SPECS / "workspace_docs.yaml", specs)
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(specs))
    release = threading.Event()
    # the first run's second page is held back until the second run is seen waiting
    sandbox_env.faults = FaultPlan(
        Fault("slow", "workspace_docs", "blocks", nth=2, seconds=TIMEOUT, until=release)
    )
    first = Child(child_script)
    second = None
    try:
        assert first.wait_for_requests(sandbox_env, 3), "".join(first.output)  # holds the lock
        second = Child(child_script)
        waiting = second.wait_for_line("waiting for another restsync run to release")
        assert waiting, "".join(second.output)
        release.set()
        assert first.finish() == 0, "".join(first.output)
        assert second.finish() == 0, "".join(second.output)
    finally:
        release.set()
        for child in (first, second):
            if child is not None and child.process.poll() is None:
                child.process.kill()
    assert any("RESULT success" in line for line in first.output)
    assert any("RESULT success" in line for line in second.output)
    tables = [t for t in TABLES if t[0] == "workspace_docs"]
    for spec, resource in tables:
        assert_table_equals_truth(sandbox_env, spec, resource)
    with duckdb.connect(os.environ["RESTSYNC_DUCKDB_PATH"], read_only=True) as con:
        loads = con.execute("select status from workspace_docs._dlt_loads").fetchall()
    assert loads == [(0,), (0,)]  # two complete loads, one after the other

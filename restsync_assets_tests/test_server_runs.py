"""Runs against real servers: two machines on one dataset, and a schedule under the daemon.

"Machines" are processes with their own dlt working folder (RESTSYNC_PIPELINES_DIR) and no
shared file, meeting only in PostgreSQL. The daemon test starts `dagster-daemon` on an
instance made from `deploy/dagster.yaml` and waits (bounded) for the schedule's run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta

import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dlt.common.versioned_state import decompress_state

from restsync_assets.assets import SPEC_TAG
from restsync_assets.cli.run import materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.runtime.dataset_lock import lock_key
from restsync_assets.specs import load_specs

from .real_servers import TIMEOUT, assert_tables_equal_sandbox, pg_connect, pg_query
from .support import REPO, SEED_SPECS, background

LEDGER = [("ledger", "resource_name")]
WAITING = "waiting for another restsync run to release the lock on dataset 'ledger'"
MATERIALIZE_LEDGER = """
import sys

from dagster import DagsterInstance

from restsync_assets import settings
from restsync_assets.definitions import build_definitions
from restsync_assets.cli.run import materialize_spec
from restsync_assets.specs import load_specs

(spec,) = load_specs(settings.specs_dir())
results = materialize_spec(
    build_definitions([spec]), spec, DagsterInstance.ephemeral(), with_checks=False,
    run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
)
print("RESULT", all(r.success for r in results), flush=True)
sys.exit(0 if all(r.success for r in results) else 1)
"""


def ledger_only(tmp_path, schedule: str | None = None):
    """A specs folder holding the ledger seed (with another `schedule` if given)."""
    folder = tmp_path / "specs"
    folder.mkdir()
    if schedule is None:
        shutil.copy(SEED_SPECS / "ledger.yaml", folder)
    else:
        spec = yaml.safe_load((SEED_SPECS / "ledger.yaml").read_text())
        spec["schedule"] = schedule
        (folder / "ledger.yaml").write_text(yaml.safe_dump(spec))
    return folder


def cursors(database: str) -> list[str]:
    """ledger's incremental cursor in each state dlt committed, in load order."""
    rows = pg_query(
        database,
        "SELECT s.state FROM ledger._dlt_pipeline_state s JOIN ledger._dlt_loads l"
        " ON l.load_id = s._dlt_load_id WHERE l.status = 0 ORDER BY l.load_id, s.version",
    )
    resource = "resource_name"
    return [
        decompress_state(state)["sources"]["ledger"]["resources"][resource]["incremental"][
            "updated_at"
        ]["last_value"]
        for (state,) in rows
    ]


def test_two_machines_loading_one_spec_at_once_take_turns_and_never_move_its_cursor_back(
    commands, sandbox_env, postgres_warehouse, tmp_path, monkeypatch
):
    """Machine B loads ledger; a newer row appears at the source; then A (empty working
    folder) and B (its state now stale) load at once. Both wait for the dataset's advisory
    lock (held by the test until both say so), then take turns: the table equals the source
    with no duplicate, and every committed cursor is >= the one before, ending at the new
    row's."""
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(ledger_only(tmp_path)))
    machines = {name: tmp_path / f"machine_{name}" for name in ("a", "b")}
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(machines["b"]))
    (spec,) = load_specs(tmp_path / "specs")
    (first,) = materialize_spec(
        build_definitions([spec]), spec, DagsterInstance.ephemeral(), with_checks=False
    )
    assert first.success
    newest = max(sandbox_env.rows(*LEDGER[0]), key=lambda r: r["updated_at"])
    later = datetime.fromisoformat(newest["updated_at"].replace("Z", "+00:00")) + timedelta(days=1)
    new_row = {**newest, "id": "rec-new", "updated_at": later.strftime("%Y-%m-%dT%H:%M:%SZ")}
    sandbox_env.upsert_row(*LEDGER[0], new_row)
    script = tmp_path / "materialize_ledger.py"
    script.write_text(MATERIALIZE_LEDGER)

    with contextlib.closing(pg_connect(postgres_warehouse)) as lock, lock.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (lock_key("ledger"),))
        children = {}
        for name, folder in machines.items():
            monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(folder))
            children[name] = commands([sys.executable, script])
        for name, child in children.items():
            assert child.wait_for_line(WAITING), f"machine {name} did not wait: {child.output}"
        cursor.execute("SELECT pg_advisory_unlock(%s)", (lock_key("ledger"),))
        codes = {name: child.finish() for name, child in children.items()}

    assert codes == {"a": 0, "b": 0}, {n: "".join(c.output[-20:]) for n, c in children.items()}
    assert_tables_equal_sandbox(postgres_warehouse, sandbox_env, LEDGER)
    committed = cursors(postgres_warehouse)
    assert len(committed) >= 2
    assert committed == sorted(committed), f"a cursor moved backwards: {committed}"
    assert committed[-1] == new_row["updated_at"]


def test_a_schedule_ticks_under_dagster_daemon_and_its_queued_run_lands_in_postgresql(
    sandbox_env, postgres_warehouse, pg_dagster_home, tmp_path, monkeypatch
):
    """ledger with an every-minute schedule, started from the CLI, its start moved a minute
    back (so the daemon owes a tick now instead of at the next minute); `dagster-daemon`
    ticks it, the run goes through the queue with its spec tag, and its materialization and
    table land in PostgreSQL."""
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(ledger_only(tmp_path, "* * * * *")))
    location = ["-m", "restsync_assets.definitions"]
    started = subprocess.run(
        ["dagster", "schedule", "start", "ledger_schedule", *location],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr[-2000:]
    with pg_dagster_home.instance() as instance:
        (state,) = [s for s in instance.all_instigator_state() if s.name == "ledger_schedule"]
        earlier = state.instigator_data._replace(start_timestamp=time.time() - 61)
        instance.update_instigator_state(state.with_data(earlier))

        with background(["dagster-daemon", "run", *location], tmp_path / "daemon.log") as daemon:
            run = _wait_for_scheduled_run(instance, "ledger_schedule", daemon)
        assert run is not None, (tmp_path / "daemon.log").read_text()[-3000:]
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags[SPEC_TAG] == "ledger"
        kinds = {e.dagster_event_type for e in instance.all_logs(run.run_id)}
        assert DagsterEventType.RUN_ENQUEUED in kinds  # the queued run coordinator took it
        (materialized,) = instance.all_logs(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
        )
        assert materialized.dagster_event.asset_key.path == list(LEDGER[0])
    assert_tables_equal_sandbox(postgres_warehouse, sandbox_env, LEDGER)


def _wait_for_scheduled_run(instance, schedule: str, daemon: subprocess.Popen):
    """The schedule's first run once it finished, or None when the bound ran out or the
    daemon died. Paced by waiting on the daemon process."""
    finished = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    for _ in range(int(TIMEOUT / 0.5)):
        runs = instance.get_runs(filters=RunsFilter(tags={"dagster/schedule_name": schedule}))
        if runs and runs[-1].status in finished:
            return runs[-1]
        try:
            daemon.wait(timeout=0.5)
            return None
        except subprocess.TimeoutExpired:
            continue
    return None

"""docs/deploying.md, followed: its bash blocks run against the machine's servers.

The team-server block runs as written (each `export` gets the test's value for that name,
and the test insists the block exports exactly the names it needs); the Celery block's
worker line starts two workers and its materialize line sends the five seed specs to them.
Everything lands in fresh PostgreSQL databases; the sandbox serves the APIs.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading

import pytest
from dagster import AssetKey, DagsterEventType, DagsterRunStatus

from restsync_assets.definitions import build_definitions
from restsync_assets.sandbox import Fault, FaultPlan, Sandbox
from restsync_assets.specs import load_specs

from .real_servers import TIMEOUT, assert_tables_equal_sandbox, pg_query, pg_url
from .support import REPO, SEED_SPECS, background

#: Env the README's blocks must set themselves: removed from the test's env before running.
DEPLOY_VARS = (
    "DAGSTER_HOME",
    "DAGSTER_PG_URL",
    "RESTSYNC_DESTINATION",
    "DESTINATION__POSTGRES__CREDENTIALS",
    "RESTSYNC_PIPELINES_DIR",
    "RESTSYNC_CELERY_BROKER",
    "RESTSYNC_DUCKDB_PATH",
    "RESTSYNC_SPECS_DIR",
)
TWO_SPECS = ("ledger", "workspace_docs")


def readme_block(name: str) -> list[str]:
    """The commands of the bash block after `<!-- deploying:<name> ... -->` in docs/deploying.md."""
    text = (REPO / "docs" / "deploying.md").read_text()
    after = text[text.index(f"<!-- deploying:{name} ") :]
    body = after.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in body.splitlines() if line.strip() and not line.startswith("#")]


def with_values(lines: list[str], values: dict[str, str]) -> list[str]:
    """`lines` with each `export NAME=...` given the test's value; the block must export
    exactly `values`' names."""
    exported, out = set(), []
    for line in lines:
        if line.startswith("export "):
            name = line.split()[1].split("=", 1)[0]
            assert name in values, f"the README exports {name}, which the test does not know"
            exported.add(name)
            line = f"export {name}={shlex.quote(values[name])}"
        out.append(line)
    assert exported == set(values), f"the README does not export {set(values) - exported}"
    return out


def deploy_env() -> dict[str, str]:
    """The test's environment (sandbox credentials...) without what the README must set."""
    return {k: v for k, v in os.environ.items() if k not in DEPLOY_VARS}


def seed_tables(specs=None) -> list[tuple[str, str]]:
    return [
        (s.name, r.name)
        for s in load_specs(SEED_SPECS)
        if specs is None or s.name in specs
        for r in s.resources
    ]


def meet_in_flight(sandbox: Sandbox, specs: tuple[str, ...]) -> threading.Event:
    """Hold the first request of each of `specs` until all of them have sent one; the event
    is set only if they met: every spec's first request arrived while the others' were
    still held (each spec had sent exactly one). Steps that run one after another never meet:
    the first one's request waits, times out on the client, is retried, and only then does
    the next step start."""
    release, met = threading.Event(), threading.Event()
    sandbox.faults = FaultPlan(
        *(Fault("slow", spec, nth=1, seconds=TIMEOUT, until=release) for spec in specs)
    )

    def watch() -> None:
        seen = 0
        while sandbox.wait_for_requests(seen + 1, TIMEOUT):
            records = sandbox.requests
            seen = len(records)
            sent = [sum(r.spec == spec for r in records) for spec in specs]
            if all(sent):
                if all(n == 1 for n in sent):
                    met.set()
                break
        release.set()

    threading.Thread(target=watch, daemon=True).start()
    return met


def test_team_server_block_loads_two_specs_in_parallel_processes_and_records_all_in_postgresql(
    sandbox_env, postgres_warehouse, dagster_db, tmp_path, monkeypatch
):
    """The README's team-server block, run as written: the run, its materializations and its
    check results are in the instance's PostgreSQL; both specs' tables equal the sandbox; the
    two load steps ran at the same time (each one's first request is held until the other's
    arrives), in processes of their own."""
    home = tmp_path / "dagster_home"
    values = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": pg_url(dagster_db, "postgresql+psycopg2"),
        "RESTSYNC_DESTINATION": "postgres",
        "DESTINATION__POSTGRES__CREDENTIALS": pg_url(postgres_warehouse),
        "RESTSYNC_PIPELINES_DIR": str(tmp_path / "pipelines"),
    }
    lines = [line for line in readme_block("team-server") if not line.startswith("pip install")]
    script = "\n".join(["set -euo pipefail", *with_values(lines, values)])
    met = meet_in_flight(sandbox_env, TWO_SPECS)

    done = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env=deploy_env(), capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    assert met.is_set(), "ledger_load and workspace_docs_load did not run at the same time"
    assert_tables_equal_sandbox(postgres_warehouse, sandbox_env, seed_tables(TWO_SPECS))
    (run_id,) = [r[0] for r in pg_query(dagster_db, "SELECT run_id FROM runs")]
    monkeypatch.setenv("DAGSTER_PG_URL", values["DAGSTER_PG_URL"])  # to read the instance
    _assert_run_recorded(home, run_id, TWO_SPECS)


def _assert_run_recorded(home, run_id: str, specs) -> None:
    """The run succeeded, each selected asset has its materialization and every check of
    those assets a result that passed, in the instance's PostgreSQL event log; load steps ran in
    processes other than the run's."""
    from dagster import DagsterInstance

    defs = build_definitions(load_specs(SEED_SPECS))
    keys = {AssetKey([s, r]) for s, r in seed_tables(specs)}
    checks = {
        (k.asset_key, k.name)
        for c in defs.asset_checks
        for k in c.check_keys
        if k.asset_key in keys
    }
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS
        materialized = {
            e.dagster_event.asset_key
            for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        }
        results = [
            e.dagster_event.event_specific_data
            for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
        evaluations = {(r.asset_key, r.check_name) for r in results}
        failed = [(r.asset_key, r.check_name, r.description) for r in results if not r.passed]
        starts = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
        run_pid = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)[0].dagster_event.pid
    assert materialized == keys
    assert evaluations == checks
    assert not failed, f"checks that did not pass after the run: {failed}"
    load_pids = {e.step_key: e.dagster_event.pid for e in starts if e.step_key.endswith("_load")}
    assert set(load_pids) == {f"{s}_load" for s in specs}
    assert len(set(load_pids.values())) == len(specs) and run_pid not in load_pids.values()


def test_celery_block_spreads_the_five_seed_specs_over_two_workers(
    sandbox_env, postgres_warehouse, pg_dagster_home, celery_broker, seed_partitions, tmp_path
):
    """The README's Celery block: its worker line started twice (as two machines would), its
    materialize line sending every seed asset to them (the unpartitioned ones in one run, the
    daily partitions in another, the monthly ones in a third, at once). Steps ran on both workers; all 20 tables equal the
    sandbox."""
    values = {"RESTSYNC_CELERY_BROKER": celery_broker}
    lines = with_values(readme_block("celery"), values)
    (worker,) = [shlex.split(line) for line in lines if "worker start" in line]
    (materialize,) = [shlex.split(line) for line in lines if "asset materialize" in line]
    env = {**os.environ, **values}
    logs = [tmp_path / f"worker{n}.log" for n in (1, 2)]
    with (
        background([*worker, "-n", "w1@%h", "--", "--concurrency=1"], logs[0], env),
        background([*worker, "-n", "w2@%h", "--", "--concurrency=1"], logs[1], env) as last,
    ):
        _wait_until_ready(logs, last)
        selections = _seed_selections()
        runs = [_start(_select(materialize, selection), env) for selection in selections]
        for run in runs:
            out, _ = run.communicate(timeout=TIMEOUT)
            assert run.returncode == 0, out[-3000:]

    assert_tables_equal_sandbox(postgres_warehouse, sandbox_env, seed_tables())
    with pg_dagster_home.instance() as instance:
        run_ids = [r.run_id for r in instance.get_runs()]
        assert len(run_ids) == len(selections)
        assert all(instance.get_run_by_id(i).status == DagsterRunStatus.SUCCESS for i in run_ids)
        workers = {
            e.dagster_event.event_specific_data.metadata["Celery worker"].value
            for run_id in run_ids
            for e in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if "Celery worker" in (e.dagster_event.event_specific_data.metadata or {})
        }
    assert {w.split("@")[0] for w in workers} == {"w1", "w2"}


def _seed_selections() -> list[list[str]]:
    """`--select` (and `--partition-range`) of runs covering every seed asset: one of the
    unpartitioned assets, one per partitions definition (all its partitions; up to
    `SEED_PARTITIONS_NOW` under the `seed_partitions` fixture)."""
    defs = build_definitions(load_specs(SEED_SPECS))
    partitioned = [a for a in defs.assets if a.partitions_def is not None]
    keys = [k.to_user_string() for a in partitioned for k in a.keys]
    everything_else = " and ".join(f"not key:{k}" for k in keys)
    runs = [["--select", everything_else]]
    for partitions_def in dict.fromkeys(a.partitions_def for a in partitioned):
        same = [
            k.to_user_string()
            for a in partitioned
            if a.partitions_def == partitions_def
            for k in a.keys
        ]
        first, last = (
            partitions_def.get_first_partition_key(),
            partitions_def.get_last_partition_key(),
        )
        runs.append(
            [
                "--select",
                " or ".join(f"key:{k}" for k in same),
                "--partition-range",
                f"{first}...{last}",
            ]
        )
    return runs


def _select(command: list[str], selection: list[str]) -> list[str]:
    """The README's materialize command with another `--select`."""
    at = command.index("--select")
    return [*command[:at], *selection, *command[at + 2 :]]


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_until_ready(logs, process: subprocess.Popen) -> None:
    """Until every worker log says `ready.` (Celery's line), bounded; pacing on a process."""
    for _ in range(int(TIMEOUT / 0.25)):
        if all(b" ready." in log.read_bytes() for log in logs):
            return
        try:
            process.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"a Celery worker exited: {logs[1].read_text()[-2000:]}")
    pytest.fail("Celery workers not ready in time")

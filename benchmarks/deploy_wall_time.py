"""Wall time of the five seed specs into PostgreSQL: in-process vs multiprocess vs Celery.

    python -m benchmarks.deploy_wall_time [--latency-ms 20] [--repeat 1]

Needs the `deploy` extra, PostgreSQL on 127.0.0.1:5432 (trust, user postgres) and, for
Celery, RabbitMQ on 127.0.0.1:5672 with `rabbitmqctl`. The sandbox (in this process) answers
every request after `--latency-ms`; each mode gets fresh databases (instance and warehouse)
and runs what README "Deploying" runs: `dagster asset materialize` of every unpartitioned
seed asset, then of the daily partitions (one run), with that mode's run config. Two Celery
workers (one process each) are started before the clock. Prints, per mode, the wall time of
the two commands and the time Dagster recorded from RUN_START to RUN_SUCCESS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance

from restsync_assets.definitions import build_definitions
from restsync_assets.sandbox import Fault, FaultPlan, Sandbox
from restsync_assets.specs import load_specs

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "source_specs"
PG = "postgres:@127.0.0.1:5432"
MODES = {
    "in_process": {"execution": {"config": {"in_process": {}}}},
    "multiprocess": {},  # the default with a server destination
    "celery": {"execution": {"config": {"celery": {"broker": {"env": "RESTSYNC_CELERY_BROKER"}}}}},
}


def admin(sql: str) -> None:
    import psycopg2

    connection = psycopg2.connect(f"postgresql://{PG}/test")
    connection.autocommit = True
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute(sql)


@contextlib.contextmanager
def database(template: str | None = None):
    name = f"restsync_bench_{uuid.uuid4().hex[:8]}"
    admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    try:
        yield name
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def selections() -> list[list[str]]:
    defs = build_definitions(load_specs(SPECS))
    partitioned = [a for a in defs.assets if a.partitions_def is not None]
    keys = [k.to_user_string() for a in partitioned for k in a.keys]
    (pdef,) = {a.partitions_def for a in partitioned}
    window = f"{pdef.get_first_partition_key()}...{pdef.get_last_partition_key()}"
    return [
        ["--select", " and ".join(f"not key:{k}" for k in keys)],
        ["--select", " or ".join(f"key:{k}" for k in keys), "--partition-range", window],
    ]


@contextlib.contextmanager
def workers(env: dict[str, str], folder: Path):
    logs = [folder / f"worker{n}.log" for n in (1, 2)]
    command = ["dagster-celery", "worker", "start", "-A", "dagster_celery.app"]
    command += ["-y", "deploy/celery_worker.yaml", "-i", "restsync_assets.definitions"]
    processes = [
        subprocess.Popen(
            [*command, "-n", f"w{n}@%h", "--", "--concurrency=1"],
            cwd=REPO,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for n, log in enumerate(logs, 1)
    ]
    try:
        for _ in range(1200):
            if all(b" ready." in log.read_bytes() for log in logs):
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                processes[0].wait(timeout=0.25)
        yield
    finally:
        for process in processes:
            stop_group(process)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the worker's process group (Celery's warm shutdown), SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def run_mode(mode: str, env: dict[str, str], template: str, folder: Path) -> dict:
    with database(template) as dagster_db, database() as warehouse_db:
        home = folder / mode / "home"
        home.mkdir(parents=True)
        shutil.copy(REPO / "deploy" / "dagster.yaml", home)
        config = folder / mode / "run.json"
        config.write_text(json.dumps(MODES[mode]))
        env = {
            **env,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": f"postgresql+psycopg2://{PG}/{dagster_db}",
            "DESTINATION__POSTGRES__CREDENTIALS": f"postgresql://{PG}/{warehouse_db}",
            "RESTSYNC_PIPELINES_DIR": str(folder / mode / "pipelines"),
        }
        with workers(env, folder / mode) if mode == "celery" else contextlib.nullcontext():
            start = time.perf_counter()
            for selection in selections():
                subprocess.run(
                    ["dagster", "asset", "materialize", "-m", "restsync_assets.definitions",
                     *selection, "-c", str(config)],
                    cwd=REPO, env=env, check=True, capture_output=True,
                )  # fmt: skip
            wall = time.perf_counter() - start
        os.environ["DAGSTER_PG_URL"] = env["DAGSTER_PG_URL"]  # this script's own process only
        with DagsterInstance.from_config(str(home)) as instance:
            recorded = sum(run_seconds(instance, r.run_id) for r in instance.get_runs())
    return {"mode": mode, "wall_s": round(wall, 1), "runs_s": round(recorded, 1)}


def run_seconds(instance, run_id: str) -> float:
    start = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)[0].timestamp
    end = instance.all_logs(run_id, of_type=DagsterEventType.RUN_SUCCESS)[0].timestamp
    return end - start


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deploy_wall_time")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    vhost = f"restsync_bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True, capture_output=True,
    )  # fmt: skip
    plan = FaultPlan(Fault("slow", seconds=args.latency_ms / 1000))
    try:
        with (
            Sandbox(faults=plan) as sandbox,
            database() as template,
            tempfile.TemporaryDirectory() as tmp,
        ):
            home = Path(tmp) / "template"
            home.mkdir()
            shutil.copy(REPO / "deploy" / "dagster.yaml", home)
            os.environ["DAGSTER_PG_URL"] = f"postgresql+psycopg2://{PG}/{template}"
            with DagsterInstance.from_config(str(home)) as instance:
                instance.get_runs(limit=1)  # creates Dagster's tables once
            env = {
                **os.environ,
                **sandbox.env(),
                "RESTSYNC_DESTINATION": "postgres",
                "RESTSYNC_SPECS_DIR": str(SPECS),
                "RESTSYNC_CELERY_BROKER": f"pyamqp://guest:guest@127.0.0.1:5672/{vhost}",
                "RUNTIME__DLTHUB_TELEMETRY": "false",
            }
            print(f"latency {args.latency_ms:g} ms per request; load {os.getloadavg()[0]:.1f}")
            for repeat in range(args.repeat):
                for mode in args.modes.split(","):
                    folder = Path(tmp) / f"{repeat}"
                    result = run_mode(mode, env, template, folder)
                    result["requests"] = len(sandbox.requests)
                    sandbox.clear_requests()
                    print(json.dumps(result), f"load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True)


if __name__ == "__main__":
    main()

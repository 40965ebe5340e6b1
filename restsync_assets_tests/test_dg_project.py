"""`dg` itself, in subprocesses (slow, so few tests): the repo as a dg project, and the
component in a fresh dg project that only installs restsync.

Offline: `dg` runs in this virtualenv (`--use-active-venv` where it asks), nothing reaches
beyond loopback, and telemetry is off. A checkout whose editable install predates the
`dagster_dg_cli.registry_modules` entry point gets it from a `.dist-info` folder written from
pyproject.toml, as `pip install -e .` would register it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import tomlkit
import yaml

from .fake_servers import JsonApi
from .support import REPO, assert_table_is, free_port, new_dg_project, table_rows

DG = Path(sys.executable).with_name("dg")
GROUP = "dagster_dg_cli.registry_modules"


@pytest.fixture
def dg_env(tmp_path) -> dict[str, str]:
    """Environment for `dg` subprocesses: this checkout first on the path, the entry point
    registered, a private DAGSTER_HOME with telemetry off."""
    paths = [str(REPO)]
    if not any(e.value == "restsync_assets" for e in entry_points(group=GROUP)):
        paths.append(str(_entry_point_dist(tmp_path / "entry_points")))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "DAGSTER_HOME": str(home),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def _entry_point_dist(folder: Path) -> Path:
    """A minimal installed-distribution record holding pyproject.toml's dg entry point."""
    project = tomlkit.parse((REPO / "pyproject.toml").read_text()).unwrap()["project"]
    points = project["entry-points"][GROUP]
    dist = folder / "restsync_entry_points-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: restsync-entry-points\nVersion: 0\n"
    )
    lines = [f"[{GROUP}]", *(f"{k} = {v}" for k, v in points.items())]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return folder


def dg(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(DG), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"dg {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def repo_specs_graph() -> tuple[int, int]:
    """Assets and asset checks of the repo's own source_specs/ (the seeds, and any API the
    user added there), which the repo's dg project loads."""
    from restsync_assets.definitions import build_definitions
    from restsync_assets.specs import load_specs

    graph = build_definitions(load_specs(REPO / "source_specs")).resolve_asset_graph()
    return len(graph.get_all_asset_keys()), len(graph.asset_check_keys)


def test_the_repo_is_a_dg_project(dg_env):
    """`dg check defs` passes and `dg list defs` shows the assets of source_specs/ (the 20
    seed assets, keys [spec, resource], with the spec line as source), their checks (the
    seeds' 67) and the 7 seed schedules."""
    checked = dg("check", "defs", "--use-active-venv", cwd=REPO, env=dg_env)
    assert "All definitions loaded successfully." in checked.stdout
    listed = json.loads(dg("list", "defs", "--json", cwd=REPO, env=dg_env).stdout)
    assets = {a["asset_key"]: a for a in listed["assets"]}
    assert (len(assets), len(listed["asset_checks"])) == repo_specs_graph()
    assert assets["ledger/resource_name"]["source"] == "source_specs/ledger.yaml:23"
    assert assets["marketing_api/adaccounts"]["dependency_keys"] == ["marketing_api/organizations"]
    assert {s["name"] for s in listed["schedules"]} >= {
        "ad_analytics_schedule",
        "ad_analytics_daily_schedule",
        "ledger_schedule",
        "marketing_api_schedule",
        "native_ads_schedule",
        "reports_monthly_schedule",
        "workspace_docs_schedule",
    }
    assert "restsync_checks" in {j["name"] for j in listed["jobs"]}


def test_dg_dev_serves_the_seed_assets(dg_env):
    """`dg dev` starts Dagster's UI on the repo's dg project; its GraphQL API lists the assets
    of source_specs/ (the 20 seed assets). (Waits on the server's own output lines, bounded,
    then stops its processes.)"""
    expected, _ = repo_specs_graph()
    port = free_port()
    server = subprocess.Popen(
        [str(DG), "dev", "--use-active-venv", "--port", str(port)],
        cwd=REPO,
        env=dg_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as one below
    )
    try:
        keys: list | None = None
        deadline = time.monotonic() + 600
        while keys is None or len(keys) < expected:
            assert server.poll() is None, "dg dev exited"
            assert time.monotonic() < deadline, "dg dev did not serve the assets in time"
            # wait for the server's next output (at most 5 s), drain it, then ask the server
            if select.select([server.stdout], [], [], 5)[0]:
                os.read(server.stdout.fileno(), 1 << 16)
            keys = _asset_keys(port) if _serving(port) else None
        assert len(keys) == expected and ["ledger", "resource_name"] in keys
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=60)


def _serving(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _asset_keys(port: int) -> list | None:
    query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=query,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            nodes = json.load(response)["data"]["assetNodes"]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return [n["assetKey"]["path"] for n in nodes]


ITEMS = [{"id": 1, "name": "first", "price": 9.5}, {"id": 2, "name": "second", "price": 12.0}]


def test_a_fresh_dg_project_scaffolds_lists_and_materializes_the_component(
    dg_env, tmp_path, monkeypatch
):
    """A new dg project (create-dagster's layout) with restsync installed: `dg scaffold defs
    restsync_assets.RestSyncComponent shop_api` writes defs.yaml and a starter spec; `dg list
    defs` shows its asset; `dg launch` loads it from an API on 127.0.0.1 into DuckDB."""
    project = tmp_path / "acme"
    package = new_dg_project(project)
    env = {**dg_env, "PYTHONPATH": os.pathsep.join([dg_env["PYTHONPATH"], str(project / "src")])}

    dg("scaffold", "defs", "restsync_assets.RestSyncComponent", "shop_api", cwd=project, env=env)
    component = package / "defs" / "shop_api"
    assert yaml.safe_load((component / "defs.yaml").read_text()) == {
        "type": "restsync_assets.RestSyncComponent",
        "attributes": {"specs_dir": "specs"},
    }
    assert (component / "specs" / "shop_api.yaml").read_text().startswith("# A restsync spec")

    listed = json.loads(dg("list", "defs", "--json", cwd=project, env=env).stdout)
    assert [a["asset_key"] for a in listed["assets"]] == ["shop_api/items"]
    assert listed["assets"][0]["source"] == "src/acme/defs/shop_api/specs/shop_api.yaml:15"

    warehouse = tmp_path / "acme.duckdb"
    with JsonApi({"GET /v1/items": lambda request: {"data": ITEMS}}) as api:
        env.update(
            SHOP_API_BASE_URL=api.url,
            RESTSYNC_DUCKDB_PATH=str(warehouse),
            RESTSYNC_PIPELINES_DIR=str(tmp_path / "pipelines"),
        )
        dg("launch", "--assets", "*", cwd=project, env=env)
    monkeypatch.setenv("RESTSYNC_DUCKDB_PATH", str(warehouse))  # read by table_rows
    assert_table_is(table_rows("shop_api", "items"), ITEMS)

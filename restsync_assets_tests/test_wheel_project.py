"""restsync as a user installs it: the wheel, built from this checkout, installed into a fresh
virtualenv outside it, used through `RestSyncComponent` in a new `dg` project (the steps of
docs/own-project.md). Slow (building and installing take a minute or more; pip's cache keeps
the install offline), so one test; CI runs it with the suite (`-m "not wheel"` leaves it out).

Offline as test_dg_project.py: the project is create-dagster's layout written by hand, its
package on PYTHONPATH (as `uv sync` would install it), telemetry off, every API on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from restsync_assets.sandbox import Sandbox

from .support import (
    REPO,
    SEED_SPECS,
    STARTER_ITEMS,
    assert_table_equals_truth,
    assert_table_is,
    free_port,
    new_dg_project,
    starter_items_api,
    table_rows,
)

pytestmark = pytest.mark.wheel

#: Bound on one step (the install is the long one)
STEP_TIMEOUT = 900
#: What the wheel is built from (the rest of the checkout is not restsync's package)
SOURCES = ("pyproject.toml", "README.md", "restsync_assets")


def run(*args: str | Path, cwd: Path, env: dict[str, str], code: int = 0) -> str:
    """Run a command to its end; its exit code must be `code`; returns stdout and stderr."""
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
    )
    text = done.stdout + done.stderr
    assert done.returncode == code, f"{' '.join(map(str, args))} exited {done.returncode}:\n{text}"
    return text


def build_wheel(folder: Path) -> Path:
    """restsync's wheel, built from a copy of the checkout's package (no build/ left here)."""
    source = folder / "restsync"
    source.mkdir(parents=True)
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, source / name, ignore=ignored)
        else:
            shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip"]
    run(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", folder / "dist", source,
        cwd=folder, env=dict(os.environ))  # fmt: skip
    (wheel,) = (folder / "dist").glob("restsync-*.whl")
    return wheel


def fresh_venv(folder: Path, wheel: Path) -> Path:
    """A new virtualenv with the wheel and `dg` installed, at the versions this suite runs
    (pip's cache and the local index serve them); returns its bin folder."""
    frozen = run(sys.executable, "-m", "pip", "freeze", "--exclude-editable", cwd=folder,
                 env=dict(os.environ))  # fmt: skip
    constraints = folder / "constraints.txt"
    constraints.write_text(frozen)
    venv = folder / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=folder, env=dict(os.environ))
    run(venv / "bin" / "pip", "install", "-q", "--no-compile", "-c", constraints, wheel,
        "dagster-dg-cli", cwd=folder, env=dict(os.environ))  # fmt: skip
    return venv / "bin"


def user_env(bin_dir: Path, home: Path, project: Path) -> dict[str, str]:
    """A user's shell with the venv activated: none of restsync's settings, no checkout on the
    path, a DAGSTER_HOME of its own with telemetry off."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RESTSYNC_", "PYTHON", "DAGSTER", "VIRTUAL_ENV"))
    }
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **env,
        "VIRTUAL_ENV": str(bin_dir.parent),
        "PATH": os.pathsep.join([str(bin_dir), env.get("PATH", "")]),
        "PYTHONPATH": str(project / "src"),
        "DAGSTER_HOME": str(home),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def test_the_wheel_in_a_new_dg_project_keeps_every_file_in_the_project(tmp_path, monkeypatch):
    """Built, installed into a fresh venv (restsync imported from there, not this checkout),
    scaffolded into a new `dg` project beside a seed spec: `restsync validate` and the starter
    spec's own hint `restsync preview shop_api items` find the component's specs from the
    project's root; `dg list defs` lists both specs' assets; `dg launch` loads them from
    `restsync sandbox` and a local items API; `restsync check` passes; the tables equal the
    sources; and every file restsync wrote is under the project's `data/`, none in the venv."""
    bin_dir = fresh_venv(tmp_path, build_wheel(tmp_path))
    project = tmp_path / "acme"
    new_dg_project(project)
    env = user_env(bin_dir, tmp_path / "dagster_home", project)
    installed = run(bin_dir / "python", "-c", "import restsync_assets; print(restsync_assets.__file__)",
                    cwd=project, env=env)  # fmt: skip
    assert Path(installed.strip()).is_relative_to(bin_dir.parent), installed

    run(bin_dir / "dg", "scaffold", "defs", "restsync_assets.RestSyncComponent", "shop_api",
        cwd=project, env=env)  # fmt: skip
    component = project / "src" / "acme" / "defs" / "shop_api"
    assert yaml.safe_load((component / "defs.yaml").read_text())["attributes"] == {
        "specs_dir": "specs"
    }
    shutil.copy(SEED_SPECS / "ledger.yaml", component / "specs")
    assert run(bin_dir / "restsync", "validate", cwd=project, env=env).splitlines() == [
        "ok  ledger.yaml: ledger (1 resource)",
        "ok  shop_api.yaml: shop_api (1 resource)",
    ]

    port = str(free_port())
    sandbox = subprocess.Popen(
        [str(bin_dir / "restsync"), "sandbox", "--port", port],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        served = [sandbox.stdout.readline().strip()]
        while served[-1] != "Press Ctrl-C to stop.":
            assert sandbox.poll() is None, "\n".join(served)
            served.append(sandbox.stdout.readline().strip())
        printed = run(bin_dir / "restsync", "sandbox", "--print-env", "--port", port,
                      cwd=project, env=env)  # fmt: skip
        env.update(re.findall(r"^export (LEDGER_\w+)=(\S+)$", printed, re.MULTILINE))
        with starter_items_api() as api:
            env["SHOP_API_BASE_URL"] = api.url
            preview = run(
                bin_dir / "restsync", "preview", "shop_api", "items", cwd=project, env=env
            )
            assert "shop_api/items: 2 records read in 1 request" in preview, preview
            listed = run(bin_dir / "dg", "list", "defs", "--json", cwd=project, env=env)
            assert '"asset_key": "ledger/resource_name"' in listed
            assert '"asset_key": "shop_api/items"' in listed
            run(bin_dir / "dg", "launch", "--assets", "*", cwd=project, env=env)
            checked = run(bin_dir / "restsync", "check", cwd=project, env=env)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=60)
    assert re.search(r"^(\d+)/\1 checks passed$", checked, re.MULTILINE), checked

    data = project / "data"
    assert (data / "restsync.duckdb").is_file()
    pipelines = data / ".restsync_pipelines"
    assert (pipelines / "ledger.refresh_token.lock").is_file()
    assert {"restsync_ledger", "restsync_shop_api"} <= {p.name for p in pipelines.iterdir()}
    venv = bin_dir.parent
    assert not any(venv.rglob("*.duckdb")) and not any(venv.rglob(".restsync_pipelines"))
    monkeypatch.setenv("RESTSYNC_DUCKDB_PATH", str(data / "restsync.duckdb"))  # table_rows
    assert_table_equals_truth(Sandbox(), "ledger", "resource_name")
    assert_table_is(table_rows("shop_api", "items"), STARTER_ITEMS)

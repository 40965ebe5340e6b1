"""dlt's anonymous telemetry is off for every restsync run wherever it starts (issue 18,
found 10b): restsync sets it in its own dlt configuration, not only in the project's
`.dlt/config.toml`."""

from __future__ import annotations

import subprocess
import sys

from .support import BIN, REPO


def test_a_run_from_another_folder_sends_no_dlt_telemetry(
    tmp_path, sandbox_env, commands, monkeypatch
):
    """`restsync run ledger` started from a folder with no `.dlt/` (HOME too: no global dlt
    config), with dlt's telemetry endpoint pointed at the sandbox: the load succeeds and the
    sandbox never sees a telemetry request (dlt posts pipeline events when it is on)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(elsewhere))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name in ("RUNTIME__DLTHUB_TELEMETRY", "DLT_PROJECT_DIR", "DLT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY_ENDPOINT", f"{sandbox_env.url}/dlt-telemetry")
    run = commands([BIN / "restsync", "run", "ledger"], cwd=elsewhere)
    assert run.finish() == 0, run.text
    assert not (elsewhere / ".dlt").exists()
    paths = [record.path for record in sandbox_env.requests]
    assert any(path.endswith("/v1/resource") for path in paths), paths
    assert [path for path in paths if "telemetry" in path] == []


def test_restsync_answers_dlthub_telemetry_false_for_every_pipeline(tmp_path, monkeypatch):
    """In a fresh interpreter started from a folder with no `.dlt/`: once restsync built a
    pipeline, dlt resolves `runtime.dlthub_telemetry` to false and its anonymous tracker is
    not running (dlt had started it with its run context, before restsync's provider)."""
    script = (
        "from dlt.common.configuration.container import Container\n"
        "from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext\n"
        "from dlt.common.runtime import anon_tracker\n"
        "from restsync_assets.runtime.destination import build_pipeline\n"
        "from restsync_assets.specs import load_specs\n"
        f"spec = load_specs({str(REPO / 'source_specs')!r})[0]\n"
        "build_pipeline(spec)\n"
        "config = Container()[PluggableRunContext].context.runtime_config\n"
        "print(config.dlthub_telemetry, anon_tracker._ANON_TRACKER_ENDPOINT)\n"
    )
    env = {
        "PATH": str(BIN),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "RESTSYNC_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "None"]

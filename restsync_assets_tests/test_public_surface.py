"""`restsync_assets`'s public surface: every name resolves, and importing the package is cheap."""

from __future__ import annotations

import subprocess
import sys

import restsync_assets

from .support import PROCESS_TIMEOUT, REPO


def test_every_public_name_resolves_to_its_object():
    """`__all__` lists the surface; each name is the object its home module defines."""
    from restsync_assets.definitions import build_definitions
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.specs import load_specs
    from restsync_assets.specs.model import SourceSpec

    assert {"build_definitions", "load_specs", "SourceSpec", "ApiCredentials"} <= set(
        restsync_assets.__all__
    )
    assert [n for n in restsync_assets.__all__ if getattr(restsync_assets, n, None) is None] == []
    assert restsync_assets.build_definitions is build_definitions
    assert restsync_assets.load_specs is load_specs
    assert restsync_assets.SourceSpec is SourceSpec
    assert restsync_assets.ApiCredentials is ApiCredentials


def test_importing_the_package_loads_no_dependency_and_no_run_time_code():
    """A fresh `import restsync_assets` imports neither Dagster, dlt nor pydantic, nor
    anything of `restsync_assets.runtime`: names are imported on first use."""
    heavy = ("dagster", "dlt", "pydantic", "yaml", "restsync_assets.")
    code = (
        "import sys, restsync_assets; "
        f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert out.stdout.strip() == "[]", out.stdout

"""The Dagster code location: `defs` is built from the spec files, nothing else.

`dagster dev` (via workspace.yaml) and `dagster asset materialize -m restsync_assets.definitions`
load this module. Set `RESTSYNC_SPECS_DIR` to load another folder of specs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dagster import Definitions
from dagster_dlt import DagsterDltResource

from restsync_assets.assets import build_spec_assets
from restsync_assets.checks import CHECKS_JOB, build_spec_checks, checks_job
from restsync_assets.executors import restsync_executor
from restsync_assets.resources import DLT_RESOURCE_KEY, ApiCredentials, credentials_key
from restsync_assets.schedules import build_spec_schedules
from restsync_assets.settings import destination_name, specs_dir
from restsync_assets.spec_problems import invalid_spec_assets
from restsync_assets.specs import read_specs
from restsync_assets.specs.errors import SpecError
from restsync_assets.specs.model import SourceSpec

__all__ = ["CHECKS_JOB", "build_definitions", "defs"]

#: The Dagster code location of the specs folder, built on first use (`__getattr__` below).
defs: Definitions


def build_definitions(
    specs: Sequence[SourceSpec],
    problems: Sequence[SpecError] = (),
    credentials: Mapping[str, Mapping[str, str]] | None = None,
) -> Definitions:
    """Assets, asset checks, schedules and resources for every spec; a stand-in asset listing
    the problems of each spec file that failed validation (`restsync_assets.spec_problems`).

    The executor is chosen per run (`restsync_assets.executors`): in process by default with
    DuckDB (one writer per file; `restsync_assets.runtime.locks` serialises runs), multiprocess by
    default with a server destination, Celery when the run config says so. `credentials`
    are values set in code, by spec and key (`ApiCredentials.given`); the others are read
    from the environment at run time.
    """
    resources = {DLT_RESOURCE_KEY: DagsterDltResource()}
    given = credentials or {}
    resources.update(
        {
            credentials_key(s.name): ApiCredentials.given(s.name, given.get(s.name, {}))
            for s in specs
        }
    )
    return Definitions(
        assets=[
            *(a for s in specs for a in build_spec_assets(s)),
            *invalid_spec_assets(problems),
        ],
        asset_checks=[build_spec_checks(s) for s in specs],
        schedules=[sch for s in specs for sch in build_spec_schedules(s)],
        jobs=[checks_job()],
        resources=resources,
        executor=restsync_executor(destination_name()),
    )


def __getattr__(name: str) -> Definitions:
    """`defs`, the definitions of the specs folder (`settings.specs_dir()`), built on first
    use (`import restsync_assets.definitions` reads no folder: the component and the command
    line import `build_definitions` from here in projects with no `source_specs/`)."""
    if name != "defs":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = build_definitions(*read_specs(specs_dir()))
    globals()["defs"] = value  # built once
    return value


def __dir__() -> list[str]:
    """The module's names, `defs` included (Dagster's `-m` loader looks for it in `dir()`)."""
    return sorted({*globals(), "defs"})

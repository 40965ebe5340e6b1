"""The `dg` project's code location: `restsync_assets/defs/`, loaded by Dagster's component loader.

`dg list defs`, `dg check defs` and `dg dev` load this module (`[tool.dg.project]` in
pyproject.toml); `dagster dev` and `restsync_assets.definitions:defs` stay as they were. The
`restsync_checks` job is added here, once for the code location.
"""

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder

from restsync_assets.checks import checks_job


@definitions
def defs() -> Definitions:
    return Definitions.merge(
        load_from_defs_folder(path_within_project=Path(__file__).parent),
        Definitions(jobs=[checks_job()]),
    )

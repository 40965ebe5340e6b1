"""A spec file that fails validation, shown in Dagster instead of stopping every other spec.

`restsync validate` and CI fail on such a file. In Dagster the code location still loads the
valid specs (their assets, checks, schedules and sensors), and each broken file becomes one
asset that cannot be materialized, `[<file stem>, "spec_invalid"]` in group `<file stem>`,
whose description lists the file's problems: the asset catalog and the asset's page show
them, and the code location's log names the file. Fixing the file and reloading the code
location brings its assets back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from itertools import groupby
from pathlib import Path

from dagster import AssetSpec, MetadataValue

from restsync_assets.specs.errors import SpecError

#: The asset name of a broken spec file's stand-in.
INVALID_ASSET = "spec_invalid"

logger = logging.getLogger(__name__)


def invalid_spec_assets(errors: Iterable[SpecError]) -> list[AssetSpec]:
    """One stand-in asset per spec file with problems, its problems in the description."""
    ordered = sorted(errors, key=lambda e: str(e.path))
    return [_stand_in(path, list(problems)) for path, problems in groupby(ordered, _path)]


def _path(error: SpecError) -> Path:
    return error.path


def _stand_in(path: Path, problems: list[SpecError]) -> AssetSpec:
    lines = [problem.line() for problem in problems]
    logger.warning(
        "restsync: %s failed validation; its assets are not loaded: %s", path, "; ".join(lines)
    )
    listed = "\n".join(f"- `{line}`" for line in lines)
    return AssetSpec(
        key=[path.stem, INVALID_ASSET],
        group_name=path.stem,
        description=(
            f"**{path.name} failed validation**, so its assets are not loaded. Fix the file"
            f" (`restsync validate` lists the same problems), then reload the code location."
            f"\n\n{listed}"
        ),
        metadata={
            "restsync/spec_file": MetadataValue.path(str(path)),
            "restsync/problems": MetadataValue.md(listed),
        },
        kinds={"restsync"},
    )

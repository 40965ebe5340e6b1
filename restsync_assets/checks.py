"""Asset checks generated from the spec model: their declarations (definition time).

For every asset: `primary_key` (unique, not null), `row_count` (at least the spec's
`checks.min_rows`; default 1, or 0 when partitioned); where the spec declares a `schema`:
`not_null` (declared non-nullable fields) and `column_types` (declared types match the
warehouse columns); where it declares `freshness`: `freshness` (last materialization, or
else the table's last dlt load, no older than `max_lag`); with `on_invalid: quarantine`:
`rejected_rows` (severity WARN: the latest load set no row aside in `<table>__rejected`). A
failing check names a sample of the offending keys.

The kinds are one table (`restsync_assets.check_kinds`); the check body hands over to their
evaluators at run time (`restsync_assets.runtime.checks`), which read the warehouse the spec's
loads write, under the loads' lock.
"""

import time
from collections.abc import Callable, Iterator
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetSelection,
    define_asset_job,
    multi_asset_check,
)

from restsync_assets.check_kinds import kinds_for
from restsync_assets.keys import asset_key
from restsync_assets.specs.model import ResourceSpec, SourceSpec

#: The job that runs every asset check alone (`restsync check`, or from the UI).
CHECKS_JOB = "restsync_checks"


def check_names(resource: ResourceSpec) -> list[str]:
    """The checks generated for `resource`, in evaluation order."""
    return [kind.name for kind in kinds_for(resource)]


def build_spec_checks(
    spec: SourceSpec, clock: Callable[[], float] = time.time
) -> AssetChecksDefinition:
    """One multi-check per spec (one warehouse connection for all its checks)."""
    check_specs = [
        AssetCheckSpec(kind.name, asset=asset_key(spec, r), description=kind.description)
        for r in spec.resources
        for kind in kinds_for(r)
    ]

    @multi_asset_check(specs=check_specs, name=f"{spec.name}_checks", can_subset=True)
    def _checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        from restsync_assets.runtime.checks import evaluate_checks

        yield from evaluate_checks(context, spec, clock)

    return _checks


def checks_job() -> Any:
    """The `restsync_checks` job: every asset check of the code location, no load."""
    return define_asset_job(
        CHECKS_JOB,
        selection=AssetSelection.all_asset_checks(),
        description="Every restsync asset check, against the warehouse as it is (no load).",
    )

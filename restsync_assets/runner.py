"""Materialize specs in-process with Dagster's own machinery (demo, CI, tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

from dagster import (
    AssetCheckEvaluation,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    materialize,
)

from restsync_assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from restsync_assets.specs.model import SourceSpec

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def load_definitions(defs: Definitions, spec: SourceSpec) -> Iterator[AssetsDefinition]:
    """The multi-assets of `spec` (one per partitioning)."""
    for assets_def in defs.assets or []:
        if (
            isinstance(assets_def, AssetsDefinition)
            and not isinstance(assets_def, AssetChecksDefinition)
            and any(k.path[0] == spec.name for k in assets_def.keys)
        ):
            yield assets_def


def checks_definition(defs: Definitions, spec: SourceSpec) -> AssetChecksDefinition:
    for checks in defs.asset_checks or []:
        if any(k.asset_key.path[0] == spec.name for k in checks.check_keys):
            return checks
    raise KeyError(spec.name)


def materialize_spec(
    defs: Definitions,
    spec: SourceSpec,
    instance: DagsterInstance,
    *,
    keys: list[AssetKey] | None = None,
    with_checks: bool = True,
    raise_on_error: bool = False,
    run_config: dict | None = None,
) -> list[ExecuteInProcessResult]:
    """One run per multi-asset of `spec`; a partitioned one loads all its partitions in one run.

    `keys` restricts the runs to some assets; their checks run after them unless `with_checks`
    is false.
    """
    results = []
    checks = [checks_definition(defs, spec)] if with_checks else []
    for assets_def in load_definitions(defs, spec):
        wanted = [k for k in assets_def.keys if keys is None or k in keys]
        if not wanted:
            continue
        selection = AssetSelection.assets(*wanted)
        if not with_checks:
            selection = selection.without_checks()
        tags = {}
        partitions_def = assets_def.partitions_def
        if partitions_def is not None:
            tags = {
                RANGE_START_TAG: partitions_def.get_first_partition_key(),
                RANGE_END_TAG: partitions_def.get_last_partition_key(),
            }
        results.append(
            materialize(
                [assets_def, *checks],
                resources=defs.resources,
                instance=instance,
                selection=selection,
                tags=tags,
                raise_on_error=raise_on_error,
                run_config=run_config if run_config is not None else QUIET,
            )
        )
    return results


def warns(evaluation: AssetCheckEvaluation) -> bool:
    """A check that did not pass with severity WARN (`rejected_rows`): a warning, not a failure."""
    return not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN


def run_checks(out: TextIO, note: str = "") -> bool:
    """Run every asset check of every spec against the warehouse the specs load into; print
    first which warehouse that is (`note` says why, when it is not the configured one), then
    one line per check. An empty warehouse is one line, and false."""
    from restsync_assets.definitions import CHECKS_JOB, build_definitions
    from restsync_assets.runtime import warehouse
    from restsync_assets.settings import specs_dir
    from restsync_assets.specs import load_specs

    specs = load_specs(specs_dir())
    place, empty = warehouse.describe(specs)
    if empty:
        print(
            f"checks against {place}{note}: it is empty, nothing restsync loaded to check"
            " (materialize assets first, or run `restsync demo`)",
            file=out,
        )
        return False
    print(f"checks against {place}{note}", file=out)
    defs = build_definitions(specs)
    result = defs.resolve_job_def(CHECKS_JOB).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False, run_config=QUIET
    )
    evaluations = sorted(
        result.get_asset_check_evaluations(), key=lambda e: (e.asset_key.path, e.check_name)
    )
    for evaluation in evaluations:
        mark = "ok  " if evaluation.passed else "WARN" if warns(evaluation) else "FAIL"
        key = "/".join(evaluation.asset_key.path)
        print(f"{mark} {key} {evaluation.check_name}: {evaluation.description or ''}", file=out)
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            data = event.step_failure_data
            message = data.user_failure_data.description if data.user_failure_data else None
            print(f"FAIL {event.step_key}: {message or data.error.message.strip()}", file=out)
    failed = sum(not e.passed and not warns(e) for e in evaluations)
    warned = sum(not e.passed and warns(e) for e in evaluations)
    passed = len(evaluations) - failed - warned
    warnings = f", {warned} warned" if warned else ""
    print(f"{passed}/{len(evaluations)} checks passed{warnings}", file=out)
    return result.success and failed == 0 and bool(evaluations)

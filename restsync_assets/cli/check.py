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
from restsync_assets.report import cell, plural, render_table
from restsync_assets.specs.model import SourceSpec

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
#: Width of a check's detail in `restsync check`'s table
DETAIL_WIDTH = 80


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


def run_checks(out: TextIO, note: str = "", verbose: bool = False) -> bool:
    """Run every asset check of every spec against the warehouse the specs load into; print
    first which warehouse that is (`note` says why, when it is not the configured one), then
    the table of failed checks (of every check when `verbose`) and a last line of counts.
    An empty warehouse is one line, and false."""
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
    rows = check_rows(result)
    shown = [r for r in rows if verbose or r[2] != "ok"]
    if shown:
        print(f"\n{render_table(('asset', 'check', 'result', 'detail'), shown)}\n", file=out)
    print(checks_summary(rows), file=out)
    return result.success and bool(rows) and all(r[2] in ("ok", "WARN") for r in rows)


def check_rows(result: ExecuteInProcessResult) -> list[tuple[str, str, str, str]]:
    """(asset, check, ok | WARN | FAILED | ERROR, detail) of a checks run, by asset and check;
    a check step that raised is one ERROR row with its message."""
    evaluations = sorted(
        result.get_asset_check_evaluations(), key=lambda e: (e.asset_key.path, e.check_name)
    )
    rows = [
        (
            "/".join(e.asset_key.path),
            e.check_name,
            "ok" if e.passed else "WARN" if warns(e) else "FAILED",
            cell(e.description, DETAIL_WIDTH),
        )
        for e in evaluations
    ]
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            data = event.step_failure_data
            message = data.user_failure_data.description if data.user_failure_data else None
            detail = cell(message or data.error.message.strip(), DETAIL_WIDTH)
            rows.append((event.step_key, "-", "ERROR", detail))
    return rows


def checks_summary(rows: list[tuple[str, str, str, str]]) -> str:
    """`63/63 checks passed`, then, when some did not, what to do next."""
    passed = sum(r[2] == "ok" for r in rows)
    line = f"{passed}/{sum(r[2] != 'ERROR' for r in rows)} checks passed"
    if warned := sum(r[2] == "WARN" for r in rows):
        line += f", {warned} warned"
    failed = sorted({r[0] for r in rows if r[2] == "FAILED"})
    if failed:
        assets = " ".join(failed)
        line += (
            f"; FAILED on {assets}: fix what the detail says or reload"
            f" (`restsync run {assets}`), then `restsync check` again"
        )
    if errors := sum(r[2] == "ERROR" for r in rows):
        line += f"; {plural(errors, 'check step')} could not run (ERROR): fix what it says first"
    return line

"""Schedules from the spec model: a spec's `schedule` cron, and one per partitioned group."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from restsync_assets.assets import SPEC_TAG
from restsync_assets.keys import asset_key
from restsync_assets.specs.model import SourceSpec


def build_spec_schedules(spec: SourceSpec) -> list[ScheduleDefinition]:
    """`<spec>_schedule` for unpartitioned assets (only when the spec sets `schedule`), and
    `<spec>_<type>_schedule` filling the latest partition of each partitioned group.

    Schedules start stopped unless the spec says `schedule: {cron: ..., enabled: true}`; the
    partition schedules follow the same switch. Their runs carry the tag `restsync/spec`, which
    the run queue limits per spec (`deploy/dagster.yaml`).
    """
    enabled = bool(spec.schedule and spec.schedule.enabled)
    status = DefaultScheduleStatus.RUNNING if enabled else DefaultScheduleStatus.STOPPED
    schedules = []
    for partitions, resources in spec.load_groups():
        keys = [asset_key(spec, r) for r in resources]
        if partitions is None:
            if spec.schedule is None:
                continue
            schedules.append(
                ScheduleDefinition(
                    name=f"{spec.name}_schedule",
                    cron_schedule=spec.schedule.cron,
                    execution_timezone=spec.schedule.timezone,
                    target=AssetSelection.assets(*keys),
                    default_status=status,
                    tags={SPEC_TAG: spec.name},
                    description=f"Materializes {spec.name}'s unpartitioned assets on '{spec.schedule.cron}'.",
                )
            )
            continue
        job = define_asset_job(
            f"{spec.name}_{partitions.type}_job",
            selection=AssetSelection.assets(*keys),
            tags={SPEC_TAG: spec.name},
        )
        schedules.append(
            build_schedule_from_partitioned_job(
                job,
                name=f"{spec.name}_{partitions.type}_schedule",
                default_status=status,
                description=f"Materializes the latest {partitions.type} partition of {spec.name}.",
            )
        )
    return schedules

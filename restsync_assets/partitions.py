"""Time-window partitions from `partitions:` specs (the window a run loads: `runtime.window`)."""

from __future__ import annotations

from datetime import datetime

from dagster import (
    BackfillPolicy,
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from restsync_assets.specs.model import PartitionsSpec

_DEFINITIONS = {
    "hourly": HourlyPartitionsDefinition,
    "daily": DailyPartitionsDefinition,
    "weekly": WeeklyPartitionsDefinition,
    "monthly": MonthlyPartitionsDefinition,
}

#: Dagster's tags for a run that covers a range of partitions (a single-run backfill).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partitions_definition(spec: PartitionsSpec) -> TimeWindowPartitionsDefinition:
    start = datetime.fromisoformat(spec.start)
    return _DEFINITIONS[spec.type](
        start_date=start, timezone=spec.timezone, end_offset=spec.end_offset
    )


def backfill_policy(spec: PartitionsSpec) -> BackfillPolicy:
    """One run for a whole range (the API takes a start and an end), or one run per partition."""
    if spec.backfill == "single_run":
        return BackfillPolicy.single_run()
    return BackfillPolicy.multi_run(max_partitions_per_run=1)

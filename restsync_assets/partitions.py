"""Time-window partitions from `partitions:` specs, and the window a run must load."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dagster import (
    AssetExecutionContext,
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


@dataclass(frozen=True)
class Window:
    """The half-open time window `[start, end)` one run loads."""

    start: datetime
    end: datetime

    def bounds(self, spec: PartitionsSpec) -> tuple[str, str]:
        """The window as the strings the API's params (and dlt's cursor) expect."""
        return _format(self.start, spec.strftime), _format(self.end, spec.strftime)


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


def run_window(context: AssetExecutionContext) -> Window | None:
    """The window of a partitioned run (the whole range for a single-run backfill)."""
    if not context.has_partition_key and not context.has_partition_key_range:
        return None
    window = context.partition_time_window
    return Window(window.start, window.end)


def _format(moment: datetime, fmt: str) -> str:
    """Dates stay in the partitions' timezone; timestamps are written in UTC."""
    if "%H" in fmt and moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime(fmt)

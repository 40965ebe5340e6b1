"""The time window a partitioned run loads, and its bounds as the API's params expect them.

The partitions themselves are declared at definition time (`restsync_assets.partitions`);
this is what a run reads of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dagster import AssetExecutionContext

from restsync_assets.specs.model import PartitionsSpec


@dataclass(frozen=True)
class Window:
    """The half-open time window `[start, end)` one run loads."""

    start: datetime
    end: datetime

    def bounds(self, spec: PartitionsSpec) -> tuple[str, str]:
        """The window as the strings the API's params (and dlt's cursor) expect."""
        return _format(self.start, spec.strftime), _format(self.end, spec.strftime)


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

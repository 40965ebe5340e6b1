"""How a resource is operated: partitions, freshness, checks, automation; a spec's schedule."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from restsync_assets.specs.model.base import StrictModel, literal_values

PartitionType = Literal["hourly", "daily", "weekly", "monthly"]
AutomationKind = Literal["eager", "on_cron", "on_missing"]


class PartitionsSpec(StrictModel):
    """`partitions:` time windows for a resource; each run loads exactly its window."""

    type: PartitionType
    start: str
    end_offset: int = 0
    timezone: str = "UTC"
    start_param: str | None = None
    end_param: str | None = None
    cursor_path: str | None = None
    param_format: str | None = None
    backfill: Literal["single_run", "per_partition"] = "single_run"

    @property
    def strftime(self) -> str:
        """How the window's bounds are written into the request params."""
        if self.param_format:
            return self.param_format
        return "%Y-%m-%dT%H:%M:%SZ" if self.type == "hourly" else "%Y-%m-%d"


class FreshnessSpec(StrictModel):
    """`freshness: {max_lag: 6h}`: stale when the last materialization is older than that."""

    max_lag: str | int
    warn_lag: str | int | None = None


class ChecksSpec(StrictModel):
    """`checks:` options of the generated asset checks."""

    min_rows: int | None = Field(None, ge=0)


class ScheduleSpec(StrictModel):
    """`schedule: "0 6 * * *"` or `{cron, timezone, enabled}` at the top of a spec."""

    cron: str
    timezone: str = "UTC"
    enabled: bool = False


class AutomationSpec(StrictModel):
    """`automation_condition: eager`, `on_missing` or `{on_cron: "0 * * * *"}`."""

    kind: AutomationKind
    cron: str | None = None


AUTOMATION_CONDITIONS: tuple[str, ...] = literal_values(AutomationSpec, "kind")
#: the conditions written as a bare name (`on_cron` takes its cron: `{on_cron: <cron>}`)
NAMED_AUTOMATION_CONDITIONS = tuple(c for c in AUTOMATION_CONDITIONS if c != "on_cron")

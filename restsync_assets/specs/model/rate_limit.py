"""`client.rate_limit`: one request budget for a whole spec (every resource, thread and run)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt

from restsync_assets.specs.model.base import StrictModel, literal_values

Period = Literal["second", "minute", "hour"]
#: seconds in each period a budget may be stated per
PERIOD_SECONDS: dict[str, float] = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


class RateLimitSpec(StrictModel):
    """`rate_limit: {requests: 10, per: second}`: at most `requests` API requests of the spec
    in any window of one `per`."""

    requests: StrictInt = Field(gt=0)
    per: Period

    @property
    def window(self) -> float:
        """The window's length in seconds."""
        return PERIOD_SECONDS[self.per]


RATE_LIMIT_KEYS: tuple[str, ...] = tuple(RateLimitSpec.model_fields)
PERIODS: tuple[str, ...] = literal_values(RateLimitSpec, "per")

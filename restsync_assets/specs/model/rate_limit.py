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
    #: only requests whose URL path matches this glob (`/search/*`) count; None: every one
    path: str | None = None

    @property
    def window(self) -> float:
        """The window's length in seconds."""
        return PERIOD_SECONDS[self.per]


ResetKind = Literal["seconds", "epoch"]


class HeaderBudgetSpec(StrictModel):
    """`from_headers: {remaining: X-RateLimit-Remaining, reset: X-RateLimit-Reset}` (reset in
    seconds from now, or `reset_is: epoch`), or `from_headers: ietf` (`RateLimit: ...;r=N;t=S`,
    or `RateLimit-Remaining` / `RateLimit-Reset`): the API's own count of what is left."""

    remaining: str | None = None
    reset: str | None = None
    reset_is: ResetKind = "seconds"
    ietf: bool = False


RATE_LIMIT_KEYS: tuple[str, ...] = tuple(RateLimitSpec.model_fields)
PERIODS: tuple[str, ...] = literal_values(RateLimitSpec, "per")
HEADER_BUDGET_KEYS: tuple[str, ...] = ("remaining", "reset", "reset_is")
RESET_KINDS: tuple[str, ...] = literal_values(HeaderBudgetSpec, "reset_is")

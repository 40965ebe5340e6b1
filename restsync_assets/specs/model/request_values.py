"""Request-time values: `{type: now|today, offset, format}`, `incremental.param_format` and
`incremental.step`.

A relative time is written in the YAML as a mapping and resolved when a run starts
(`runtime.request_values`): in a query param, or as an incremental's `initial_value` or
`end_value`. Formats are the template functions' (`template_functions.format_datetime`).
`incremental.step` cuts a run's range into windows of that duration, each loaded and committed
on its own (`runtime.step_windows`).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import field_validator

from restsync_assets.specs.model.base import StrictModel
from restsync_assets.specs.template_functions import NAMED_FORMATS, parse_duration

RelativeKind = Literal["now", "today"]
RELATIVE_KINDS: tuple[str, ...] = get_args(RelativeKind)
#: the keys of a relative time mapping
RELATIVE_KEYS = ("type", "offset", "format")
#: the incremental keys restsync reads itself (dlt never sees them)
PARAM_FORMAT_KEY = "param_format"
STEP_KEY = "step"
RESTSYNC_INCREMENTAL_KEYS = (PARAM_FORMAT_KEY, STEP_KEY)
#: the incremental options that do not go with `step` (each window is a closed range)
NOT_WITH_STEP = ("lag", "allow_external_schedulers")
#: the incremental keys that may hold a relative time
RELATIVE_INCREMENTAL_KEYS = ("initial_value", "end_value")
FORMAT_HELP = f"one of {', '.join(NAMED_FORMATS)} or a strftime string such as %Y-%m-%d"


def check_format(value: str) -> str:
    """A named format or a strftime string (holding `%`)."""
    if value not in NAMED_FORMATS and "%" not in value:
        raise ValueError(f"unknown format {value!r}; {FORMAT_HELP}")
    return value


class RelativeTime(StrictModel):
    """`{type: now, offset: -1d, format: epoch}`: the run's start (`now`) or today's UTC
    midnight (`today`) plus `offset`, written as `format` (`iso` for now, `date` for today;
    `epoch`/`epoch_ms` give numbers)."""

    type: RelativeKind
    offset: str = "0s"
    format: str | None = None

    @field_validator("offset", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> str:
        parse_duration(value)
        return str(value)

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        return None if value is None else check_format(value)

    @property
    def effective_format(self) -> str:
        return self.format or ("date" if self.type == "today" else "iso")


def is_relative(value: Any) -> bool:
    """Whether a YAML value is written as a relative time (`{type: now|today, ...}`)."""
    return isinstance(value, dict) and value.get("type") in RELATIVE_KINDS

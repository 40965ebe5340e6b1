"""Request-time values, resolved when a run builds its source (`specs.model.request_values`).

`{type: now|today, offset, format}` in a query param or as an incremental's `initial_value` /
`end_value` becomes a value of the run's start time; `incremental.param_format` becomes dlt's
own `convert` hook, which writes the incremental's start and end values into `start_param` /
`end_param` in the API's format (the cursor itself keeps the rows' values). `incremental.step`
is removed here: `runtime.step_windows` gives the incremental each window's range.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from restsync_assets.specs.model.request_values import (
    PARAM_FORMAT_KEY,
    RELATIVE_INCREMENTAL_KEYS,
    STEP_KEY,
    RelativeTime,
    is_relative,
)
from restsync_assets.specs.template_functions import format_datetime, now_utc, parse_duration

#: the clock a run's relative times are read from (tests replace it)
CLOCK: Callable[[], datetime] = now_utc


def run_time() -> datetime:
    """The moment this run's relative times count from (read once per source)."""
    return CLOCK()


def resolve(value: dict[str, Any], now: datetime) -> Any:
    """A relative time's value: `epoch`/`epoch_ms` as numbers, every other format a string."""
    spec = RelativeTime.model_validate(value)
    start = now.astimezone(timezone.utc)
    if spec.type == "today":
        start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    text = format_datetime(start + parse_duration(spec.offset), spec.effective_format)
    return int(text) if spec.effective_format in ("epoch", "epoch_ms") else text


def param_converter(fmt: str) -> Callable[[Any], Any]:
    """dlt's `incremental.convert`: a cursor value (ISO string, date, datetime or epoch)
    written as `fmt`; None stays None (an open end)."""

    def convert(value: Any) -> Any:
        return None if value is None else format_datetime(value, fmt)

    return convert


def with_request_values(endpoint: dict[str, Any], now: datetime) -> dict[str, Any]:
    """`endpoint` (dlt's endpoint dict) with relative times resolved, `param_format` turned
    into dlt's `convert` and `step` removed; unchanged when it has none of them."""
    params = endpoint.get("params") or {}
    if any(is_relative(v) for v in params.values()):
        endpoint = {
            **endpoint,
            "params": {k: resolve(v, now) if is_relative(v) else v for k, v in params.items()},
        }
    incremental = endpoint.get("incremental")
    if not isinstance(incremental, dict):
        return endpoint
    changed = dict(incremental)
    for key in RELATIVE_INCREMENTAL_KEYS:
        if is_relative(changed.get(key)):
            changed[key] = resolve(changed[key], now)
    changed.pop(STEP_KEY, None)
    fmt = changed.pop(PARAM_FORMAT_KEY, None)
    if fmt is not None:
        changed["convert"] = param_converter(fmt)
    return {**endpoint, "incremental": changed} if changed != incremental else endpoint

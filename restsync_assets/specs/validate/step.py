"""`endpoint.incremental.step`: time windows of a given length (`runtime.step_windows`).

A stepped resource is a top-level resource with a datetime cursor: a `start_param` that
receives each window's start, an `initial_value` the first window starts at (a date or time,
or a relative time), and no option that conflicts with closed windows. One line per misuse.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from restsync_assets.specs.errors import Invalid
from restsync_assets.specs.model.request_values import NOT_WITH_STEP, STEP_KEY, is_relative
from restsync_assets.specs.template_functions import parse_duration, to_datetime

KEY = f"endpoint.incremental.{STEP_KEY}"
#: what a window bound may be written as in the YAML
DATETIME_HELP = (
    "a date or time such as 2026-01-01T00:00:00Z or 2026-01-01, epoch seconds,"
    " or a relative time {type: now, offset: -7d}"
)


def validate_step(
    endpoint: dict, raw: dict, resource: str, child: bool, has_children: bool, async_job: bool
) -> str | None:
    """The `step` duration of a stepped resource (None without one); one line otherwise."""
    incremental = endpoint.get("incremental")
    if not isinstance(incremental, dict) or STEP_KEY not in incremental:
        return None
    step = _duration(incremental[STEP_KEY], resource)
    for why, refused in _conflicts(raw, child, has_children, async_job):
        if refused:
            raise Invalid(f"not supported {why}", resource=resource, key=KEY)
    for option in NOT_WITH_STEP:
        if incremental.get(option):
            raise Invalid(
                f"not supported with step (each window is a closed range); remove {option}",
                resource=resource,
                key=f"endpoint.incremental.{option}",
            )
    if incremental.get("last_value_func") not in (None, "max"):
        raise Invalid(
            "windows move forward in time: only 'max' is supported with step",
            resource=resource,
            key="endpoint.incremental.last_value_func",
        )
    if not incremental.get("start_param"):
        raise Invalid(
            "needs start_param: the query param each window's start is sent in"
            " (and end_param for its end)",
            resource=resource,
            key=KEY,
        )
    if incremental.get("initial_value") is None:
        raise Invalid(
            f"needs initial_value, where the first window starts: {DATETIME_HELP}",
            resource=resource,
            key=KEY,
        )
    for bound in ("initial_value", "end_value"):
        _datetime(incremental.get(bound), resource, f"endpoint.incremental.{bound}")
    return step


def _duration(value: Any, resource: str) -> str:
    try:
        delta = parse_duration(value) if isinstance(value, str) else None
    except ValueError as error:
        raise Invalid(str(error), resource=resource, key=KEY) from None
    if delta is None or delta <= timedelta(0):
        raise Invalid(
            f"must be a positive duration such as 1d, 6h, 30m or PT6H, got {value!r}",
            resource=resource,
            key=KEY,
        )
    return value


def _conflicts(
    raw: dict, child: bool, has_children: bool, async_job: bool
) -> list[tuple[str, bool]]:
    """Why `step` cannot be used here, each with whether it applies."""
    return [
        ("on a child resource (its cursors are kept per parent); step the parent instead", child),
        (
            "on a resource with children (each window is a load of its own); load the"
            " children from a resource without step",
            has_children,
        ),
        ("with partitions (a partition run loads one window already)", bool(raw.get("partitions"))),
        ("with for_each", bool(raw.get("for_each"))),
        ("with endpoint.async_job", async_job),
    ]


#: the formats of a relative window bound that read back as a time
RELATIVE_FORMATS = ("iso", "epoch", "date")


def _datetime(value: Any, resource: str, key: str) -> None:
    """A window bound: None, a relative time (checked elsewhere, but for its format) or a
    date or time."""
    if value is None:
        return
    if is_relative(value):
        if value.get("format") not in (None, *RELATIVE_FORMATS):
            raise Invalid(
                f"with step, the format must be one of {', '.join(RELATIVE_FORMATS)} (the"
                f" windows are counted from it), got {value.get('format')!r}",
                resource=resource,
                key=f"{key}.format",
            )
        return
    try:
        if isinstance(value, bool):
            raise ValueError
        to_datetime(value)
    except (ValueError, OverflowError, OSError):
        raise Invalid(
            f"{value!r} is not a date or time to step from; {DATETIME_HELP}",
            resource=resource,
            key=key,
        ) from None

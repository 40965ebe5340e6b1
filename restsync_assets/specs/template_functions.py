"""The functions every restsync template may call (Airbyte's macros, by the same names).

Pure functions of their arguments and the UTC clock: no files, no network, no environment.
Dates and times they return are timezone-aware (UTC when the input names no zone), so they
compare and subtract with each other. The same datetime parsing and formatting serves the
request-time values of `endpoint.incremental.param_format` and `{type: now}` params.
"""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

__all__ = [
    "FILTERS",
    "FUNCTIONS",
    "NAMED_FORMATS",
    "format_datetime",
    "parse_duration",
    "str_to_datetime",
    "to_datetime",
]

#: formats by name (besides any strftime string holding `%`)
NAMED_FORMATS = ("iso", "epoch", "epoch_ms", "date")
_ISO_DURATION = re.compile(
    r"(?P<sign>-)?P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_SHORT_DURATION = re.compile(r"(?P<sign>[-+])?(?P<n>\d+(?:\.\d+)?)(?P<unit>[smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def now_utc() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def today_utc() -> date:
    """Today's date in UTC."""
    return now_utc().date()


def parse_duration(text: Any) -> timedelta:
    """`90s`, `30m`, `6h`, `2d`, `1w` (signed), or ISO 8601 `P1D`, `PT1H30M`, `-P2W`.

    Years and months are refused: they have no fixed length."""
    if isinstance(text, timedelta):
        return text
    raw = str(text).strip()
    short = _SHORT_DURATION.fullmatch(raw)
    if short:
        seconds = float(short["n"]) * _UNIT_SECONDS[short["unit"]]
        return timedelta(seconds=-seconds if short["sign"] == "-" else seconds)
    iso = _ISO_DURATION.fullmatch(raw)
    if iso and any(iso[k] for k in "wdhms"):
        parts = {k: float(iso[k] or 0) for k in "wdhms"}
        delta = timedelta(
            weeks=parts["w"],
            days=parts["d"],
            hours=parts["h"],
            minutes=parts["m"],
            seconds=parts["s"],
        )
        return -delta if iso["sign"] else delta
    raise ValueError(
        f"{raw!r} is not a duration such as 90s, 30m, 6h, 2d, 1w, -7d or P1D, PT6H"
        " (years and months have no fixed length)"
    )


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def str_to_datetime(text: Any) -> datetime:
    """An ISO 8601 date or date-time string as an aware datetime (UTC when it names no zone)."""
    raw = str(text).strip()
    try:
        return _aware(datetime.fromisoformat(raw))
    except ValueError:
        raise ValueError(f"{raw!r} is not an ISO 8601 date or date-time") from None


def to_datetime(value: Any, input_format: str | None = None) -> datetime:
    """A datetime, a date, an epoch number (seconds), or a string (ISO 8601, an epoch in
    digits, or `input_format`) as an aware datetime."""
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date or time")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    raw = str(value).strip()
    if input_format:
        return _aware(datetime.strptime(raw, input_format))
    if re.fullmatch(r"-?\d+(\.\d+)?", raw):
        return datetime.fromtimestamp(float(raw), timezone.utc)
    return str_to_datetime(raw)


def format_datetime(value: Any, format: str = "iso", input_format: str | None = None) -> str:
    """`value` (see `to_datetime`) written as `format`: `iso` (`2026-01-05T00:00:00Z`),
    `epoch` or `%s` (seconds), `epoch_ms` or `%ms`, `date` (`2026-01-05`), or a strftime string."""
    moment = to_datetime(value, input_format)
    if format in ("epoch", "%s"):
        return str(int(moment.timestamp()))
    if format in ("epoch_ms", "%ms"):
        return str(int(moment.timestamp() * 1000))
    if format == "date":
        return moment.strftime("%Y-%m-%d")
    if format == "iso":
        utc = moment.astimezone(timezone.utc)
        text = utc.strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{utc.microsecond:06d}" if utc.microsecond else "") + "Z"
    return moment.strftime(format)


def timestamp(value: Any) -> int:
    """Epoch seconds of a datetime, date, number or string (ISO 8601 or digits)."""
    return int(to_datetime(value).timestamp())


def day_delta(days: float, format: str = "%Y-%m-%dT%H:%M:%S.%f%z") -> str:
    """Now plus `days` (negative: in the past), written as `format`."""
    return format_datetime(now_utc() + timedelta(days=days), format)


def duration(text: Any) -> timedelta:
    """A duration (`P1D`, `PT6H`, `2d`, `-30m`) as a timedelta, to add to a datetime."""
    return parse_duration(text)


def regex_search(text: Any, pattern: str) -> str | None:
    """The first group of `pattern`'s first match in `text` (the whole match when the pattern
    has no group), or None."""
    found = re.search(pattern, str(text))
    if found is None:
        return None
    return found.group(1) if found.re.groups else found.group(0)


def base64encode(text: Any) -> str:
    """`text` (UTF-8) in standard base64."""
    return base64.b64encode(str(text).encode()).decode()


def base64decode(text: Any) -> str:
    """Standard base64 `text` decoded to a UTF-8 string."""
    return base64.b64decode(str(text)).decode()


#: the template globals, by name
FUNCTIONS = {
    "now_utc": now_utc,
    "today_utc": today_utc,
    "format_datetime": format_datetime,
    "str_to_datetime": str_to_datetime,
    "day_delta": day_delta,
    "duration": duration,
    "max": max,
    "min": min,
    "regex_search": regex_search,
    "base64encode": base64encode,
    "base64decode": base64decode,
    "timestamp": timestamp,
}
#: the template filters (`{{ x | base64encode }}`), by name
FILTERS = {
    "base64encode": base64encode,
    "base64decode": base64decode,
    "regex_search": regex_search,
}

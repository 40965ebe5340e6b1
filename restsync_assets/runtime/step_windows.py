"""Time windows of a given `step` (`endpoint.incremental.step`), each committed as it completes.

A run of a stepped resource asks `[start, start+step)`, `[start+step, start+2*step)`, ... up to
the incremental's `end_value`, or else the run's start (`request_values.CLOCK`); the last
window ends there. `start` is where the last committed window ended, or `initial_value` on
the first run (or, for a resource that ran before without `step`, dlt's own cursor, the
first window then leaving out the rows at that value, already loaded). `runtime.load` loads each window but the last as a dlt load of its own
(extract, normalize, load) of that resource alone, committed before the next one is asked;
the last window goes with the run's other resources into dagster-dlt's run, which gives each
asset its one materialization (its `rows_loaded` and `restsync/windows` count the whole run).

Each window gives dlt's incremental the closed range `[start, end)` (`initial_value` and
`end_value`, written like the spec's `initial_value`: an ISO string, a date, epoch seconds):
dlt writes the bounds into `start_param` / `end_param` (through `param_format` when given),
filters the rows to the window and keeps no cursor of its own. The resume point, the window's
end, is written into the resource's dlt state (`step_windows.next_start`, ISO 8601 UTC) as the
window's extract starts, so dlt commits it with the window's rows, in the same load package:
a failed or killed window leaves the resume point of the last committed one, and the next run
asks that window again (the rows its unfinished load left in an append table are removed
first, `exactly_once`; merge tables are merged again).

The resume point is the window's end, not the newest cursor value seen: a window without rows
still moves it (a quiet period is not asked again), and a row that turns up later with a cursor
inside a window already loaded is not loaded, as with any cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import wraps
from typing import Any

from restsync_assets.runtime.request_values import with_request_values
from restsync_assets.specs.model import ResourceSpec, SourceSpec
from restsync_assets.specs.template_functions import format_datetime, to_datetime

#: where a stepped resource keeps its resume point in its dlt resource state
STATE_KEY = "step_windows"
NEXT_START = "next_start"
#: the string forms a window bound may take, as the spec's `initial_value` is written
_STRING_FORMS = (
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%dT%H:%M:%S+00:00",
    "%Y-%m-%dT%H:%M:%S.%f+00:00",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
)


@dataclass(frozen=True)
class StepWindow:
    """One window `[start, end)` of a stepped resource; `form` is the spec's `initial_value`,
    whose form the bounds take (so they compare with the rows' cursor values)."""

    start: datetime
    end: datetime
    form: Any
    #: the start is dlt's own cursor of an earlier run without `step` (its rows are loaded)
    open_start: bool = False

    def bounds(self) -> tuple[Any, Any]:
        return as_cursor(self.start, self.form), as_cursor(self.end, self.form)

    @property
    def next_start(self) -> str:
        """The resume point once this window is committed."""
        return format_datetime(self.end, "iso")

    @property
    def label(self) -> str:
        return f"[{format_datetime(self.start, 'iso')}, {format_datetime(self.end, 'iso')})"


def as_cursor(moment: datetime, form: Any) -> Any:
    """`moment` written as `form` is: epoch seconds for a number, a date or datetime for one,
    a string in the same format for a string (ISO 8601 with `Z` when none matches)."""
    if isinstance(form, bool):
        raise ValueError(f"{form!r} is not a date or time")
    if isinstance(form, int):
        return int(moment.timestamp())
    if isinstance(form, float):
        return moment.timestamp()
    if isinstance(form, datetime):
        return moment.astimezone(form.tzinfo) if form.tzinfo else moment.replace(tzinfo=None)
    if isinstance(form, date):
        return moment.date()
    text = str(form).strip()
    if text.lstrip("-").isdigit():
        return str(int(moment.timestamp()))
    parsed = to_datetime(text)
    for fmt in _STRING_FORMS:
        if parsed.strftime(fmt) == text:
            return moment.strftime(fmt)
    return format_datetime(moment, "iso")


def stepped(spec: SourceSpec, names: Sequence[str]) -> list[ResourceSpec]:
    """The resources among `names` (the run's selected ones) that step through windows."""
    return [r for r in spec.resources if r.name in names and r.step is not None]


def windows_of(resource: ResourceSpec, resume: Resume, now: datetime) -> list[StepWindow]:
    """The windows a run of `resource` asks, from `resume` (else `initial_value`) up to the
    incremental's `end_value` (else `now`)."""
    incremental = with_request_values(dict(resource.endpoint), now)["incremental"]
    form = incremental["initial_value"]
    start = to_datetime(resume.value if resume.value is not None else form)
    end_value = incremental.get("end_value")
    end = to_datetime(end_value) if end_value is not None else now
    step: timedelta = resource.step_delta  # type: ignore[assignment]
    windows = []
    while start < end:
        stop = min(start + step, end)
        windows.append(StepWindow(start, stop, form, open_start=resume.open and not windows))
        start = stop
    return windows


@dataclass(frozen=True)
class Resume:
    """Where a stepped resource goes on: the end of its last committed window, or (`open`) the
    last cursor value of dlt's own incremental, kept by runs before `step` was added (rows at
    that value are loaded, so the first window leaves it out); None: from `initial_value`."""

    value: Any = None
    open: bool = False


def resume_point(resource_state: Mapping[str, Any], cursor_path: str) -> Resume:
    """The resume point in one resource's dlt state."""
    stepped_to = (resource_state.get(STATE_KEY) or {}).get(NEXT_START)
    if stepped_to is not None:
        return Resume(stepped_to)
    cursor = ((resource_state.get("incremental") or {}).get(cursor_path) or {}).get("last_value")
    return Resume(cursor, open=True) if cursor is not None else Resume()


def resume_points(state: Mapping[str, Any], source: str, resources: Sequence[ResourceSpec]):
    """Each stepped resource's resume point in dlt's pipeline `state`."""
    kept = (state.get("sources") or {}).get(source, {}).get("resources") or {}
    return {
        r.name: resume_point(kept.get(r.name) or {}, r.endpoint["incremental"]["cursor_path"])
        for r in resources
    }


def windowed_incremental(incremental: dict[str, Any], window: StepWindow) -> dict[str, Any]:
    """dlt's incremental config for exactly `window` (a closed range: dlt keeps no state)."""
    start, end = window.bounds()
    return {
        **incremental,
        "initial_value": start,
        "end_value": end,
        "range_start": "open" if window.open_start else "closed",
        "range_end": "open",
    }


def stepping(gen: Any, resource: str, window: StepWindow | None) -> Any:
    """A dlt resource's head step (`resource._pipe.gen`: a generator function or a generator)
    for one window: it first writes the window's end as the resume point into the resource's
    state (committed with the window's rows), then asks the window. No window: it asks nothing."""

    def start() -> bool:
        if window is None:
            return False
        import dlt

        dlt.current.resource_state(resource)[STATE_KEY] = {NEXT_START: window.next_start}
        return True

    if callable(gen):
        original: Callable[..., Iterator[Any]] = gen

        @wraps(original)
        def windowed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            if start():
                yield from original(*args, **kwargs)

        return windowed

    def windowed_items() -> Iterator[Any]:
        if start():
            yield from gen

    return windowed_items()


class StepRun:
    """The stepped resources of one run, their windows and what was loaded of them."""

    def __init__(self, spec: SourceSpec, names: Sequence[str], now: datetime):
        self.spec = spec
        self.now = now
        self.resources = stepped(spec, names)
        self.windows: dict[str, list[StepWindow]] = {}
        self.rows: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.resources)

    def plan(self, state: Mapping[str, Any]) -> None:
        """Each resource's windows, from its resume point in the restored dlt `state`."""
        resume = resume_points(state, self.spec.name, self.resources)
        for resource in self.resources:
            self.windows[resource.name] = windows_of(resource, resume[resource.name], self.now)

    def early(self) -> Iterator[tuple[str, StepWindow]]:
        """Every window but each resource's last, in order: each is a load of its own."""
        for name, windows in self.windows.items():
            for window in windows[:-1]:
                yield name, window

    def last(self) -> dict[str, StepWindow | None]:
        """Each resource's last window (None: nothing to ask), loaded with the run's others."""
        return {name: (windows[-1] if windows else None) for name, windows in self.windows.items()}

    def describe(self, name: str) -> str:
        """What the run asks of `name`, for the run log."""
        windows = self.windows[name]
        resource = self.spec.resource(name)
        if not windows:
            return f"{self.spec.name}: {name}: no window to ask (the last one ended at the end)"
        first, last = windows[0], windows[-1]
        return (
            f"{self.spec.name}: {name}: {len(windows)} window(s) of {resource.step} from"
            f" {format_datetime(first.start, 'iso')} to {format_datetime(last.end, 'iso')},"
            " each committed as it completes"
        )

    def loaded(self, name: str, rows: int) -> None:
        self.rows[name] = self.rows.get(name, 0) + rows

    def figures(self, name: str, final_rows: int) -> dict[str, int] | None:
        """`{rows_loaded, windows}` of the whole run for `name` (None: not stepped), given the
        rows of its last window."""
        if name not in self.windows:
            return None
        return {
            "rows_loaded": self.rows.get(name, 0) + final_rows,
            "windows": len(self.windows[name]),
        }

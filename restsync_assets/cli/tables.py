"""Plain-text tables for the command line (`restsync run`, `check`, `preview`, `demo`).

One look for every command: a header, a dashed rule, columns padded to the widest cell;
text columns left-aligned, numbers right-aligned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def render_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()
) -> str:
    """`rows` under `header`; column indexes in `right` are right-aligned. None prints as `-`."""
    lines = [list(header)] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    aligned = set(right)
    out = []
    for n, line in enumerate(lines):
        cells = [
            c.rjust(w) if i in aligned else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def cell(value: object, width: int = 28) -> str:
    """A value for a table cell: one line, at most `width` characters."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class AssetOutcome:
    """One asset's line of a run's summary (the table, and `restsync run --json`)."""

    asset: str
    #: rows in the table after the run (`dagster/row_count`)
    rows: int | None = None
    seconds: float | None = None
    checks_passed: int = 0
    checks_failed: int = 0
    #: checks of severity WARN that did not pass (`rejected_rows`): not failures
    checks_warned: int = 0
    status: str = "ok"
    #: rows this run loaded (dagster-dlt's `rows_loaded`; 0 when it records none)
    rows_loaded: int | None = None
    #: HTTP requests sent for the asset's resource, and how many of them were retries
    requests: int | None = None
    retries: int | None = None
    #: seconds the run waited for other runs' locks
    lock_wait_s: float | None = None
    #: each check's result: ok, WARN or FAILED
    check_results: dict[str, str] = field(default_factory=dict)

    @property
    def checks(self) -> str:
        total = self.checks_passed + self.checks_failed + self.checks_warned
        if not total:
            return "-"
        return (
            f"{self.checks_passed}/{total} passed"
            + (f", {self.checks_warned} warned" if self.checks_warned else "")
            + (f", {self.checks_failed} FAILED" if self.checks_failed else "")
        )

    def as_json(self) -> dict[str, object]:
        """The asset's object in `restsync run --json`."""
        return {
            "asset": self.asset,
            "status": self.status,
            "rows_loaded": self.rows_loaded,
            "rows_in_table": self.rows,
            "requests": self.requests,
            "retries": self.retries,
            "lock_wait_s": self.lock_wait_s,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "checks": dict(self.check_results),
        }


def outcome_table(outcomes: Sequence[AssetOutcome]) -> str:
    """The table `restsync run` ends with: per asset the rows this run loaded and the table's,
    requests (retries), lock wait, seconds, checks and status."""
    return render_table(
        (
            "asset",
            "loaded",
            "in table",
            "requests",
            "retries",
            "lock wait",
            "seconds",
            "checks",
            "status",
        ),
        [
            (
                o.asset,
                o.rows_loaded,
                o.rows,
                o.requests,
                o.retries,
                None if o.lock_wait_s is None else f"{o.lock_wait_s:.1f}s",
                None if o.seconds is None else f"{o.seconds:.1f}",
                o.checks,
                o.status,
            )
            for o in outcomes
        ],
        right=(1, 2, 3, 4, 5, 6),
    )

"""Plain-text tables for the command line (`restsync run`, `check`, `preview`, `demo`).

One look for every command: a header, a dashed rule, columns padded to the widest cell;
text columns left-aligned, numbers right-aligned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


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
    """One asset's line of a run's summary table."""

    asset: str
    rows: int | None = None
    seconds: float | None = None
    checks_passed: int = 0
    checks_failed: int = 0
    #: checks of severity WARN that did not pass (`rejected_rows`): not failures
    checks_warned: int = 0
    status: str = "ok"

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


def outcome_table(outcomes: Sequence[AssetOutcome]) -> str:
    """asset | rows | seconds | checks | status: the table `restsync run` ends with."""
    return render_table(
        ("asset", "rows", "seconds", "checks", "status"),
        [
            (
                o.asset,
                o.rows,
                None if o.seconds is None else f"{o.seconds:.1f}",
                o.checks,
                o.status,
            )
            for o in outcomes
        ],
        right=(1, 2),
    )

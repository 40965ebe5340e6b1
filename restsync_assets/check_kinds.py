"""The kinds of asset check restsync generates: one table, read by both halves.

Each kind: its `name`, the resources it is declared for (`applies`), its `description` (the
check's description in Dagster), the `severity` of a check that does not pass, and its
`evaluator`: the name of the function of `restsync_assets.runtime.checks` that evaluates it
(named, not imported: definition time imports no run-time module). `checks.py` declares a
spec's checks from this table; `runtime.checks` evaluates them. A new kind is one entry here
and one evaluator there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dagster import AssetCheckSeverity

from restsync_assets.specs.model import ResourceSpec


@dataclass(frozen=True)
class CheckKind:
    """One kind of asset check (see the module)."""

    name: str
    applies: Callable[[ResourceSpec], bool]
    evaluator: str
    description: str
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR
    #: judged without the resource's own table (the check reads another one)
    needs_table: bool = True


#: Every kind, in evaluation order.
CHECK_KINDS: tuple[CheckKind, ...] = (
    CheckKind(
        "primary_key",
        lambda r: bool(r.primary_key_columns),
        "primary_key",
        "The primary key is unique and never null.",
    ),
    CheckKind(
        "not_null",
        lambda r: any(not c.nullable for c in r.columns),
        "not_null",
        "Fields the spec declares non-nullable hold no nulls.",
    ),
    CheckKind(
        "column_types",
        lambda r: bool(r.columns),
        "column_types",
        "Warehouse columns have the types the spec's schema declares.",
    ),
    CheckKind(
        "row_count",
        lambda r: True,
        "row_count",
        "The table holds at least the spec's minimum number of rows.",
    ),
    CheckKind(
        "freshness",
        lambda r: bool(r.max_lag_seconds),
        "freshness",
        "The asset was loaded within the spec's freshness max_lag.",
    ),
    CheckKind(
        "rejected_rows",
        lambda r: bool(r.rejected_table),
        "rejected_rows",
        "The latest load set no row aside in <table>__rejected (on_invalid: quarantine).",
        # quarantined rows were expected to happen: a warning, not a failure
        severity=AssetCheckSeverity.WARN,
        needs_table=False,  # judged even when every row was rejected (no main table)
    ),
)

KINDS_BY_NAME = {kind.name: kind for kind in CHECK_KINDS}


def kinds_for(resource: ResourceSpec) -> list[CheckKind]:
    """The checks generated for `resource`, in evaluation order."""
    return [kind for kind in CHECK_KINDS if kind.applies(resource)]

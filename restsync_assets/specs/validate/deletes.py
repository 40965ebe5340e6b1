"""`deletes: soft`: allowed only where a successful run reads every row of the resource.

Rows a complete scan did not return are marked deleted (`runtime.soft_deletes`), so any read
that returns less than everything by design would mark rows that still exist: an incremental
read (only changed rows), a partition (one window), a paginator capped by `maximum_offset` /
`maximum_page`, or a child whose parents are not all read. Each is refused with one line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from restsync_assets.specs.errors import Invalid, allowed
from restsync_assets.specs.model import (
    DELETES,
    SOFT_DELETE_STRATEGIES,
    DltPaginatorSpec,
    OffsetPaginatorSpec,
    PaginatorSpec,
    ResourceSpec,
)

#: dlt paginator options that stop paging before the last page
PAGE_CAPS = ("maximum_offset", "maximum_page", "maximum_value")


def validate_deletes(value: Any, resource: str) -> str | None:
    """`deletes` as written: `soft`, or absent (null)."""
    if value is None or value in DELETES:
        return value
    raise Invalid(
        f"unknown value {value!r}; {allowed(DELETES)} (or leave deletes out)",
        resource=resource,
        key="deletes",
    )


def check_soft_deletes(
    resources: Iterable[ResourceSpec], client_paginator: PaginatorSpec | None
) -> None:
    """Every resource with `deletes: soft` is merged by key and read in full, and so is
    every ancestor of a child (its children are read for every parent row)."""
    by_name = {r.name: r for r in resources}
    for resource in by_name.values():
        if resource.deletes is None:
            continue
        _check_merged(resource)
        ancestor = resource.parent
        while ancestor is not None:
            parent = by_name[ancestor]
            reason = _partial_read(parent, client_paginator)
            if reason:
                raise Invalid(
                    f"a child's rows are all known only when every parent's children were"
                    f" read, but its parent '{parent.name}' {reason}",
                    resource=resource.name,
                    key="deletes",
                )
            ancestor = parent.parent
        reason = _partial_read(resource, client_paginator)
        if reason:
            raise Invalid(
                f"rows a run does not read would be marked deleted: the resource {reason}",
                resource=resource.name,
                key="deletes",
            )


def _check_merged(resource: ResourceSpec) -> None:
    disposition = resource.write_disposition
    strategy = None
    if isinstance(disposition, dict):
        disposition, strategy = disposition.get("disposition"), disposition.get("strategy")
    if disposition != "merge":
        raise Invalid(
            f"marks rows of a merged table; set write_disposition: merge (it is {disposition!r})",
            resource=resource.name,
            key="deletes",
        )
    if strategy is not None and strategy not in SOFT_DELETE_STRATEGIES:
        raise Invalid(
            f"needs a merge that rewrites every row read (strategy"
            f" {' or '.join(SOFT_DELETE_STRATEGIES)}), not {strategy!r}",
            resource=resource.name,
            key="deletes",
        )
    if not resource.primary_key_columns:
        raise Invalid(
            "rows are matched by key: set primary_key", resource=resource.name, key="deletes"
        )


def _partial_read(resource: ResourceSpec, client_paginator: PaginatorSpec | None) -> str | None:
    """Why a run reads only part of `resource`'s rows by design, or None (read in full)."""
    endpoint = resource.endpoint
    if resource.cursor is not None or isinstance(endpoint.get("incremental"), dict):
        return "is read incrementally (only new and changed rows)"
    if any(
        isinstance(v, dict) and v.get("type") == "incremental"
        for v in (endpoint.get("params") or {}).values()
    ):
        return "is read incrementally (a type: incremental param)"
    if resource.partitions is not None:
        return "is partitioned (a run reads one window)"
    if resource.on_invalid == "quarantine":
        return "sets invalid rows aside (on_invalid: quarantine), and those rows are not deleted"
    cap = _page_cap(resource.paginator or client_paginator)
    if cap:
        return f"is read up to the paginator's {cap} only"
    return None


def _page_cap(paginator: PaginatorSpec | None) -> str | None:
    if isinstance(paginator, OffsetPaginatorSpec) and paginator.maximum_offset is not None:
        return "maximum_offset"
    if isinstance(paginator, DltPaginatorSpec) and isinstance(paginator.config, dict):
        return next((k for k in PAGE_CAPS if paginator.config.get(k) is not None), None)
    return None

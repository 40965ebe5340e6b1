"""Operations of a resource (partitions, freshness, checks, automation) and the spec's schedule."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from restsync_assets.specs.errors import Invalid, mapping, validated
from restsync_assets.specs.model import (
    NAMED_AUTOMATION_CONDITIONS,
    AutomationSpec,
    ChecksSpec,
    FreshnessSpec,
    PartitionsSpec,
    ResourceSpec,
    ScheduleSpec,
)

LAG_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
LAG_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Operations(NamedTuple):
    """How one resource is partitioned, kept fresh, checked and automated."""

    partitions: PartitionsSpec | None
    freshness: FreshnessSpec | None
    max_lag_seconds: float | None
    warn_lag_seconds: float | None
    checks: ChecksSpec
    automation: AutomationSpec | None


def validate_operations(raw: dict, name: str) -> Operations:
    partitions = _partitions(raw.get("partitions"), name)
    freshness = raw.get("freshness")
    max_lag = warn_lag = None
    if freshness is not None:
        if isinstance(freshness, (str, int)):
            freshness = {"max_lag": freshness}
        freshness = validated(
            FreshnessSpec, mapping(freshness, "freshness", resource=name), "freshness", name
        )
        max_lag = _lag(freshness.max_lag, name, "freshness.max_lag")
        if freshness.warn_lag is not None:
            warn_lag = _lag(freshness.warn_lag, name, "freshness.warn_lag")
    checks = validated(
        ChecksSpec, mapping(raw.get("checks"), "checks", resource=name), "checks", name
    )
    automation = _automation(raw.get("automation_condition"), name)
    return Operations(partitions, freshness, max_lag, warn_lag, checks, automation)


def inherit_partitions(resources: Iterable[ResourceSpec]) -> tuple[ResourceSpec, ...]:
    """A child is fetched per parent row, so it shares its parent's partitioning."""
    by_name: dict[str, ResourceSpec] = {}
    for resource in resources:  # parents come first
        if resource.parent is not None:
            inherited = by_name[resource.parent].partitions
            if resource.partitions is not None and resource.partitions != inherited:
                raise Invalid(
                    f"a child shares its parent's partitions; remove it or partition '{resource.parent}' the same way",
                    resource=resource.name,
                    key="partitions",
                )
            resource = resource.model_copy(update={"partitions": inherited})
        by_name[resource.name] = resource
    return tuple(by_name.values())


def validate_schedule(value: Any) -> ScheduleSpec | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"cron": value}
    schedule = validated(ScheduleSpec, mapping(value, "schedule"), "schedule")
    _check_cron(schedule.cron, None, "schedule.cron")
    return schedule


def _partitions(value: Any, resource: str) -> PartitionsSpec | None:
    if value is None:
        return None
    partitions = validated(
        PartitionsSpec, mapping(value, "partitions", resource=resource), "partitions", resource
    )
    try:
        datetime.fromisoformat(partitions.start)
    except ValueError:
        raise Invalid(
            f"{partitions.start!r} is not an ISO date such as 2026-01-01",
            resource=resource,
            key="partitions.start",
        ) from None
    return partitions


def _lag(value: str | int, resource: str, key: str) -> float:
    if isinstance(value, int):
        return float(value * 60)
    match = LAG_RE.match(value)
    if not match:
        raise Invalid(
            f"{value!r} is not a duration such as 90s, 30m, 6h, 2d, 1w (a bare number means minutes)",
            resource=resource,
            key=key,
        )
    return float(match.group(1)) * LAG_UNITS[match.group(2)]


def _automation(value: Any, resource: str) -> AutomationSpec | None:
    if value is None:
        return None
    named = ", ".join(NAMED_AUTOMATION_CONDITIONS)
    if isinstance(value, str):
        if value not in NAMED_AUTOMATION_CONDITIONS:
            raise Invalid(
                f"unknown automation condition {value!r}; allowed: {named}, {{on_cron: <cron>}}",
                resource=resource,
                key="automation_condition",
            )
        return AutomationSpec(kind=value)
    if isinstance(value, dict) and set(value) == {"on_cron"}:
        _check_cron(value["on_cron"], resource, "automation_condition.on_cron")
        return AutomationSpec(kind="on_cron", cron=value["on_cron"])
    raise Invalid(
        f"must be {named} or {{on_cron: <cron>}}",
        resource=resource,
        key="automation_condition",
    )


def _check_cron(cron: Any, resource: str | None, key: str) -> None:
    from croniter import croniter

    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise Invalid(
            f"{cron!r} is not a cron expression such as '0 6 * * *'", resource=resource, key=key
        )

"""`owners` and `tags` (on the spec, `resource_defaults` and each resource), as Dagster
requires them: owners are emails or `team:` names, tags are Dagster's strict tags."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from restsync_assets.specs.errors import Invalid

#: Dagster's tag keys: a name of 1-63 of [A-Za-z0-9_.-], optionally after one `prefix/`
TAG_KEY_RE = re.compile(r"^([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}$")


class Catalog(NamedTuple):
    """What the catalog shows of every resource of a spec: the spec's owners and tags, and
    the line of the file that declares each resource."""

    owners: tuple[str, ...] = ()
    tags: dict[str, str] = {}
    lines: dict[str, int] = {}

    def owners_of(self, raw: dict, resource: str) -> tuple[str, ...]:
        """The spec's owners, then the resource's own (defaults included), each once."""
        return tuple(dict.fromkeys([*self.owners, *validate_owners(raw.get("owners"), resource)]))

    def tags_of(self, raw: dict, resource: str) -> dict[str, str]:
        """The spec's tags, overridden by the resource's own."""
        return {**self.tags, **validate_tags(raw.get("tags"), resource)}


def spec_catalog(raw: dict, resource_names: list[str], lines: list[int]) -> Catalog:
    """The spec-level owners and tags, and each resource's line."""
    return Catalog(
        tuple(validate_owners(raw.get("owners"), None)),
        validate_tags(raw.get("tags"), None),
        dict(zip(resource_names, lines, strict=False)),
    )


def validate_owners(value: Any, resource: str | None) -> list[str]:
    """`owners: [...]`: email addresses or `team:` names, as Dagster requires."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(
            "must be a list of owners (emails or team:<name>)", resource=resource, key="owners"
        )
    for index, owner in enumerate(value):
        if not isinstance(owner, str) or not _dagster_accepts(owners=[owner]):
            raise Invalid(
                f"{owner!r} is not an owner; allowed: an email address (jane@example.com)"
                " or a team name prefixed with team: (team:data-eng)",
                resource=resource,
                key=f"owners[{index}]",
            )
    return value


def validate_tags(value: Any, resource: str | None) -> dict[str, str]:
    """`tags: {key: value}`: Dagster's strict tags (short names, string values)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("must map tag names to string values", resource=resource, key="tags")
    for tag, tag_value in value.items():
        if not isinstance(tag, str) or not TAG_KEY_RE.match(tag) or tag.startswith("dagster/"):
            raise Invalid(
                f"{tag!r} is not a tag name; allowed: 1-63 letters, digits, _ - . with an"
                " optional prefix/ of the same (not dagster/)",
                resource=resource,
                key="tags",
            )
        if not isinstance(tag_value, str) or not _dagster_accepts(tags={tag: tag_value}):
            raise Invalid(
                f"{tag_value!r} is not a tag value; allowed: a string of up to 63 letters,"
                " digits, _ - . (quote numbers and booleans)",
                resource=resource,
                key=f"tags.{tag}",
            )
    return dict(value)


def _dagster_accepts(**attributes: Any) -> bool:
    """Whether Dagster accepts these asset attributes (`owners`, `tags`): its own rules decide."""
    from dagster import AssetSpec, DagsterInvalidDefinitionError

    try:
        AssetSpec("restsync_validation", **attributes)
    except DagsterInvalidDefinitionError:
        return False
    return True

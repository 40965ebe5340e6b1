"""The Dagster keys both halves share: one owner for each.

- an asset's key (`[<spec>, <resource>]`, or the key a `dg` component's translation gave the
  resource) and the way back, key -> resource, for run time (a renamed key's last part is
  not the resource's name);
- the metadata keys of Dagster's table metadata, written at definition time
  (`restsync_assets.metadata`) and on each materialization (`runtime.catalog`).

Imports only Dagster's public `AssetKey` and the spec model: definition time (assets, checks,
schedules, the CLI) and run time (`restsync_assets.runtime`) both import it.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import AssetKey

from restsync_assets.specs.model import ResourceSpec, SourceSpec

#: Dagster's standard metadata keys (`TableMetadataSet`'s, which dagster does not export)
ROW_COUNT = "dagster/row_count"
PARTITION_ROW_COUNT = "dagster/partition_row_count"
TABLE_NAME = "dagster/table_name"
CODE_REFERENCES = "dagster/code_references"
COLUMN_SCHEMA = "dagster/column_schema"


def asset_key(spec: SourceSpec, resource: ResourceSpec | str) -> AssetKey:
    """`[<spec>, <resource>]`, or the key a `dg` component's translation gave the resource."""
    name = resource if isinstance(resource, str) else resource.name
    return AssetKey(list(spec.asset_keys.get(name, (spec.name, name))))


def resources_by_key(spec: SourceSpec) -> Mapping[AssetKey, str]:
    """Each asset key of `spec` -> the name of its resource."""
    return {asset_key(spec, r): r.name for r in spec.resources}


def resource_name(spec: SourceSpec, key: AssetKey) -> str | None:
    """The resource of `spec` whose asset `key` is, or None when it is not one of `spec`'s."""
    return resources_by_key(spec).get(key)

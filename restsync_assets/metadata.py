"""Dagster's standard catalog metadata of each restsync asset, at definition time.

`dagster/table_name` (when the warehouse is knowable at load time: DuckDB),
`dagster/code_references` to the spec file and the line that declares the resource, and
`dagster/column_schema` of the columns the spec's `schema` declares. What a materialization
adds (row counts, the qualified table name) is `restsync_assets.runtime.catalog`'s.
"""

from __future__ import annotations

import warnings
from typing import Any

from dagster import (
    BetaWarning,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
)

from restsync_assets import settings
from restsync_assets.keys import CODE_REFERENCES, COLUMN_SCHEMA, TABLE_NAME
from restsync_assets.specs.model import ResourceSpec, SourceSpec


def definition_metadata(spec: SourceSpec, resource: ResourceSpec) -> dict[str, Any]:
    """Table name (DuckDB) and code reference of one resource's asset."""
    with warnings.catch_warnings():  # code references are a beta API: do not warn per asset
        warnings.simplefilter("ignore", BetaWarning)
        reference = LocalFileCodeReference(
            file_path=str(spec.path.resolve()),
            line_number=resource.line,
            label=f"{spec.path.name}: {resource.name}",
        )
        references = CodeReferencesMetadataValue(code_references=[reference])
    metadata: dict[str, Any] = {CODE_REFERENCES: references}
    if resource.columns:  # what the spec declares; a materialization records every column
        columns = [
            TableColumn(
                c.name, c.data_type, constraints=TableColumnConstraints(nullable=c.nullable)
            )
            for c in resource.columns
        ]
        metadata[COLUMN_SCHEMA] = MetadataValue.table_schema(TableSchema(columns=columns))
    if settings.destination_name() == "duckdb":
        # DuckDB names a database file's catalog after the file
        table = f"{settings.duckdb_path().stem}.{spec.name}.{resource.name}"
        metadata[TABLE_NAME] = MetadataValue.text(table)
    return metadata

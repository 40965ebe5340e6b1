"""`restsync import airbyte`: an Airbyte declarative manifest into a restsync spec.

manifest    read the YAML; resolve `$ref`s; pass `$parameters` down
config      CONFIG.json; `airbyte_secret` fields become `{secret: ...}`
templates   Airbyte's Jinja into dlt placeholders and restsync's Jinja
components  one converter per Airbyte component type (`CONVERTERS`)
streams     one `DeclarativeStream` into one resource
spec        the resources into one spec; written; checked by restsync's loader
command     the command's run (its arguments: restsync_assets.cli)
"""

from restsync_assets.importers.airbyte.command import import_command
from restsync_assets.importers.airbyte.components import CONVERTERS
from restsync_assets.importers.airbyte.spec import Imported, import_manifest

__all__ = ["CONVERTERS", "Imported", "import_command", "import_manifest"]

"""`restsync import airbyte MANIFEST --config CONFIG.json --name NAME --out DIR`."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from restsync_assets.importers.airbyte.errors import ImportFailed
from restsync_assets.importers.airbyte.spec import Imported, import_manifest
from restsync_assets.specs import SpecError, parse_spec


def import_command(manifest: Path, config: Path | None, name: str, out: Path) -> int:
    """Import, write `out/NAME.yaml`, print dropped streams and env vars; 0 when any imported."""
    try:
        imported = import_manifest(manifest, config, name)
        path = write_checked(imported, out)
    except ImportFailed as error:
        print(f"restsync import airbyte: {error}", file=sys.stderr)
        return 1
    for stream, reason in imported.dropped.items():
        print(f"dropped {stream}: {reason}")
    if path is None:
        print(
            f"restsync import airbyte: no stream of {manifest} can be expressed as a restsync resource",
            file=sys.stderr,
        )
        return 1
    for stream, notes in imported.notes.items():
        for note in notes:
            print(f"note {stream}: {note}")
    count = len(imported.spec["resources"])
    print(f"wrote {path} ({count} resource{'s' if count != 1 else ''})")
    for var in imported.env_vars:
        print(f"reads {var}")
    return 0


def write_checked(imported: Imported, out: Path) -> Path | None:
    """Write the spec; drop each resource restsync's loader refuses, until it loads.
    None when no resource is left (nothing is written)."""
    path = Path(out) / f"{imported.name}.yaml"
    while imported.spec.get("resources"):
        try:
            parse_spec(copy.deepcopy(imported.spec), path)
        except SpecError as error:
            if error.resource is None or not _drop(imported, error):
                raise ImportFailed(str(error)) from None
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(imported.text())
        return path
    return None


def _drop(imported: Imported, error: SpecError) -> bool:
    resources = imported.spec["resources"]
    kept = [r for r in resources if r["name"] != error.resource]
    if len(kept) == len(resources):
        return False
    imported.spec["resources"] = kept
    imported.notes.pop(error.resource, None)
    where = f"{error.key}: " if error.key else ""
    imported.dropped[error.resource] = f"restsync refuses it: {where}{error.message}"
    return True

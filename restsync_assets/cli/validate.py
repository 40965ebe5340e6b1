"""`restsync validate [DIR]`: check spec files; one line per problem, every problem at once."""

from __future__ import annotations

import sys
from pathlib import Path

from restsync_assets.specs.errors import SpecValidationError
from restsync_assets.text import plural

#: Problems `restsync validate` lists before it counts the rest (`and N more`).
VALIDATE_LINES = 50


def validate_command(directory: Path | None) -> int:
    """Every spec of `directory` (default: the project's spec folders): an `ok` line per
    valid spec (and a warning line per likely mistake), then every problem of the others; 1
    if any."""
    from restsync_assets.specs import read_project_specs, read_specs
    from restsync_assets.specs.advice import spec_warnings

    try:
        specs, errors = read_specs(directory) if directory else read_project_specs()
    except SpecValidationError as error:  # no such folder
        print(error, file=sys.stderr)
        return 1
    for spec in specs:
        print(f"ok  {spec.path.name}: {spec.name} ({plural(len(spec.resources), 'resource')})")
        for warning in spec_warnings(spec):
            print(f"warning: {warning}", file=sys.stderr)
    if errors:
        print("\n".join(SpecValidationError(errors).lines(most=VALIDATE_LINES)), file=sys.stderr)
        return 1
    return 0

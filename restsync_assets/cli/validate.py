"""`restsync validate [DIR]`: check spec files; one line per problem."""

from __future__ import annotations

import sys
from pathlib import Path

from restsync_assets import settings
from restsync_assets.specs.errors import SpecValidationError
from restsync_assets.text import plural


def validate_command(directory: Path | None) -> int:
    """Load every spec of `directory` (default: the specs folder); 1 and the problems if any."""
    from restsync_assets.specs import load_specs

    directory = directory or settings.specs_dir()
    try:
        specs = load_specs(directory)
    except SpecValidationError as error:
        print(error, file=sys.stderr)
        return 1
    for spec in specs:
        print(f"ok  {spec.path.name}: {spec.name} ({plural(len(spec.resources), 'resource')})")
    return 0

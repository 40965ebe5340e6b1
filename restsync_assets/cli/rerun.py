"""Running a command again in a child process given settings the environment does not say.

restsync reads its settings (`restsync_assets.settings`) from the environment, lazily and deep
in the run (the warehouse file, dlt's pipelines folder, locks). A command line option that
changes one of them (`restsync demo --duckdb FILE`) is therefore handed to a child process in
its environment mapping; the running process's `os.environ` is never written (a write would
leak into dlt's configuration, into the threads of a run and into whoever called `main`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence


def changed(wanted: Mapping[str, str]) -> dict[str, str]:
    """The settings of `wanted` the environment does not already say (an empty dict: none)."""
    return {key: value for key, value in wanted.items() if os.environ.get(key) != value}


def rerun(argv: Sequence[str], settings: Mapping[str, str]) -> int:
    """`restsync ARGV` in a child process whose environment is this one's with `settings`;
    its exit status. Its output goes where this process's goes."""
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-m", "restsync_assets.cli", *argv]
    return subprocess.call(command, env={**os.environ, **settings})

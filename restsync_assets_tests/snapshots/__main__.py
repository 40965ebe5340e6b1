"""`python -m restsync_assets_tests.snapshots`: regenerate the snapshots (see `__init__`)."""

from . import write_snapshots

write_snapshots()

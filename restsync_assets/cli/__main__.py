"""`python -m restsync_assets.cli`: the `restsync` command."""

from restsync_assets.cli import main

raise SystemExit(main())

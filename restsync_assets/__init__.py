"""restsync: declarative REST API specs as Dagster assets loaded by dlt.

`restsync_assets.RestSyncComponent` is the `dg` component (registered through the
`dagster_dg_cli.registry_modules` entry point). It is imported on first use, so importing
this package (the sandbox, the CLI) does not import Dagster.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RestSyncComponent"]


def __getattr__(name: str) -> Any:
    if name == "RestSyncComponent":
        from restsync_assets.component import RestSyncComponent

        return RestSyncComponent
    raise AttributeError(f"module 'restsync_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

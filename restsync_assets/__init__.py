"""restsync: YAML specs of REST APIs become Dagster assets loaded by dlt.

The public surface, imported on first use so `import restsync_assets` stays cheap (no
Dagster, dlt or pydantic until a name is used; nothing from `restsync_assets.runtime`):

    build_definitions(load_specs(folder))   the Dagster `Definitions` of a folder of specs
    SourceSpec, ResourceSpec, ...           the typed spec model (`restsync_assets.specs.model`)
    ApiCredentials                          the credentials resource, one per spec
    RestSyncComponent                       the `dg` component (registered through the
                                            `dagster_dg_cli.registry_modules` entry point)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_MODEL = "restsync_assets.specs.model"
#: each public name and the module that defines it
_EXPORTS = {
    "build_definitions": "restsync_assets.definitions",
    "ApiCredentials": "restsync_assets.resources",
    "RestSyncComponent": "restsync_assets.component",
    **dict.fromkeys(
        ("SpecError", "SpecValidationError", "load_spec_file", "load_specs", "parse_spec"),
        "restsync_assets.specs",
    ),
    **dict.fromkeys(
        (
            "ApiKeyAuthSpec",
            "AuthSpec",
            "AutomationSpec",
            "BearerAuthSpec",
            "Binding",
            "ChecksSpec",
            "ChildCursorSpec",
            "Column",
            "DltPaginatorSpec",
            "ErrorHandler",
            "FreshnessSpec",
            "HttpBasicAuthSpec",
            "OAuth2AuthSpec",
            "OAuth2ClientCredentialsSpec",
            "OffsetPaginatorSpec",
            "PaginatorSpec",
            "PartitionsSpec",
            "ResourceSpec",
            "ScheduleSpec",
            "SecretRef",
            "SourceSpec",
            "TemplatedCursorPaginatorSpec",
        ),
        _MODEL,
    ),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

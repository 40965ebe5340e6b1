"""YAML spec files into the typed spec model, in named stages.

    files      find the spec files, read each one's YAML
    document   the top level: keys, name, client, base_url
    defaults   `resource_defaults` merged into each resource exactly as dlt merges them
    bindings   placeholders bound to values, parents' fields or dlt's context; lineage
    validate   every field of the resources and the client, into `model`

Every problem is one line naming the file, the resource and the key (`errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from restsync_assets.specs.bindings import bind_resources
from restsync_assets.specs.defaults import merge_defaults, retry_layer
from restsync_assets.specs.document import read_document
from restsync_assets.specs.errors import Invalid, SpecError, SpecValidationError
from restsync_assets.specs.files import duplicate_names, read_yaml, spec_files, spec_folder
from restsync_assets.specs.model import SourceSpec
from restsync_assets.specs.validate import (
    spec_catalog,
    validate_auth,
    validate_resources,
    validate_source,
)
from restsync_assets.specs.validate.async_job import with_create_paths

__all__ = [
    "SpecError",
    "SpecValidationError",
    "load_spec_file",
    "load_specs",
    "parse_spec",
    "spec_files",
]


def load_specs(directory: Path | str) -> list[SourceSpec]:
    """Load and validate every spec in `directory`; raise `SpecValidationError` listing all problems."""
    specs, errors = [], []
    for path in spec_files(spec_folder(directory)):
        try:
            specs.append(load_spec_file(path))
        except SpecError as error:
            errors.append(error)
    errors += duplicate_names([(spec.name, spec.path) for spec in specs])
    if errors:
        raise SpecValidationError(errors)
    return specs


def load_spec_file(path: Path | str) -> SourceSpec:
    """Read one YAML spec file into a validated `SourceSpec`."""
    raw, lines = read_yaml(Path(path))
    return parse_spec(raw, path, lines)


def parse_spec(raw: Any, path: Path | str, lines: list[int] | None = None) -> SourceSpec:
    """Validate an already parsed spec mapping (the YAML document) into a `SourceSpec`.

    The client's auth and retries are checked first, the rest of the client once every
    resource is valid: the first problem found is the one reported. `lines[i]` is the line of
    the file where `resources[i]` is declared (code references).
    """
    path = Path(path)
    try:
        document = read_document(raw)
        auth = validate_auth(document.client.get("auth"), "client.auth", document.name)
        client_retries = retry_layer(document.client.get("error_handler"), "client.error_handler")
        merged = merge_defaults(with_create_paths(document.raw))  # async jobs: create path
        names = [r["name"] for r in merged.resources]
        catalog = spec_catalog(document.raw, names, lines or [])
        bound = bind_resources(merged.resources)
        layers = (client_retries, merged.retries)
        resources = validate_resources(bound, layers, document.name, catalog)
        return validate_source(document, path, auth, client_retries, merged, resources)
    except Invalid as problem:
        raise problem.in_file(path) from None

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
from typing import Any, NamedTuple

from restsync_assets.specs.bindings import bind_resources
from restsync_assets.specs.defaults import merge_defaults, retry_layer
from restsync_assets.specs.document import read_document
from restsync_assets.specs.errors import (
    Collector,
    Invalid,
    SpecError,
    SpecErrors,
    SpecValidationError,
)
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
    "SpecErrors",
    "SpecValidationError",
    "SpecsRead",
    "load_project_specs",
    "load_spec_file",
    "load_specs",
    "parse_spec",
    "read_project_specs",
    "read_specs",
    "spec_files",
]


class SpecsRead(NamedTuple):
    """A folder's valid specs, and one `SpecError` per problem of the others: one bad spec
    stays one bad spec (a file refused for a name an earlier file took is a problem too)."""

    specs: list[SourceSpec]
    errors: list[SpecError]


def read_specs(directory: Path | str) -> SpecsRead:
    """Load and validate every spec in `directory`, keeping the valid ones."""
    specs, errors = [], []
    for path in spec_files(spec_folder(directory)):
        try:
            specs.append(load_spec_file(path))
        except SpecError as error:
            errors += error.each()
    duplicates = duplicate_names([(spec.name, spec.path) for spec in specs])
    refused = {error.path for error in duplicates}
    return SpecsRead([s for s in specs if s.path not in refused], errors + duplicates)


def read_project_specs() -> SpecsRead:
    """`read_specs` over the project's spec folders (`specs.project.project_spec_folders`):
    what the command line reads when no folder is named. A name two folders use is a problem."""
    from restsync_assets.specs.project import project_spec_folders

    specs, errors = [], []
    for folder in project_spec_folders():
        found = read_specs(folder)
        specs += found.specs
        errors += found.errors
    duplicates = duplicate_names([(spec.name, spec.path) for spec in specs])
    refused = {error.path for error in duplicates}
    return SpecsRead([s for s in specs if s.path not in refused], errors + duplicates)


def load_project_specs() -> list[SourceSpec]:
    """The project's specs (`read_project_specs`); raise `SpecValidationError` listing all
    problems."""
    specs, errors = read_project_specs()
    if errors:
        raise SpecValidationError(errors)
    return specs


def load_specs(directory: Path | str) -> list[SourceSpec]:
    """Load and validate every spec in `directory`; raise `SpecValidationError` listing all problems."""
    specs, errors = read_specs(directory)
    if errors:
        raise SpecValidationError(errors)
    return specs


def load_spec_file(path: Path | str) -> SourceSpec:
    """Read one YAML spec file into a validated `SourceSpec`."""
    raw, lines = read_yaml(Path(path))
    return parse_spec(raw, path, lines)


def parse_spec(raw: Any, path: Path | str, lines: list[int] | None = None) -> SourceSpec:
    """Validate an already parsed spec mapping (the YAML document) into a `SourceSpec`.

    The client's auth and retries and every resource are checked in one pass, the rest of the
    client once every resource is valid: every problem found is reported (`SpecErrors`, one
    line each), the first one first. `lines[i]` is the line of
    the file where `resources[i]` is declared (code references).
    """
    path = Path(path)
    try:
        document = read_document(raw)
        problems = Collector()
        auth = problems.take(
            validate_auth, document.client.get("auth"), "client.auth", document.name, default=None
        )
        client_retries = problems.take(
            retry_layer, document.client.get("error_handler"), "client.error_handler", default={}
        )
        merged = merge_defaults(with_create_paths(document.raw))  # async jobs: create path
        names = [r["name"] for r in merged.resources]
        catalog = spec_catalog(document.raw, names, lines or [])
        bound = bind_resources(merged.resources)
        layers = (client_retries, merged.retries)
        resources = problems.take(
            validate_resources, bound, layers, document.name, catalog, default=None
        )
        source = problems.take(  # the client's own problems are reported either way
            validate_source,
            document,
            path,
            auth,
            client_retries,
            merged,
            resources or (),
            default=None,
        )
        problems.done()
        return source
    except Invalid as problem:
        raise problem.in_file(path) from None

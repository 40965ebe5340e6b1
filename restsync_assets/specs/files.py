"""Stage 1: find the spec files of a folder and read each one's YAML (a YAML error is one line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from restsync_assets.specs.errors import SpecError, SpecValidationError

SPEC_SUFFIXES = (".yaml", ".yml")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def spec_folder(directory: Path | str) -> Path:
    """`directory`, which must exist."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SpecValidationError(
            [
                SpecError(
                    directory,
                    "spec folder not found (set RESTSYNC_SPECS_DIR to a folder of *.yaml specs)",
                )
            ]
        )
    return directory


def spec_files(directory: Path | str) -> list[Path]:
    """The spec files of a folder, in name order (hidden files and `_`-prefixed ones skipped)."""
    return sorted(
        p
        for p in Path(directory).iterdir()
        if p.suffix in SPEC_SUFFIXES and not p.name.startswith((".", "_"))
    )


def read_yaml(path: Path) -> tuple[Any, list[int]]:
    """The YAML document of a spec file, and the 1-based line of each item of its
    `resources` list (for code references). One parse: the node tree keeps the marks."""
    try:
        return _document_and_lines(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpecError(path, f"invalid YAML{where}: {problem}") from None
    except OSError as error:
        raise SpecError(path, f"cannot read file: {error.strerror}") from None


def _document_and_lines(text: str) -> tuple[Any, list[int]]:
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        raw = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: list[int] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "resources" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    return raw, lines


def duplicate_names(names_and_paths: list[tuple[str, Path]]) -> list[SpecError]:
    """A spec whose name an earlier file already has (names are dataset and group names)."""
    errors, seen = [], {}
    for name, path in names_and_paths:
        if name in seen:
            errors.append(
                SpecError(path, f"'{name}' is already the name of {seen[name].name}", key="name")
            )
        seen.setdefault(name, path)
    return errors

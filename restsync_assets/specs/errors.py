"""Spec errors: one line each, naming the file, the resource and the key."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class SpecError(ValueError):
    """A problem in one spec file, reported as a single line."""

    def __init__(
        self, path: Path | str, message: str, *, resource: str | None = None, key: str = ""
    ):
        self.path = Path(path)
        self.resource = resource
        self.key = key
        self.message = message
        super().__init__(self.line())

    def line(self) -> str:
        where = [_display(self.path)]
        if self.resource is not None:
            where.append(f"resource '{self.resource}'")
        if self.key:
            where.append(self.key)
        return ": ".join([*where, self.message])


class SpecValidationError(ValueError):
    """Every problem found in a folder of specs; `str()` gives one line per problem."""

    def __init__(self, errors: Iterable[SpecError]):
        self.errors = list(errors)
        super().__init__("\n".join(e.line() for e in self.errors))


def allowed(values: Iterable[str]) -> str:
    return "allowed: " + ", ".join(sorted(values))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)

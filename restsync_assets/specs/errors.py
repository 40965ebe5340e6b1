"""Spec errors, shaped in one place: one line each, naming the file, the resource and the key.

The stages raise `Invalid` (what is wrong, where in the spec); `parse_spec` names the file
(`SpecError`). pydantic's and dlt's validation errors are translated here, into the same
one-line form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from restsync_assets.errors import RestsyncError
from restsync_assets.specs.model import (
    AUTH_MODELS,
    EXTENSION_RESOURCE_KEYS,
    ErrorHandler,
    OffsetPaginatorSpec,
    TemplatedCursorPaginatorSpec,
)

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")
#: models whose unknown-key error lists the keys they allow (the others name the key alone)
LISTS_ALLOWED_KEYS = (
    *AUTH_MODELS.values(),
    OffsetPaginatorSpec,
    TemplatedCursorPaginatorSpec,
    ErrorHandler,
)


class SpecError(RestsyncError, ValueError):
    """A problem in one spec file, reported as a single line."""

    kind = "config"

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

    def each(self) -> list[SpecError]:
        """The single problems this error stands for (itself)."""
        return [self]


class SpecErrors(SpecError):
    """Every problem of one spec file (validation goes on past the first), one line each;
    with a single problem it reads exactly as that problem's `SpecError`."""

    def __init__(self, errors: Iterable[SpecError]):
        self.errors = [single for error in errors for single in error.each()]
        first = self.errors[0]
        super().__init__(first.path, first.message, resource=first.resource, key=first.key)

    def line(self) -> str:
        return "\n".join(error.line() for error in self.errors)

    def each(self) -> list[SpecError]:
        return list(self.errors)


class SpecValidationError(RestsyncError, ValueError):
    """Every problem found in a folder of specs; `str()` gives one line per problem."""

    kind = "config"

    def __init__(self, errors: Iterable[SpecError]):
        self.errors = [single for error in errors for single in error.each()]
        super().__init__("\n".join(e.line() for e in self.errors))

    def lines(self, most: int | None = None) -> list[str]:
        """One line per problem; past `most` lines, the rest counted as `and N more`."""
        lines = [e.line() for e in self.errors]
        if most is not None and len(lines) > most:
            return [*lines[:most], f"and {len(lines) - most} more"]
        return lines


class Invalid(RestsyncError):
    """A problem found while reading a spec: its message, resource and key (no file yet)."""

    kind = "config"

    def __init__(self, message: str, *, resource: str | None = None, key: str = ""):
        super().__init__(message)
        self.message = message
        self.resource = resource
        self.key = key

    def in_file(self, path: Path) -> SpecError:
        return SpecErrors(
            SpecError(path, p.message, resource=p.resource, key=p.key) for p in self.each()
        )

    def each(self) -> list[Invalid]:
        """The single problems this one stands for (itself)."""
        return [self]


class Problems(Invalid):
    """Several problems of one spec, found in one pass, in the order they were found."""

    def __init__(self, found: Iterable[Invalid]):
        self.found = [single for problem in found for single in problem.each()]
        first = self.found[0]
        super().__init__(first.message, resource=first.resource, key=first.key)

    def each(self) -> list[Invalid]:
        return list(self.found)


class Collector:
    """Gathers the problems of independent validation steps, so one pass reports them all.

    `take(step, *args, default=...)` runs a step and returns its result, or `default` after
    recording its problem; `done()` raises every recorded problem at once.
    """

    def __init__(self) -> None:
        self.found: list[Invalid] = []

    def take(self, step: Callable[..., T], *args: Any, default: T, **kwargs: Any) -> T:
        try:
            return step(*args, **kwargs)
        except Invalid as problem:
            self.found.extend(problem.each())
            return default

    @property
    def clean(self) -> bool:
        return not self.found

    def done(self) -> None:
        if self.found:
            raise Problems(self.found)


def allowed(values: Iterable[str]) -> str:
    return "allowed: " + ", ".join(sorted(values))


def validated(model: type[Model], value: Any, key: str, resource: str | None = None) -> Model:
    """`value` validated as `model`; a pydantic error becomes one `Invalid` line at `key`."""
    with pydantic_errors(model, key, resource):
        return model.model_validate(value)


@contextmanager
def pydantic_errors(model: type[BaseModel], key: str, resource: str | None) -> Iterator[None]:
    """Turn the first pydantic error of `model` into `Invalid` at `key` plus its location."""
    try:
        yield
    except ValidationError as error:
        message, full_key = _pydantic_message(error, key, model)
        raise Invalid(message, resource=resource, key=full_key) from None


def _pydantic_message(error: ValidationError, base_key: str, model: type) -> tuple[str, str]:
    first = error.errors()[0]
    loc = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    key = ".".join(part for part in (base_key, loc) if part)
    kind = first["type"]
    if kind == "extra_forbidden":
        if model in LISTS_ALLOWED_KEYS:
            return f"unknown key; {allowed(model.model_fields)}", key
        return "unknown key", key
    if kind == "missing":
        return "is required", key
    return first["msg"].replace("Value error, ", ""), key


def dlt_problem(error: Exception, resource: str) -> Invalid:
    """The deepest, most specific line of dlt's nested `DictValidationException`."""
    while getattr(error, "nested_exceptions", None):
        error = max(error.nested_exceptions, key=lambda e: len(getattr(e, "path", "")))
    path = re.sub(
        r"^resources\[\d+\]\.?", "", getattr(error, "path", ".").strip("./").replace("/", ".")
    )
    field = getattr(error, "field", "") or ""
    msg = getattr(error, "msg", str(error)).splitlines()[0]
    unexpected = re.match(r"received unexpected fields `\{'([^']+)'", msg)
    if unexpected:
        from dlt.sources.rest_api.typing import EndpointResource

        expected = getattr(error, "expected_type", None) or EndpointResource
        keys = set(getattr(expected, "__required_keys__", ())) | set(
            getattr(expected, "__optional_keys__", ())
        )
        field = unexpected.group(1)
        msg = f"unknown key; {allowed(keys | set(EXTENSION_RESOURCE_KEYS))}"
    key = ".".join(p for p in (path, field) if p)
    return Invalid(f"{msg} (dlt rest_api)", resource=resource, key=key)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def mapping(value: Any, key: str, *, required: bool = False, resource: str | None = None) -> dict:
    """`value`, which must be a mapping (absent counts as empty unless `required`)."""
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise Invalid("must be a mapping", resource=resource, key=key)
    return value

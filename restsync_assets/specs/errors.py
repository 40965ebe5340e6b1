"""Spec errors, shaped in one place: one line each, naming the file, the resource and the key.

The stages raise `Invalid` (what is wrong, where in the spec); `parse_spec` names the file
(`SpecError`). pydantic's and dlt's validation errors are translated here, into the same
one-line form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from restsync_assets.specs.model import (
    AUTH_MODELS,
    EXTENSION_RESOURCE_KEYS,
    ErrorHandler,
    OffsetPaginatorSpec,
    TemplatedCursorPaginatorSpec,
)

Model = TypeVar("Model", bound=BaseModel)
#: models whose unknown-key error lists the keys they allow (the others name the key alone)
LISTS_ALLOWED_KEYS = (
    *AUTH_MODELS.values(),
    OffsetPaginatorSpec,
    TemplatedCursorPaginatorSpec,
    ErrorHandler,
)


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


class Invalid(Exception):
    """A problem found while reading a spec: its message, resource and key (no file yet)."""

    def __init__(self, message: str, *, resource: str | None = None, key: str = ""):
        super().__init__(message)
        self.message = message
        self.resource = resource
        self.key = key

    def in_file(self, path: Path) -> SpecError:
        return SpecError(path, self.message, resource=self.resource, key=self.key)


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

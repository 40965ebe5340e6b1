"""The base of every spec model (frozen, an unknown key is an error) and its union helper."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Union, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Tag


class StrictModel(BaseModel):
    """A validated part of a spec: immutable, and it forbids keys it does not define."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def literal_values(model: type[BaseModel], field: str) -> tuple[Any, ...]:
    """The values a `Literal` field of `model` allows, in declaration order."""
    return get_args(model.model_fields[field].annotation)


def tagged_union(models: Mapping[str, type[BaseModel]], tag_of: Callable[[Any], str | None]) -> Any:
    """A discriminated union of `models` (tag -> model); `tag_of` reads the tag of a mapping
    or a model, so pydantic validates a value as exactly one model."""
    members = tuple(Annotated[model, Tag(tag)] for tag, model in models.items())
    return Annotated[Union[members], Discriminator(tag_of)]  # noqa: UP007 (built at run time)

"""One registry per extension kind, each covering every model of its kind: paginators and
auth (`runtime.factories`), transforms (`runtime.transforms`), response formats
(`runtime.response_formats`); dlt's paginator configs pass through. (Check kinds:
`test_asset_graph.test_every_check_kind_names_its_run_time_evaluator`.)"""

from __future__ import annotations

import typing

import pytest

from restsync_assets.runtime.factories import AUTH_FACTORIES, PAGINATOR_FACTORIES, build_paginator
from restsync_assets.runtime.http.paginators import (
    OffsetPaginatorWithoutTotal,
    TemplatedCursorPaginator,
)
from restsync_assets.runtime.response_formats import FORMAT_READERS
from restsync_assets.runtime.transforms import TRANSFORM_STEPS
from restsync_assets.specs.model import (
    AUTH_MODELS,
    RESPONSE_FORMATS,
    TRANSFORM_KEYS,
    AuthSpec,
    OffsetPaginatorSpec,
    PaginatorSpec,
    TemplatedCursorPaginatorSpec,
    TransformsSpec,
)
from restsync_assets.specs.model.async_job import DOWNLOAD_FORMATS


def test_every_auth_model_has_a_factory() -> None:
    """An auth type the spec accepts but the run cannot build would fail only at run time."""
    assert set(AUTH_FACTORIES) == set(AUTH_MODELS.values())


def union_members(union: typing.Any) -> set[type]:
    """The model classes of a spec union (`tagged_union`: Annotated[Union[Annotated[model,
    Tag], ...], Discriminator])."""
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(member)[0] for member in members}


#: Each extension kind: the models (or values) the spec accepts, and the kind's registry.
REGISTRIES = {
    "auth": (union_members(AuthSpec), set(AUTH_FACTORIES)),
    "paginator": (union_members(PaginatorSpec), set(PAGINATOR_FACTORIES)),
    "transform": (set(TransformsSpec.model_fields), set(TRANSFORM_STEPS)),
    "response format": (set(RESPONSE_FORMATS) | set(DOWNLOAD_FORMATS), set(FORMAT_READERS)),
}


@pytest.mark.parametrize("kind", REGISTRIES)
def test_each_registry_covers_every_model_of_its_kind(kind) -> None:
    """Every model of a kind's union (every key of `transforms`, every `response_format`)
    has exactly one entry in that kind's one registry: a model added without its entry, or an
    entry left behind by a removed model, fails here rather than in a run."""
    models, registered = REGISTRIES[kind]
    assert models, kind
    assert registered == models


def test_transform_steps_apply_in_the_documented_order() -> None:
    """`record_filter`, `add_fields`, `remove_fields`, `rename_fields`: the registry's order is
    the order the steps run."""
    assert tuple(TRANSFORM_STEPS) == TRANSFORM_KEYS


@pytest.mark.parametrize(
    ("model", "built"),
    [
        (
            TemplatedCursorPaginatorSpec(type="cursor", cursor_value="{{ response.next }}"),
            TemplatedCursorPaginator,
        ),
        (OffsetPaginatorSpec(type="offset", limit=10), OffsetPaginatorWithoutTotal),
    ],
    ids=["cursor", "offset"],
)
def test_restsync_paginator_models_become_their_paginators(model, built) -> None:
    assert type(model) in PAGINATOR_FACTORIES
    assert type(build_paginator(model, "items")) is built


@pytest.mark.parametrize("config", ["single_page", {"type": "page_number", "total_path": None}])
def test_dlt_paginator_configs_pass_through_unchanged(config) -> None:
    assert build_paginator(config, "items") is config


#: every field of a paginator model set to a value other than its default
NON_DEFAULT = [
    OffsetPaginatorSpec(
        type="offset",
        limit=7,
        offset=3,
        offset_param="skip",
        limit_param="top",
        total_path="meta.count",
        maximum_offset=70,
        has_more_path="meta.more",
        stop_after_empty_page=False,
    ),
    TemplatedCursorPaginatorSpec(
        type="cursor",
        cursor_value="{{ response.next }}",
        stop_condition="{{ not response.next }}",
        cursor_body_path="variables.after",
    ),
]


@pytest.mark.parametrize("model", NON_DEFAULT, ids=["offset", "cursor"])
def test_every_field_of_a_paginator_model_reaches_the_paginator(model) -> None:
    """The factories build a paginator from the whole model, so no field is dropped (the
    offset factory copied fields by hand and left `stop_after_empty_page` at true)."""
    built = build_paginator(model, "items")
    seen = {
        "stop_after_empty_page": getattr(built, "stop_after_empty_page", None),
        "offset_param": getattr(built, "param_name", None),
        "maximum_offset": getattr(built, "maximum_value", None),
        "offset": getattr(built, "initial_value", None),
        "cursor_value": getattr(getattr(built, "cursor_template", None), "source", None),
        "stop_condition": getattr(getattr(built, "stop_template", None), "source", None),
    }
    for field, value in model.model_dump(exclude={"type"}).items():
        got = seen[field] if field in seen else getattr(built, field)
        if field.endswith("_path") and got is not None and not isinstance(got, str):
            got = str(got)  # dlt compiles its JSONPaths
        assert got == value, (field, got, value)

"""Every paginator and auth model of the spec has a run-time factory; dlt's configs pass through."""

from __future__ import annotations

import pytest

from restsync_assets.runtime.factories import AUTH_FACTORIES, PAGINATOR_FACTORIES, build_paginator
from restsync_assets.runtime.http.paginators import (
    OffsetPaginatorWithoutTotal,
    TemplatedCursorPaginator,
)
from restsync_assets.specs.model import (
    AUTH_MODELS,
    OffsetPaginatorSpec,
    TemplatedCursorPaginatorSpec,
)


def test_every_auth_model_has_a_factory() -> None:
    """An auth type the spec accepts but the run cannot build would fail only at run time."""
    assert set(AUTH_FACTORIES) == set(AUTH_MODELS.values())


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

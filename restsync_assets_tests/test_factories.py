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

"""What restsync hands to dlt, checked by dlt's own `EndpointResource` validator."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import dlt_problem
from restsync_assets.specs.model import BaseAuthSpec, DltPaginatorSpec, PaginatorSpec


def check_with_dlt(
    name: str,
    endpoint: dict,
    paginator: PaginatorSpec | None,
    primary_key: Any,
    write_disposition: Any,
    hints: dict,
) -> None:
    """dlt's `validate_dict` on the resource as dlt will see it (restsync's own paginators and
    auth models are checked by restsync and left out)."""
    from dlt.common.exceptions import DictValidationException
    from dlt.common.validation import validate_dict
    from dlt.sources.rest_api.typing import EndpointResource

    candidate = {
        **hints,
        "name": name,
        "endpoint": dict(endpoint),
        "write_disposition": write_disposition,
    }
    if primary_key is not None:
        candidate["primary_key"] = (
            primary_key if isinstance(primary_key, str) else list(tuple(primary_key))
        )
    if isinstance(paginator, DltPaginatorSpec):
        candidate["endpoint"]["paginator"] = paginator.config
    if isinstance(candidate["endpoint"].get("auth"), BaseAuthSpec):
        candidate["endpoint"].pop("auth")
    try:
        validate_dict(EndpointResource, candidate, path=".")
    except DictValidationException as error:
        raise dlt_problem(error, name) from None

"""At run time only: a `SourceSpec` plus credentials becomes a dlt `rest_api_source`.

Nothing here runs when definitions load. Each run builds a fresh source (dagster-dlt mutates
the source's schema while running, dagster issue 34052). Paginator and auth objects come from
`factories`, the pipeline from `destination`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dlt.extract.source import DltSource
from dlt.sources.rest_api import rest_api_source

from restsync_assets import settings
from restsync_assets.partitions import Window
from restsync_assets.resources import Credentials
from restsync_assets.runtime import destination, soft_deletes
from restsync_assets.runtime.arrow_pages import DLT_COLUMNS, ArrowPages
from restsync_assets.runtime.child_cursors import with_per_parent_cursors
from restsync_assets.runtime.factories import build_auth, build_paginator
from restsync_assets.runtime.fan_out import (
    dlt_params,
    first_value_params,
    with_fanned_children,
    with_for_each,
)
from restsync_assets.runtime.http.rate_limit import limiter_for
from restsync_assets.runtime.http.renewable import RenewableAuth
from restsync_assets.runtime.http.response_rules import ResponseRules
from restsync_assets.runtime.http.retry import RetryPolicy
from restsync_assets.runtime.http.session import RestsyncSession, Route
from restsync_assets.runtime.quarantine import add_quarantine, drop_rejected_in
from restsync_assets.runtime.read_ahead import DEPTH as READ_AHEAD_DEPTH
from restsync_assets.runtime.read_ahead import with_read_ahead
from restsync_assets.runtime.request_values import run_time, with_request_values
from restsync_assets.runtime.response_formats import body_reader
from restsync_assets.runtime.transforms import RecordTransforms, TransformStep
from restsync_assets.specs.model import PartitionsSpec, ResourceSpec, SourceSpec
from restsync_assets.specs.selectors import compile_jsonpath


def build_source(
    spec: SourceSpec,
    credentials: Credentials,
    resources: Sequence[str] | None = None,
    window: Window | None = None,
) -> DltSource:
    """The dlt `rest_api_source` for `spec`, with restsync's auth, paginators and retry session.

    `resources` limits the source to those resources (a partition group); `window` is the time
    window of a partitioned run, written into each partitioned resource's request.
    """
    transforms = record_transforms(spec)
    written = source_config(spec, credentials, window)
    config = with_per_parent_cursors(spec, written, transforms)
    config = with_fanned_children(spec, with_for_each(spec, config, written), written)
    source = rest_api_source(config, name=spec.name)
    add_transform_steps(spec, source, transforms)
    add_quarantines(spec, source)
    if settings.arrow_pages() and destination.takes_parquet():
        add_arrow_pages(spec, source)
    if settings.read_ahead():
        add_read_ahead(spec, source)
    return source.with_resources(*resources) if resources is not None else source


def record_transforms(spec: SourceSpec) -> dict[str, RecordTransforms]:
    """Each resource's record transforms, compiled (once per run)."""
    return {r.name: RecordTransforms(r.transforms, r.name) for r in spec.resources if r.transforms}


def add_transform_steps(
    spec: SourceSpec, source: DltSource, transforms: dict[str, RecordTransforms]
) -> None:
    """The transform step of each top-level resource (a child's transforms are applied as its
    pages are read, see `transforms.transformed_child`)."""
    for resource in spec.resources:
        if resource.parent is None and resource.name in transforms:
            source.resources[resource.name].add_step(TransformStep(transforms[resource.name]))


def add_quarantines(spec: SourceSpec, source: DltSource) -> None:
    """`on_invalid: quarantine`: each such resource sets its bad rows aside (see `quarantine`),
    and its children never see them."""
    for resource in spec.resources:
        if resource.on_invalid != "quarantine":
            continue
        add_quarantine(source.resources[resource.name], resource)
        for child in spec.children(resource.name):
            drop_rejected_in(source.resources[child.name])


def add_read_ahead(spec: SourceSpec, source: DltSource) -> None:
    """Every top-level resource fetches its next page while dlt handles the current one (see
    `read_ahead`). Not with `client.concurrency` > 1: dlt's worker pool then drives the
    resources (`parallelized`), one `next()` at a time."""
    if spec.concurrency > 1:
        return
    for resource in spec.resources:
        if resource.parent is None:
            pipe = source.resources[resource.name]._pipe
            depth = 1 if stops_early(resource) else READ_AHEAD_DEPTH
            pipe.replace_gen(with_read_ahead(pipe.gen, resource.name, depth))


def stops_early(resource: ResourceSpec) -> bool:
    """Whether dlt may end the resource's scan before its last page: an incremental with
    `row_order` stops at the first row past its range. Such a resource reads one page ahead, not
    `read_ahead.DEPTH`, so the stop costs the API at most one request more."""
    incremental = resource.endpoint.get("incremental")
    return isinstance(incremental, dict) and incremental.get("row_order") is not None


def add_arrow_pages(spec: SourceSpec, source: DltSource) -> None:
    """Send flat pages of every leaf resource to dlt as Arrow tables (see `arrow_pages`)."""
    for resource in spec.resources:
        if spec.children(resource.name):
            continue  # dlt transformers read the parent's rows as dicts
        if resource.merge_strategy == "scd2":
            continue  # dlt's row path hashes each row into `_dlt_id`: scd2 compares those
        declared = {c.name: c.data_type for c in resource.columns}
        required = {
            *resource.primary_key_columns,
            *(c.name for c in resource.columns if not c.nullable),
        }
        arrow_resource = source.resources[resource.name]
        arrow_resource.add_step(ArrowPages(declared, required))
        # the hints dlt's normalizer gives the columns `ArrowPages` now adds (`unique`, `row_key`)
        arrow_resource.apply_hints(columns=DLT_COLUMNS)


def source_config(spec: SourceSpec, credentials: Credentials, window: Window | None = None) -> dict:
    """The `RESTAPIConfig` dict handed to dlt: restsync's objects in dlt's config shape."""
    base_url = (credentials.base_url or spec.base_url).rstrip("/")
    auth = build_auth(spec, credentials)
    session = RestsyncSession(
        source=spec.name,
        base_url=base_url,
        routes=[
            Route(
                r.name,
                r.endpoint["path"],
                RetryPolicy.from_handler(r.error_handler),
                read_body=body_reader(r),
                rules=ResponseRules(r.error_handler.response_rules) or None,
            )
            for r in spec.resources
        ],
        default_policy=RetryPolicy(),
        auth=auth if isinstance(auth, RenewableAuth) else None,
        secrets=lambda: [
            *credentials.secrets(),
            *(auth.secrets() if isinstance(auth, RenewableAuth) else []),
        ],
        rate_limiter=limiter_for(spec),
    )
    # `client.rate_limit` is restsync's (dlt's client takes no such key): it lives in the
    # session, and the client dict dlt gets is built from the model, never the YAML
    client: dict[str, Any] = {"base_url": base_url, "session": session}
    if auth is not None:
        client["auth"] = auth
    if spec.client_headers:
        client["headers"] = with_secrets(spec.client_headers, credentials)
    if spec.client_paginator is not None:
        client["paginator"] = build_paginator(spec.client_paginator, "client")
    now = run_time()
    resources = [resource_config(r, window, now) for r in spec.resources]
    for resource in resources:
        endpoint = resource["endpoint"]
        for where in ("headers", "params"):
            if endpoint.get(where):
                endpoint[where] = with_secrets(endpoint[where], credentials)
        if endpoint.get("auth") is not None:
            endpoint["auth"] = build_auth(spec, credentials, endpoint["auth"])
    if spec.concurrency > 1:  # dlt then fetches each parent's children on a worker thread
        for resource in resources:
            resource.setdefault("parallelized", True)
    return {"client": client, "resources": resources}


def with_secrets(values: dict[str, Any], credentials: Credentials) -> dict[str, Any]:
    """`values` with each `{secret: <name>}` replaced by that secret's value."""
    return {
        k: credentials.secret(v["secret"]) if isinstance(v, dict) and set(v) == {"secret"} else v
        for k, v in values.items()
    }


def resource_config(
    resource: ResourceSpec, window: Window | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The dlt `EndpointResource` dict of one resource; relative times (`{type: now}`) count
    from `now` (the run's start)."""
    endpoint = with_request_values(dict(resource.endpoint), now or run_time())
    if resource.for_each is not None:
        endpoint["params"] = first_value_params(resource, dict(endpoint.get("params") or {}))
    if resource.parent_keys is not None:
        endpoint["params"] = dlt_params(resource, dict(endpoint["params"]))
    if resource.data_selector is not None:
        # compiled once: dlt would parse the JSONPath string again on every page (~40 ms each)
        endpoint["data_selector"] = compile_jsonpath(resource.data_selector)
    if window is not None and resource.partitions is not None and resource.parent is None:
        endpoint.update(windowed_endpoint(endpoint, resource.partitions, window))
    if resource.paginator is not None:
        endpoint["paginator"] = build_paginator(resource.paginator, resource.name)
    config: dict[str, Any] = {**resource.hints, "name": resource.name, "endpoint": endpoint}
    config["write_disposition"] = resource.write_disposition
    if resource.primary_key is not None:
        config["primary_key"] = (
            resource.primary_key
            if isinstance(resource.primary_key, str)
            else list(resource.primary_key)
        )
    if resource.include_from_parent:
        config["include_from_parent"] = list(resource.include_from_parent)
    if resource.columns or resource.deletes == "soft":
        columns = dict(config.get("columns") or {})
        for column in resource.columns:
            columns[column.name] = {
                **columns.get(column.name, {}),
                "data_type": column.data_type,
                "nullable": column.nullable,
            }
        if resource.deletes == "soft":  # created by dlt; every row a merge writes has it null
            columns[soft_deletes.DELETED_AT] = soft_deletes.COLUMN
        config["columns"] = columns
    return config


def windowed_endpoint(
    endpoint: dict[str, Any], partitions: PartitionsSpec, window: Window
) -> dict[str, Any]:
    """Request params (and dlt's incremental range) for exactly one partition window.

    With a `cursor_path`, dlt's incremental gets the window as `initial_value`/`end_value`:
    dlt then filters rows to `[start, end)` and, because the range is closed, keeps no
    incremental state, so partitions (and concurrent partition runs) never move a shared
    cursor. Without one, the window only fills `start_param`/`end_param`.
    """
    start, end = window.bounds(partitions)
    if partitions.cursor_path:
        incremental = {
            "cursor_path": partitions.cursor_path,
            "initial_value": start,
            "end_value": end,
            "range_start": "closed",
            "range_end": "open",
        }
        if partitions.start_param:
            incremental["start_param"] = partitions.start_param
        if partitions.end_param:
            incremental["end_param"] = partitions.end_param
        return {"incremental": incremental}
    params = dict(endpoint.get("params") or {})
    if partitions.start_param:
        params[partitions.start_param] = start
    if partitions.end_param:
        params[partitions.end_param] = end
    return {"params": params}

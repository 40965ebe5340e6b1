"""At run time only: a `SourceSpec` plus credentials becomes a dlt source and pipeline.

Nothing here runs when definitions load. Each run builds a fresh source (dagster-dlt mutates
the source's schema while running, dagster issue 34052) and a fresh pipeline object.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dlt
from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline
from dlt.sources.rest_api import rest_api_source

from restsync_assets import settings
from restsync_assets.partitions import Window
from restsync_assets.resources import Credentials
from restsync_assets.runtime import warehouse
from restsync_assets.runtime.arrow_pages import ArrowPages
from restsync_assets.runtime.child_cursors import with_per_parent_cursors
from restsync_assets.runtime.http.dlt_auth import build_dlt_auth
from restsync_assets.runtime.http.oauth import OAuth2Auth, _validate_token_url
from restsync_assets.runtime.http.paginators import (
    OffsetPaginatorWithoutTotal,
    TemplatedCursorPaginator,
)
from restsync_assets.runtime.http.session import RestsyncSession, RetryPolicy, Route
from restsync_assets.specs.model import (
    AuthSpec,
    DltPaginatorSpec,
    ErrorHandler,
    OAuth2AuthSpec,
    OAuth2ClientCredentialsSpec,
    OffsetPaginatorSpec,
    PartitionsSpec,
    ResourceSpec,
    SecretRef,
    SourceSpec,
    TemplatedCursorPaginatorSpec,
)
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
    config = with_per_parent_cursors(spec, source_config(spec, credentials, window))
    source = rest_api_source(config, name=spec.name)
    if settings.arrow_pages() and warehouse.takes_parquet():
        add_arrow_pages(spec, source)
    return source.with_resources(*resources) if resources is not None else source


def add_arrow_pages(spec: SourceSpec, source: DltSource) -> None:
    """Send flat pages of every leaf resource to dlt as Arrow tables (see `arrow_pages`)."""
    for resource in spec.resources:
        if spec.children(resource.name):
            continue  # dlt transformers read the parent's rows as dicts
        declared = {c.name: c.data_type for c in resource.columns}
        required = {
            *resource.primary_key_columns,
            *(c.name for c in resource.columns if not c.nullable),
        }
        source.resources[resource.name].add_step(ArrowPages(declared, required))


def source_config(spec: SourceSpec, credentials: Credentials, window: Window | None = None) -> dict:
    """The `RESTAPIConfig` dict handed to dlt: restsync's objects in dlt's config shape."""
    base_url = (credentials.base_url or spec.base_url).rstrip("/")
    auth = build_auth(spec, credentials)
    session = RestsyncSession(
        source=spec.name,
        base_url=base_url,
        routes=[
            Route(r.name, r.endpoint["path"], retry_policy(r.error_handler)) for r in spec.resources
        ],
        default_policy=retry_policy(ErrorHandler()),
        auth=auth if isinstance(auth, OAuth2Auth) else None,
        secrets=lambda: [
            *credentials.secrets(),
            *(auth.secrets() if isinstance(auth, OAuth2Auth) else []),
        ],
    )
    client: dict[str, Any] = {"base_url": base_url, "session": session}
    if auth is not None:
        client["auth"] = auth
    if spec.client_headers:
        client["headers"] = with_secrets(spec.client_headers, credentials)
    if spec.client_paginator is not None:
        client["paginator"] = build_paginator(spec.client_paginator, "client")
    resources = [resource_config(r, window) for r in spec.resources]
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


def build_auth(spec: SourceSpec, credentials: Credentials, auth: AuthSpec | None = None) -> Any:
    """The source's auth (or an endpoint's `auth`), with its secrets resolved now.

    restsync's `oauth2`: one token shared by every resource. With a refresh token, a token
    the server rotates is stored at once in `<pipelines dir>/<spec>.refresh_token` (0600)
    and preferred over the configured one on the next run while it descends from it (see
    `restsync_assets.runtime.token_store`). Token requests are retried on 429/5xx, connection
    errors and timeouts with the `max_retries`, `backoff_factor`, `max_retry_delay` and
    `timeout` of the client-level `error_handler`.

    dlt's types (`bearer`, `api_key`, `http_basic`, `oauth2_client_credentials`) become
    dlt's auth objects built with the secrets read from `<NAME>_<SECRET>` (or
    `.dlt/secrets.toml`), so dlt never resolves them from its own config. A missing secret
    raises `MissingCredentialError` naming the env var. Every secret is registered with
    `restsync_assets.runtime.http.masking`.
    """
    auth = spec.auth if auth is None else auth
    if auth is None:
        return None
    if isinstance(auth, OAuth2AuthSpec):
        return _oauth2(spec, credentials, auth)
    if isinstance(auth, OAuth2ClientCredentialsSpec):
        _validate_token_url(credentials.token_url or auth.access_token_url, spec.name)
    return build_dlt_auth(auth, credentials.secret, spec.name, token_url=credentials.token_url)


def _oauth2(spec: SourceSpec, credentials: Credentials, auth: OAuth2AuthSpec) -> OAuth2Auth:
    from restsync_assets.runtime.token_store import RefreshTokenStore

    def named(ref: SecretRef | None, default: str) -> str:
        return credentials.secret(ref.secret) if ref else credentials.require(default)

    client_id = named(auth.client_id, "client_id")
    client_secret = named(auth.client_secret, "client_secret")
    configured = (
        credentials.secret(auth.refresh_token.secret)
        if auth.refresh_token
        else credentials.refresh_token
    )
    store = RefreshTokenStore(spec.name, configured) if configured else None
    handler = spec.error_handler
    return OAuth2Auth(
        token_url=credentials.token_url or auth.token_url,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=(store.load() or configured) if store else None,
        refresh_token_candidates=store.candidates if store else None,
        on_refresh_token_rotated=store.save if store else None,
        scopes=list(auth.scopes) or None,
        source=spec.name,
        timeout=handler.timeout,
        max_retries=handler.max_retries,
        backoff_factor=handler.backoff_factor,
        max_retry_delay=handler.max_retry_delay,
    )


def retry_policy(handler: ErrorHandler) -> RetryPolicy:
    return RetryPolicy(
        retry_on_status_codes=tuple(handler.retry_on_status_codes),
        max_retries=handler.max_retries,
        backoff_factor=handler.backoff_factor,
        max_retry_delay=handler.max_retry_delay,
        timeout=handler.timeout,
    )


def build_paginator(paginator: Any, resource: str) -> Any:
    """A paginator instance for restsync's extensions; dlt's own configs pass through."""
    if isinstance(paginator, TemplatedCursorPaginatorSpec):
        return TemplatedCursorPaginator(
            cursor_value=paginator.cursor_value,
            stop_condition=paginator.stop_condition,
            cursor_param=paginator.cursor_param,
            resource=resource,
        )
    if isinstance(paginator, OffsetPaginatorSpec):
        return OffsetPaginatorWithoutTotal(
            limit=paginator.limit,
            offset=paginator.offset,
            offset_param=paginator.offset_param,
            limit_param=paginator.limit_param,
            total_path=paginator.total_path,
            maximum_offset=paginator.maximum_offset,
            has_more_path=paginator.has_more_path,
        )
    if isinstance(paginator, DltPaginatorSpec):
        return paginator.config  # dlt's own, as written: dlt builds it
    return paginator


def resource_config(resource: ResourceSpec, window: Window | None = None) -> dict[str, Any]:
    """The dlt `EndpointResource` dict of one resource."""
    endpoint = dict(resource.endpoint)
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
    if resource.columns:
        columns = dict(config.get("columns") or {})
        for column in resource.columns:
            columns[column.name] = {
                **columns.get(column.name, {}),
                "data_type": column.data_type,
                "nullable": column.nullable,
            }
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


def pipeline_name(spec: SourceSpec) -> str:
    return f"restsync_{spec.name}"


def build_pipeline(spec: SourceSpec, progress: Any = None, destination: Any = None) -> Pipeline:
    """A dlt pipeline loading `spec` into its dataset (= spec name) of the configured destination.

    `progress` is a dlt collector (restsync passes a `LogCollector` writing to the run's log);
    `destination` defaults to `warehouse.destination()` (readers pass a read-only one).
    """
    if destination is None:
        destination = warehouse.destination()
    name = pipeline_name(spec)
    # Arrow pages get dlt's `_dlt_load_id`/`_dlt_id` columns like rows do (pipeline-scoped keys)
    os.environ[f"{name.upper()}__NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"] = "true"
    os.environ[f"{name.upper()}__NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID"] = "true"
    if spec.concurrency > 1:
        # dlt reads extract workers from config; this key applies to this pipeline only
        os.environ[f"{name.upper()}__EXTRACT__WORKERS"] = str(spec.concurrency)
        os.environ[f"{name.upper()}__EXTRACT__MAX_PARALLEL_ITEMS"] = str(max(20, spec.concurrency))
    return dlt.pipeline(
        pipeline_name=name,
        destination=destination,
        dataset_name=spec.name,
        pipelines_dir=str(settings.pipelines_dir()),
        progress=progress,
    )

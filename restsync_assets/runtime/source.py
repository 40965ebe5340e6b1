"""At run time only: a `SourceSpec` plus credentials becomes a dlt `rest_api_source`.

Nothing here runs when definitions load. Each run builds a fresh source (dagster-dlt mutates
the source's schema while running, dagster issue 34052). Paginator and auth objects come from
`factories`, the pipeline from `destination`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dlt.extract.source import DltSource
from dlt.sources.rest_api import rest_api_source

from restsync_assets import settings
from restsync_assets.resources import Credentials
from restsync_assets.runtime import async_jobs, destination, soft_deletes
from restsync_assets.runtime.arrow_pages import DLT_COLUMNS, ArrowPages
from restsync_assets.runtime.bad_values import bad_values_step
from restsync_assets.runtime.child_batches import with_batched_children
from restsync_assets.runtime.child_cursors import with_per_parent_cursors
from restsync_assets.runtime.factories import build_auth, build_paginator
from restsync_assets.runtime.fan_out import (
    dlt_params,
    first_value_params,
    with_fanned_children,
    with_for_each,
)
from restsync_assets.runtime.http.concurrency import AdaptiveConcurrency
from restsync_assets.runtime.http.page_series import series_of
from restsync_assets.runtime.http.pages import page_check
from restsync_assets.runtime.http.rate_limit import limiter_for
from restsync_assets.runtime.http.renewable import RenewableAuth
from restsync_assets.runtime.http.response_rules import ResponseRules
from restsync_assets.runtime.http.retry import RetryPolicy
from restsync_assets.runtime.http.session import (
    RequestCounts,
    ResourceAuth,
    RestsyncSession,
    Route,
)
from restsync_assets.runtime.known_parents import scanned_in_full, without_incremental
from restsync_assets.runtime.quarantine import Quarantine, add_quarantine, drop_rejected_in
from restsync_assets.runtime.read_ahead import DEPTH as READ_AHEAD_DEPTH
from restsync_assets.runtime.read_ahead import with_read_ahead
from restsync_assets.runtime.request_values import run_time, with_request_values
from restsync_assets.runtime.response_formats import body_reader
from restsync_assets.runtime.step_windows import StepWindow, stepping, windowed_incremental
from restsync_assets.runtime.transforms import RecordTransforms, TransformStep
from restsync_assets.runtime.window import Window
from restsync_assets.specs.model import PartitionsSpec, ResourceSpec, SourceSpec
from restsync_assets.specs.selectors import compile_jsonpath


def build_source(
    spec: SourceSpec,
    credentials: Credentials,
    resources: Sequence[str] | None = None,
    window: Window | None = None,
    selected: Sequence[str] | None = None,
    counts: RequestCounts | None = None,
    steps: Mapping[str, StepWindow | None] | None = None,
    now: datetime | None = None,
) -> DltSource:
    """The dlt `rest_api_source` for `spec`, with restsync's auth, paginators and retry session.

    `resources` limits the source to those resources (a partition group); `window` is the time
    window of a partitioned run, written into each partitioned resource's request. `selected`:
    the resources whose assets the run materializes (None: all); an incremental parent that
    only drives a selected child scans in full (`known_parents.scanned_in_full`). `counts`
    receives the requests and retries of each resource. `steps`: the window each stepped
    resource asks in this load (None: nothing; see `step_windows`); `now`: the run's start.
    """
    transforms = record_transforms(spec)
    scanned = scanned_in_full(spec, selected)
    config = source_config(spec, credentials, window, counts, steps, now)
    session = config["client"]["session"]
    for resource in config["resources"]:
        if resource["name"] in scanned:
            resource["endpoint"] = without_incremental(resource["endpoint"])
    # `endpoint.async_job`: such resources are built by `async_jobs`, not by dlt's rest_api
    config, job_configs = async_jobs.split_config(spec, config)
    written, rest_api_spec = config, async_jobs.without_jobs(spec)
    config = with_per_parent_cursors(rest_api_spec, config, transforms, scanned)
    config = with_for_each(rest_api_spec, config, written)
    config = with_fanned_children(rest_api_spec, config, written)
    config = with_batched_children(rest_api_spec, config, written, own_children(spec, transforms))
    source = rest_api_source(config, name=spec.name)
    async_jobs.add_job_resources(spec, source, job_configs, config["client"], transforms, window)
    add_transform_steps(spec, source, transforms)
    add_bad_value_guards(spec, source, add_quarantines(spec, source))
    if settings.arrow_pages() and destination.takes_parquet():
        add_arrow_pages(spec, source)
    if settings.read_ahead():
        add_read_ahead(spec, source)
    add_step_windows(source, steps)
    chosen = source.with_resources(*resources) if resources is not None else source
    chosen.restsync_session = session  # see `finish`
    return chosen


def add_step_windows(source: DltSource, steps: Mapping[str, StepWindow | None] | None) -> None:
    """Each stepped resource of `source` in `steps` writes its window's resume point into its
    state, then asks the window (None: asks nothing; `step_windows.stepping`)."""
    for name, step_window in (steps or {}).items():
        pipe = source.resources[name]._pipe
        pipe.replace_gen(stepping(pipe.gen, name, step_window))


def own_children(spec: SourceSpec, transforms: dict[str, RecordTransforms]) -> frozenset[str]:
    """The children restsync builds a transformer for (per-parent cursors, transforms,
    `batch_size`/`explode`); the others are dlt's `rest_api` children."""
    return frozenset(
        r.name
        for r in spec.resources
        if r.parent is not None
        and (r.cursor is not None or r.name in transforms or r.parent_keys is not None)
    )


def finish(source: DltSource) -> str | None:
    """After a run of `source`: drop the pages fetched ahead that nobody took; with
    `client.concurrency: auto`, the line stating the level it settled on (for the run log)."""
    session = getattr(source, "restsync_session", None)
    if not isinstance(session, RestsyncSession):
        return None
    session.close()
    return session.adaptive.summary() if session.adaptive is not None else None


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


def add_quarantines(spec: SourceSpec, source: DltSource) -> dict[str, Quarantine]:
    """`on_invalid: quarantine`: each such resource sets its bad rows aside (see `quarantine`),
    and its children never see them. Returns each such resource's `Quarantine` step."""
    steps = {}
    for resource in spec.resources:
        if resource.on_invalid != "quarantine":
            continue
        steps[resource.name] = add_quarantine(source.resources[resource.name], resource)
        for child in spec.children(resource.name):
            drop_rejected_in(source.resources[child.name])
    return steps


def add_bad_value_guards(
    spec: SourceSpec, source: DltSource, quarantines: dict[str, Quarantine]
) -> None:
    """Every resource strips NUL from its strings and stops at (or, quarantined, sets aside)
    rows no warehouse can load (see `bad_values`)."""
    for resource in spec.resources:
        step = bad_values_step(resource, spec.path, quarantines.get(resource.name))
        source.resources[resource.name].add_step(step)


def add_read_ahead(spec: SourceSpec, source: DltSource) -> None:
    """Every top-level resource fetches its next page while dlt handles the current one (see
    `read_ahead`), on a thread of its own, whatever `client.concurrency`: the pages already
    fetched (ahead, `client.concurrency` at once: `runtime.http.page_series`) then reach dlt
    joined into items of up to `read_ahead.BATCH_ROWS` rows, so dlt's fixed cost per item is
    paid per batch, not per page. At `client.concurrency` > 1 parents and children stay on
    dlt's worker pool (`parallelized`, see `reads_ahead_at_concurrency`)."""
    for resource in spec.resources:
        if resource.parent is None and resource.async_job is None:
            if spec.concurrency > 1 and not reads_ahead_at_concurrency(spec, resource):
                continue  # a parent: dlt's worker pool drives it (`parallelized`)
            pipe = source.resources[resource.name]._pipe
            depth = 1 if stops_early(resource) else READ_AHEAD_DEPTH
            join = not batches_its_keys(spec, resource)
            pipe.replace_gen(with_read_ahead(pipe.gen, resource.name, depth, join))


def batches_its_keys(spec: SourceSpec, resource: ResourceSpec) -> bool:
    """Whether a child of `resource` sends its keys `batch_size` at a time: a batch never spans
    two parent pages (spec reference), so the parent's pages reach it one by one, not joined."""
    return any(
        child.parent_keys is not None and child.parent_keys.batch_size is not None
        for child in spec.children(resource.name)
    )


def reads_ahead_at_concurrency(spec: SourceSpec, resource: ResourceSpec) -> bool:
    """Whether a resource reads ahead on a thread of its own at `client.concurrency` > 1
    rather than on dlt's worker pool: a top-level resource without children (its pages,
    fetched ahead, then reach dlt in batches). Parents stay on the pool, where their
    children's fetches run (measured: P2's fan-out was not faster with parents reading
    ahead)."""
    return (
        resource.parent is None and resource.async_job is None and not spec.children(resource.name)
    )


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


def source_config(
    spec: SourceSpec,
    credentials: Credentials,
    window: Window | None = None,
    counts: RequestCounts | None = None,
    steps: Mapping[str, StepWindow | None] | None = None,
    now: datetime | None = None,
) -> dict:
    """The `RESTAPIConfig` dict handed to dlt: restsync's objects in dlt's config shape
    (`counts`: where the session counts each resource's requests; `steps`: each stepped
    resource's window)."""
    base_url = (credentials.base_url or spec.base_url).rstrip("/")
    auth = build_auth(spec, credentials)
    session = RestsyncSession(
        concurrency=spec.concurrency,
        adaptive=AdaptiveConcurrency(spec.name, spec.concurrency)
        if spec.concurrency_auto
        else None,
        source=spec.name,
        base_url=base_url,
        routes=[route(spec, r) for r in spec.resources],
        default_policy=RetryPolicy(),
        auth=auth if isinstance(auth, RenewableAuth) else None,
        secrets=lambda: [
            *credentials.secrets(),
            *(auth.secrets() if isinstance(auth, RenewableAuth) else []),
        ],
        rate_limiter=limiter_for(spec),
        counts=counts,
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
    now = now or run_time()
    resources = [resource_config(r, window, now, (steps or {}).get(r.name)) for r in spec.resources]
    for resource in resources:
        endpoint = resource["endpoint"]
        for where in ("headers", "params"):
            if endpoint.get(where):
                endpoint[where] = with_secrets(endpoint[where], credentials)
        if endpoint.get("auth") is not None:
            endpoint["auth"] = build_auth(spec, credentials, endpoint["auth"])
        # every request of the resource carries its name to the session (see `ResourceAuth`)
        endpoint["auth"] = ResourceAuth(resource["name"], endpoint.get("auth", auth))
    if spec.concurrency > 1:  # dlt then fetches each parent's children on a worker thread
        reading_ahead = settings.read_ahead()
        for resource, model in zip(resources, spec.resources, strict=True):
            if reading_ahead and reads_ahead_at_concurrency(spec, model):
                continue  # on a read-ahead thread of its own instead (`add_read_ahead`)
            resource.setdefault("parallelized", True)
    return {"client": client, "resources": resources}


def route(spec: SourceSpec, resource: ResourceSpec) -> Route:
    """How the session handles the resource's requests: its `error_handler`, its body format
    and what makes one of its pages incomplete (see `runtime.http.pages`). An async job's
    requests (create, poll, abort: JSON; downloads: streamed and read by `async_jobs`) keep
    only the retry policy. Pages numbered in the query string (offset, page number) are
    fetched ahead, `client.concurrency` at once (`runtime.http.page_series`), except where dlt
    may stop early (`stops_early`). The content rules (`error_handler.response_rules`) are
    compiled here, once per run."""
    if resource.async_job is not None:
        return Route(resource.name, RetryPolicy.from_handler(resource.error_handler))
    paginator = resource.paginator or spec.client_paginator
    return Route(
        resource.name,
        RetryPolicy.from_handler(resource.error_handler),
        read_body=body_reader(resource),
        rules=ResponseRules(resource.error_handler.response_rules) or None,
        check=page_check(
            resource.data_selector,
            resource.paginator or spec.client_paginator,
            resource.endpoint.get("response_actions"),
        ),
        series=None if stops_early(resource) else series_of(paginator, resource.data_selector),
    )


def with_secrets(values: dict[str, Any], credentials: Credentials) -> dict[str, Any]:
    """`values` with each `{secret: <name>}` replaced by that secret's value."""
    return {
        k: credentials.secret(v["secret"]) if isinstance(v, dict) and set(v) == {"secret"} else v
        for k, v in values.items()
    }


def resource_config(
    resource: ResourceSpec,
    window: Window | None = None,
    now: datetime | None = None,
    step: StepWindow | None = None,
) -> dict[str, Any]:
    """The dlt `EndpointResource` dict of one resource; relative times (`{type: now}`) count
    from `now` (the run's start); a stepped resource asks `step`, its window."""
    endpoint = with_request_values(dict(resource.endpoint), now or run_time())
    if step is not None:
        endpoint["incremental"] = windowed_incremental(endpoint["incremental"], step)
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

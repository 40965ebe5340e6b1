"""`restsync preview SPEC RESOURCE`: a test read of one resource against its real API.

The same source a run builds (`sources.source_config`, credentials from
`ApiCredentials.resolve`, restsync's auth, paginators and retries), iterated without a dlt
pipeline: every request is recorded (method, URL with secrets masked, status, milliseconds,
records on the page), the first records are kept, and dlt's normalizer types them as a load
would (in a throwaway pipeline in a temporary folder). Nothing is written: no warehouse, no
dlt state. The requests are the ones a run of the resource would send next: the cursors
(dlt's incremental, restsync's per-parent cursors of an incremental child) start from the
state of the last load in the warehouse (dlt's `_dlt_pipeline_state`), read into a copy the
preview discards; `fresh` starts them from `initial_value`. A refresh token the server
rotates is stored as a run stores it (`token_store`), so a preview never loses one.

A child resource is read through its parents, as a run of the child alone reads them (an
incremental parent scans in full): the top-level ancestor's first `pages` pages, then
children for those rows until `limit` records of the child were read. Requests are sent one
at a time (`client.concurrency` is ignored). A partitioned resource reads its latest
partition's window. A stepped resource (`incremental.step`) asks the first window a run would
ask, planned as the run plans it (`step_windows.StepRun`, from the same state), and the result
says how many windows the run asks in all.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import requests

from restsync_assets.errors import RestsyncError
from restsync_assets.specs.errors import SpecValidationError
from restsync_assets.specs.model import ResourceSpec, SourceSpec
from restsync_assets.specs.model.resource import REJECTED_SUFFIX


def preview_command(
    spec_name: str,
    resource: str,
    limit: int,
    pages: int,
    as_json: bool,
    partition: str | None = None,
    fresh: bool = False,
) -> int:
    """Test-read `resource` of `spec_name`; the error (if any) is the one line a run gives."""
    from restsync_assets.cli.run import selectable_specs

    try:
        specs = {s.name: s for s in selectable_specs([spec_name])}
    except SpecValidationError as error:
        print(error, file=sys.stderr)
        return 1
    spec = specs.get(spec_name)
    if spec is None:
        print(f"unknown spec {spec_name!r}; specs: {', '.join(specs)}", file=sys.stderr)
        return 2
    if resource not in {r.name for r in spec.resources}:
        names = ", ".join(r.name for r in spec.resources)
        print(f"{spec_name} has no resource {resource!r}; resources: {names}", file=sys.stderr)
        return 2
    try:
        partition_window(spec.resource(resource), partition)
    except UnknownPartitionError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        result = preview(spec, resource, limit=limit, pages=pages, partition=partition, fresh=fresh)
    except PreviewError as error:
        print(error.result.to_json(limit) if as_json else render(error.result, limit))
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.to_json(limit) if as_json else render(result, limit))
    return 0


@dataclass
class RequestLine:
    """One HTTP request of the preview."""

    resource: str | None
    method: str
    url: str
    status: int | None
    ms: float
    records: int | None = None


@dataclass
class ColumnType:
    table: str
    name: str
    data_type: str
    nullable: bool


@dataclass
class StepPlan:
    """A stepped resource: the run's windows (`count`; 0: it asks nothing) and the first one,
    which the preview asks (ISO 8601 UTC bounds)."""

    step: str
    count: int
    start: str | None = None
    end: str | None = None

    def line(self, resource: str) -> str:
        if not self.count:
            return (
                f"{resource}: no window to ask, step {self.step} (the windows committed reach the"
                " end: end_value or now); a run asks nothing"
            )
        return (
            f"{resource}: window 1 of {self.count} ({self.start} to {self.end}), step {self.step}"
        )


@dataclass
class PreviewResult:
    spec: str
    resource: str
    requests: list[RequestLine] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    records_read: int = 0
    columns: list[ColumnType] = field(default_factory=list)
    error: str | None = None
    #: `on_invalid: quarantine`: why each kept record a run would set aside breaks the schema
    rejected: list[str] = field(default_factory=list)
    #: `incremental.step`: the windows a run asks (the preview asks the first); None: no step
    windows: StepPlan | None = None

    def to_json(self, limit: int) -> str:
        data = asdict(self)
        data["records"] = self.records[:limit]
        return json.dumps(data, default=_json_default, indent=2)


class PreviewError(RestsyncError):
    """The preview failed; `result` holds the requests made until then, `str()` the one line."""

    kind = "api"

    def __init__(self, message: str, result: PreviewResult):
        super().__init__(message)
        self.result = result


def preview(
    spec: SourceSpec,
    resource: str,
    *,
    limit: int = 10,
    pages: int = 1,
    partition: str | None = None,
    credentials_resource: Any = None,
    fresh: bool = False,
) -> PreviewResult:
    """Read the first records of `resource` of `spec` from its API; raise `PreviewError`.

    A partitioned resource reads `partition`'s window (default: the latest partition). The
    cursors start where the last load in the warehouse left them (`fresh`: at
    `initial_value`).
    """
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.runtime.failures import explain
    from restsync_assets.runtime.http.masking import install_log_masking, register_secret
    from restsync_assets.runtime.request_values import run_time
    from restsync_assets.runtime.step_windows import StepRun

    target = spec.resource(resource)
    result = PreviewResult(spec.name, resource)
    if target.async_job is not None:
        raise PreviewError(
            f"{spec.name}: resource {resource}: reads an async report job (endpoint.async_job),"
            " which preview does not run: it would create a report at the API; materialize the"
            " resource instead (restsync run)",
            result,
        )
    credentials = None
    try:
        creds_resource = credentials_resource or ApiCredentials(source=spec.name)
        credentials = creds_resource.resolve(spec.secret_keys)
        register_secret(*credentials.secrets())
        install_log_masking()
        recorder = _Recorder(result)
        window = partition_window(target, partition)
        state = {} if fresh else stored_state(spec)
        now = run_time()  # the run's start: relative times and the last window's end
        steps = StepRun(spec, [target.name], now)
        asked: dict[
            str, Any
        ] = {}  # a stepped resource's window in this read: the run's first (None: nothing)
        if steps:
            steps.plan(state)  # as the run plans its windows, from the same state
            planned = steps.windows[target.name]
            asked[target.name] = planned[0] if planned else None
            result.windows = step_plan(target, planned)
        read = _read(spec, target, credentials, recorder, pages, window, state, now, asked)
        # closed here, not by the garbage collector later: the reader holds dlt contexts (the
        # state it reads, no active pipeline) that its close gives back, and a close at an
        # arbitrary later moment would swap them under whatever runs then (a load's state)
        with closing(read):
            for record in read:
                result.records_read += 1
                if len(result.records) < limit:
                    result.records.append(record)
                if target.parent and result.records_read >= limit:
                    break
        typed = result.records
        if target.rejected_table:  # a run sets bad records aside: type the others
            from restsync_assets.runtime.bad_values import bad_values_step
            from restsync_assets.runtime.quarantine import quarantine_step

            guard = bad_values_step(target, spec.path, quarantine_step(target))
            judged = [(record, guard.judge(record)) for record in result.records]
            result.rejected = [found for _, found in judged if found]
            typed = [record for record, found in judged if not found]
        result.columns = dlt_column_types(spec, target, typed)
    except Exception as error:
        secrets = credentials.secrets() if credentials else []
        result.error = explain(error, spec.name, secrets)
        raise PreviewError(result.error, result) from None
    return result


def _read(
    spec: SourceSpec,
    target: ResourceSpec,
    credentials: Any,
    recorder: _Recorder,
    pages: int,
    window: Any,
    state: dict[str, Any],
    now: datetime,
    steps: dict[str, Any],
) -> Iterator[dict]:
    """The records of `target`, as dlt's resource yields them, from a one-request-at-a-time
    source whose top-level ancestor stops after `pages` pages, its cursors read from a copy
    of the pipeline `state` (dlt's, as the last load left it; empty: `initial_value`), its
    relative times from `now`; `steps`: the window a stepped resource asks (as in a run's
    `build_source`: None asks nothing)."""
    from dlt.sources.rest_api import rest_api_source

    from restsync_assets.runtime.child_cursors import with_per_parent_cursors
    from restsync_assets.runtime.known_parents import scanned_in_full, without_incremental
    from restsync_assets.runtime.source import (
        add_step_windows,
        add_transform_steps,
        record_transforms,
        source_config,
    )

    sequential = spec.model_copy(update={"concurrency": 1})
    config = source_config(sequential, credentials, window, steps=steps, now=now)
    recorder.watch(config)
    # as a run of `target` alone: an incremental parent that only drives it scans in full
    scanned = scanned_in_full(sequential, [target.name])
    for resource in config["resources"]:
        if resource["name"] in scanned:
            resource["endpoint"] = without_incremental(resource["endpoint"])
    transforms = record_transforms(sequential)  # the rows as a run transforms them
    config = with_per_parent_cursors(sequential, config, transforms, scanned)
    source = rest_api_source(config, name=spec.name)
    add_transform_steps(sequential, source, transforms)
    add_step_windows(source, steps)  # the window's resume point goes to the discarded copy
    chain = [target.name]
    while (parent := spec.resource(chain[0]).parent) is not None:
        chain.insert(0, parent)
    source.resources[chain[0]].add_limit(pages)
    for name in chain:
        source.resources[name].add_step(recorder.page_counter(name), insert_at=1)
    with _no_active_pipeline(), _state(copy.deepcopy(state)):
        yield from source.resources[target.name]


@contextmanager
def _state(state: dict[str, Any]) -> Iterator[None]:
    """dlt reads (and writes) resource state in `state` meanwhile (not an active pipeline's)."""
    from dlt.common.configuration.container import Container
    from dlt.common.pipeline import StateInjectableContext

    with Container().injectable_context(StateInjectableContext(state=state)):
        yield


def stored_state(spec: SourceSpec) -> dict[str, Any]:
    """The dlt state the last completed load of `spec` stored in the warehouse (cursors,
    per-parent cursors); empty when nothing was loaded."""
    from dlt.pipeline.state_sync import load_pipeline_state_from_destination

    from restsync_assets.runtime.destination import pipeline_name
    from restsync_assets.runtime.warehouse import reading

    with _no_active_pipeline(), reading(spec) as warehouse:  # a reader's pipeline stays inactive
        if not warehouse.has_table("_dlt_pipeline_state"):
            return {}
        stored = load_pipeline_state_from_destination(pipeline_name(spec), warehouse.client)
    return dict(stored or {})


@contextmanager
def _no_active_pipeline() -> Iterator[None]:
    """No dlt pipeline active meanwhile (a run earlier in this process leaves its own active,
    and dlt initializes an iterated resource's state from it); afterwards, the one active
    before again (not a pipeline created meanwhile)."""
    from dlt.common.configuration.container import Container
    from dlt.common.pipeline import PipelineContext

    context = Container()[PipelineContext]
    active = context.pipeline() if context.is_active() else None
    context.deactivate()
    try:
        yield
    finally:
        context.deactivate()
        if active is not None:
            active.activate()


def step_plan(resource: ResourceSpec, windows: list[Any]) -> StepPlan:
    """What `windows` (a run's, planned by `step_windows.StepRun`) say of `resource`."""
    from restsync_assets.specs.template_functions import format_datetime

    if not windows:
        return StepPlan(str(resource.step), 0)
    first = windows[0]
    start, end = (format_datetime(bound, "iso") for bound in (first.start, first.end))
    return StepPlan(str(resource.step), len(windows), start, end)


class UnknownPartitionError(RestsyncError, ValueError):
    """`--partition` is not a partition of the resource: one line with the allowed range."""

    kind = "config"


def partition_window(resource: ResourceSpec, key: str | None = None) -> Any:
    """The window of partition `key` of a partitioned resource (default: the latest, what
    `restsync run` loads); None for an unpartitioned one."""
    if resource.partitions is None:
        if key is not None:
            raise UnknownPartitionError(f"--partition: {resource.name} is not partitioned")
        return None
    from restsync_assets.partitions import partitions_definition
    from restsync_assets.runtime.window import Window

    partitions = partitions_definition(resource.partitions)
    latest = partitions.get_last_partition_key()
    if key is not None and not partitions.has_partition_key(key):
        raise UnknownPartitionError(
            f"--partition {key}: not a partition of {resource.name}"
            f" ({str(partitions).rstrip('.')}); the first is"
            f" {partitions.get_first_partition_key()}, the latest {latest}"
        )
    key = key or latest
    if key is None:
        return None
    window = partitions.time_window_for_partition_key(key)
    return Window(window.start, window.end)


class _Recorder:
    """Records each request the source's session, the OAuth token client and the `session`
    auth's login send."""

    def __init__(self, result: PreviewResult):
        self.result = result
        self._by_response: dict[int, tuple[requests.Response, RequestLine]] = {}

    def watch(self, config: Mapping[str, Any]) -> None:
        from restsync_assets.runtime.http.oauth import OAuth2Auth
        from restsync_assets.runtime.http.session import resource_of
        from restsync_assets.runtime.http.session_auth import SessionLoginAuth

        session = config["client"]["session"]
        send = session.send

        def recorded_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            started = time.perf_counter()
            line = RequestLine(
                resource=resource_of(request),
                method=request.method or "GET",
                url=session.mask_url(request.url),
                status=None,
                ms=0.0,
            )
            self.result.requests.append(line)
            try:
                response = send(request, **kwargs)
            except Exception as error:
                line.status = getattr(getattr(error, "response", None), "status_code", None)
                raise
            finally:
                line.ms = (time.perf_counter() - started) * 1000
            line.status = response.status_code
            self._by_response[id(response)] = (response, line)
            return response

        session.send = recorded_send  # this source's own session object only
        auth = config["client"].get("auth")
        if isinstance(auth, OAuth2Auth) and auth.client.session is None:
            auth.client.session = self._recording(requests.Session(), session, "(token)")
        if isinstance(auth, SessionLoginAuth):  # `session` auth: its login request
            self._recording(auth.session, session, "(login)")

    def _recording(
        self, token_session: requests.Session, api_session: Any, kind: str
    ) -> requests.Session:
        """`token_session` (a plain session for token or login requests), recording each
        request's method and URL (secrets masked), never its body or answer, as `kind`."""

        def hook(response: requests.Response, **_kwargs: Any) -> requests.Response:
            request = response.request
            self.result.requests.append(
                RequestLine(
                    resource=kind,
                    method=request.method or "POST",
                    url=api_session.mask_url(request.url),
                    status=response.status_code,
                    ms=response.elapsed.total_seconds() * 1000,
                )
            )
            return response

        token_session.hooks["response"].append(hook)
        return token_session

    def page_counter(self, resource: str) -> Callable[[Any], Any]:
        def count(page: Any) -> Any:
            size = len(page) if isinstance(page, list) else 1
            found = self._by_response.get(id(getattr(page, "response", None)))
            line = found[1] if found else self._last_line(resource)
            if line is not None:
                line.records = (line.records or 0) + size
            return page

        return count

    def _last_line(self, resource: str) -> RequestLine | None:
        for line in reversed(self.result.requests):
            if line.resource == resource:
                return line
        return None


def dlt_column_types(spec: SourceSpec, resource: ResourceSpec, records: list[dict]) -> list:
    """The columns dlt's normalizer gives `records` (the spec's `schema` hints applied), in a
    throwaway pipeline under a temporary folder: the table and its nested child tables."""
    import dlt

    if not records:
        return []
    columns = {c.name: {"data_type": c.data_type, "nullable": c.nullable} for c in resource.columns}
    hints: dict[str, Any] = {"name": resource.name, "columns": columns or None}
    if resource.primary_key_columns:
        hints["primary_key"] = list(resource.primary_key_columns)
    with _no_active_pipeline(), tempfile.TemporaryDirectory(prefix="restsync_preview_") as folder:
        pipeline = dlt.pipeline(
            pipeline_name=f"preview_{spec.name}",
            pipelines_dir=folder,
            destination="duckdb",  # normalize needs a destination's capabilities; none is opened
        )
        pipeline.extract(dlt.resource(records, **hints))
        pipeline.normalize()
        schema = pipeline.default_schema
        return [
            ColumnType(table, name, column.get("data_type", "?"), column.get("nullable", True))
            for table in schema.data_table_names()
            if table == resource.name or table.startswith(f"{resource.name}__")
            for name, column in schema.get_table_columns(table).items()
            if not name.startswith("_dlt_")
        ]


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------- text output


def render(result: PreviewResult, limit: int) -> str:
    """A stepped resource's window, the requests, then the first records as a table, then the
    columns and their dlt types."""
    from restsync_assets.cli.tables import cell, render_table
    from restsync_assets.text import plural

    parts = [result.windows.line(result.resource)] if result.windows else []
    parts.append(
        render_table(
            ("", "request", "status", "ms", "records"),
            [(r.method, r.url, r.status, f"{r.ms:.0f}", r.records) for r in result.requests],
            right=(2, 3, 4),
        )
    )
    if result.error is not None:
        return "\n".join(parts)
    shown = result.records[:limit]
    first = f"; the first {len(shown)}:" if shown else ""
    parts.append(
        f"\n{result.spec}/{result.resource}: {plural(result.records_read, 'record')} read in "
        f"{plural(len(result.requests), 'request')}{first}"
    )
    names = list(dict.fromkeys(k for record in shown for k in record))
    if shown:
        wide = names[:MAX_COLUMNS]
        parts.append(render_table(wide, [[cell(r.get(k)) for k in wide] for r in shown]))
        if len(names) > len(wide):
            parts.append(f"(+{plural(len(names) - len(wide), 'more column')}; --json shows all)")
    if result.rejected:
        table = f"{result.resource}{REJECTED_SUFFIX}"
        parts.append(
            f"{len(result.rejected)} of these records would go to {table}"
            f" (on_invalid: quarantine), e.g. {result.rejected[0]}"
        )
    if result.columns:
        parts.append("\ncolumns as dlt types them:")
        parts.append(
            render_table(
                ("table", "column", "type", "nullable"),
                [
                    (c.table, c.name, c.data_type, "yes" if c.nullable else "no")
                    for c in result.columns
                ],
            )
        )
    return "\n".join(parts)


#: record columns shown in the text table (the rest with --json)
MAX_COLUMNS = 8

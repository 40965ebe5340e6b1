"""`endpoint.async_job` at run time: create a report job, poll it, download its files, load.

A resource with an async job is not one of dlt's `rest_api` endpoints: `build_source` leaves
it out of the `rest_api_source` config (`split_config`) and adds the dlt resource (or, for a
child, the dlt transformer: one job per parent row) built here (`add_job_resources`).

Every request goes through the source's `RestsyncSession` (the resource's retry policy,
masking, the rate budget, OAuth refresh) with the resource's auth and headers. A job:

1. is created (`create`), unless the resource's job records hold one for the same window,
   parent or cursor start that the last load did not include: that job is polled again. Its
   id is recorded (durably: a table of the dataset on PostgreSQL, a file elsewhere, see
   `job_record_stores`) before anything else happens;
2. is polled every `poll.interval` seconds: a status in `done` downloads it, in `skipped`
   loads nothing, in `failed` fails the run with the API's message; after `poll.timeout` the
   job is aborted (`abort`) and the run fails naming it. A poll answered 404 or 410 (an id the
   API no longer knows) creates the job again, with a log line;
3. is downloaded file by file (`job_downloads`: streamed to a temporary file, decompressed
   and parsed in chunks) into pages of rows, so memory stays flat whatever the file's size.

Jobs of several windows or parents run `client.concurrency` at a time, from one thread: the
polls of all running jobs are scheduled by their due time, no thread waits per job.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urljoin

import dlt
import orjson
import requests
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from restsync_assets.runtime.http.retry import current_clock
from restsync_assets.runtime.http.session import ResourceTag, RestsyncSession
from restsync_assets.runtime.job_downloads import AsyncJobError, Downloads, raise_for_status
from restsync_assets.runtime.job_record_stores import job_records, running_pipeline
from restsync_assets.runtime.job_records import JobRecords, job_key, loaded_jobs, mark_done
from restsync_assets.runtime.transforms import RecordTransforms
from restsync_assets.runtime.window import Window
from restsync_assets.specs.model import AsyncJobSpec, ResourceSpec, SourceSpec
from restsync_assets.specs.model.async_job import JobRequestSpec
from restsync_assets.specs.templates import CompiledTemplate, compile_template

logger = logging.getLogger(__name__)

#: rows per page handed to dlt
PAGE_ROWS = 10_000
#: statuses of a poll that mean the API no longer knows the job
GONE = (404, 410)
#: dlt's `EndpointResource` keys that are not hints of `dlt.resource`
_NOT_HINTS = ("endpoint", "include_from_parent", "parallelized", "processing_steps")


# --------------------------------------------------------------------------- source wiring


def without_jobs(spec: SourceSpec) -> SourceSpec:
    """`spec` without its async-job resources (what dlt's `rest_api` config holds)."""
    kept = tuple(r for r in spec.resources if r.async_job is None)
    return spec if len(kept) == len(spec.resources) else spec.model_copy(update={"resources": kept})


def split_config(spec: SourceSpec, config: dict) -> tuple[dict, dict[str, dict]]:
    """The `rest_api_source` config without the async-job resources, and their configs."""
    jobs = {r.name for r in spec.resources if r.async_job is not None}
    kept = [r for r in config["resources"] if r["name"] not in jobs]
    taken = {r["name"]: r for r in config["resources"] if r["name"] in jobs}
    return {**config, "resources": kept}, taken


def add_job_resources(
    spec: SourceSpec,
    source: DltSource,
    configs: dict[str, dict],
    client: dict[str, Any],
    transforms: dict[str, RecordTransforms],
    window: Window | None,
) -> None:
    """Add a dlt resource (a transformer for a child) per async-job resource, parents first."""
    for resource in spec.resources:
        if resource.name not in configs:
            continue
        config = configs[resource.name]
        retriever = Retriever(
            spec, resource, client, config["endpoint"], transforms.get(resource.name)
        )
        source.resources.add(job_resource(retriever, config, source, window))


def job_resource(
    retriever: Retriever, config: dict, source: DltSource, window: Window | None
) -> DltResource:
    """The dlt resource of one async-job resource (a transformer when it has a parent)."""
    resource = retriever.resource
    hints = {k: v for k, v in config.items() if k not in _NOT_HINTS}
    incremental = _incremental(config["endpoint"].get("incremental"))
    if resource.parent is not None:

        def per_parent(items: Any) -> Iterator[list[dict]]:
            parents = items if isinstance(items, list) else [items]
            state = dlt.current.resource_state()
            yield from retriever.rows([retriever.parent_task(p) for p in parents], state)

        parent = source.resources[resource.parent]
        return dlt.transformer(per_parent, data_from=parent, **hints)
    if incremental is not None:

        def since(cursor: Any = incremental) -> Iterator[list[dict]]:
            task = retriever.cursor_task(cursor)
            yield from retriever.rows([task], dlt.current.resource_state())

        return dlt.resource(since, **hints)

    def rows() -> Iterator[list[dict]]:
        task = retriever.window_task(window)
        yield from retriever.rows([task], dlt.current.resource_state())

    return dlt.resource(rows, **hints)


def _incremental(config: Any) -> Any:
    """dlt's `Incremental` for the endpoint's `incremental` mapping (None without one)."""
    if not isinstance(config, dict):
        return None
    keys = (
        "cursor_path",
        "initial_value",
        "end_value",
        "range_start",
        "range_end",
        "lag",
        "on_cursor_value_missing",
        "row_order",
    )
    return dlt.sources.incremental(**{k: config[k] for k in keys if k in config})


# --------------------------------------------------------------------------- one job


@dataclass
class Task:
    """One job of a resource: its scope (window, parent or cursor start) and progress."""

    #: the key of its record (`job_records.job_key` of the resource and `scope`)
    key: str
    scope: dict[str, Any]
    #: what the templates read besides `response`: `window`, `parent`
    context: dict[str, Any]
    parent: dict[str, Any] | None = None
    job_id: str | None = None
    started: float = 0.0
    next_poll: float = 0.0
    #: the last poll's answer (the download reads it)
    answer: Any = None

    def describe(self) -> str:
        """` for window [a, b)` or ` for parent {...}` (empty for a whole-table job)."""
        window = self.context.get("window")
        if window and window.get("start") is not None:
            return f" for window [{window['start']}, {window.get('end')})"
        if self.parent is not None:
            return f" for parent {self.scope.get('parent')}"
        return ""


class Retriever:
    """Creates, polls and downloads the jobs of one resource (see the module docstring)."""

    def __init__(
        self,
        spec: SourceSpec,
        resource: ResourceSpec,
        client: dict[str, Any],
        endpoint: dict[str, Any],
        transforms: RecordTransforms | None = None,
    ) -> None:
        assert resource.async_job is not None
        self.source = spec.name
        self.resource = resource
        self.job: AsyncJobSpec = resource.async_job
        self.concurrency = spec.concurrency
        self.session: RestsyncSession = client["session"]
        self.base_url = client["base_url"].rstrip("/") + "/"
        self.auth = endpoint.get("auth") or client.get("auth")
        self.headers = {**(client.get("headers") or {}), **(endpoint.get("headers") or {})}
        self.downloads = Downloads(
            resource.name,
            self.session,
            self.base_url,
            self.auth,
            self.headers,
            self.where,
            resource.error_handler.max_retries + 1,
            self.job.download,
            endpoint.get("data_selector"),
            {c.name: c.data_type for c in resource.columns},
        )
        self.transforms = transforms if resource.parent is not None else None
        #: the resource's job records and the jobs the last completed load holds, taken when
        #: its first jobs start (`_open_records`)
        self._records: JobRecords | None = None
        self.loaded: dict[str, str] = {}
        self._templates: dict[str, CompiledTemplate] = {}

    @property
    def where(self) -> str:
        return f"{self.source}: resource {self.resource.name}"

    # ------------------------------------------------------------------ tasks

    def window_task(self, window: Window | None) -> Task:
        """The job of a partition window (or of the whole table without partitions)."""
        if window is None or self.resource.partitions is None:
            return self._task({}, {"window": None})
        start, end = window.bounds(self.resource.partitions)
        return self._task({"window": [start, end]}, {"window": {"start": start, "end": end}})

    def cursor_task(self, cursor: Any) -> Task:
        """The job of an incremental run: from the cursor's start to its end (or now). The
        job is keyed by its start only: a run resumed later finds it."""
        start = cursor.start_value
        end = cursor.end_value
        if end is None:
            end = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._task({"since": start}, {"window": {"start": start, "end": end}})

    def parent_task(self, parent: dict[str, Any]) -> Task:
        """The job of one parent row (its path placeholders bound to the row's fields)."""
        bound = {b.placeholder: parent.get(b.field) for b in self.resource.bindings}
        context = {"parent": parent, "window": None}
        return self._task({"parent": bound}, context, parent)

    def _task(self, scope: dict, context: dict, parent: dict | None = None) -> Task:
        return Task(job_key(self.resource.name, scope), scope, context, parent)

    # ------------------------------------------------------------------ the scheduler

    def rows(self, tasks: list[Task], state: Any) -> Iterator[list[dict]]:
        """Run `tasks`, `client.concurrency` at a time; the pages of rows of each done job.

        Polls are kept in due order; the one thread sleeps until the next one is due.
        """
        clock = current_clock()
        self._open_records(state)
        waiting, active = deque(tasks), []
        while waiting or active:
            while waiting and len(active) < self.concurrency:
                task = waiting.popleft()
                self._start(task)
                active.append(task)
            task = min(active, key=lambda t: t.next_poll)
            delay = task.next_poll - clock.time()
            if delay > 0:
                clock.sleep(delay)
            outcome = self._poll(task)
            if outcome == "running":
                continue
            active.remove(task)
            if outcome == "done":
                yield from self._download(task)
            mark_done(state, task.key, task.job_id)

    def _open_records(self, state: Any) -> None:
        """At the first jobs of the run: pick the records' store and clear the records of
        jobs the resource state (the last completed load's) marks done. A transformer runs
        once per batch of parents: later batches keep what the first took, as the state then
        also marks the jobs of this run, whose rows are not loaded yet."""
        if self._records is not None:
            return
        self._records = job_records(running_pipeline(), self.source, self.resource.name)
        self.loaded = loaded_jobs(state)
        self._records.sweep(self.loaded)

    @property
    def records(self) -> JobRecords:
        assert self._records is not None, "the records are opened by `rows`"
        return self._records

    def _start(self, task: Task) -> None:
        """Resume the recorded job of the task, or create one."""
        clock = current_clock()
        record = self.records.settled(task.key, self.loaded)
        task.started = clock.time()
        if record is not None:
            task.job_id = record["job_id"]
            task.next_poll = task.started
            logger.info(
                "%s: resuming async job %s%s (recorded in %s by an earlier run)",
                self.where,
                task.job_id,
                task.describe(),
                self.records.where,
            )
            return
        self._create(task)

    def _create(self, task: Task) -> None:
        clock = current_clock()
        response = self._send(self.job.create, task, "create")
        job_id = self._evaluate(self.job.job_id, task, response.json(), "job_id")
        if job_id is None or job_id == "":
            raise AsyncJobError(
                f"{self.where}: async_job.job_id gave no id for the created job; check the"
                " template against the create answer"
            )
        task.job_id = str(job_id)
        self.records.write(task.key, task.job_id, task.scope, clock.time())
        task.next_poll = clock.time() + self.job.poll.interval
        logger.info("%s: created async job %s%s", self.where, task.job_id, task.describe())

    def _poll(self, task: Task) -> str:
        """Poll once: `running`, `done` or `skipped` (a job gone is created again; a failed
        or timed-out job raises)."""
        clock = current_clock()
        response = self._send(self.job.poll, task, "poll", gone_ok=True)
        if response.status_code in GONE:
            logger.warning(
                "%s: async job %s%s is no longer known to the API (HTTP %s): creating it again",
                self.where,
                task.job_id,
                task.describe(),
                response.status_code,
            )
            self._create(task)
            return "running"
        task.answer = response.json()
        status = str(self._evaluate(self.job.status, task, task.answer, "status"))
        if status in self.job.done:
            return "done"
        if status in self.job.skipped:
            logger.info(
                "%s: async job %s%s: %s, nothing to load",
                self.where,
                task.job_id,
                task.describe(),
                status,
            )
            return "skipped"
        if status in self.job.failed:
            self.records.clear(task.key)
            raise AsyncJobError(
                f"{self.where}: async job {task.job_id}{task.describe()} {status}:"
                f" {_message(task.answer)}; fix the request (async_job.create) or ask the"
                " API, then materialize again"
            )
        now = clock.time()
        if now - task.started >= self.job.poll.timeout:
            self._timed_out(task, status)
        task.next_poll = now + self.job.poll.interval
        return "running"

    def _timed_out(self, task: Task, status: str) -> None:
        what = "no abort configured: the next run polls it again"
        if self.job.abort is not None:
            try:
                self._send(self.job.abort, task, "abort")
                self.records.clear(task.key)
                path = self._path(self.job.abort.path, task, self._context(task))
                what = f"abort sent ({self.job.abort.method} {path})"
            except Exception as error:  # the timeout is the error to report
                what = f"the abort request failed ({str(error).splitlines()[0]})"
        raise AsyncJobError(
            f"{self.where}: async job {task.job_id}{task.describe()} still {status!r} after"
            f" {self.job.poll.timeout:g} s (async_job.poll.timeout); {what}; raise the"
            " timeout or narrow the report"
        )

    # ------------------------------------------------------------------ HTTP

    def _send(
        self, request: JobRequestSpec, task: Task, what: str, gone_ok: bool = False
    ) -> requests.Response:
        """One request of the job through the source's session; an HTTP error status raises
        the session's one-line error (but 404/410 when `gone_ok`)."""
        context = self._context(task)
        path = self._path(request.path, task, context)
        kwargs: dict[str, Any] = {
            "params": self._render(request.params, context) or None,
            "headers": {**self.headers, **self._render(request.headers, context)} or None,
            "auth": self.auth,
            "hooks": {
                "response": [
                    ResourceTag(self.resource.name),
                    raise_for_status(GONE if gone_ok else ()),
                ]
            },
        }
        if request.body is not None:
            kwargs["json"] = self._render(request.body, context)
        return self.session.request(request.method, urljoin(self.base_url, path), **kwargs)

    def _context(self, task: Task, answer: Any = None) -> dict[str, Any]:
        return {**task.context, "job_id": task.job_id, "response": answer}

    def _path(self, path: str, task: Task, context: dict[str, Any]) -> str:
        if "{{" in path or "{%" in path:
            path = str(self._template(path).evaluate(**context))
        for placeholder, value in task.scope.get("parent", {}).items():
            path = path.replace("{" + placeholder + "}", quote(str(value), safe=""))
        if task.job_id is not None:
            path = path.replace("{job_id}", quote(task.job_id, safe=""))
        return path.lstrip("/")

    def _render(self, value: Any, context: dict[str, Any]) -> Any:
        if isinstance(value, dict):
            return {k: self._render(v, context) for k, v in value.items()}
        if isinstance(value, list):
            return [self._render(v, context) for v in value]
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            return self._template(value).evaluate(**context)
        return value

    def _template(self, text: str) -> CompiledTemplate:
        if text not in self._templates:
            self._templates[text] = compile_template(text)
        return self._templates[text]

    def _evaluate(self, text: str, task: Task, answer: Any, key: str) -> Any:
        try:
            return self._template(text).evaluate(**self._context(task, answer))
        except ValueError as error:
            raise AsyncJobError(f"{self.where}: async_job.{key}: {error}") from None

    # ------------------------------------------------------------------ download

    def _urls(self, task: Task) -> list[str]:
        download = self.job.download
        if download.kind == "path":
            context = self._context(task, task.answer)
            return [urljoin(self.base_url, self._path(download.location, task, context))]
        found = self._evaluate(download.location, task, task.answer, "download.urls")
        urls = found if isinstance(found, list) else [found]
        if not all(isinstance(u, str) and u for u in urls):
            raise AsyncJobError(
                f"{self.where}: async_job.download.urls gave {found!r} for job"
                f" {task.job_id}: expected a URL or a list of URLs"
            )
        return [urljoin(self.base_url, u) for u in urls]

    def _download(self, task: Task) -> Iterator[list[dict]]:
        """Every row of the done job's files, in pages (see `job_downloads`)."""
        page: list[dict] = []
        for url in self._urls(task):
            for row in self.downloads.records(url, f"async job {task.job_id}{task.describe()}"):
                page.append(self._row(row, task))
                if len(page) >= PAGE_ROWS:
                    yield self._transformed(page, task)
                    page = []
        if page:
            yield self._transformed(page, task)

    def _row(self, row: Any, task: Task) -> Any:
        if task.parent is None or not self.resource.include_from_parent:
            return row
        for name in self.resource.include_from_parent:
            row[f"_{self.resource.parent}_{name}"] = task.parent.get(name)
        return row

    def _transformed(self, page: list[dict], task: Task) -> list[dict]:
        if self.transforms is None:
            return page
        return self.transforms.page(page, task.parent)


def _message(answer: Any) -> str:
    """The API's own message about a failed job, from the usual fields."""
    if isinstance(answer, dict):
        for key in ("message", "error_message", "error", "reason", "detail", "errors"):
            value = answer.get(key)
            if value:
                text = value if isinstance(value, str) else orjson.dumps(value).decode()
                return " ".join(text.split())[:500]
    return "the API gave no message"

"""`endpoint.async_job`: a report or export job the API runs in the background.

Create the job (`create`), read its id (`job_id`), poll it (`poll`) until its status
(`status`) is one of `done`, `failed` or `skipped`, then download its file(s) (`download`).
Templates (`{{ ... }}`) are kept as their source text; `runtime.async_jobs` compiles them
once per run. Paths may name `{job_id}`.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field

from restsync_assets.specs.model.base import StrictModel

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
HTTP_METHODS: tuple[str, ...] = get_args(HttpMethod)
DownloadFormat = Literal["csv", "jsonl", "json"]
DOWNLOAD_FORMATS: tuple[str, ...] = get_args(DownloadFormat)
Compression = Literal["auto", "gzip", "zip", "none"]
COMPRESSIONS: tuple[str, ...] = get_args(Compression)
#: the keys of `async_job`, of its requests, of `poll` and of `download`
ASYNC_JOB_KEYS = (
    "create",
    "job_id",
    "poll",
    "status",
    "done",
    "failed",
    "skipped",
    "download",
    "abort",
)
REQUEST_KEYS = ("path", "method", "params", "json", "headers")
POLL_KEYS = (*REQUEST_KEYS, "interval", "timeout")
DOWNLOAD_KEYS = ("urls", "path", "response_format", "compression")
#: what the templates of each part may read
CREATE_CONTEXT = ("window", "parent")
RESPONSE_CONTEXT = ("response", "job_id", "window", "parent")


class JobRequestSpec(StrictModel):
    """One request of a job: `create`, `poll` or `abort` (path relative to the base URL)."""

    path: str
    method: HttpMethod = "GET"
    params: dict[str, Any] = Field(default_factory=dict)
    #: the JSON body (`json:` in the spec); values may be templates
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)


class PollSpec(JobRequestSpec):
    """`poll`: the status request, sent every `interval` seconds for at most `timeout`."""

    interval: float = 5.0
    timeout: float = 3600.0


class DownloadSpec(StrictModel):
    """`download`: where the job's files are (`urls` template or `path`) and how to read them."""

    kind: Literal["urls", "path"]
    #: a template giving one URL or a list (kind `urls`), or a path template (kind `path`)
    location: str
    response_format: DownloadFormat = "csv"
    compression: Compression = "auto"


class AsyncJobSpec(StrictModel):
    """`endpoint.async_job` of a resource (see the module docstring)."""

    create: JobRequestSpec
    job_id: str
    poll: PollSpec
    status: str
    done: tuple[str, ...]
    failed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    download: DownloadSpec
    abort: JobRequestSpec | None = None

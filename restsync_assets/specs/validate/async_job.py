"""`endpoint.async_job` into an `AsyncJobSpec`; one line per problem.

The create request's path stands in for `endpoint.path` (`with_create_paths`, before the
bindings): a placeholder there binds to a parent as in any path, so a child resource creates
one job per parent row. Templates are compiled with the spec sandbox (`specs.templates`) and
may read only what the run gives them: `window` and `parent` when creating, and `response`,
`job_id`, `window`, `parent` when reading an answer. Other paths may name `{job_id}` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from restsync_assets.specs.errors import Invalid, allowed
from restsync_assets.specs.model.async_job import (
    ASYNC_JOB_KEYS,
    COMPRESSIONS,
    CREATE_CONTEXT,
    DOWNLOAD_FORMATS,
    DOWNLOAD_KEYS,
    HTTP_METHODS,
    POLL_KEYS,
    REQUEST_KEYS,
    RESPONSE_CONTEXT,
    AsyncJobSpec,
    DownloadSpec,
    JobRequestSpec,
    PollSpec,
)
from restsync_assets.specs.model.resource import ResourceSpec

KEY = "endpoint.async_job"
#: endpoint keys an async job has no use for: its requests are under `async_job`
_UNUSED_ENDPOINT_KEYS = ("method", "json", "data", "paginator", "response_format")
_PATH_FIELD = re.compile(r"\{([^{}]*)\}")


def with_create_paths(raw: dict) -> dict:
    """The spec with each async job's create path as its resource's `endpoint.path` (a copy;
    dlt's merge would otherwise give such a resource its name as the path)."""
    resources = raw.get("resources")
    if not isinstance(resources, list):
        return raw
    return {**raw, "resources": [_with_create_path(r) for r in resources]}


def _with_create_path(resource: Any) -> Any:
    endpoint = resource.get("endpoint") if isinstance(resource, dict) else None
    if not isinstance(endpoint, dict) or "async_job" not in endpoint:
        return resource
    name, job = resource.get("name"), endpoint["async_job"]
    if "path" in endpoint:
        raise Invalid(
            "an async job's requests are under async_job: move the path to async_job.create.path",
            resource=name,
            key="endpoint.path",
        )
    create = job.get("create") if isinstance(job, dict) else None
    if not isinstance(create, dict) or not isinstance(create.get("path"), str):
        raise Invalid("needs a path (a string)", resource=name, key=f"{KEY}.create.path")
    return {**resource, "endpoint": {**endpoint, "path": create["path"]}}


def validate_async_job(endpoint: dict, resource: str, *, child: bool) -> AsyncJobSpec | None:
    """The resource's async job, removed from `endpoint` (which goes to dlt); None without one."""
    raw = endpoint.pop("async_job", None)
    if raw is None:
        return None
    for key in _UNUSED_ENDPOINT_KEYS:
        if key in endpoint:
            raise Invalid(
                f"not used with async_job; {_where(key)}", resource=resource, key=f"endpoint.{key}"
            )
    if child and endpoint.get("incremental") is not None:
        raise Invalid(
            "an async job per parent takes no incremental; use partitions for windows",
            resource=resource,
            key="endpoint.incremental",
        )
    _mapping(raw, KEY, resource, ASYNC_JOB_KEYS)
    for required in ("create", "job_id", "poll", "status", "done", "download"):
        if raw.get(required) is None:
            raise Invalid("is required", resource=resource, key=f"{KEY}.{required}")
    create_context = CREATE_CONTEXT if child else ("window",)
    answer_context = (
        RESPONSE_CONTEXT if child else tuple(v for v in RESPONSE_CONTEXT if v != "parent")
    )
    outcomes = {k: _names(raw.get(k), k, resource) for k in ("done", "failed", "skipped")}
    if not outcomes["done"]:
        raise Invalid("needs at least one status", resource=resource, key=f"{KEY}.done")
    _disjoint(outcomes, resource)
    download = _download(raw["download"], resource, answer_context)
    if endpoint.get("data_selector") is not None and download.response_format != "json":
        raise Invalid(
            f"a {download.response_format} download is a list of records: data_selector"
            " applies to a json download only",
            resource=resource,
            key="endpoint.data_selector",
        )
    abort = raw.get("abort")
    return AsyncJobSpec(
        create=_request(raw["create"], "create", resource, create_context, "POST", job_path=False),
        job_id=_template(raw["job_id"], "job_id", resource, answer_context),
        poll=_poll(raw["poll"], resource, answer_context),
        status=_template(raw["status"], "status", resource, answer_context),
        **outcomes,
        download=download,
        abort=None if abort is None else _request(abort, "abort", resource, answer_context, "POST"),
    )


def _where(key: str) -> str:
    return (
        "the job's files are read by async_job.download"
        if key in ("paginator", "response_format")
        else f"write it under async_job.create ({key})"
    )


def _mapping(value: Any, key: str, resource: str, keys: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise Invalid("must be a mapping", resource=resource, key=key)
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise Invalid(f"unknown key; {allowed(keys)}", resource=resource, key=f"{key}.{unknown[0]}")
    return value


def _names(value: Any, key: str, resource: str) -> tuple[str, ...]:
    """A status name or a list of them (compared as strings)."""
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise Invalid(
            "must be a status or a list of statuses", resource=resource, key=f"{KEY}.{key}"
        )
    return tuple(str(v) for v in values)


def _disjoint(outcomes: dict[str, tuple[str, ...]], resource: str) -> None:
    seen: dict[str, str] = {}
    for key, names in outcomes.items():
        for name in names:
            if name in seen:
                raise Invalid(
                    f"status {name!r} is also in {seen[name]}; a status means one outcome",
                    resource=resource,
                    key=f"{KEY}.{key}",
                )
            seen[name] = key


def _template(value: Any, key: str, resource: str, context: tuple[str, ...]) -> str:
    """A template (or literal text) that reads only `context`; its source text."""
    from restsync_assets.specs.templates import TemplateError, compile_template

    if not isinstance(value, str):
        raise Invalid(
            "must be a template such as {{ response.id }}", resource=resource, key=f"{KEY}.{key}"
        )
    try:
        unknown = sorted(compile_template(value).variables - set(context))
    except TemplateError as error:
        raise Invalid(str(error), resource=resource, key=f"{KEY}.{key}") from None
    if unknown:
        raise Invalid(
            f"{unknown[0]} is not known here; {allowed(context)}",
            resource=resource,
            key=f"{KEY}.{key}",
        )
    return value


def _templates(value: Any, key: str, resource: str, context: tuple[str, ...]) -> None:
    """Every string holding `{{` or `{%` inside `value` (a mapping, list or string)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _templates(v, f"{key}.{k}", resource, context)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _templates(v, f"{key}[{i}]", resource, context)
    elif isinstance(value, str) and ("{{" in value or "{%" in value):
        _template(value, key, resource, context)


def _job_path(path: Any, key: str, resource: str) -> str:
    if not isinstance(path, str) or not path:
        raise Invalid("needs a path (a string)", resource=resource, key=f"{KEY}.{key}")
    if "{{" not in path:
        fields = [f for f in _PATH_FIELD.findall(path) if f != "job_id"]
        if fields:
            raise Invalid(
                f"{{{fields[0]}}} is not known here; allowed: job_id",
                resource=resource,
                key=f"{KEY}.{key}",
            )
    return path


def _request(
    raw: Any,
    key: str,
    resource: str,
    context: tuple[str, ...],
    method: str,
    *,
    job_path: bool = True,
    keys: tuple[str, ...] = REQUEST_KEYS,
) -> dict | JobRequestSpec:
    value = _mapping(raw, f"{KEY}.{key}", resource, keys)
    if job_path:
        _job_path(value.get("path"), f"{key}.path", resource)
    method = str(value.get("method", method)).upper()
    if method not in HTTP_METHODS:
        raise Invalid(
            f"unknown method {value.get('method')!r}; {allowed(HTTP_METHODS)}",
            resource=resource,
            key=f"{KEY}.{key}.method",
        )
    for part in ("params", "headers"):
        if not isinstance(value.get(part, {}), dict):
            raise Invalid("must be a mapping", resource=resource, key=f"{KEY}.{key}.{part}")
    _templates(
        {k: value.get(k) for k in ("path", "params", "json", "headers")}, key, resource, context
    )
    fields = {
        "path": value["path"],
        "method": method,
        "params": value.get("params") or {},
        "body": value.get("json"),
        "headers": {k: str(v) for k, v in (value.get("headers") or {}).items()},
    }
    return fields if keys is POLL_KEYS else JobRequestSpec(**fields)


def _poll(raw: Any, resource: str, context: tuple[str, ...]) -> PollSpec:
    fields = _request(raw, "poll", resource, context, "GET", keys=POLL_KEYS)
    seconds = {}
    for key, default in (("interval", 5.0), ("timeout", 3600.0)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise Invalid(
                "must be a number of seconds above 0", resource=resource, key=f"{KEY}.poll.{key}"
            )
        seconds[key] = float(value)
    if seconds["timeout"] < seconds["interval"]:
        raise Invalid(
            f"{seconds['timeout']:g} s is shorter than poll.interval ({seconds['interval']:g} s)",
            resource=resource,
            key=f"{KEY}.poll.timeout",
        )
    return PollSpec(**fields, **seconds)


def _download(raw: Any, resource: str, context: tuple[str, ...]) -> DownloadSpec:
    value = _mapping(raw, f"{KEY}.download", resource, DOWNLOAD_KEYS)
    kinds = [k for k in ("urls", "path") if value.get(k) is not None]
    if len(kinds) != 1:
        raise Invalid(
            "needs exactly one of urls (a template giving one URL or a list) or path",
            resource=resource,
            key=f"{KEY}.download",
        )
    kind = kinds[0]
    if kind == "urls":
        location = _template(value["urls"], "download.urls", resource, context)
    else:
        location = _job_path(value["path"], "download.path", resource)
        _templates(location, "download.path", resource, context)
    fmt = value.get("response_format", "csv")
    if fmt not in DOWNLOAD_FORMATS:
        raise Invalid(
            f"unknown format {fmt!r}; {allowed(DOWNLOAD_FORMATS)}",
            resource=resource,
            key=f"{KEY}.download.response_format",
        )
    compression = value.get("compression", "auto")
    if compression not in COMPRESSIONS:
        raise Invalid(
            f"unknown compression {compression!r}; {allowed(COMPRESSIONS)}",
            resource=resource,
            key=f"{KEY}.download.compression",
        )
    return DownloadSpec(kind=kind, location=location, response_format=fmt, compression=compression)


def check_job_parents(resources: Iterable[ResourceSpec]) -> None:
    """A resource with an async job has no children: its rows arrive in files, not pages
    dlt's `rest_api` can resolve a child's path against."""
    jobs = {r.name for r in resources if r.async_job is not None}
    for resource in resources:
        if resource.parent in jobs:
            raise Invalid(
                f"its parent '{resource.parent}' is read by an async job, which cannot be a"
                " parent; create one job per row of another resource instead",
                resource=resource.name,
                key="endpoint.path",
            )

"""Airbyte's `AsyncRetriever` into restsync's `endpoint.async_job`.

The creation request becomes `create`, the id the polling path reads from
`creation_response` becomes `job_id` (and `{job_id}` in the poll, abort and download
paths), the status extractor and `status_mapping` become `status` and its `done`,
`failed`, `skipped` lists, and the download target extractor (or the download path) and
the download decoder become `download`. A `DatetimeBasedCursor` becomes the endpoint's
`incremental` (one job from the cursor to now, its bounds `window.start`/`window.end` in the
creation request), a `SubstreamPartitionRouter` a parent (one job per parent row, `parent`
in the creation request). Everything else drops the stream (`Unsupported`).
"""

from __future__ import annotations

import re
from typing import Any

from restsync_assets.importers.airbyte import components as c
from restsync_assets.importers.airbyte.build import StreamBuild, component_type, convert
from restsync_assets.importers.airbyte.errors import Unsupported
from restsync_assets.importers.airbyte.templates import (
    jinja_text,
    request_text,
    request_value,
    static,
)
from restsync_assets.specs.template_functions import format_datetime

_BLOCK = re.compile(r"\{\{(.*?)\}\}", re.S)
_KEY = r"(?:\.(\w+)|\[\s*['\"]([^'\"]+)['\"]\s*\])"
#: `creation_response['id']` (also under `stream_slice.extra_fields`): the job's id
_CREATION_REF = re.compile(
    r"\s*(?:stream_slice\s*(?:\.extra_fields|\[\s*['\"]extra_fields['\"]\s*\])\s*"
    r"(?:\.creation_response|\[\s*['\"]creation_response['\"]\s*\])|creation_response)"
    + _KEY
    + r"\s*"
)
_DOWNLOAD_TARGET = re.compile(r"\s*\{\{\s*download_target\s*\}\}\s*")
#: `stream_interval.start_time`, `stream_slice['end_time']`: a bound of the job's window
_WINDOW_REF = re.compile(
    r"\b(?:stream_interval|stream_slice)\s*"
    r"(?:\.(start_time|end_time)\b|\[\s*['\"](start_time|end_time)['\"]\s*\])"
)
#: AsyncRetriever fields restsync has no equivalent of: set, they drop the stream
UNSUPPORTED_KEYS = ("download_target_requester",)
#: the DatetimeBasedCursor keys the job's creation request sends itself
_WINDOW_KEYS = ("start_time_option", "end_time_option", "end_datetime")


def async_retriever(retriever: dict, stream: dict, build: StreamBuild) -> None:
    """Write `endpoint.async_job` of `stream` (an AsyncRetriever) into `build`."""
    for key in UNSUPPORTED_KEYS:
        if retriever.get(key):
            raise Unsupported(f"AsyncRetriever.{key} has no restsync equivalent")
    if stream.get("incremental_sync"):
        _incremental(stream["incremental_sync"], build)
    paginator = retriever.get("download_paginator")
    if paginator and component_type(paginator) != "NoPagination":
        raise Unsupported("AsyncRetriever.download_paginator: restsync downloads whole files")
    create = _request(retriever.get("creation_requester") or {}, build, "creation_requester")
    _window_options(stream.get("incremental_sync"), create, build)
    poll, id_key = _job_request(retriever.get("polling_requester") or {}, build, "polling")
    if id_key is None:
        raise Unsupported("polling_requester: its path names no creation_response field")
    job: dict[str, Any] = {"create": create, "job_id": "{{ " + _response([id_key]) + " }}"}
    poll.update(_timeout(retriever, build))
    job["poll"] = poll
    job.update(_statuses(retriever, build))
    job["download"] = _download(retriever, build, id_key)
    if retriever.get("abort_requester"):
        job["abort"] = _job_request(retriever["abort_requester"], build, "abort", id_key)[0]
    if retriever.get("delete_requester"):
        build.loss("delete_requester: the job is not deleted after its download")
    if retriever.get("failed_retry_wait_time_in_seconds"):
        build.loss("a failed job fails the run (Airbyte creates it again later)")
    build.endpoint["async_job"] = job


def _request(requester: dict, build: StreamBuild, what: str) -> dict[str, Any]:
    """`create`'s request: path relative to the base URL, method, params, json, headers
    (values fixed at import: config baked in, secrets as `{secret: ...}`)."""
    _check_requester(requester, build, what)
    path = requester.get("path") or ""
    if build.scope.partitions:  # a child: `{resources.<parent>.<key>}` binds it per parent
        path = request_text(str(path), build.scope, f"{what}.path")
        if "{resources." not in str(path):
            raise Unsupported(
                "AsyncRetriever with a parent: the creation path names no parent key"
                " (restsync binds an async job to its parent through that path)"
            )
    out: dict[str, Any] = {"path": _relative(static(path, build.scope, what))}
    out.update(_options(requester, build, what, create=True))
    return out


def _incremental(cursor: dict, build: StreamBuild) -> None:
    """A DatetimeBasedCursor: the endpoint's `incremental` (one job from the cursor to now);
    its request options and end go into the creation request (`_window_options`)."""
    if component_type(cursor, "DatetimeBasedCursor") != "DatetimeBasedCursor":
        raise Unsupported(
            f"AsyncRetriever with a {cursor.get('type')} (restsync: a datetime cursor)"
        )
    plain = {k: v for k, v in cursor.items() if k not in _WINDOW_KEYS}
    build.endpoint["incremental"] = c.datetime_cursor(plain, build)
    build.scope.incremental = True
    fmt = static(cursor.get("datetime_format"), build.scope, "datetime_format")
    end = cursor.get("end_datetime")
    if isinstance(end, dict):
        end = end.get("datetime")
    build.window = {
        "start": f"format_datetime(window.start, {fmt!r})",
        "end": (
            repr(format_datetime(static(end, build.scope, "end_datetime"), fmt))
            if end
            else f"format_datetime(window.end, {fmt!r})"
        ),
    }
    if end:
        build.loss("end_datetime is sent as the end of every job (Airbyte: until now at most)")


def _window_options(cursor: dict | None, create: dict[str, Any], build: StreamBuild) -> None:
    """The cursor's `start_time_option` / `end_time_option` as the creation request's
    params, JSON body fields or headers (the window's bounds)."""
    for key, bound in (("start_time_option", "start"), ("end_time_option", "end")):
        option = (cursor or {}).get(key)
        if not option:
            continue
        where, name = c.option_field(option, build, key)
        target = {"request_parameter": "params", "body_json": "json", "header": "headers"}
        if where not in target:
            raise Unsupported(f"{key} in {where} (restsync's job request: query, JSON, header)")
        create.setdefault(target[where], {})[name] = "{{ " + build.window[bound] + " }}"


def _job_request(
    requester: dict, build: StreamBuild, what: str, id_key: str | None = None
) -> tuple[dict[str, Any], str | None]:
    """A poll or abort request, its path's `creation_response` field as `{job_id}`; and
    that field (it must be `id_key` when given)."""
    _check_requester(requester, build, f"{what}_requester")
    path, found = _job_path(str(requester.get("path") or ""), build, f"{what}_requester.path")
    if id_key is not None and found not in (None, id_key):
        raise Unsupported(
            f"{what}_requester.path reads creation_response.{found}, the poll reads {id_key}"
        )
    out: dict[str, Any] = {"path": path, **_options(requester, build, f"{what}_requester")}
    return out, found or id_key


def _check_requester(requester: dict, build: StreamBuild, what: str) -> None:
    if component_type(requester, "HttpRequester") != "HttpRequester":
        raise Unsupported(f"{what} {requester.get('type')} has no restsync equivalent")
    base = str(static(requester.get("url_base"), build.scope, f"{what}.url_base")).rstrip("/")
    if build.base_url is None:
        build.base_url = base
        if requester.get("authenticator"):
            build.auth = convert(
                c.AUTHENTICATORS, requester["authenticator"], build, "authenticator"
            )
        handler = requester.get("error_handler") or {}
        build.resource["error_handler"] = convert(
            c.ERROR_HANDLERS, handler, build, "error_handler", "DefaultErrorHandler"
        )
    elif base != build.base_url:
        raise Unsupported(f"{what}.url_base differs from the creation's (restsync: one base URL)")


def _options(
    requester: dict, build: StreamBuild, what: str, create: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    method = str(static(requester.get("http_method", "GET"), build.scope, what)).upper()
    out["method"] = method
    for airbyte_key, key in (
        ("request_parameters", "params"),
        ("request_body_json", "json"),
        ("request_headers", "headers"),
    ):
        value = requester.get(airbyte_key)
        if value and not isinstance(value, dict):
            raise Unsupported(f"{what}.{airbyte_key} given as one template (restsync: a mapping)")
        if value:
            out[key] = {
                k: _fixed(v, build, f"{what}.{airbyte_key}.{k}", create) for k, v in value.items()
            }
    if requester.get("request_body_data"):
        raise Unsupported(f"{what}.request_body_data: restsync's job requests send JSON")
    return out


def _fixed(value: Any, build: StreamBuild, what: str, create: bool = False) -> Any:
    """A request value known at import time (or a whole secret); in the creation request
    also a template over the job's window or parent row; anything else drops."""
    if isinstance(value, dict):
        return {k: _fixed(v, build, f"{what}.{k}", create) for k, v in value.items()}
    if create and isinstance(value, str) and _runs(value, build):
        return _job_template(value, build, what)
    if isinstance(value, str) and "{{" in value:
        converted = request_value(value, build.scope, what)
        if isinstance(converted, str) and "{" in converted.replace("{{", "").replace("}}", ""):
            raise Unsupported(f"{what}: {value!r} needs a run-time value (restsync: a literal)")
        return (
            converted.replace("{{", "{").replace("}}", "}")
            if isinstance(converted, str)
            else converted
        )
    return value


def _runs(value: str, build: StreamBuild) -> bool:
    """Whether a creation request value reads the window or the parent row."""
    return bool(
        _WINDOW_REF.search(value) or (build.scope.partitions and "stream_partition" in value)
    )


def _job_template(value: str, build: StreamBuild, what: str) -> str:
    """restsync's Jinja of a creation request value: the window's bounds as
    `window.start`/`window.end` in the cursor's format, the parent's fields as `parent[...]`."""

    def bound(match: re.Match[str]) -> str:
        if build.window is None:
            raise Unsupported(f"{what}: {match.group(0)} without a DatetimeBasedCursor")
        return build.window["start" if "start" in match.group(0) else "end"]

    allowed = frozenset({"window", "parent"} if build.scope.partitions else {"window"})
    return jinja_text(_WINDOW_REF.sub(bound, value), build.scope, what, allowed, "record")


def _job_path(text: str, build: StreamBuild, what: str) -> tuple[str, str | None]:
    """`text` with `{{ creation_response.<field> }}` as `{job_id}`; and that field."""
    fields: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        ref = _CREATION_REF.fullmatch(match.group(1))
        if ref:
            fields.add(next(g for g in ref.groups() if g))
            return "{job_id}"
        return str(static(match.group(0), build.scope, what))

    path = _BLOCK.sub(replace, text)
    if len(fields) > 1:
        raise Unsupported(f"{what} reads several creation_response fields (restsync: one job_id)")
    return _relative(path), next(iter(fields), None)


def _relative(path: Any) -> str:
    return str(path).lstrip("/")


def _response(path: list[str]) -> str:
    """restsync's Jinja for the answer's field at `path`."""
    return "response" + "".join(f"[{p!r}]" for p in path)


def _field_path(extractor: dict, build: StreamBuild, what: str) -> list[str]:
    if component_type(extractor, "DpathExtractor") != "DpathExtractor":
        raise Unsupported(f"{what} {extractor.get('type')} has no restsync equivalent")
    path = [str(static(p, build.scope, what)) for p in extractor.get("field_path") or []]
    if any("*" in p for p in path):
        raise Unsupported(f"{what}: a wildcard in {path} (restsync: one field)")
    return path


def _timeout(retriever: dict, build: StreamBuild) -> dict[str, float]:
    """Airbyte polls every 5 s for at most `polling_job_timeout` minutes (60 by default)."""
    minutes = static(retriever.get("polling_job_timeout") or 60, build.scope, "polling_job_timeout")
    return {"interval": 5, "timeout": float(minutes) * 60}


def _statuses(retriever: dict, build: StreamBuild) -> dict[str, Any]:
    path = _field_path(retriever.get("status_extractor") or {}, build, "status_extractor")
    if not path:
        raise Unsupported("status_extractor without a field_path (restsync: one field)")
    mapping = retriever.get("status_mapping") or {}
    out: dict[str, Any] = {"status": "{{ " + _response(path) + " }}"}
    lists = {
        "done": mapping.get("completed") or [],
        "failed": [*(mapping.get("failed") or []), *(mapping.get("timeout") or [])],
        "skipped": mapping.get("skipped") or [],
    }
    if not lists["done"]:
        raise Unsupported("status_mapping without a completed status")
    out.update({k: [str(s) for s in v] for k, v in lists.items() if v})
    build.loss("a status in no list of status_mapping keeps the job polling (Airbyte fails on it)")
    return out


def _download(retriever: dict, build: StreamBuild, id_key: str) -> dict[str, Any]:
    requester = retriever.get("download_requester") or {}
    if component_type(requester, "HttpRequester") != "HttpRequester":
        raise Unsupported(f"download_requester {requester.get('type')} has no restsync equivalent")
    base, path = str(requester.get("url_base") or ""), str(requester.get("path") or "")
    target = _DOWNLOAD_TARGET.fullmatch(base) or _DOWNLOAD_TARGET.fullmatch(path)
    if target:
        extractor = retriever.get("download_target_extractor")
        if not extractor:
            raise Unsupported("download_target without a download_target_extractor")
        urls = _field_path(extractor, build, "download_target_extractor")
        download: dict[str, Any] = {"urls": "{{ " + _response(urls) + " }}"}
        if path and not _DOWNLOAD_TARGET.fullmatch(path):
            raise Unsupported("download_requester: a path after the download_target URL")
    else:
        request, _ = _job_request(requester, build, "download", id_key)
        if request.get("method") != "GET" or set(request) - {"path", "method"}:
            raise Unsupported("download_requester: restsync downloads with a plain GET")
        download = {"path": request["path"]}
    decoder = (
        retriever.get("download_decoder") or retriever.get("decoder") or {"type": "JsonDecoder"}
    )
    fmt, compression = convert(c.DOWNLOAD_DECODERS, decoder, build, "download_decoder")
    download.update(response_format=fmt, compression=compression)
    selector = _records_path(retriever, build)
    if selector and fmt != "json":
        raise Unsupported(f"records under {'.'.join(selector)!r} of a {fmt} file")
    if selector:
        build.endpoint["data_selector"] = ".".join(selector)
    return download


def _records_path(retriever: dict, build: StreamBuild) -> list[str]:
    """Where the records are in a downloaded JSON file (download_extractor, else the
    record selector's extractor)."""
    selector = retriever.get("record_selector") or {}
    if component_type(selector, "RecordSelector") != "RecordSelector":
        raise Unsupported(f"record selector {selector.get('type')} has no restsync equivalent")
    if selector.get("record_filter"):
        convert(c.RECORD_FILTERS, selector["record_filter"], build, "record_filter", "RecordFilter")
    extractor = retriever.get("download_extractor") or selector.get("extractor") or {}
    return _field_path(extractor, build, "download_extractor")

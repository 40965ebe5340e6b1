"""One Airbyte `DeclarativeStream` into one restsync resource (or the reason it cannot be)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from restsync_assets.importers.airbyte import components as c
from restsync_assets.importers.airbyte.async_jobs import async_retriever
from restsync_assets.importers.airbyte.build import StreamBuild, component_type, convert
from restsync_assets.importers.airbyte.config import Config
from restsync_assets.importers.airbyte.errors import Unsupported
from restsync_assets.importers.airbyte.templates import Scope, request_text, request_value, static

#: HttpRequester fields restsync has no equivalent of: set in a manifest, they drop the stream
UNSUPPORTED_REQUESTER_KEYS = (
    "request_body",
    "query_properties",
    "fetch_properties_from_endpoint",
    "url",
)


def convert_stream(stream: dict, config: Config, manifest_dir: Path | None) -> StreamBuild:
    """The restsync resource of `stream`; raises `Unsupported` when it cannot be expressed."""
    kind = component_type(stream, "DeclarativeStream")
    if kind != "DeclarativeStream":
        raise Unsupported(f"{kind} streams have no restsync equivalent")
    name = stream.get("name")
    scope = Scope(config, manifest_dir=manifest_dir)
    build = StreamBuild(name, scope)
    build.resource["name"] = name
    retriever = stream.get("retriever") or {}
    retriever_kind = component_type(retriever, "SimpleRetriever")
    if retriever_kind == "AsyncRetriever":
        _async_parent(retriever, stream, build)
        async_retriever(retriever, stream, build)
        return _finish(stream, build)
    if retriever_kind != "SimpleRetriever":
        raise Unsupported(
            f"{retriever_kind} (restsync reads with one request sequence per partition)"
        )
    router = retriever.get("partition_router")
    if isinstance(router, dict) and component_type(router) == "ListPartitionRouter":
        _list_partitions(router, build)
    else:
        scope.partitions, parent = partition_levels(stream)
        if parent:
            _parent_request_option(stream, build)
    if stream.get("incremental_sync"):
        build.endpoint["incremental"] = convert(
            c.INCREMENTAL_SYNCS, stream["incremental_sync"], build, "incremental_sync"
        )
        scope.incremental = True
    _requester(retriever.get("requester") or {}, build)
    _selector(retriever.get("record_selector") or {}, build)
    if retriever.get("paginator"):
        build.endpoint["paginator"] = convert(
            c.PAGINATORS, retriever["paginator"], build, "paginator", "NoPagination"
        )
    else:
        build.endpoint["paginator"] = "single_page"
    decoder = retriever.get("decoder") or (retriever.get("requester") or {}).get("decoder")
    if decoder:
        fmt = convert(c.DECODERS, decoder, build, "decoder")
        if fmt != "json":
            build.endpoint["response_format"] = fmt
            selector = build.endpoint.pop("data_selector", None)
            if selector not in (None, "$"):
                raise Unsupported(f"records under {selector!r} of a {fmt} body")
    return _finish(stream, build)


def _finish(stream: dict, build: StreamBuild) -> StreamBuild:
    """The parts every retriever shares: transformations, schema, keys."""
    for transformation in stream.get("transformations") or []:
        convert(c.TRANSFORMATIONS, transformation, build, "transformation")
    if stream.get("schema_loader"):
        loader = stream["schema_loader"]
        for item in loader if isinstance(loader, list) else [loader]:
            convert(c.SCHEMA_LOADERS, item, build, "schema_loader")
    _keys(stream, build)
    return build


def partition_levels(stream: dict) -> tuple[list[dict[str, tuple[str, str]]], str | None]:
    """The stream's partition fields by level (its parent's first, then the grandparent's),
    and its parent stream's name."""
    router = (stream.get("retriever") or {}).get("partition_router")
    if not router:
        return [], None
    routers = router if isinstance(router, list) else [router]
    if len(routers) != 1:
        raise Unsupported("several partition routers (restsync: one parent per resource)")
    kind = component_type(routers[0])
    if kind == "ListPartitionRouter":  # a listed parent: its value is a column of its rows
        field = routers[0].get("cursor_field")
        if not isinstance(field, str) or "{" in field:
            raise Unsupported("a ListPartitionRouter without a fixed cursor_field")
        return [{field: (stream.get("name"), field)}], None
    if kind != "SubstreamPartitionRouter":
        raise Unsupported(f"partition router {kind} has no restsync equivalent")
    configs = routers[0].get("parent_stream_configs") or []
    if len(configs) != 1:
        raise Unsupported(
            "a SubstreamPartitionRouter with several parent_stream_configs (restsync reads a"
            " child from one parent resource; write one child resource per parent by hand)"
        )
    cfg = configs[0]
    parent = cfg.get("stream") or {}
    parent_name, key, field = parent.get("name"), cfg.get("parent_key"), cfg.get("partition_field")
    if not (parent_name and key and field):
        raise Unsupported(
            "a parent stream config without stream name, parent_key or partition_field"
        )
    above, _ = partition_levels(parent)
    return [{str(field): (parent_name, str(key))}, *above], parent_name


def _list_partitions(router: dict, build: StreamBuild) -> None:
    """ListPartitionRouter: restsync's `for_each` (the value kept as a column)."""
    field = str(static(router.get("cursor_field"), build.scope, "cursor_field"))
    values = static(router.get("values"), build.scope, "values")
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",")]
    for_each: dict[str, Any] = {"field": field, "values": list(values)}
    option = router.get("request_option")
    if option:
        where, name = c.option_field(option, build, "request_option")
        if where != "request_parameter":
            raise Unsupported(
                f"ListPartitionRouter: the value in {where} (restsync: path or query)"
            )
        for_each["param"] = name
    build.resource["for_each"] = for_each
    build.scope.listed = field


def _async_parent(retriever: dict, stream: dict, build: StreamBuild) -> None:
    """An AsyncRetriever's SubstreamPartitionRouter: a parent (one job per parent row)."""
    router = retriever.get("partition_router")
    if not router:
        return
    routers = router if isinstance(router, list) else [router]
    if len(routers) == 1 and component_type(routers[0]) == "ListPartitionRouter":
        raise Unsupported(
            "AsyncRetriever with a ListPartitionRouter (restsync: no for_each on an async job)"
        )
    build.scope.partitions, _ = partition_levels(stream)
    cfg = (routers[0].get("parent_stream_configs") or [{}])[0]
    if cfg.get("request_option"):
        raise Unsupported(
            "AsyncRetriever: the parent key as a request_option (restsync binds an async job"
            " to its parent through the creation path)"
        )
    _parent_request_option(stream, build)


def _parent_request_option(stream: dict, build: StreamBuild) -> None:
    router = stream["retriever"]["partition_router"]
    cfg = (router[0] if isinstance(router, list) else router)["parent_stream_configs"][0]
    if cfg.get("incremental_dependency"):
        build.loss(
            "incremental_dependency: every run reads all parents (an incremental child keeps one cursor per parent)"
        )
    option = cfg.get("request_option")
    parent, key = cfg["stream"]["name"], str(cfg["parent_key"])
    build.resource["_parent"] = parent
    if option:
        where, name = c.option_field(option, build, "request_option")
        if where != "request_parameter":
            raise Unsupported(f"the parent key in {where} (restsync: path or query param)")
        build.params()[name] = {"type": "resolve", "resource": parent, "field": key}


def _requester(requester: dict, build: StreamBuild) -> None:
    kind = component_type(requester, "HttpRequester")
    if kind != "HttpRequester":
        raise Unsupported(f"requester {kind} has no restsync equivalent")
    for key in UNSUPPORTED_REQUESTER_KEYS:
        if requester.get(key):
            raise Unsupported(f"HttpRequester.{key} has no restsync equivalent")
    scope = build.scope
    build.base_url = str(static(requester.get("url_base"), scope, "url_base")).rstrip("/")
    path = request_text(str(requester.get("path") or ""), scope, "path")
    build.endpoint["path"] = path if str(path).startswith("/") or not path else f"/{path}"
    method = str(static(requester.get("http_method", "GET"), scope, "http_method")).upper()
    if method != "GET":
        build.endpoint["method"] = method
    params = requester.get("request_parameters") or {}
    if not isinstance(params, dict):
        raise Unsupported("request_parameters given as one template (restsync: a mapping)")
    for key, value in params.items():
        build.params()[key] = request_value(value, scope, f"request_parameters.{key}")
    headers = requester.get("request_headers") or {}
    if not isinstance(headers, dict):
        raise Unsupported("request_headers given as one template (restsync: a mapping)")
    if headers:
        build.endpoint["headers"] = {
            k: request_value(v, scope, f"request_headers.{k}") for k, v in headers.items()
        }
    for airbyte_key, key in (("request_body_json", "json"), ("request_body_data", "data")):
        body = requester.get(airbyte_key)
        if body:
            if not isinstance(body, dict):
                raise Unsupported(f"{airbyte_key} given as one template (restsync: a mapping)")
            build.endpoint[key] = request_value(body, scope, airbyte_key)
    if requester.get("authenticator"):
        build.auth = convert(c.AUTHENTICATORS, requester["authenticator"], build, "authenticator")
    if requester.get("error_handler"):
        build.resource["error_handler"] = convert(
            c.ERROR_HANDLERS,
            requester["error_handler"],
            build,
            "error_handler",
            "DefaultErrorHandler",
        )
    else:
        build.resource["error_handler"] = c.default_error_handler({}, build)


def _selector(selector: dict, build: StreamBuild) -> None:
    if component_type(selector, "RecordSelector") != "RecordSelector":
        raise Unsupported(f"record selector {selector.get('type')} has no restsync equivalent")
    extractor = selector.get("extractor") or {}
    if component_type(extractor, "DpathExtractor") != "DpathExtractor":
        raise Unsupported(f"extractor {extractor.get('type')} has no restsync equivalent")
    if extractor.get("record_expander"):
        raise Unsupported("DpathExtractor.record_expander has no restsync equivalent")
    if selector.get("transform_before_filtering"):
        build.loss("transform_before_filtering: restsync filters rows before transforming them")
    path = [str(static(p, build.scope, "field_path")) for p in extractor.get("field_path") or []]
    build.endpoint["data_selector"] = ".".join(path) if path else "$"
    if selector.get("record_filter"):
        convert(c.RECORD_FILTERS, selector["record_filter"], build, "record_filter", "RecordFilter")
    if selector.get("schema_normalization") not in (None, "None", "NoneTypeTransformer"):
        build.loss(
            "schema_normalization: values land as the API sends them (typed by the schema's column hints)"
        )


def _keys(stream: dict, build: StreamBuild) -> None:
    key = stream.get("primary_key")
    if isinstance(key, list):
        flat = [k[0] if isinstance(k, list) and len(k) == 1 else k for k in key]
        if any(not isinstance(k, str) for k in flat):
            raise Unsupported(f"a nested primary key {key} (restsync: top-level fields)")
        key = flat[0] if len(flat) == 1 else flat
    if key:
        build.resource["primary_key"] = key
        build.resource["write_disposition"] = "merge"
    else:
        incremental = "incremental" in build.endpoint
        build.resource["write_disposition"] = "append" if incremental else "replace"

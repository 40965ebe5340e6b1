"""One converter per Airbyte component type, in tables by role (as Airbyte's
`ModelToComponentFactory` maps each model to the function that builds it).

A converter takes the component (references resolved, parameters filled in) and the
`StreamBuild` of its stream, and writes restsync's equivalent into it; what it cannot
express raises `Unsupported`, which drops the stream with that reason, and what it can
only approximate is recorded with `build.loss(...)`.
"""

from __future__ import annotations

import re
from typing import Any

from restsync_assets.importers.airbyte.build import StreamBuild, component_type, convert
from restsync_assets.importers.airbyte.config import CONFIG_REF
from restsync_assets.importers.airbyte.errors import Unsupported
from restsync_assets.importers.airbyte.templates import (
    PAGINATOR_VARIABLES,
    jinja_text,
    request_value,
    static,
    whole_secret,
)

# --------------------------------------------------------------------------- authenticators


def _secret(value: Any, build: StreamBuild, what: str, fallback: str) -> dict[str, str]:
    """`{secret: <field>}` for a config field, secret or not (restsync's auth reads its
    credentials from env vars only); `{secret: <fallback>}` when the manifest gives none."""
    if value in (None, ""):
        return build.scope.config.secret_ref(fallback).model_dump()
    inner = (
        re.fullmatch(r"\s*\{\{\s*(.*?)\s*\}\}\s*", value, re.S) if isinstance(value, str) else None
    )
    ref = CONFIG_REF.fullmatch(inner.group(1)) if inner else None
    if ref is None:
        raise Unsupported(
            f"{what}: {value!r} is not one config field (restsync reads a credential whole,"
            " from one env var)"
        )
    return build.scope.config.secret(ref).model_dump()


def api_key_auth(node: dict, build: StreamBuild) -> dict:
    option = node.get("inject_into") or {"inject_into": "header", "field_name": node.get("header")}
    where = option.get("inject_into", "header")
    name = static(
        option.get("field_name") or node.get("header") or "Authorization", build.scope, "auth"
    )
    token = node.get("api_token", "")
    bearer = re.fullmatch(r"\s*Bearer\s+(\{\{.*\}\})\s*", str(token), re.S)
    if bearer and where == "header" and str(name).lower() == "authorization":
        return {"type": "bearer", "token": _secret(bearer.group(1), build, "api_token", "token")}
    locations = {"header": "header", "request_parameter": "query"}
    if where not in locations:
        raise Unsupported(f"ApiKeyAuthenticator: the key in {where} (restsync: header or query)")
    key = _secret(token, build, "ApiKeyAuthenticator.api_token", "api_key")
    return {"type": "api_key", "name": name, "location": locations[where], "api_key": key}


def bearer_auth(node: dict, build: StreamBuild) -> dict:
    return {
        "type": "bearer",
        "token": _secret(node.get("api_token"), build, "BearerAuthenticator.api_token", "token"),
    }


def basic_auth(node: dict, build: StreamBuild) -> dict:
    username = node.get("username")
    secret_user = whole_secret(username, build.scope) if isinstance(username, str) else None
    user: Any = (
        secret_user.model_dump() if secret_user else static(username, build.scope, "username")
    )
    password = node.get("password")
    if password in (None, ""):
        raise Unsupported(
            "BasicHttpAuthenticator without a password (restsync's http_basic needs one)"
        )
    return {
        "type": "http_basic",
        "username": user,
        "password": _secret(password, build, "BasicHttpAuthenticator.password", "password"),
    }


#: OAuthAuthenticator fields restsync's oauth2 has no key for
_OAUTH_UNSUPPORTED = ("profile_assertion", "use_profile_assertion")
_BASIC_HEADER = re.compile(r"\s*Basic\s+\{\{.*base64encode.*\}\}\s*", re.S)


def oauth_auth(node: dict, build: StreamBuild) -> dict:
    for key in _OAUTH_UNSUPPORTED:
        if node.get(key):
            raise Unsupported(f"OAuthAuthenticator.{key}: restsync's oauth2 has no such option")
    grant = static(node.get("grant_type", "refresh_token"), build.scope, "grant_type")
    auth: dict[str, Any] = {
        "type": "oauth2",
        "token_url": static(
            node.get("token_refresh_endpoint"), build.scope, "token_refresh_endpoint"
        ),
        "client_id": _secret(node.get("client_id"), build, "client_id", "client_id"),
        "client_secret": _secret(
            node.get("client_secret"), build, "client_secret", "client_secret"
        ),
    }
    if grant == "refresh_token":
        auth["refresh_token"] = _secret(
            node.get("refresh_token"), build, "refresh_token", "refresh_token"
        )
    elif grant != "client_credentials":
        auth["grant_type"] = grant
    if node.get("scopes"):
        auth["scopes"] = [static(s, build.scope, "scopes") for s in node["scopes"]]
    auth.update(_token_request(node, build))
    if "refresh_token_updater" in node:
        build.loss(
            "refresh_token_updater: a rotated refresh token is used for the rest of the run, not written back to the config"
        )
    return auth


def _token_request(node: dict, build: StreamBuild) -> dict[str, Any]:
    """restsync's token-request options of an OAuthAuthenticator (body, headers, fields)."""
    out: dict[str, Any] = {}
    body = node.get("refresh_request_body") or {}
    if body:
        out["token_request_body"] = request_value(body, build.scope, "refresh_request_body")
    headers = node.get("refresh_request_headers") or {}
    for name, value in headers.items():
        if str(name).lower() != "authorization" or not _BASIC_HEADER.fullmatch(str(value)):
            raise Unsupported(
                f"OAuthAuthenticator.refresh_request_headers.{name}: restsync sends no such header"
            )
        out["client_auth"] = "basic"
    if node.get("access_token_name", "access_token") != "access_token":
        out["access_token_field"] = static(
            node["access_token_name"], build.scope, "access_token_name"
        )
    expires = node.get("expires_in_name", "expires_in")
    if node.get("token_expiry_is_time_of_expiration"):
        out["expires_at_field"] = static(expires, build.scope, "expires_in_name")
        fmt = node.get("token_expiry_date_format")
        if fmt:
            out["expires_at_format"] = static(fmt, build.scope, "token_expiry_date_format")
    elif expires != "expires_in":
        out["expires_in_field"] = static(expires, build.scope, "expires_in_name")
    if node.get("token_expiry_date"):
        build.loss("token_expiry_date: restsync asks for a token when a run starts")
    return out


def session_auth(node: dict, build: StreamBuild) -> dict:
    """SessionTokenAuthenticator: restsync's `session` auth (log in, read the token)."""
    login = node.get("login_requester") or {}
    if component_type(login, "HttpRequester") != "HttpRequester":
        raise Unsupported(f"SessionTokenAuthenticator.login_requester {login.get('type')}")
    base = str(static(login.get("url_base"), build.scope, "login url_base")).rstrip("/")
    path = str(static(login.get("path") or "", build.scope, "login path"))
    request: dict[str, Any] = {"url": f"{base}/{path.lstrip('/')}" if path else base}
    request["method"] = str(
        static(login.get("http_method", "POST"), build.scope, "http_method")
    ).upper()
    for airbyte_key, key in (
        ("request_body_json", "json"),
        ("request_body_data", "data"),
        ("request_parameters", "params"),
        ("request_headers", "headers"),
    ):
        if login.get(airbyte_key):
            request[key] = request_value(login[airbyte_key], build.scope, f"login.{airbyte_key}")
    token_path = node.get("session_token_path") or []
    auth: dict[str, Any] = {
        "type": "session",
        "login": request,
        "token_path": ".".join(
            str(static(p, build.scope, "session_token_path")) for p in token_path
        ),
    }
    sending = node.get("request_authentication") or {}
    if component_type(sending, "ApiKey") == "Bearer":
        auth["prefix"] = "Bearer "
    else:
        where, name = option_field(
            sending.get("inject_into") or {}, build, "request_authentication"
        )
        if where not in ("header", "request_parameter"):
            raise Unsupported(
                f"SessionTokenAuthenticator: the token in {where} (restsync: header or query)"
            )
        auth.update(location="header" if where == "header" else "query", name=name)
    if node.get("expiration_duration"):
        auth["expires_after"] = static(
            node["expiration_duration"], build.scope, "expiration_duration"
        )
    return auth


def selective_auth(node: dict, build: StreamBuild) -> dict | None:
    path = node.get("authenticator_selection_path") or []
    value: Any = build.scope.config.values
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    options = node.get("authenticators") or {}
    if value not in options:
        raise Unsupported(
            f"SelectiveAuthenticator: the config's {'.'.join(path)} ({value!r}) picks none of {sorted(options)}"
        )
    return convert(AUTHENTICATORS, options[value], build, "authenticator")


def no_auth(node: dict, build: StreamBuild) -> None:
    return None


AUTHENTICATORS = {
    "ApiKeyAuthenticator": api_key_auth,
    "BearerAuthenticator": bearer_auth,
    "BasicHttpAuthenticator": basic_auth,
    "OAuthAuthenticator": oauth_auth,
    "SelectiveAuthenticator": selective_auth,
    "SessionTokenAuthenticator": session_auth,
    "NoAuth": no_auth,
}

# --------------------------------------------------------------------------- paginators


def option_field(option: dict, build: StreamBuild, what: str) -> tuple[str, str]:
    """(inject_into, field) of a RequestOption: `field_name` or a dotted `field_path`."""
    if component_type(option, "RequestOption") != "RequestOption":
        raise Unsupported(f"{what}: {option.get('type')}")
    name = option.get("field_name")
    if name is None and option.get("field_path"):
        name = ".".join(str(static(p, build.scope, what)) for p in option["field_path"])
    return option.get("inject_into", "request_parameter"), str(static(name, build.scope, what))


def _page_size_param(node: dict, build: StreamBuild) -> str | None:
    option = node.get("page_size_option")
    if not option:
        return None
    where, name = option_field(option, build, "page_size_option")
    if where != "request_parameter":
        raise Unsupported(f"page_size_option in {where} (restsync's offset: a query param)")
    return name


def _send_page_size(node: dict, size: Any, build: StreamBuild) -> None:
    """A fixed page size in the query or a header (page number and cursor paging)."""
    option = node.get("page_size_option")
    if not option or not size:
        return
    where, name = option_field(option, build, "page_size_option")
    value = int(static(size, build.scope, "page_size"))
    if where == "request_parameter":
        build.params()[name] = value
    elif where == "header":
        build.endpoint.setdefault("headers", {})[name] = str(value)
    else:
        raise Unsupported(f"page_size_option in {where} (restsync: a query param or a header)")


def default_paginator(node: dict, build: StreamBuild) -> Any:
    strategy = node.get("pagination_strategy") or {}
    kind = component_type(strategy)
    converter = PAGINATION_STRATEGIES.get(kind)
    if converter is None:
        raise Unsupported(f"pagination strategy {kind} has no restsync equivalent")
    return converter(strategy, node, build)


def no_pagination(node: dict, build: StreamBuild) -> str:
    return "single_page"


def _in_header(paginator: dict, *options: str) -> bool:
    """Whether one of the paginator's `options` (`page_token_option`...) is a request header."""
    return any((paginator.get(name) or {}).get("inject_into") == "header" for name in options)


#: where a RequestOption injects -> the templated cursor's key that sends a cursor there
_CURSOR_TARGETS = {
    "request_parameter": "cursor_param",
    "body_json": "cursor_body_path",
    "header": "cursor_header",
}


def _cursor_target(option: dict, build: StreamBuild, what: str) -> dict[str, str]:
    """`{cursor_param | cursor_body_path | cursor_header: name}` of a page_token_option."""
    where, name = option_field(option, build, "page_token_option")
    if where not in _CURSOR_TARGETS:
        raise Unsupported(
            f"{what}: the page token in {where} (restsync: query, JSON body or header)"
        )
    return {_CURSOR_TARGETS[where]: name}


def _counted_pages(strategy: dict, paginator: dict, build: StreamBuild, first: int | None) -> dict:
    """`OffsetIncrement` (`first` None) or `PageIncrement` (`first`: `start_from_page`) as
    restsync's templated cursor, which sends the token where Airbyte does (a header too):
    the next offset adds the page's records to the `cursor` sent, the next page number adds
    1; a short or empty page ends, as Airbyte's; `inject_on_first_request` sends the first
    token (0, `start_from_page`) as `initial_cursor`."""
    what = "OffsetIncrement" if first is None else "PageIncrement"
    size = int(static(strategy.get("page_size"), build.scope, "page_size") or 0)
    start = 0 if first is None else first
    step = "(last_page | length)" if first is None else "1"
    out: dict[str, Any] = {
        "type": "cursor",
        "cursor_value": f"{{{{ (cursor or {start}) | int + {step} }}}}",
        "stop_condition": f"{{{{ (last_page | length) < {size} }}}}"
        if size > 0
        else "{{ not last_page }}",
        **_cursor_target(paginator.get("page_token_option") or {}, build, what),
    }
    inject = static(strategy.get("inject_on_first_request", False), build.scope, "inject")
    if str(inject).lower() == "true":
        out["initial_cursor"] = start
    _send_page_size(paginator, size, build)
    return out


def offset_increment(strategy: dict, paginator: dict, build: StreamBuild) -> dict:
    if _in_header(paginator, "page_token_option", "page_size_option"):
        return _counted_pages(strategy, paginator, build, None)
    size = int(static(strategy.get("page_size"), build.scope, "page_size") or 0)
    if size <= 0:
        raise Unsupported("OffsetIncrement without a page_size (restsync stops on a short page)")
    where, offset_param = option_field(
        paginator.get("page_token_option") or {}, build, "page_token_option"
    )
    limit_param = _page_size_param(paginator, build) or "limit"
    if not paginator.get("page_size_option"):
        build.loss(f"the page size {size} is sent as `limit` too (Airbyte sends no page size)")
    if where == "body_json":
        return {
            "type": "offset",
            "limit": size,
            "offset_body_path": offset_param,
            "limit_body_path": limit_param,
            "total_path": None,
        }
    if where != "request_parameter":
        raise Unsupported(f"OffsetIncrement: the offset in {where} (restsync: query or JSON body)")
    return {
        "type": "offset",
        "limit": size,
        "offset_param": offset_param,
        "limit_param": limit_param,
        "total_path": None,
    }


def page_increment(strategy: dict, paginator: dict, build: StreamBuild) -> dict:
    start = int(static(strategy.get("start_from_page", 0), build.scope, "start_from_page"))
    if _in_header(paginator, "page_token_option"):
        return _counted_pages(strategy, paginator, build, start)
    size = static(strategy.get("page_size"), build.scope, "page_size")
    where, page_param = option_field(
        paginator.get("page_token_option") or {}, build, "page_token_option"
    )
    if where != "request_parameter":
        raise Unsupported(f"PageIncrement: the page number in {where} (restsync: a query param)")
    _send_page_size(paginator, size, build)
    build.loss("pages until an empty page (Airbyte stops at a short page: one request more)")
    return {
        "type": "page_number",
        "base_page": start,
        "page_param": page_param,
        "total_path": None,
        "stop_after_empty_page": True,
    }


_LINK_NEXT = re.compile(
    r"\{\{\s*headers\[['\"]link['\"]\]\[['\"]next['\"]\]\[['\"]url['\"]\]\s*\}\}"
)


def cursor_pagination(strategy: dict, paginator: dict, build: StreamBuild) -> Any:
    value = strategy.get("cursor_value")
    option = paginator.get("page_token_option") or {"type": "RequestPath"}
    if (
        isinstance(value, str)
        and _LINK_NEXT.fullmatch(value.strip())
        and component_type(option) == "RequestPath"
    ):
        return {"type": "header_link", "links_next_key": "next"}
    out: dict[str, Any] = {
        "type": "cursor",
        "cursor_value": jinja_text(
            value, build.scope, "cursor_value", PAGINATOR_VARIABLES, "paginator"
        ),
    }
    if strategy.get("stop_condition"):
        out["stop_condition"] = jinja_text(
            strategy["stop_condition"],
            build.scope,
            "stop_condition",
            PAGINATOR_VARIABLES,
            "paginator",
        )
    if component_type(option) != "RequestPath":
        out.update(_cursor_target(option, build, "CursorPagination"))
    _send_page_size(paginator, strategy.get("page_size"), build)
    return out


PAGINATORS = {"DefaultPaginator": default_paginator, "NoPagination": no_pagination}
PAGINATION_STRATEGIES = {
    "OffsetIncrement": offset_increment,
    "PageIncrement": page_increment,
    "CursorPagination": cursor_pagination,
}

# --------------------------------------------------------------------------- error handlers

#: what Airbyte retries when no filter matches (and restsync's default retry list)
DEFAULT_RETRY = (429, 500, 502, 503, 504)


def default_error_handler(node: dict, build: StreamBuild) -> dict:
    retry, ignore, fail = set(DEFAULT_RETRY), set(), set()
    rules: list[dict[str, Any]] = []
    for flt in node.get("response_filters") or []:
        if component_type(flt, "HttpResponseFilter") != "HttpResponseFilter":
            raise Unsupported(f"response filter {flt.get('type')}")
        if flt.get("predicate") or flt.get("error_message_contains"):
            rules.append(_response_rule(flt, build))
            continue
        codes = {int(c) for c in flt.get("http_codes") or []}
        action = str(flt.get("action", "")).upper()
        {"RETRY": retry, "RATE_LIMITED": retry, "IGNORE": ignore, "FAIL": fail}.get(
            action, fail
        ).update(codes)
    handler: dict[str, Any] = {"retry_on_status_codes": sorted(retry - ignore - fail)}
    handler["max_retries"] = int(static(node.get("max_retries", 5), build.scope, "max_retries"))
    for backoff in node.get("backoff_strategies") or []:
        BACKOFF_STRATEGIES.get(component_type(backoff), _unknown_backoff)(backoff, handler, build)
    handler.setdefault("backoff_factor", 5)
    if rules:
        handler["response_rules"] = rules
    if ignore:
        actions = build.endpoint.setdefault("response_actions", [])
        actions += [{"status_code": c, "action": "ignore"} for c in sorted(ignore)]
    return handler


#: HttpResponseFilter actions -> restsync's response rule actions
_RULE_ACTIONS = {"RETRY": "retry", "RATE_LIMITED": "retry", "FAIL": "fail", "IGNORE": "ignore"}


def _response_rule(flt: dict, build: StreamBuild) -> dict[str, Any]:
    """A filter on the body (`predicate`, `error_message_contains`): a `response_rules` entry."""
    action = _RULE_ACTIONS.get(str(flt.get("action", "FAIL")).upper(), "fail")
    if flt.get("predicate"):
        allowed = frozenset({"response", "headers"})
        when = jinja_text(flt["predicate"], build.scope, "predicate", allowed, "response rule")
    else:
        text = static(flt["error_message_contains"], build.scope, "error_message_contains")
        when = "{{ " + repr(str(text)) + " in (response | string) }}"
        build.loss("error_message_contains matches the whole body, not only its error message")
    rule: dict[str, Any] = {"when": when, "action": action}
    if flt.get("http_codes"):
        rule["status_codes"] = sorted(int(c) for c in flt["http_codes"])
    return rule


def composite_error_handler(node: dict, build: StreamBuild) -> dict:
    merged: dict[str, Any] = {}
    for inner in node.get("error_handlers") or []:
        handler = convert(ERROR_HANDLERS, inner, build, "error handler", "DefaultErrorHandler")
        codes = set(merged.get("retry_on_status_codes", ())) | set(
            handler.pop("retry_on_status_codes")
        )
        rules = [*merged.pop("response_rules", ()), *handler.pop("response_rules", ())]
        merged = {**handler, **merged, "retry_on_status_codes": sorted(codes)}
        if rules:
            merged["response_rules"] = rules
    return merged


def exponential_backoff(node: dict, handler: dict, build: StreamBuild) -> None:
    handler["backoff_factor"] = float(static(node.get("factor", 5), build.scope, "factor"))


def constant_backoff(node: dict, handler: dict, build: StreamBuild) -> None:
    seconds = float(
        static(node.get("backoff_time_in_seconds"), build.scope, "backoff_time_in_seconds")
    )
    handler["backoff_factor"] = seconds
    build.loss(f"constant backoff of {seconds}s becomes exponential backoff from {seconds}s")


def header_backoff(node: dict, handler: dict, build: StreamBuild) -> None:
    if str(node.get("header", "")).lower() != "retry-after" or node.get("regex"):
        build.loss(
            f"wait time from header {node.get('header')!r}: restsync honours Retry-After only"
        )


def _unknown_backoff(node: dict, handler: dict, build: StreamBuild) -> None:
    build.loss(f"backoff strategy {node.get('type')}: restsync's exponential backoff instead")


ERROR_HANDLERS = {
    "DefaultErrorHandler": default_error_handler,
    "CompositeErrorHandler": composite_error_handler,
}
BACKOFF_STRATEGIES = {
    "ExponentialBackoffStrategy": exponential_backoff,
    "ConstantBackoffStrategy": constant_backoff,
    "WaitTimeFromHeader": header_backoff,
}

# --------------------------------------------------------------------------- incremental syncs


def _start_option(option: Any, build: StreamBuild, what: str) -> str | None:
    if not option:
        return None
    where, name = option_field(option, build, what)
    if where != "request_parameter":
        raise Unsupported(
            f"{what} in {where} (restsync: a query param, or a placeholder in params)"
        )
    return name


#: `{{ day_delta(-30) }}`, `{{ now_utc() }}`, `{{ today_utc() }}` (an optional format after)
_RELATIVE_START = re.compile(
    r"\s*\{\{\s*(?:day_delta\(\s*(?P<days>-?\d+)\s*(?:,[^)]*)?\)|(?P<kind>now|today)_utc\(\s*\)"
    r"(?:\.strftime\([^)]*\))?)\s*\}\}\s*"
)
#: Airbyte's epoch datetime formats -> restsync's `param_format`
_EPOCH_FORMATS = {"%s": "epoch", "%ms": "epoch_ms"}


def datetime_cursor(node: dict, build: StreamBuild) -> dict:
    start = node.get("start_datetime")
    if isinstance(start, dict):
        start = start.get("datetime")
    fmt = static(node.get("datetime_format"), build.scope, "datetime_format")
    incremental: dict[str, Any] = {
        "cursor_path": static(node.get("cursor_field"), build.scope, "cursor_field"),
        "initial_value": _start_value(start, fmt, build),
    }
    record_formats = node.get("cursor_datetime_formats") or [fmt]
    if fmt in _EPOCH_FORMATS or fmt not in record_formats:
        incremental["param_format"] = _EPOCH_FORMATS.get(fmt, fmt)
    start_param = _start_option(node.get("start_time_option"), build, "start_time_option")
    if start_param:
        incremental["start_param"] = start_param
    step = _step(node, build)
    if step:
        incremental["step"] = step
        _window_end(node, incremental, build)
    elif node.get("end_time_option") or node.get("end_datetime"):
        build.loss("no end bound is sent: each run reads up to the API's latest rows")
    if node.get("lookback_window"):
        build.loss(f"lookback_window {node['lookback_window']} is not applied")
    build.scope.interval_start = node.get("partition_field_start", "start_time")
    return incremental


def _step(node: dict, build: StreamBuild) -> str | None:
    """Airbyte's `step` (ISO 8601, `P1D`, `PT6H`) as `incremental.step`; None without one, or
    (a loss) for a step of months or years, which have no fixed length."""
    from restsync_assets.specs.template_functions import parse_duration

    if not node.get("step"):
        return None
    step = static(node["step"], build.scope, "step")
    try:
        parse_duration(step)
    except ValueError:
        build.loss(f"one request range instead of windows of {step} (no fixed length)")
        return None
    return str(step)


def _window_end(node: dict, incremental: dict, build: StreamBuild) -> None:
    """Each window's end: `end_time_option` becomes `end_param` (sent as the next window's
    start, where Airbyte sends it minus `cursor_granularity`)."""
    try:
        end_param = _start_option(node.get("end_time_option"), build, "end_time_option")
    except Unsupported as error:
        build.loss(f"each window's end is not sent: {error}")
        end_param = None
    if end_param:
        incremental["end_param"] = end_param
        if node.get("cursor_granularity"):
            build.loss(
                "each window's end is sent as the next one's start (Airbyte: minus"
                f" cursor_granularity {node['cursor_granularity']})"
            )
    if node.get("end_datetime"):
        build.loss("end_datetime is not applied: the windows run up to the run's start")


def _start_value(start: Any, fmt: Any, build: StreamBuild) -> Any:
    """The incremental's `initial_value`: a fixed time in the cursor's format, or a time
    relative to the run (`{type: now|today, offset}`) for Airbyte's clock macros."""
    relative = _RELATIVE_START.fullmatch(start) if isinstance(start, str) else None
    if relative and relative.group("days") is not None:
        return {"type": "now", "offset": f"{int(relative.group('days'))}d"}
    if relative:
        return {"type": relative.group("kind")}
    value = static(start, build.scope, "start_datetime")
    if fmt in _EPOCH_FORMATS:
        return _reformat(value, "%Y-%m-%dT%H:%M:%SZ")
    return _reformat(value, fmt)


def _reformat(value: Any, fmt: Any) -> Any:
    """The start datetime in the cursor's `datetime_format`, as Airbyte sends it."""
    from datetime import datetime

    if not isinstance(value, str) or not isinstance(fmt, str) or "%" not in fmt:
        return value
    for candidate in (fmt, "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, candidate).strftime(fmt)
        except ValueError:
            continue
    return value


def incrementing_count_cursor(node: dict, build: StreamBuild) -> dict:
    incremental: dict[str, Any] = {
        "cursor_path": static(node.get("cursor_field"), build.scope, "cursor_field"),
        "initial_value": static(node.get("start_value", 0), build.scope, "start_value"),
    }
    start_param = _start_option(node.get("start_value_option"), build, "start_value_option")
    if start_param:
        incremental["start_param"] = start_param
    return incremental


INCREMENTAL_SYNCS = {
    "DatetimeBasedCursor": datetime_cursor,
    "IncrementingCountCursor": incrementing_count_cursor,
}

# --------------------------------------------------------------------------- record handling


def _dotted(path: list, build: StreamBuild, what: str) -> str:
    return ".".join(str(static(p, build.scope, what)) for p in path)


#: a filter reading these compares rows with the incremental window: dlt's incremental does
_WINDOW_NAMES = re.compile(r"\b(stream_interval|stream_state)\b|\bstream_slice\W+start_time")


def record_filter(node: dict, build: StreamBuild) -> None:
    condition = node.get("condition")
    if build.scope.incremental and _WINDOW_NAMES.search(str(condition)):
        build.loss(
            f"record_filter {condition!r} left to dlt's incremental (it drops rows before the cursor)"
        )
        return
    allowed = frozenset({"record", "parent"} if build.scope.partitions else {"record"})
    build.resource["record_filter"] = jinja_text(
        condition, build.scope, "record_filter", allowed, "record"
    )


#: `AddedFieldDefinition.value_type` -> the cast of a value fixed at import time
_CASTS = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": lambda v: str(v).lower() == "true",
}


def add_fields(node: dict, build: StreamBuild) -> None:
    _before(build, "AddFields", ("remove_values_when", "normalize_keys"))
    allowed = frozenset({"record", "parent"} if build.scope.partitions else {"record"})
    fields = build.resource.setdefault("add_fields", {})
    for item in node.get("fields") or []:
        path = _dotted(item.get("path") or [], build, "AddFields.path")
        value, cast = item.get("value"), _CASTS.get(str(item.get("value_type")))
        try:
            fields[path] = static(value, build.scope, "AddFields.value")
            fields[path] = cast(fields[path]) if cast else fields[path]
        except Unsupported:
            fields[path] = jinja_text(value, build.scope, f"add_fields.{path}", allowed, "record")
            if cast:
                build.loss(f"add_fields.{path}: the value is not cast to {item['value_type']}")
    if node.get("condition"):
        raise Unsupported("AddFields with a condition (restsync adds to every row)")


def _before(build: StreamBuild, kind: str, later: tuple[str, ...]) -> None:
    """restsync applies its transforms in a fixed order (add, remove, remove by value, rename,
    keys): a transformation Airbyte applies after one of `later` cannot keep its place."""
    done = [key for key in later if build.resource.get(key)]
    if done:
        raise Unsupported(
            f"{kind} after a transformation that becomes {done[0]} (restsync applies"
            " add_fields, remove_fields, remove_values_when, rename_fields, normalize_keys"
            " in that order)"
        )


def remove_fields(node: dict, build: StreamBuild) -> None:
    if node.get("condition"):
        _remove_values(node, build)
        return
    _before(build, "RemoveFields", ("remove_values_when", "normalize_keys"))
    removed = build.resource.setdefault("remove_fields", [])
    for pointer in node.get("field_pointers") or []:
        if any("*" in str(p) for p in pointer):
            raise Unsupported(f"RemoveFields with a wildcard pointer {pointer}")
        removed.append(_dotted(pointer, build, "RemoveFields"))


def _remove_values(node: dict, build: StreamBuild) -> None:
    """RemoveFields with a `condition`: Airbyte (dpath's delete with a filter) removes every
    scalar value, at any depth, for which it is true, whatever the field pointers say."""
    _before(build, "RemoveFields with a condition", ("remove_values_when", "normalize_keys"))
    allowed = frozenset(
        {"value", "record", "parent"} if build.scope.partitions else {"value", "record"}
    )
    condition = re.sub(r"\bproperty\b", "value", str(node["condition"]))
    build.resource["remove_values_when"] = jinja_text(
        condition, build.scope, "RemoveFields.condition", allowed, "record"
    )
    build.loss(
        "RemoveFields.condition: values inside lists are kept (Airbyte removes a matching"
        " list item at a list's end and sets one inside it to null)"
    )


def _key_step(step: Any) -> Any:
    def converter(node: dict, build: StreamBuild) -> None:
        value = step(node, build) if callable(step) else step
        build.resource.setdefault("normalize_keys", []).append(value)

    return converter


def _replace_keys(node: dict, build: StreamBuild) -> dict[str, str]:
    old = str(static(node.get("old"), build.scope, "KeysReplace.old"))
    new = str(static(node.get("new", ""), build.scope, "KeysReplace.new"))
    if not old:
        raise Unsupported("KeysReplace with an empty old text")
    return {"replace": old, "with": new}


RECORD_FILTERS = {"RecordFilter": record_filter}
TRANSFORMATIONS = {
    "AddFields": add_fields,
    "RemoveFields": remove_fields,
    "KeysToLower": _key_step("lower"),
    "KeysToSnakeCase": _key_step("snake_case"),
    "KeysReplace": _key_step(_replace_keys),
}

# --------------------------------------------------------------------------- schemas, decoders

#: JSON schema types and formats -> restsync `schema` types
_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
}
_FORMATS = {"date-time": "date-time", "date": "date"}


def inline_schema(node: dict, build: StreamBuild) -> None:
    _columns(node.get("schema") or {}, build)


def json_file_schema(node: dict, build: StreamBuild) -> None:
    import json

    path = static(node.get("file_path"), build.scope, "file_path")
    folder = build.scope.manifest_dir
    if not path or folder is None:
        build.loss(
            "schema: Airbyte's default schema file in the connector package: no column hints"
        )
        return
    try:
        schema = json.loads((folder / str(path)).read_text())
    except (OSError, ValueError):
        build.loss(f"schema file {path} not found beside the manifest: no column hints")
        return
    _columns(schema, build)


def _columns(schema: dict, build: StreamBuild) -> None:
    columns: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        kinds = prop.get("type")
        kinds = [k for k in (kinds if isinstance(kinds, list) else [kinds]) if k and k != "null"]
        if len(kinds) != 1 or kinds[0] not in _JSON_TYPES:
            continue
        kind = (
            _FORMATS.get(prop.get("format"), _JSON_TYPES[kinds[0]])
            if kinds[0] == "string"
            else _JSON_TYPES[kinds[0]]
        )
        columns[name] = kind
    if columns:
        build.resource["schema"] = columns


SCHEMA_LOADERS = {"InlineSchemaLoader": inline_schema, "JsonFileSchemaLoader": json_file_schema}


def _format(name: str) -> Any:
    def decoder(node: dict, build: StreamBuild) -> str:
        return name

    return decoder


def gzip_decoder(node: dict, build: StreamBuild) -> str:
    build.loss("gzip: restsync decompresses a Content-Encoding: gzip body or a URL ending in .gz")
    inner = node.get("decoder") or node.get("inner_parser") or {"type": "JsonParser"}
    return convert(DECODERS, inner, build, "decoder")


def composite_raw_decoder(node: dict, build: StreamBuild) -> str:
    return convert(DECODERS, node.get("parser") or {}, build, "parser")


def csv_decoder(node: dict, build: StreamBuild) -> str:
    if node.get("delimiter", ",") != ",":
        raise Unsupported(f"CSV with delimiter {node['delimiter']!r} (restsync reads commas)")
    if "" not in (node.get("set_values_to_none") or []):
        build.loss("an empty CSV field is null in restsync (Airbyte keeps an empty string)")
    return "csv"


DECODERS = {
    "JsonDecoder": _format("json"),
    "JsonParser": _format("json"),
    "JsonlDecoder": _format("jsonl"),
    "JsonLineParser": _format("jsonl"),
    "CsvDecoder": csv_decoder,
    "CsvParser": csv_decoder,
    "GzipDecoder": gzip_decoder,
    "GzipParser": gzip_decoder,
    "CompositeRawDecoder": composite_raw_decoder,
}


def _download_format(compression: str) -> Any:
    def decoder(node: dict, build: StreamBuild) -> tuple[str, str]:
        inner = node.get("decoder") or node.get("parser") or node.get("inner_parser")
        if inner is None:
            raise Unsupported(f"{node.get('type')} without the decoder of its content")
        fmt, _ = convert(DOWNLOAD_DECODERS, inner, build, "download_decoder")
        return fmt, compression

    return decoder


def _plain_download(fmt: str) -> Any:
    def decoder(node: dict, build: StreamBuild) -> tuple[str, str]:
        if fmt == "csv":
            csv_decoder(node, build)
        return fmt, "auto"

    return decoder


def composite_download(node: dict, build: StreamBuild) -> tuple[str, str]:
    return convert(DOWNLOAD_DECODERS, node.get("parser") or {}, build, "download_decoder")


#: an AsyncRetriever's download decoder -> `async_job.download` (response_format, compression)
DOWNLOAD_DECODERS = {
    "JsonDecoder": _plain_download("json"),
    "JsonParser": _plain_download("json"),
    "JsonlDecoder": _plain_download("jsonl"),
    "JsonLineParser": _plain_download("jsonl"),
    "CsvDecoder": _plain_download("csv"),
    "CsvParser": _plain_download("csv"),
    "GzipDecoder": _download_format("gzip"),
    "GzipParser": _download_format("gzip"),
    "ZipfileDecoder": _download_format("zip"),
    "CompositeRawDecoder": composite_download,
}

#: every Airbyte component type the importer converts, by role (for docs and tests)
CONVERTERS = {
    "authenticator": AUTHENTICATORS,
    "paginator": PAGINATORS,
    "pagination strategy": PAGINATION_STRATEGIES,
    "error handler": ERROR_HANDLERS,
    "backoff strategy": BACKOFF_STRATEGIES,
    "incremental sync": INCREMENTAL_SYNCS,
    "record filter": RECORD_FILTERS,
    "transformation": TRANSFORMATIONS,
    "schema loader": SCHEMA_LOADERS,
    "decoder": DECODERS,
    "download decoder": DOWNLOAD_DECODERS,
}

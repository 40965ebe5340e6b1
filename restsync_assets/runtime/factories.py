"""Spec model -> run-time object: the factory of each paginator and auth model type.

Like dlt's `PAGINATOR_MAP` and Airbyte's `ModelToComponentFactory`, the model's type picks
the factory (`PAGINATOR_FACTORIES`, `AUTH_FACTORIES`); a new kind is one model class and one
entry here. dlt's own paginator configs (`DltPaginatorSpec`) reach dlt as the spec wrote them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlt.sources.helpers.rest_client.auth import AuthConfigBase

from restsync_assets.resources import Credentials
from restsync_assets.runtime.http.dlt_auth import build_dlt_auth
from restsync_assets.runtime.http.oauth import (
    OAuth2Auth,
    TokenRequest,
    token_policy,
    validate_token_url,
)
from restsync_assets.runtime.http.paginators import (
    OffsetPaginatorWithoutTotal,
    TemplatedCursorPaginator,
)
from restsync_assets.runtime.http.session_auth import LoginRequest, SessionLoginAuth
from restsync_assets.specs.model import (
    ApiKeyAuthSpec,
    AuthSpec,
    BearerAuthSpec,
    DltPaginatorSpec,
    HttpBasicAuthSpec,
    OAuth2AuthSpec,
    OAuth2ClientCredentialsSpec,
    OffsetPaginatorSpec,
    SecretRef,
    SessionAuthSpec,
    SourceSpec,
    TemplatedCursorPaginatorSpec,
)
from restsync_assets.specs.template_functions import parse_duration

# --------------------------------------------------------------------------- paginators


def templated_cursor(paginator: TemplatedCursorPaginatorSpec, resource: str) -> Any:
    return TemplatedCursorPaginator(
        cursor_value=paginator.cursor_value,
        stop_condition=paginator.stop_condition,
        cursor_param=paginator.cursor_param,
        cursor_body_path=paginator.cursor_body_path,
        resource=resource,
    )


def offset_without_total(paginator: OffsetPaginatorSpec, resource: str) -> Any:
    return OffsetPaginatorWithoutTotal(
        limit=paginator.limit,
        offset=paginator.offset,
        offset_param=paginator.offset_param,
        limit_param=paginator.limit_param,
        total_path=paginator.total_path,
        maximum_offset=paginator.maximum_offset,
        has_more_path=paginator.has_more_path,
    )


#: `factory(paginator model, resource name)` of each of restsync's paginator models.
def dlt_paginator(paginator: DltPaginatorSpec, resource: str) -> Any:
    """dlt's own paginator config, as the spec wrote it: dlt builds it."""
    return paginator.config


PAGINATOR_FACTORIES: dict[type, Callable[[Any, str], Any]] = {
    TemplatedCursorPaginatorSpec: templated_cursor,
    OffsetPaginatorSpec: offset_without_total,
    DltPaginatorSpec: dlt_paginator,
}


def build_paginator(paginator: Any, resource: str) -> Any:
    """The paginator object of a paginator model; dlt's own configs pass through."""
    factory = PAGINATOR_FACTORIES.get(type(paginator))
    return factory(paginator, resource) if factory is not None else paginator


# --------------------------------------------------------------------------- auth


def oauth2_auth(auth: OAuth2AuthSpec, spec: SourceSpec, credentials: Credentials) -> OAuth2Auth:
    """restsync's `oauth2`: one token shared by every resource.

    With a refresh token, a token the server rotates is stored at once in the token store
    (Redis or a shared folder when `RESTSYNC_TOKEN_STORE_URL` / `RESTSYNC_RATE_LIMIT_URL` is
    set, else `<pipelines dir>/<spec>.refresh_token`, 0600) and preferred over the configured
    one while it descends from it; each refresh holds the store's lease, so workers sharing
    it never spend one single-use token twice (see `restsync_assets.runtime.token_store`).
    Token requests are retried on 429/5xx, connection errors and timeouts with the
    `max_retries`, `backoff_factor`, `max_retry_delay` and `timeout` of the client-level
    `error_handler`.
    """
    from restsync_assets.runtime.token_store import RefreshTokenStore

    def named(ref: SecretRef | None, default: str) -> str:
        return credentials.secret(ref.secret) if ref else credentials.require(default)

    configured = (
        credentials.secret(auth.refresh_token.secret)
        if auth.refresh_token
        else credentials.refresh_token
    )
    store = RefreshTokenStore(spec.name, configured) if configured else None
    return OAuth2Auth(
        request=TokenRequest(
            grant_type=auth.grant_type,
            client_auth=auth.client_auth,
            body=resolved(auth.token_request_body, credentials),
            access_token_field=auth.access_token_field,
            expires_in_field=auth.expires_in_field,
            expires_at_field=auth.expires_at_field,
            expires_at_format=auth.expires_at_format,
        ),
        token_url=credentials.token_url or auth.token_url,
        client_id=named(auth.client_id, "client_id"),
        client_secret=named(auth.client_secret, "client_secret"),
        refresh_token=(store.load() or configured) if store else None,
        scopes=list(auth.scopes) or None,
        source=spec.name,
        policy=token_policy(spec.error_handler),
        refresh_token_candidates=store.candidates if store else None,
        on_refresh_token_rotated=store.save if store else None,
        refresh_lease=store.refreshing if store else None,
    )


def resolved(values: dict[str, Any] | None, credentials: Credentials) -> dict[str, Any]:
    """`values` with each `{secret: <name>}` replaced by the secret's value."""
    return {
        key: credentials.secret(value.secret) if isinstance(value, SecretRef) else value
        for key, value in (values or {}).items()
    }


def session_auth(
    auth: SessionAuthSpec, spec: SourceSpec, credentials: Credentials
) -> SessionLoginAuth:
    """restsync's `session`: one login shared by every resource; its request's secrets are
    read now, its URL is relative to the base URL unless absolute."""
    login = auth.login
    url = login.url
    if "://" not in url:
        base = (credentials.base_url or spec.base_url).rstrip("/")
        url = f"{base}/{url.lstrip('/')}"
    validate_token_url(url, spec.name)  # the credentials go there: https or loopback
    return SessionLoginAuth(
        LoginRequest(
            url=url,
            method=login.method,
            json=resolved(login.json_body, credentials) if login.json_body is not None else None,
            data=resolved(login.data, credentials) if login.data is not None else None,
            params=resolved(login.params, credentials),
            headers=resolved(login.headers, credentials),
        ),
        auth.token_path,
        location=auth.location,
        name=auth.name,
        prefix=auth.prefix,
        expires_after=(
            parse_duration(auth.expires_after).total_seconds() if auth.expires_after else None
        ),
        source=spec.name,
        secret_env_vars=tuple(
            dict.fromkeys(ref.env_var(spec.name) for ref in auth.secret_refs().values())
        ),
        policy=token_policy(spec.error_handler),
    )


def dlt_auth(auth: Any, spec: SourceSpec, credentials: Credentials) -> AuthConfigBase:
    """dlt's own auth types, built with the secrets read from `<NAME>_<SECRET>` (or
    `.dlt/secrets.toml`), so dlt never resolves them from its own config
    (`restsync_assets.runtime.http.dlt_auth`)."""
    return build_dlt_auth(auth, credentials.secret, spec.name, token_url=credentials.token_url)


#: `factory(auth model, spec, credentials)` of each auth model.
AUTH_FACTORIES: dict[type, Callable[[Any, SourceSpec, Credentials], Any]] = {
    OAuth2AuthSpec: oauth2_auth,
    SessionAuthSpec: session_auth,
    BearerAuthSpec: dlt_auth,
    ApiKeyAuthSpec: dlt_auth,
    HttpBasicAuthSpec: dlt_auth,
    OAuth2ClientCredentialsSpec: dlt_auth,
}


def build_auth(spec: SourceSpec, credentials: Credentials, auth: AuthSpec | None = None) -> Any:
    """The source's auth (or an endpoint's `auth`), with its secrets resolved now.

    A missing secret raises `MissingCredentialError` naming the env var; every secret is
    registered with `restsync_assets.runtime.http.masking`.
    """
    auth = spec.auth if auth is None else auth
    if auth is None:
        return None
    factory = AUTH_FACTORIES.get(type(auth))
    if factory is None:
        raise TypeError(f"{spec.name}: no run-time factory for auth model {type(auth).__name__}")
    return factory(auth, spec, credentials)

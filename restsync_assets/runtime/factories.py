"""Spec model -> run-time object: the one registry of each paginator and auth model type.

Like dlt's `PAGINATOR_MAP` and Airbyte's `ModelToComponentFactory`, the model's type picks
the factory (`PAGINATOR_FACTORIES`, `AUTH_FACTORIES`), and the factory builds the run-time
object from the model's fields as they are (`model_dump`, or the model's fields with each
`{secret: ...}` resolved): a field added to a model reaches its object without a change here,
and a new kind is one model class and one entry here. dlt's own paginator configs
(`DltPaginatorSpec`) reach dlt as the spec wrote them.

The other extension kinds have their registry beside the code that runs them: transforms
(`runtime.transforms.TRANSFORM_STEPS`), response formats
(`runtime.response_formats.FORMAT_READERS`), asset checks (`check_kinds.CHECK_KINDS`, whose
evaluators are in `runtime.checks`). CONTRIBUTING.md lists the files a new one touches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlt.sources.helpers.rest_client.auth import (
    AuthConfigBase,
    BearerTokenAuth,
    HttpBasicAuth,
)

from restsync_assets.resources import Credentials
from restsync_assets.runtime.http.dlt_auth import (
    ApiKeyAuth,
    OAuth2ClientCredentialsAuth,
    basic_credentials,
)
from restsync_assets.runtime.http.masking import register_secret
from restsync_assets.runtime.http.oauth import OAuth2Auth, TokenRequest, token_policy
from restsync_assets.runtime.http.oauth.token_client import validate_token_url
from restsync_assets.runtime.http.paginators import (
    OffsetPaginatorWithoutTotal,
    TemplatedCursorPaginator,
)
from restsync_assets.runtime.http.session_auth import LoginRequest, SessionLoginAuth
from restsync_assets.settings import env_var
from restsync_assets.specs.model import (
    ApiKeyAuthSpec,
    AuthSpec,
    BearerAuthSpec,
    DltAuthSpec,
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


def paginator_arguments(paginator: Any) -> dict[str, Any]:
    """Every field of a paginator model but its `type`, as the paginator's keyword arguments:
    a field added to the model reaches the paginator without a change here."""
    return paginator.model_dump(exclude={"type"})


def templated_cursor(paginator: TemplatedCursorPaginatorSpec, resource: str) -> Any:
    return TemplatedCursorPaginator(**paginator_arguments(paginator), resource=resource)


def offset_without_total(paginator: OffsetPaginatorSpec, resource: str) -> Any:
    return OffsetPaginatorWithoutTotal(**paginator_arguments(paginator))


def dlt_paginator(paginator: DltPaginatorSpec, resource: str) -> Any:
    """dlt's own paginator config, as the spec wrote it: dlt builds it."""
    return paginator.config


#: `factory(paginator model, resource name)` of each paginator model: the one registry of
#: paginator kinds.
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


@dataclass(frozen=True)
class AuthContext:
    """What an auth factory reads besides its model: the spec's name and secrets."""

    #: the spec's name (`<spec>: ` of every error, `<NAME>_` of its env vars)
    source: str
    #: a spec's secret by name (`{secret: <name>}`), or a one-line error naming its env var
    secret: Callable[[str], str]
    #: `<NAME>_TOKEN_URL`, which replaces the token URL of the spec's auth
    token_url: str | None = None
    #: the credentials resource's values (restsync's `oauth2` reads its defaults there)
    credentials: Credentials | None = None
    spec: SourceSpec | None = None

    @classmethod
    def of(cls, spec: SourceSpec, credentials: Credentials) -> AuthContext:
        """The context of a run: `spec` and its credentials, read at run time."""
        return cls(spec.name, credentials.secret, credentials.token_url, credentials, spec)

    def resolve(self, ref: SecretRef) -> str:
        """The value of `{secret: <name>}`, registered with the masking."""
        value = self.secret(ref.secret)
        register_secret(value)
        return value

    def fields(self, auth: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        """Every field of an auth model but its `type` (and `exclude`), each `{secret: ...}`
        resolved: the keyword arguments of its dlt auth class."""
        return {
            name: self.resolve(value) if isinstance(value, SecretRef) else value
            for name, value in auth
            if name != "type" and name not in exclude
        }


def oauth2_auth(auth: OAuth2AuthSpec, context: AuthContext) -> OAuth2Auth:
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

    spec, credentials = context.spec, context.credentials
    if spec is None or credentials is None:
        raise TypeError(f"{context.source}: oauth2 is built from a spec and its credentials")

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
            body=resolved(auth.token_request_body, context),
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


def resolved(values: dict[str, Any] | None, context: AuthContext) -> dict[str, Any]:
    """`values` with each `{secret: <name>}` replaced by the secret's value (masked)."""
    return {
        key: context.resolve(value) if isinstance(value, SecretRef) else value
        for key, value in (values or {}).items()
    }


def session_auth(auth: SessionAuthSpec, context: AuthContext) -> SessionLoginAuth:
    """restsync's `session`: one login shared by every resource; its request's secrets are
    read now, its URL is relative to the base URL unless absolute."""
    spec, credentials = context.spec, context.credentials
    if spec is None or credentials is None:
        raise TypeError(f"{context.source}: session is built from a spec and its credentials")
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
            json=resolved(login.json_body, context) if login.json_body is not None else None,
            data=resolved(login.data, context) if login.data is not None else None,
            params=resolved(login.params, context),
            headers=resolved(login.headers, context),
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
            dict.fromkeys(env_var(spec.name, ref.secret) for ref in auth.secret_refs().values())
        ),
        policy=token_policy(spec.error_handler),
    )


def dlt_auth(auth_class: type[AuthConfigBase]) -> Callable[[Any, AuthContext], AuthConfigBase]:
    """The factory of one of dlt's auth types: the model's fields, secrets resolved, as the
    keyword arguments of `auth_class`; the object is resolved, so dlt uses it as it is."""

    def build(auth: Any, context: AuthContext) -> AuthConfigBase:
        return auth_class(**context.fields(auth)).resolve()

    return build


def http_basic(auth: HttpBasicAuthSpec, context: AuthContext) -> AuthConfigBase:
    """dlt's `http_basic`; the `Authorization: Basic` value is masked too."""
    built = dlt_auth(HttpBasicAuth)(auth, context)
    register_secret(basic_credentials(built.username, built.password))
    return built


def client_credentials(
    auth: OAuth2ClientCredentialsSpec, context: AuthContext
) -> OAuth2ClientCredentialsAuth:
    """dlt's `oauth2_client_credentials`, at `<NAME>_TOKEN_URL` when set; the token URL is
    checked (https) before any secret is read, and a refused token request is one line."""
    url = context.token_url or auth.access_token_url
    validate_token_url(url, context.source)
    fields = context.fields(auth, exclude=("access_token_url",))
    fields["access_token_request_data"] = dict(fields["access_token_request_data"] or {})
    oauth = OAuth2ClientCredentialsAuth(access_token_url=url, **fields)
    oauth.restsync_source = context.source
    oauth.restsync_hint = "check " + " and ".join(
        env_var(context.source, ref.secret) for ref in (auth.client_id, auth.client_secret)
    )
    return oauth.resolve()


#: `factory(auth model, context)` of each auth model: the one registry of auth types.
AUTH_FACTORIES: dict[type, Callable[[Any, AuthContext], Any]] = {
    OAuth2AuthSpec: oauth2_auth,
    SessionAuthSpec: session_auth,
    BearerAuthSpec: dlt_auth(BearerTokenAuth),
    ApiKeyAuthSpec: dlt_auth(ApiKeyAuth),
    HttpBasicAuthSpec: http_basic,
    OAuth2ClientCredentialsSpec: client_credentials,
}


def _build(auth: Any, context: AuthContext) -> Any:
    factory = AUTH_FACTORIES.get(type(auth))
    if factory is None:
        raise TypeError(
            f"{context.source}: no run-time factory for auth model {type(auth).__name__}"
        )
    return factory(auth, context)


def build_auth(spec: SourceSpec, credentials: Credentials, auth: AuthSpec | None = None) -> Any:
    """The source's auth (or an endpoint's `auth`), with its secrets resolved now.

    A missing secret raises `MissingCredentialError` naming the env var; every secret is
    registered with `restsync_assets.runtime.http.masking`.
    """
    auth = spec.auth if auth is None else auth
    if auth is None:
        return None
    return _build(auth, AuthContext.of(spec, credentials))


def build_dlt_auth(
    auth: DltAuthSpec, secret: Callable[[str], str], source: str, token_url: str | None = None
) -> AuthConfigBase:
    """The dlt auth object of one of dlt's auth models, its secrets read through `secret`
    (a spec's secret by name) without a credentials resource (tests, one-off reads)."""
    if isinstance(auth, OAuth2AuthSpec):
        raise ValueError(f"not a dlt auth type: {auth.type!r}")
    return _build(auth, AuthContext(source, secret, token_url))

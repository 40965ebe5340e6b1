"""`client.auth` (or `endpoint.auth`): restsync's `oauth2` and dlt's auth types.

Secrets are never values in the YAML: each secret field is a `SecretRef` (`{secret: <name>}`,
read at run time from `<SPEC NAME>_<NAME>`), with a default name per field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from restsync_assets.specs.model.base import StrictModel, literal_values, tagged_union


class SecretRef(StrictModel):
    """`{secret: <name>}`: read at run time from `<SPEC NAME>_<NAME>` or `sources.<spec>.<name>`."""

    secret: str


def _ref(name: str) -> Any:
    return Field(default_factory=lambda: SecretRef(secret=name))


class BaseAuthSpec(StrictModel):
    """An auth type of `client.auth` (or `endpoint.auth`); secrets are `SecretRef`s."""

    def secret_refs(self) -> dict[str, SecretRef]:
        """The auth's secrets by field (defaults included); all must be set at run time."""
        return {name: value for name, value in self if isinstance(value, SecretRef)}


class OAuth2AuthSpec(BaseAuthSpec):
    """`client.auth: {type: oauth2, token_url: ...}`; restsync's own OAuth2 (refresh tokens).

    `client_id`, `client_secret` and `refresh_token` default to the credentials resource's
    `<NAME>_CLIENT_ID`, `<NAME>_CLIENT_SECRET` and (optional) `<NAME>_REFRESH_TOKEN`;
    `{secret: <name>}` reads another one.
    """

    type: Literal["oauth2"]
    token_url: str
    scopes: tuple[str, ...] = ()
    client_id: SecretRef | None = None
    client_secret: SecretRef | None = None
    refresh_token: SecretRef | None = None


class BearerAuthSpec(BaseAuthSpec):
    """dlt's `bearer`: `Authorization: Bearer <token>`, token from `<NAME>_TOKEN` by default."""

    type: Literal["bearer"] = "bearer"
    token: SecretRef = _ref("token")


class ApiKeyAuthSpec(BaseAuthSpec):
    """dlt's `api_key`: the key (`<NAME>_API_KEY`) in a header, query param or cookie `name`."""

    type: Literal["api_key"]
    name: str = "Authorization"
    location: Literal["header", "query", "param", "cookie"] = "header"
    api_key: SecretRef = _ref("api_key")


class HttpBasicAuthSpec(BaseAuthSpec):
    """dlt's `http_basic`: `username` (YAML or `<NAME>_USERNAME`), password `<NAME>_PASSWORD`."""

    type: Literal["http_basic"]
    username: str | SecretRef = _ref("username")
    password: SecretRef = _ref("password")


class OAuth2ClientCredentialsSpec(BaseAuthSpec):
    """dlt's `oauth2_client_credentials`: `<NAME>_CLIENT_ID`/`_CLIENT_SECRET` at `access_token_url`."""

    type: Literal["oauth2_client_credentials"]
    access_token_url: str
    client_id: SecretRef = _ref("client_id")
    client_secret: SecretRef = _ref("client_secret")
    access_token_request_data: dict[str, Any] | None = None
    default_token_expiration: int = Field(3600, gt=0)


#: the auth type when `type` is left out (dlt's default too)
DEFAULT_AUTH_TYPE = "bearer"
DLT_AUTH_MODELS: tuple[type[BaseAuthSpec], ...] = (
    BearerAuthSpec,
    ApiKeyAuthSpec,
    HttpBasicAuthSpec,
    OAuth2ClientCredentialsSpec,
)
#: the model of each `auth.type`
AUTH_MODELS: dict[str, type[BaseAuthSpec]] = {
    literal_values(model, "type")[0]: model for model in (OAuth2AuthSpec, *DLT_AUTH_MODELS)
}
AUTH_TYPES = tuple(AUTH_MODELS)
DLT_AUTH_TYPES = tuple(literal_values(model, "type")[0] for model in DLT_AUTH_MODELS)
#: the key of each auth type's token endpoint (client secrets are sent there)
TOKEN_URL_KEYS = {"oauth2": "token_url", "oauth2_client_credentials": "access_token_url"}
#: auth fields that only ever hold `{secret: <name>}` (a literal value fails validation)
SECRET_AUTH_KEYS = (
    "token",
    "api_key",
    "password",
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
)


def auth_type(value: Any) -> str | None:
    """The `type` of an auth mapping (bearer when left out) or model: the union's tag."""
    if isinstance(value, dict):
        return value.get("type", DEFAULT_AUTH_TYPE)
    return getattr(value, "type", None)


#: one of dlt's auth types
DltAuthSpec = tagged_union({t: AUTH_MODELS[t] for t in DLT_AUTH_TYPES}, auth_type)
#: any auth type, validated as the model its `type` names
AuthSpec = tagged_union(AUTH_MODELS, auth_type)

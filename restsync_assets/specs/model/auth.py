"""`client.auth` (or `endpoint.auth`): restsync's `oauth2` and dlt's auth types.

Secrets are never values in the YAML: each secret field is a `SecretRef` (`{secret: <name>}`,
read at run time from `<SPEC NAME>_<NAME>`), with a default name per field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

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


#: a value of a request body restsync sends itself: a literal, or `{secret: <name>}`
BodyValue = SecretRef | str | int | float | bool


def _nested_refs(prefix: str, values: dict[str, Any] | None) -> dict[str, SecretRef]:
    return {
        f"{prefix}.{key}": value
        for key, value in (values or {}).items()
        if isinstance(value, SecretRef)
    }


class OAuth2AuthSpec(BaseAuthSpec):
    """`client.auth: {type: oauth2, token_url: ...}`; restsync's own OAuth2 (refresh tokens).

    `client_id`, `client_secret` and `refresh_token` default to the credentials resource's
    `<NAME>_CLIENT_ID`, `<NAME>_CLIENT_SECRET` and (optional) `<NAME>_REFRESH_TOKEN`;
    `{secret: <name>}` reads another one. The token request's options: `grant_type` (default
    `refresh_token` with a refresh token, else `client_credentials`), `client_auth` (the
    client's credentials as form fields, `body`, or an HTTP Basic header, `basic`),
    `token_request_body` (more form fields), and where the answer holds the token and its
    expiry (dotted paths; `expires_at_field` an absolute time in `expires_at_format`).
    """

    type: Literal["oauth2"]
    token_url: str
    scopes: tuple[str, ...] = ()
    client_id: SecretRef | None = None
    client_secret: SecretRef | None = None
    refresh_token: SecretRef | None = None
    grant_type: str | None = Field(None, min_length=1)
    client_auth: Literal["body", "basic"] = "body"
    token_request_body: dict[str, BodyValue] = Field(default_factory=dict)
    access_token_field: str = Field("access_token", min_length=1)
    expires_in_field: str = Field("expires_in", min_length=1)
    expires_at_field: str | None = Field(None, min_length=1)
    expires_at_format: str = "iso"

    @field_validator("expires_at_format")
    @classmethod
    def _format(cls, value: str) -> str:
        from restsync_assets.specs.model.request_values import check_format

        return check_format(value)

    def secret_refs(self) -> dict[str, SecretRef]:
        return {
            **super().secret_refs(),
            **_nested_refs("token_request_body", self.token_request_body),
        }


class SessionLoginSpec(StrictModel):
    """`login` of a `session` auth: the request that answers with the session token."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    url: str = Field(min_length=1)
    method: Literal["POST", "GET", "PUT"] = "POST"
    json_body: dict[str, BodyValue] | None = Field(None, alias="json")
    data: dict[str, BodyValue] | None = None
    params: dict[str, BodyValue] | None = None
    headers: dict[str, BodyValue] | None = None

    @model_validator(mode="after")
    def _one_body(self) -> SessionLoginSpec:
        if self.json_body is not None and self.data is not None:
            raise ValueError("send the credentials as json or as data (a form), not both")
        return self


class SessionAuthSpec(BaseAuthSpec):
    """`client.auth: {type: session, login: {...}, token_path: ...}`: log in with a request
    (credentials from secrets), read the token at `token_path` of the answer, send it as the
    header or query param `name` (after `prefix`); log in again after `expires_after` and
    whenever the API answers 401."""

    type: Literal["session"]
    login: SessionLoginSpec
    token_path: str = Field(min_length=1)
    location: Literal["header", "query"] = "header"
    name: str = Field("Authorization", min_length=1)
    prefix: str = ""
    expires_after: str | None = None

    @field_validator("expires_after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            from restsync_assets.specs.template_functions import parse_duration

            if parse_duration(value).total_seconds() <= 0:
                raise ValueError(f"{value!r} must be a positive duration such as 30m or PT1H")
        return value

    def secret_refs(self) -> dict[str, SecretRef]:
        login = self.login
        return {
            **_nested_refs("login.json", login.json_body),
            **_nested_refs("login.data", login.data),
            **_nested_refs("login.params", login.params),
            **_nested_refs("login.headers", login.headers),
        }


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
    literal_values(model, "type")[0]: model
    for model in (OAuth2AuthSpec, SessionAuthSpec, *DLT_AUTH_MODELS)
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

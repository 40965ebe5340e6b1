"""dlt's auth types, built explicitly with the secrets restsync resolved at run time.

A spec's `auth: {type: bearer | api_key | http_basic | oauth2_client_credentials}` becomes
the dlt auth object of that type, filled in with values read from `<NAME>_<SECRET>` (or
`.dlt/secrets.toml`) and marked resolved, so dlt never tries to resolve it from its own
config (where restsync's env vars are not). Every value is registered with
`restsync_assets.runtime.http.masking` first, with the forms it takes on the wire (the base64
`user:password` of HTTP basic auth, every access token obtained).
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Callable
from typing import Any

import requests
from dlt.sources.helpers.rest_client.auth import (
    APIKeyAuth,
    AuthConfigBase,
    BearerTokenAuth,
    HttpBasicAuth,
    OAuth2ClientCredentials,
)

from restsync_assets.settings import env_var
from restsync_assets.specs.model import (
    ApiKeyAuthSpec,
    BearerAuthSpec,
    DltAuthSpec,
    HttpBasicAuthSpec,
    OAuth2ClientCredentialsSpec,
    SecretRef,
)

from . import errors
from .errors import TokenRequestError
from .masking import register_secret
from .oauth.token_client import validate_token_url

__all__ = ["DLT_AUTH_BUILDERS", "basic_credentials", "build_dlt_auth"]

#: a spec's secret by name (`{secret: <name>}`), or a one-line error naming its env var
SecretLookup = Callable[[str], str]
#: a `{secret: <name>}` of the spec, resolved and registered for masking
Resolve = Callable[[SecretRef], str]


class _APIKeyAuth(APIKeyAuth):
    """dlt's `APIKeyAuth`, with the `cookie` location dlt declares but does not implement."""

    def __call__(self, request: Any) -> Any:
        if self.location != "cookie":
            return super().__call__(request)
        cookie = f"{self.name}={self.api_key}"
        existing = request.headers.get("Cookie")
        request.headers["Cookie"] = f"{existing}; {cookie}" if existing else cookie
        return request


class _OAuth2ClientCredentials(OAuth2ClientCredentials):
    """dlt's client-credentials flow; each access token it obtains is masked everywhere, and
    a refused token request fails with one line naming the URL, status and env vars."""

    #: `<spec>: ` and the env vars to check, set by `build_dlt_auth`
    restsync_source = "?"
    restsync_hint = ""

    def obtain_token(self) -> None:
        try:
            super().obtain_token()
        except requests.HTTPError as error:
            message = errors.client_credentials_refused(
                self.restsync_source, self.access_token_url, error, self.restsync_hint
            )
            raise TokenRequestError(message) from None

    def parse_access_token(self, response_json: Any) -> str:
        token = super().parse_access_token(response_json)
        register_secret(token)
        return token


def basic_credentials(username: str, password: str) -> str:
    """The `Authorization: Basic` value of a user and password (a secret in its own right)."""
    return b64encode(f"{username}:{password}".encode()).decode()


def build_dlt_auth(
    auth: DltAuthSpec, secret: SecretLookup, source: str, token_url: str | None = None
) -> AuthConfigBase:
    """The dlt auth object for a spec's `auth` model (`restsync_assets.specs.model`).

    `source` is the spec's name; `token_url` (from `<NAME>_TOKEN_URL`) replaces
    `oauth2_client_credentials`' `access_token_url`. The object is resolved: dlt uses it as
    it is.
    """

    def value(ref: SecretRef) -> str:
        resolved = secret(ref.secret)
        register_secret(resolved)
        return resolved

    builder = DLT_AUTH_BUILDERS.get(type(auth))
    if builder is None:
        raise ValueError(f"not a dlt auth type: {getattr(auth, 'type', auth)!r}")
    built = builder(auth, value, source, token_url)
    return built.resolve()  # nothing left for dlt's config resolution to find


def _bearer(auth: BearerAuthSpec, value: Resolve, source: str, token_url: str | None) -> Any:
    return BearerTokenAuth(token=value(auth.token))


def _api_key(auth: ApiKeyAuthSpec, value: Resolve, source: str, token_url: str | None) -> Any:
    return _APIKeyAuth(name=auth.name, api_key=value(auth.api_key), location=auth.location)


def _http_basic(auth: HttpBasicAuthSpec, value: Resolve, source: str, token_url: str | None) -> Any:
    username = auth.username if isinstance(auth.username, str) else value(auth.username)
    password = value(auth.password)
    register_secret(basic_credentials(username, password))
    return HttpBasicAuth(username=username, password=password)


def _client_credentials(
    auth: OAuth2ClientCredentialsSpec, value: Resolve, source: str, token_url: str | None
) -> _OAuth2ClientCredentials:
    url = token_url or auth.access_token_url
    validate_token_url(url, source)
    oauth = _OAuth2ClientCredentials(
        access_token_url=url,
        client_id=value(auth.client_id),
        client_secret=value(auth.client_secret),
        access_token_request_data=dict(auth.access_token_request_data or {}),
        default_token_expiration=auth.default_token_expiration,
    )
    oauth.restsync_source = source
    oauth.restsync_hint = "check " + " and ".join(
        env_var(source, ref.secret) for ref in (auth.client_id, auth.client_secret)
    )
    return oauth


#: The builder of each dlt auth type's model (restsync's `oauth2` is `oauth.OAuth2Auth`).
DLT_AUTH_BUILDERS: dict[type, Callable[..., AuthConfigBase]] = {
    BearerAuthSpec: _bearer,
    ApiKeyAuthSpec: _api_key,
    HttpBasicAuthSpec: _http_basic,
    OAuth2ClientCredentialsSpec: _client_credentials,
}

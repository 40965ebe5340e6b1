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

from restsync_assets.specs.model import DltAuthSpec, OAuth2ClientCredentialsSpec, SecretRef

from .masking import mask_url, register_secret

__all__ = ["TokenRequestError", "basic_credentials", "build_dlt_auth"]

#: a spec's secret by name (`{secret: <name>}`), or a one-line error naming its env var
SecretLookup = Callable[[str], str]


class _APIKeyAuth(APIKeyAuth):
    """dlt's `APIKeyAuth`, with the `cookie` location dlt declares but does not implement."""

    def __call__(self, request: Any) -> Any:
        if self.location != "cookie":
            return super().__call__(request)
        cookie = f"{self.name}={self.api_key}"
        existing = request.headers.get("Cookie")
        request.headers["Cookie"] = f"{existing}; {cookie}" if existing else cookie
        return request


class TokenRequestError(RuntimeError):
    """dlt's `oauth2_client_credentials` token request was refused (one line, no secret)."""


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
            response = error.response
            status = (
                f"HTTP {response.status_code} {response.reason or ''}".strip()
                if response is not None
                else str(error)
            )
            raise TokenRequestError(
                f"{self.restsync_source}: token request to {mask_url(self.access_token_url)}"
                f" failed: {status}; {self.restsync_hint}"
            ) from None

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

    built: AuthConfigBase
    if auth.type == "bearer":
        built = BearerTokenAuth(token=value(auth.token))
    elif auth.type == "api_key":
        built = _APIKeyAuth(name=auth.name, api_key=value(auth.api_key), location=auth.location)
    elif auth.type == "http_basic":
        username = auth.username if isinstance(auth.username, str) else value(auth.username)
        password = value(auth.password)
        register_secret(basic_credentials(username, password))
        built = HttpBasicAuth(username=username, password=password)
    elif auth.type == "oauth2_client_credentials":
        built = _client_credentials(auth, value, source, token_url)
    else:
        raise ValueError(f"not a dlt auth type: {auth.type!r}")
    return built.resolve()  # nothing left for dlt's config resolution to find


def _client_credentials(
    auth: OAuth2ClientCredentialsSpec,
    value: Callable[[SecretRef], str],
    source: str,
    token_url: str | None,
) -> _OAuth2ClientCredentials:
    oauth = _OAuth2ClientCredentials(
        access_token_url=token_url or auth.access_token_url,
        client_id=value(auth.client_id),
        client_secret=value(auth.client_secret),
        access_token_request_data=dict(auth.access_token_request_data or {}),
        default_token_expiration=auth.default_token_expiration,
    )
    oauth.restsync_source = source
    oauth.restsync_hint = "check " + " and ".join(
        ref.env_var(source) for ref in (auth.client_id, auth.client_secret)
    )
    return oauth

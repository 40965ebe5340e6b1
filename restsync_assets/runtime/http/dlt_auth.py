"""restsync's subclasses of dlt's auth types (dlt's own `bearer` and `http_basic` are used as
they are).

`runtime.factories.AUTH_FACTORIES` builds a spec's `auth` into one of dlt's auth objects,
filled in with values read from `<NAME>_<SECRET>` (or `.dlt/secrets.toml`) and marked
resolved, so dlt never tries to resolve it from its own config (where restsync's env vars are
not). Every value is registered with `restsync_assets.runtime.http.masking` first, with the
forms it takes on the wire (the base64 `user:password` of HTTP basic auth, every access token
obtained).
"""

from __future__ import annotations

from base64 import b64encode
from typing import Any

import requests
from dlt.sources.helpers.rest_client.auth import (
    APIKeyAuth,
    OAuth2ClientCredentials,
)

from . import errors
from .errors import TokenRequestError
from .masking import register_secret

__all__ = ["ApiKeyAuth", "OAuth2ClientCredentialsAuth", "basic_credentials"]


class ApiKeyAuth(APIKeyAuth):
    """dlt's `APIKeyAuth`, with the `cookie` location dlt declares but does not implement."""

    def __call__(self, request: Any) -> Any:
        if self.location != "cookie":
            return super().__call__(request)
        cookie = f"{self.name}={self.api_key}"
        existing = request.headers.get("Cookie")
        request.headers["Cookie"] = f"{existing}; {cookie}" if existing else cookie
        return request


class OAuth2ClientCredentialsAuth(OAuth2ClientCredentials):
    """dlt's client-credentials flow; each access token it obtains is masked everywhere, and
    a refused token request fails with one line naming the URL, status and env vars."""

    #: `<spec>: ` and the env vars to check, set by its factory (`runtime.factories`)
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

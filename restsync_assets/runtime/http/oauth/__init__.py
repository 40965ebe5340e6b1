"""restsync's OAuth 2.0 (client_credentials or refresh_token grant) for dlt sources.

`token_client` asks the token endpoint for a token (with the retries of every restsync
request) and reads its expiry; `rotation` decides which refresh token to send and keeps one
the server rotates; `auth.OAuth2Auth` is the auth object dlt and requests use, holding one
access token for every resource of a source.
"""

from __future__ import annotations

from ..errors import InsecureTokenUrlError, OAuth2Error
from .auth import OAuth2Auth
from .rotation import RefreshTokenRotation
from .token_client import (
    TOKEN_POLICY,
    Token,
    TokenClient,
    TokenRequest,
    token_policy,
    validate_token_url,
)

__all__ = [
    "TOKEN_POLICY",
    "InsecureTokenUrlError",
    "OAuth2Auth",
    "OAuth2Error",
    "RefreshTokenRotation",
    "Token",
    "TokenClient",
    "TokenRequest",
    "token_policy",
    "validate_token_url",
]

"""`client.auth` and `endpoint.auth` into the auth models (secrets as `{secret: <name>}`)."""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid, allowed, validated
from restsync_assets.specs.model import (
    AUTH_MODELS,
    AUTH_TYPES,
    SECRET_AUTH_KEYS,
    TOKEN_URL_KEYS,
    AuthSpec,
    auth_type,
)
from restsync_assets.specs.token_urls import TOKEN_URL_RULE, is_secure_token_url
from restsync_assets.specs.validate.secrets import is_secret_ref, literal_secret, secret_name


def validate_auth(auth: Any, key: str, spec: str, resource: str | None = None) -> AuthSpec | None:
    """An auth type (a name, or a mapping with a `type`) whose secrets are `{secret: <name>}`."""
    if auth is None:
        return None
    if isinstance(auth, str):
        auth = {"type": auth}
    if not isinstance(auth, dict):
        raise Invalid("must be a mapping with a type", resource=resource, key=key)
    kind = auth_type(auth)
    if kind not in AUTH_TYPES:
        raise Invalid(
            f"unknown auth type {kind!r}; {allowed(AUTH_TYPES)}",
            resource=resource,
            key=f"{key}.type",
        )
    if kind == "oauth2" and resource is not None:
        raise Invalid(
            "restsync's oauth2 token is shared by every resource of the source: set it on client.auth",
            resource=resource,
            key=f"{key}.type",
        )
    for field_name in (*SECRET_AUTH_KEYS, "username"):
        value = auth.get(field_name)
        if field_name not in auth or (field_name == "username" and not isinstance(value, dict)):
            continue  # a user name may be written in the YAML
        if not is_secret_ref(value):
            raise literal_secret(spec, f"{key}.{field_name}", field_name, resource)
        secret_name(value, f"{key}.{field_name}", resource)
    _check_token_url(auth, kind, key, resource)
    return validated(AUTH_MODELS[kind], {**auth, "type": kind}, key, resource)


def _check_token_url(auth: dict, kind: str, key: str, resource: str | None) -> None:
    """Client secrets are sent to the token URL: https, or plain http on a loopback host."""
    name = TOKEN_URL_KEYS.get(kind)
    url = auth.get(name) if name else None
    if url is not None and not (isinstance(url, str) and is_secure_token_url(url)):
        raise Invalid(f"{url!r} {TOKEN_URL_RULE}", resource=resource, key=f"{key}.{name}")

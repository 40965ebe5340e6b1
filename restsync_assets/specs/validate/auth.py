"""`client.auth` and `endpoint.auth` into the auth models (secrets as `{secret: <name>}`)."""

from __future__ import annotations

import re
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
    if kind in SHARED_AUTH_TYPES and resource is not None:
        raise Invalid(
            f"restsync's {kind} token is shared by every resource of the source: set it on"
            " client.auth",
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
    for where, values in _request_values(auth, kind):
        _check_literal_credentials(values, f"{key}.{where}", spec, resource)
    return validated(AUTH_MODELS[kind], {**auth, "type": kind}, key, resource)


#: auth types whose one token serves every resource (so only on `client.auth`)
SHARED_AUTH_TYPES = ("oauth2", "session")
#: a request field whose name holds one of these is a credential: `{secret: ...}` only
CREDENTIAL_WORDS = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)


def _request_values(auth: dict, kind: str) -> list[tuple[str, Any]]:
    """The request fields an auth type sends itself (token request body, login request)."""
    if kind == "oauth2":
        return [("token_request_body", auth.get("token_request_body"))]
    login = auth.get("login")
    if kind != "session" or not isinstance(login, dict):
        return []
    return [(f"login.{part}", login.get(part)) for part in ("json", "data", "params", "headers")]


def _check_literal_credentials(values: Any, key: str, spec: str, resource: str | None) -> None:
    """A credential-looking field (`password`, `api_key`, ...) is `{secret: <name>}`."""
    if not isinstance(values, dict):
        return
    for name, value in values.items():
        where = f"{key}.{name}"
        if is_secret_ref(value):
            secret_name(value, where, resource)
        elif CREDENTIAL_WORDS.search(str(name)) and value not in (None, ""):
            secret = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "secret"
            raise literal_secret(spec, where, secret, resource)


def _check_token_url(auth: dict, kind: str, key: str, resource: str | None) -> None:
    """Client secrets are sent to the token URL: https, or plain http on a loopback host."""
    name = TOKEN_URL_KEYS.get(kind)
    url = auth.get(name) if name else None
    login = auth.get("login")
    if kind == "session" and isinstance(login, dict) and isinstance(login.get("url"), str):
        name, url = "login.url", login["url"] if "://" in login["url"] else None
    if url is not None and not (isinstance(url, str) and is_secure_token_url(url)):
        raise Invalid(f"{url!r} {TOKEN_URL_RULE}", resource=resource, key=f"{key}.{name}")

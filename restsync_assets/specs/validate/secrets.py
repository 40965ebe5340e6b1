"""Secrets never live in YAML: a secret is `{secret: <name>}`, read at run time from
`<SPEC NAME>_<NAME>`; a literal value where a secret belongs fails with how to write it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from restsync_assets.specs.document import NAME_RE
from restsync_assets.specs.errors import Invalid
from restsync_assets.specs.model import AuthSpec

#: headers whose literal value is a secret: these names, or a name containing a word below
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")
SECRET_HEADER_WORDS = ("key", "token", "secret")


def is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and "secret" in value


def secret_name(value: dict, key: str, resource: str | None) -> str:
    """The name of a `{secret: <name>}` value (checked)."""
    name = value.get("secret")
    if set(value) != {"secret"} or not isinstance(name, str) or not NAME_RE.match(name):
        raise Invalid(
            "a secret value is {secret: <snake_case name>}, read from the env var "
            "<SPEC NAME>_<NAME> or .dlt/secrets.toml",
            resource=resource,
            key=key,
        )
    return name


def literal_secret(spec: str, key: str, secret: str, resource: str | None) -> Invalid:
    """A secret written in the YAML: say how to write it instead."""
    return Invalid(
        f"secrets never live in YAML: write {{secret: {secret}}} and set "
        f"{spec.upper()}_{secret.upper()} (or sources.{spec}.{secret} in .dlt/secrets.toml)",
        resource=resource,
        key=key,
    )


def secret_keys(
    spec: str,
    client: dict,
    defaults: dict,
    resources: list[dict],
    auths: Iterable[AuthSpec | None],
) -> tuple[str, ...]:
    """Every secret read at run time from `<NAME>_<NAME OF SECRET>`: the auths' secrets and
    each `{secret: <name>}` of the client's headers and each endpoint's headers and params.

    A literal value of a header that carries credentials (`Authorization`, `Cookie`, a
    name with `key`, `token` or `secret` in it) fails: it would be a secret in the YAML.
    """
    keys = [ref.secret for a in auths if a is not None for ref in a.secret_refs().values()]
    endpoint_defaults = defaults.get("endpoint")
    places = [
        (None, "client.headers", client.get("headers")),
        (
            None,
            "resource_defaults.endpoint.headers",
            endpoint_defaults.get("headers") if isinstance(endpoint_defaults, dict) else None,
        ),
    ]
    for r in resources:
        for where in ("headers", "params"):
            places.append((r["name"], f"endpoint.{where}", r["endpoint"].get(where)))
    for resource, where, values in places:
        if not isinstance(values, dict):
            continue
        for name, value in values.items():
            key = f"{where}.{name}"
            if is_secret_ref(value):
                keys.append(secret_name(value, key, resource))
            elif where.endswith("headers") and _secret_header(name) and value not in (None, ""):
                raise literal_secret(spec, key, _snake(str(name)), resource)
    return tuple(dict.fromkeys(keys))


def _secret_header(name: Any) -> bool:
    """Whether a header of that name carries credentials (its value must be a secret)."""
    lowered = str(name).lower()
    return lowered in SECRET_HEADERS or any(word in lowered for word in SECRET_HEADER_WORDS)


def _snake(name: str) -> str:
    """`X-Api-Key` -> `x_api_key`: the secret name suggested for a header."""
    snake = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return snake if NAME_RE.match(snake) else f"header_{snake}".rstrip("_")

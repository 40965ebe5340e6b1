"""Stage 2: the top level of a spec: its keys, `name`, `client` keys and `client.base_url`."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from restsync_assets.specs.errors import Invalid, allowed, mapping
from restsync_assets.specs.model import CLIENT_KEYS, TOP_LEVEL_KEYS

#: a spec's name: its dataset, asset group and env-var prefix; also a secret's name
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class Document(NamedTuple):
    """A spec document whose top level is checked."""

    raw: dict
    name: str
    client: dict
    base_url: str


def read_document(raw: Any) -> Document:
    """The spec's top level, checked before anything inside it."""
    if not isinstance(raw, dict):
        raise Invalid("a spec must be a mapping with name, client and resources")
    _known_keys(raw, TOP_LEVEL_KEYS, "")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise Invalid(
            f"must be snake_case (lowercase letters, digits, _), got {name!r}", key="name"
        )
    client = mapping(raw.get("client"), "client", required=True)
    _known_keys(client, CLIENT_KEYS, "client.")
    base_url = client.get("base_url")
    if not isinstance(base_url, str) or not re.match(r"^https?://", base_url):
        raise Invalid(f"must be an http(s) URL, got {base_url!r}", key="client.base_url")
    return Document(raw, name, client, base_url)


def _known_keys(value: dict, keys: tuple[str, ...], prefix: str) -> None:
    unknown = set(value) - set(keys)
    if unknown:
        name = sorted(unknown)[0]
        key = "" if name is None and not prefix else f"{prefix}{name}"  # `null:` names no key
        raise Invalid(f"unknown key; {allowed(keys)}", key=key)

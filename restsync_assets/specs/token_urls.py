"""Where client secrets may be sent: an https token URL, or plain http on a loopback host.

One rule for `restsync validate` (the spec's `token_url` / `access_token_url`) and for the
run (the URL in effect, env overrides included). No imports beyond the standard library, so
loading specs stays light.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

#: The rule as error messages state it.
TOKEN_URL_RULE = (
    "must be an https:// URL (plain http only on a loopback host: 127.0.0.1, ::1, localhost)"
)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_secure_token_url(url: str) -> bool:
    """https with a host, or http to a loopback host."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and is_loopback(parts.hostname)

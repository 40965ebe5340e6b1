"""Masking of secret values in URLs and messages (logs, exceptions)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "MaskingFilter",
    "forget_secrets",
    "install_log_masking",
    "looks_secret",
    "mask",
    "mask_text",
    "mask_url",
    "register_secret",
    "registered_secrets",
]

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: replacing e.g. "1" everywhere would garble messages."""

_SECRET_NAME = re.compile(r"token|secret|key|password|passwd|pwd|auth|signature|^sig$", re.I)
_URL = re.compile(r"https?://[^\s'\"<>()]+")
_QUERY_PARAM = re.compile(r"(?<=[?&;])([^=&;\s'\"<>()]+)=([^&;\s'\"<>()]*)")


_REGISTRY: dict[str, None] = {}
_REGISTRY_LOCK = threading.Lock()
_REGISTRY_SIZE = 1024


def register_secret(*values: str | None) -> None:
    """Remember secret values (client secrets, tokens) so every :func:`mask` call hides them.

    Tokens are known only deep inside the auth object, while messages are built far away
    (failure messages, logs); the registry lets every masking call see them. Values shorter
    than ``MIN_SECRET_LENGTH`` are ignored. Process-wide and bounded (oldest dropped first).
    """
    with _REGISTRY_LOCK:
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                _REGISTRY.pop(value, None)
                _REGISTRY[value] = None
        while len(_REGISTRY) > _REGISTRY_SIZE:
            del _REGISTRY[next(iter(_REGISTRY))]


def registered_secrets() -> list[str]:
    with _REGISTRY_LOCK:
        return list(_REGISTRY)


def forget_secrets() -> None:
    """Empty the registry (tests)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


def looks_secret(name: str) -> bool:
    """True for parameter names like ``api_key``, ``access_token``, ``X-Amz-Signature``."""
    return bool(_SECRET_NAME.search(name))


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (also in its URL-encoded forms) in ``text`` with ``***``.

    ``secrets`` plus every value given to :func:`register_secret`.
    """
    text = str(text)
    candidates = [*secrets, *registered_secrets()]
    values = {s for s in candidates if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
    for secret in sorted(values, key=len, reverse=True):
        for form in dict.fromkeys((secret, quote(secret, safe=""), quote_plus(secret))):
            text = text.replace(form, MASK)
    return text


def _mask_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        parts.append(f"{name}={MASK}" if sep and looks_secret(unquote_plus(name)) else part)
    return "&".join(parts)


def mask_url(url: str, secrets: Iterable[str | None] = ()) -> str:
    """Mask secret-looking query parameters, a userinfo password and every known secret."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return mask(str(url), secrets)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else netloc
    masked = urlunsplit(parts._replace(netloc=netloc, query=_mask_query(parts.query)))
    return mask(masked, secrets)


def mask_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Mask URLs, ``?name=value`` fragments with secret-looking names and known secrets."""
    text = _URL.sub(lambda m: mask_url(m.group(0)), str(text))
    text = _QUERY_PARAM.sub(
        lambda m: f"{m.group(1)}={MASK}" if looks_secret(unquote_plus(m.group(1))) else m.group(0),
        text,
    )
    return mask(text, secrets)


class MaskingFilter(logging.Filter):
    """Masks registered secrets and secret-looking URL parameters in log records.

    dlt logs each request's params and headers at DEBUG, and urllib3 each URL: with a spec's
    `{secret: ...}` param or header those would carry the secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


#: the loggers that write request URLs, params or headers
LOGGERS_WITH_REQUESTS = ("dlt", "urllib3.connectionpool", "requests")


def install_log_masking(loggers: Iterable[str] = LOGGERS_WITH_REQUESTS) -> None:
    """Add a :class:`MaskingFilter` to each logger, once per process."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskingFilter) for f in logger.filters):
            logger.addFilter(MaskingFilter())

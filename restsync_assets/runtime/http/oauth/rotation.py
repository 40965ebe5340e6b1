"""Which refresh token to send, and keeping the one a server rotates.

Some authorization servers rotate the refresh token on every use: the answer carries a new
one and the old one stops working. :class:`RefreshTokenRotation` adopts the new one at once
and hands it to ``on_rotated`` (restsync's `RefreshTokenStore.save`) so the next run has it.
Before each refresh it asks ``candidates()`` (e.g. the stored rotation, then the configured
token) which tokens to try, best first; the one in memory is tried last, and a token the
server refuses with ``invalid_grant`` gives way to the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .. import errors
from ..errors import OAuth2Error
from ..masking import register_secret

__all__ = ["RefreshTokenRotation"]

logger = logging.getLogger(__name__)

#: How many replaced tokens are kept (to mask them, and to recognise a 401 on an old one).
HISTORY = 32


def remember(history: list[str], value: str | None) -> None:
    """Append ``value`` to ``history`` once, keeping the newest :data:`HISTORY`."""
    if value and value not in history:
        history.append(value)
        del history[:-HISTORY]


class RefreshTokenRotation:
    """The refresh-token side of one OAuth2 client (``refresh_token`` None: client credentials).

    Not thread-safe on its own: :class:`OAuth2Auth` calls it under its lock.
    """

    def __init__(
        self,
        refresh_token: str | None,
        *,
        candidates: Callable[[], list[str]] | None = None,
        on_rotated: Callable[[str], None] | None = None,
        source: str = "?",
    ) -> None:
        self.current = refresh_token
        self.source = source
        self._candidates = candidates
        self._on_rotated = on_rotated
        self._retired: list[str] = []
        register_secret(refresh_token)

    @property
    def grant_type(self) -> str:
        return "refresh_token" if self.current else "client_credentials"

    def to_try(self) -> list[str | None]:
        """Refresh tokens to send, best first (``[None]``: the client credentials grant)."""
        if self.current is None:
            return [None]
        candidates = list(self._candidates()) if self._candidates is not None else []
        register_secret(*candidates)
        for candidate in candidates:
            if candidate != self.current:
                remember(self._retired, candidate)
        return list(dict.fromkeys(t for t in [*candidates, self.current] if t))

    def succeeded(self, used: str | None, offered: str | None) -> None:
        """``used`` obtained a token; the server sent ``offered`` along (None: nothing)."""
        if used is not None and used != self.current:
            remember(self._retired, self.current)
            self.current = used
        if offered is None or offered == self.current:
            return
        register_secret(offered)
        if self.current is None:  # not used by client credentials, but still masked
            remember(self._retired, offered)
            return
        remember(self._retired, self.current)
        self.current = offered
        self._store(offered)

    def secrets(self) -> list[str]:
        """The refresh tokens known, current and replaced."""
        return [t for t in (self.current, *self._retired) if t]

    def _store(self, token: str) -> None:
        if self._on_rotated is None:
            logger.warning(
                "%s: the authorization server rotated the refresh token and no callback"
                " stores it; the configured refresh token may stop working",
                self.source,
            )
            return
        try:
            self._on_rotated(token)
        except Exception as exc:
            message = errors.rotation_not_stored(self.source, exc, self.secrets())
            raise OAuth2Error(message) from None

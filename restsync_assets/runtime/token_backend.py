"""What every backend of the refresh-token store shares (`token_store.FileBackend`, the
Redis one in `token_store_redis`): the `Backend` protocol, the token's `fingerprint` and
`TokenStoreError`. Both backends' modules import this one and neither imports the other;
`token_store.backend_for` picks one.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Protocol

from restsync_assets.runtime.http.errors import OAuth2Error

__all__ = ["Backend", "TokenStoreError", "fingerprint"]


def fingerprint(source: str, token: str) -> str:
    """Salted SHA-256 of a token: compared, stored and shown instead of the token itself."""
    return hashlib.sha256(f"restsync/{source}/{token}".encode()).hexdigest()


class TokenStoreError(OAuth2Error):
    """The token store cannot be used (one line, no secret): a token cannot be shared."""


class Backend(Protocol):
    """Where one spec's rotated refresh token is kept."""

    where: str

    def read(self) -> dict[str, Any] | None:
        """The stored payload (`refresh_token`, `configured_sha256`, ...), None when none."""

    def compare_and_set(self, expected: str | None, payload: dict[str, Any]) -> bool:
        """Store `payload` only if the stored token's fingerprint is `expected` (None: no
        token stored); False when another worker stored one meanwhile."""

    def lease(self) -> contextlib.AbstractContextManager[None]:
        """Held by one worker at a time around re-read, token request and write."""

    def clear(self) -> None:
        """Remove the stored token."""

"""Rotated OAuth2 refresh tokens, kept between runs outside the spec, the logs and the warehouse.

Some authorization servers rotate the refresh token on every use: the answer to a
refresh-token grant carries a new one and the old one stops working. The configured
`<NAME>_REFRESH_TOKEN` (env var or `.dlt/secrets.toml`) is then dead after the first run,
so restsync stores the new token the moment it arrives, in
`<pipelines dir>/<spec>.refresh_token` (mode 0600, written atomically), and the next run
authenticates with it.

Which token wins: the stored one is used only while it descends from the configured one.
The file records a fingerprint (salted SHA-256) of the configured token it was rotated from;
when an operator configures a different refresh token (re-authorised the app), the
configured one is newer and wins, and the stale file is ignored (overwritten on the next
rotation). Both are tried in that order: a stored token the server rejects with
`invalid_grant` falls back to the configured one (see `http.oauth.rotation`).
Each refresh re-reads the file, so a run that waited for the warehouse lock picks up a
token a concurrent run of the same spec just rotated.

Never copy the file into a spec or commit it; delete it to go back to the configured token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path

from restsync_assets import settings

__all__ = ["RefreshTokenStore", "store_path"]

logger = logging.getLogger(__name__)

FILE_MODE = 0o600


def store_path(source: str, directory: Path | None = None) -> Path:
    """`<pipelines dir>/<source>.refresh_token`."""
    return (directory or settings.pipelines_dir()) / f"{source}.refresh_token"


def _fingerprint(source: str, token: str) -> str:
    return hashlib.sha256(f"restsync/{source}/{token}".encode()).hexdigest()


class RefreshTokenStore:
    """The rotated refresh token of one source, descended from its `configured` token."""

    def __init__(self, source: str, configured: str, directory: Path | None = None) -> None:
        self.source = source
        self.configured = configured
        self.path = store_path(source, directory)

    def load(self) -> str | None:
        """The stored token when it was rotated from the configured one, else None."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            logger.warning("%s: ignoring unreadable refresh token file %s", self.source, self.path)
            return None
        token = data.get("refresh_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            return None
        if data.get("configured_sha256") != _fingerprint(self.source, self.configured):
            logger.info(
                "%s: the configured refresh token changed since %s was written; using the"
                " configured one",
                self.source,
                self.path.name,
            )
            return None
        return token

    def candidates(self) -> list[str]:
        """Refresh tokens to try, best first: the stored rotation, then the configured one."""
        stored = self.load()
        return [t for t in (stored, self.configured) if t]

    def save(self, token: str) -> None:
        """Store a newly rotated `token` (atomically, mode 0600)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(
            {
                "source": self.source,
                "refresh_token": token,
                "configured_sha256": _fingerprint(self.source, self.configured),
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        ).encode()
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(temp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        logger.info("%s: stored the rotated refresh token in %s", self.source, self.path)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
